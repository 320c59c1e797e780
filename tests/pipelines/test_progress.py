"""Progress (pipelines.progress): workers' tickers and the driver's line, read from the journal."""
import io
import os
import time

from pipelines import journal, progress


def test_ticker_writes_at_once_then_at_most_every_interval(tmp_path):
    path = str(tmp_path / "u")
    t = progress.Ticker(path, every=60.0)
    before = time.time()
    t.tick()
    count, stamp = open(path).read().split()  # the first tick is written at once, with its time
    assert count == "1" and before - 0.001 <= float(stamp) <= time.time() + 0.001
    t.tick(4)
    assert open(path).read().split()[0] == "1" and t.count == 5  # then not before `every` seconds
    t.close()
    assert not os.path.exists(path)


def test_progress_counts_committed_and_in_flight_units(tmp_path):
    out = str(tmp_path)
    jdir = journal.journal_dir(out)
    planned = {"a": 10, "b": 10, "c": 20}
    stream = io.StringIO()
    p = progress.Progress(out, "render", planned, before=5, label="views", interval=0.05, stream=stream, tty=False)
    with p:
        journal.write_json(journal.unit_record(out, "a"), {})  # a committed: its 10 planned views
        journal.write_bytes(journal.progress_path(out, "c"), b"7")  # c in flight: 7 done
        journal.write_bytes(journal.progress_path(out, "x"), b"99")  # not this stage's unit: ignored
        time.sleep(0.3)
        assert p.poll() == 5 + 10 + 7 and p.total == 45
        assert stream.getvalue() == ""  # no rate yet: the first items seen are the reference
        journal.write_bytes(journal.progress_path(out, "c"), b"9")
        time.sleep(0.3)
    lines = stream.getvalue().splitlines()
    assert lines[0].startswith("render: 24/45 views (53%)") and "ETA" in lines[0] and "ETA ?" not in lines[0]
    assert lines[-1].startswith("render: 24/45 views") and " in " in lines[-1]
    assert os.path.isdir(jdir)


def test_eta_is_remaining_over_rate(tmp_path):
    p = progress.Progress(str(tmp_path), "render", {"a": 100}, before=0, label="views", tty=False,
                          stream=io.StringIO())
    assert p.line().endswith("ETA ?")  # no item seen yet: no rate
    p.done = 5
    p._observe()
    p._first = (time.time() - 10.0, 5)  # the first items seen 10 s ago
    p.done = 30  # 2.5 views/s since: 70 left take 28 s
    assert p.line().endswith("ETA 28s") and "2.5 views/s" in p.line()
    assert progress.duration(3725) == "1h02m05s" and progress.duration(65) == "1m05s"


def test_rate_counts_from_when_the_worker_reached_the_first_count(tmp_path):
    """The driver sees a count up to a poll interval after the worker wrote it; the rate runs from
    the worker's time of the first count seen to its time of the newest (a 200-view stage of 1.6 s
    read 190 views/s when counted from the driver's first sight), or the driver's times for counts
    without one."""
    out = str(tmp_path)
    path = journal.progress_path(out, "a")

    def stage():
        return progress.Progress(out, "render", {"a": 100}, before=0, label="views", tty=False, stream=io.StringIO())

    def count(p, text: str):
        journal.write_bytes(path, text.encode())
        p.poll()
        p._observe()

    t = time.time() - 20.0
    p = stage()
    count(p, f"5 {t:.3f}")
    assert p.rate() == 0.0  # one count: no rate yet
    count(p, f"30 {t + 10.0:.3f}")  # 25 views in the 10 s after the worker counted 5
    assert p.done == 30 and abs(p.rate() - 2.5) < 0.01
    journal.write_json(journal.unit_record(out, "a"), {})  # committed: all 100 by now
    p.poll()
    assert p.done == 100 and abs(p.rate() - 95 / 20.0) < 0.1
    journal.remove(journal.unit_record(out, "a"))
    q = stage()
    count(q, "5")  # no time in the file: the driver's
    time.sleep(0.2)
    count(q, "30")
    assert 25 / 0.5 < q.rate() < 25 / 0.2 + 1
    ahead = stage()
    count(ahead, f"5 {time.time() + 60.0:.3f}")
    assert ahead._first[0] <= time.time()  # a worker's clock ahead: from now, not from the future
