"""Progress of a long run, whatever the runner: workers write how far their unit is; the driver
reads the journal and prints done / total, rate and ETA.

* worker side, :class:`Ticker`: the count of items (views, pairs, frames) a unit has made and the
  time it was reached, written to ``.kpdata/progress/<unit>`` at most once a second (the first at
  once);
* driver side, :class:`Progress`: a thread that every ``interval`` seconds counts the committed units
  (``.kpdata/units/``, each worth its planned items) plus the counts of units in flight, and shows
  a tqdm bar on a terminal; elsewhere (a log, CI) one line when the first rate is known and one per
  :data:`LINE_STEP` of the total, then a last line. The rate (and the ETA: what is left over the
  rate) counts from the first count seen, at the time the worker reached it (the driver sees it up
  to a second later: counted from then, a 200-view stage of 1.6 s read 190 views/s instead of
  125), so start-up does not skew it.
"""
from __future__ import annotations

import os
import sys
import threading
import time

from pipelines import journal

# Tagged outputs that stand for one item made (a view dropped or failed still counts as done).
ITEM_TAGS = ("failed", "dropped")
LINE_STEP = 0.05  # a line per 5 % when not on a terminal


class Ticker:
    """A unit's item count, written to ``path`` at most every ``every`` seconds (the first at once)
    as ``"<count> <time.time()>"``."""

    def __init__(self, path: str, every: float = 1.0):
        self.path, self.every = path, every
        self.count, self.last = 0, 0.0

    def tick(self, n: int = 1) -> None:
        if not n:
            return
        self.count += n
        now = time.monotonic()
        if now - self.last >= self.every:
            self.last = now
            try:
                journal.write_bytes(self.path, f"{self.count} {time.time():.3f}".encode("ascii"))
            except OSError:  # progress is best effort; the unit's own output is what matters
                pass

    def close(self) -> None:
        if self.last:
            try:
                journal.remove(self.path)
            except OSError:
                pass


def duration(seconds: float) -> str:
    seconds = int(round(seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m:02d}m{s:02d}s" if h else f"{m}m{s:02d}s" if m else f"{s}s"


class Progress:
    """The driver's progress display of one stage, as a context manager.

    ``planned``: {unit id: items} of the units the stage makes; ``before``: items already done
    (committed by an earlier run: counted as done, not in the rate); ``folder``: the journal folder
    whose files are the committed units (``units`` or ``shards``); ``label``: the items' name."""

    def __init__(self, output_dir: str, stage: str, planned: dict[str, int], before: int, label: str,
                 folder: str = journal.UNITS, interval: float = 1.0, stream=None, tty: bool | None = None):
        self.output_dir, self.stage, self.planned, self.before = output_dir, stage, planned, before
        self.label, self.folder, self.interval = label, folder, interval
        self.total = before + sum(planned.values())
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty() if tty is None else tty
        self._stop = threading.Event()
        self._thread = None
        self._bar = None
        self._next_line = 0.0
        self.start = time.monotonic()
        self.done = before
        self._stamp = None  # time.time() of the newest in-flight count read by the last poll
        self._first = None  # (time.time(), items) of the first items seen

    def __enter__(self) -> Progress:
        if self.planned:
            if self.tty:
                from tqdm import tqdm
                self._bar = tqdm(total=self.total, initial=self.before, unit=" " + self.label, desc=self.stage,
                                 file=self.stream, dynamic_ncols=True, smoothing=0.1)
            self._thread = threading.Thread(target=self._loop, name="kpdata-progress", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, exc_type, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if not self.planned:
            return
        before = self.done
        self.poll()
        if self._bar is not None:
            self._bar.update(self.done - before)
            self._bar.close()
        elif exc_type is None:
            print(self.line(final=True), file=self.stream, flush=True)

    def poll(self) -> int:
        """Items done now: committed units' planned items plus in-flight counts."""
        jdir = journal.journal_dir(self.output_dir)
        committed = {os.path.splitext(n)[0] for n in journal.listdir(os.path.join(jdir, self.folder))
                     if n.endswith(".json")}
        done = self.before + sum(n for uid, n in self.planned.items() if uid in committed)
        stamps = []
        for uid in journal.listdir(os.path.join(jdir, journal.PROGRESS)):
            if uid in self.planned and uid not in committed:
                try:
                    with journal.open_read(os.path.join(jdir, journal.PROGRESS, uid)) as f:
                        count, *stamp = f.read().split()
                    done += min(int(count), self.planned[uid])
                    stamps += map(float, stamp[:1])
                except (OSError, ValueError):  # gone (the unit committed meanwhile) or half written
                    pass
        self.done = min(done, self.total)
        self._stamp = max(stamps, default=None)
        return self.done

    def rate(self) -> float:
        """Items per second from the first items seen to the count now (start-up, before them, is
        not the rate's), each at the time its worker counted it (the newest in-flight count's; now,
        when all are committed)."""
        if self._first is None:
            return 0.0
        t0, d0 = self._first
        elapsed = (self._stamp if self._stamp is not None else time.time()) - t0
        return (self.done - d0) / elapsed if elapsed > 0 else 0.0

    def _observe(self) -> None:
        """The first items seen are the rate's origin, at the time their worker counted them (the
        poll's time when only committed units were seen)."""
        if self._first is None and self.done > self.before:
            now = time.time()  # a worker's clock ahead of this one's must not make the rate negative
            self._first = (min(self._stamp, now) if self._stamp is not None else now, self.done)

    def line(self, final: bool = False) -> str:
        pct = 100.0 * self.done / self.total if self.total else 100.0
        text = f"{self.stage}: {self.done:,}/{self.total:,} {self.label} ({pct:.0f}%)  {self.rate():.1f} {self.label}/s"
        if final:
            return text + f"  in {duration(time.monotonic() - self.start)}"
        rate = self.rate()
        eta = duration((self.total - self.done) / rate) if rate > 0 else "?"
        return text + f"  ETA {eta}"

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            before = self.done
            self.poll()
            self._observe()
            if self._bar is not None:
                self._bar.update(self.done - before)
            elif self.rate() > 0 and self.done < self.total and self.done >= self._next_line:
                print(self.line(), file=self.stream, flush=True)
                self._next_line = self.done + max(1, int(LINE_STEP * self.total))
