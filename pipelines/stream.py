"""The streaming write path (DESIGN §7): work units -> part files -> shards, memory bounded by one
record.

1. **Units.** The driver plans the work units (a model, a photo, a sequence, a KeyPose file) and
   assigns each to its shard with the seeded rule (:func:`assign_shards`). :class:`WriteUnits`
   runs a pipeline's own DoFn (``RenderViews``, ``MakePairs``...) on a unit's tasks and streams
   every record it makes, as it comes, into the unit's part file (a TFRecord file under a
   temporary name, renamed when complete: :class:`PartWriter`); the unit's dead letters, counters
   and timings go to its journal record (:mod:`pipelines.journal`). A unit whose records are a
   final file of their own (KeypointNet's one file per model, KeyPose's files of 20 frames) is
   written there directly.
2. **Shards.** :class:`AssembleShards` streams each shard's parts, in key order, into the shard:
   a TFRecord file, an LMDB environment of the split, or Click-Here's Caffe LMDBs. Parts whose keys
   follow each other are read one after the other; otherwise the parts' key indexes are merged.
   Each part's sha256 is checked as it is read.

Both stages are ``Create -> Reshuffle -> ParDo`` with one output: the primitives every runner
(Direct, Dask, Dataflow, Flink, Spark) executes the same way. Nothing groups records, so no step
holds more than the record at hand and a unit's key index.
"""
from __future__ import annotations

import collections
import concurrent.futures
import dataclasses
import errno
import hashlib
import io
import json
import os
import sys
import time
from typing import Any, Callable, Iterable, Iterator

import apache_beam as beam

from kpdata.errors import InputError
from kpdata.seeding import bucket
from pipelines import journal, progress, sinks
from schemas import tfrecord
from schemas.features import SchemaError
from schemas.dataset import caffe_lmdb, lmdb, names

FORMATS = ("tfrecord", "lmdb", "caffe")

# What a data item may raise at any stage (load, render, compose, encode): one dead letter, the run
# goes on. A record that does not fit its schema (a NaN keypoint that reached encoding) is bad data
# too: it is never written. Every other exception is a bug and propagates.
DATA_ERRORS = (InputError, SchemaError)


def dead_letter(e: Exception, key: str, path: str, stage: str) -> dict:
    """The dead-letter line of data error ``e`` (:data:`DATA_ERRORS`) about input ``key`` at
    ``path``: the error's own ``key``, ``stage`` and ``path`` attributes win over the arguments."""
    key = getattr(e, "key", None) or key
    stage = getattr(e, "stage", None) or stage
    if isinstance(e, InputError):
        return sinks.failure_record(key, stage, e.error, e.message, e.path or path)
    return sinks.failure_record(key, stage, "invalid_record", f"record does not fit its schema: {e}", path)


def _source(worker, task, unit) -> tuple[str, str]:
    """(key, input path) of a task for its dead letter: the worker's ``source(task)``, else the unit's key."""
    source = getattr(worker, "source", None)
    if source is not None:
        try:
            return source(task)
        except AttributeError:  # a worker whose tasks are not of the kind its source() reads
            pass
    return unit.key, ""


def _item_key(item, default: str) -> str:
    """The record key of a DoFn output: a dict's ``key``, ``(split, key, ...)`` or ``(group, (key, bytes))``."""
    if isinstance(item, dict) and isinstance(item.get("key"), str):
        return item["key"]
    if isinstance(item, tuple) and len(item) >= 2:
        if isinstance(item[1], str):
            return item[1]
        if isinstance(item[1], tuple) and item[1] and isinstance(item[1][0], str):
            return item[1][0]
    return default


class DuplicateKeyError(ValueError):
    """Two records with one key (a bug in the pipeline's keys, never bad input)."""


@dataclasses.dataclass(frozen=True)
class Unit:
    """One work unit: ``tasks`` (elements of the pipeline's DoFn, made in order), its ``split`` and
    ``shard`` (index in the split), ``planned`` items for the progress line, and ``final``: the
    unit's own output file relative to the output folder ('' = a part, assembled into its shard)."""

    key: str
    split: str
    tasks: tuple
    planned: int
    shard: int = 0
    final: str = ""

    @property
    def id(self) -> str:
        return journal.unit_id(self.key)


@dataclasses.dataclass(frozen=True)
class Shard:
    """One output shard: ``file`` (relative to the output folder) of ``fmt`` (:data:`FORMATS`),
    number ``index`` of ``count`` in ``split``, made from the parts of ``units`` (ids, key order)."""

    split: str
    index: int
    count: int
    file: str
    fmt: str
    units: tuple

    @property
    def id(self) -> str:
        return journal.unit_id(f"{self.split}-{self.index:05d}")


def assign_shards(units: list[Unit], shards: dict[str, int]) -> list[Unit]:
    """Each unit in shard ``bucket(unit key, shards[split])`` of its split (the seeded rule), in key order."""
    out = []
    for u in sorted(units, key=lambda u: u.key):
        if u.split not in shards:
            raise ValueError(f"unit {u.key!r} has split {u.split!r}, not one of {sorted(shards)}")
        out.append(dataclasses.replace(u, shard=bucket(u.key, shards[u.split])))
    return out


def plan_shards(units: list[Unit], shards: dict[str, int], fmt: str, file_of: Callable[[str, int, int], str]) -> list[Shard]:
    """Every shard of every split (also those no unit falls in: a reader finds what kpdata_info
    lists), with its units in key order. ``file_of(split, index, count)``: the shard's file."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown output format {fmt!r} (expected one of {', '.join(FORMATS)})")
    members = collections.defaultdict(list)
    for u in sorted(units, key=lambda u: u.key):
        members[(u.split, u.shard)].append(u.id)
    return [Shard(split, i, n, file_of(split, i, n), fmt, tuple(members[(split, i)]))
            for split, n in sorted(shards.items()) for i in range(n)]


def keyed(item: tuple) -> list[tuple[str, bytes]]:
    """A DoFn's ``(split, key, bytes)`` output as records: ``[(key, bytes)]``."""
    return [(item[1], item[2])]


# ------------------------------------------------------------------------------ part files


class PartWriter:
    """Streams ``(key, bytes)`` records into a TFRecord file at ``path`` under a temporary name.

    Keeps only the key index (key, offset, length) in memory. :meth:`commit` renames the file into
    place (sorted by key first when ``sort``), writes the index beside it when ``index``, and
    returns ``{file, examples, bytes, sha256, sorted, first, last}``. A duplicate key raises
    :class:`DuplicateKeyError`."""

    def __init__(self, path: str):
        self.path, self.tmp = path, names.tmp_name(path)
        self.f = journal.open_write(self.tmp)
        self.hash = hashlib.sha256()
        self.index: list[tuple[str, int, int]] = []
        self.offset, self.sorted = 0, True

    def add(self, key: str, value: bytes) -> None:
        if self.index and key <= self.index[-1][0]:
            if key == self.index[-1][0]:
                raise DuplicateKeyError(f"duplicate record key {key!r} in {self.path}")
            self.sorted = False
        chunk = tfrecord.frame(value)
        self.f.write(chunk)
        self.hash.update(chunk)
        self.index.append((key, self.offset, len(chunk)))
        self.offset += len(chunk)

    def commit(self, sort: bool = False, index: bool = True) -> dict:
        try:
            return self._commit(sort, index)
        except BaseException:
            self.abort()
            raise

    def _commit(self, sort: bool, index: bool) -> dict:
        self._close()
        if not self.sorted:
            keys = [k for k, _, _ in self.index]
            if len(set(keys)) < len(keys):
                dup = collections.Counter(keys).most_common(1)[0][0]
                raise DuplicateKeyError(f"duplicate record key {dup!r} in {self.path}")
            if sort:
                self._sort()
        if index:
            journal.write_bytes(journal.index_path(self.path), "".join(
                json.dumps(entry) + "\n" for entry in self.index).encode("utf-8"))
        journal.rename(self.tmp, self.path)
        keys = [k for k, _, _ in self.index]
        return {"file": os.path.basename(self.path), "examples": len(keys), "bytes": self.offset,
                "sha256": self.hash.hexdigest(), "sorted": self.sorted, "first": keys[0] if keys else None,
                "last": keys[-1] if keys else None}

    def abort(self) -> None:
        self._close()
        journal.remove(self.tmp)

    def _close(self) -> None:
        if not self.f.closed:
            self.f.flush()
            if not journal.remote(self.tmp):
                os.fsync(self.f.fileno())
            self.f.close()

    def _sort(self) -> None:
        """Rewrite the temporary file in key order, one record at a time."""
        tmp = names.tmp_name(self.path)
        order = sorted(self.index)
        h, offset, index = hashlib.sha256(), 0, []
        with journal.open_read(self.tmp) as src, journal.open_write(tmp) as dst:
            for key, off, length in order:
                src.seek(off)
                chunk = src.read(length)
                dst.write(chunk)
                h.update(chunk)
                index.append((key, offset, length))
                offset += length
        journal.remove(self.tmp)
        self.tmp, self.hash, self.index, self.sorted = tmp, h, index, True


class _HashingReader(io.RawIOBase):
    """A file read through, its bytes hashed (sha256) on the way."""

    def __init__(self, f):
        self.f, self.hash = f, hashlib.sha256()

    def read(self, n=-1):
        data = self.f.read(n)
        self.hash.update(data)
        return data


def _read_index(part: str) -> list[tuple[str, int, int]]:
    with journal.open_read(journal.index_path(part)) as f:
        return [tuple(json.loads(line)) for line in f.read().decode("utf-8").splitlines()]


def part_records(part: str, info: dict) -> Iterator[tuple[str, bytes]]:
    """A part's ``(key, bytes)`` records in file order, every CRC and the sha256 checked."""
    keys = [k for k, _, _ in _read_index(part)]
    with journal.open_read(part) as f:
        reader = _HashingReader(f)
        n = 0
        for key, data in zip(keys, tfrecord.read_records(reader, part)):
            yield key, data
            n += 1
        if reader.read() or n != info["examples"] or reader.hash.hexdigest() != info["sha256"]:
            raise journal.FolderError(f"{part}: does not match its journal record (sha256); delete it and its "
                                      f".json in {os.path.dirname(os.path.dirname(part))}/units, then rerun")


def ordered_records(parts: list[tuple[str, dict]]) -> Iterator[tuple[str, bytes]]:
    """The records of ``parts`` [(path, info)] in key order, unique keys: one part after the other
    when their keys follow each other (the usual case: units in key order, records in key order),
    else a merge of their key indexes with one record read at a time."""
    parts = [(p, i) for p, i in parts if i["examples"]]
    chained = all(i["sorted"] for _, i in parts) and all(
        a["last"] < b["first"] for (_, a), (_, b) in zip(parts, parts[1:]))
    if chained:
        for path, info in parts:
            yield from part_records(path, info)
        return
    for path, info in parts:  # the sha256 of every part, before reading them out of order
        if journal.digest(path) != (info["bytes"], info["sha256"]):
            raise journal.FolderError(f"{path}: does not match its journal record (sha256); rerun with --overwrite")
    entries = sorted((key, n, off, length) for n, (path, _) in enumerate(parts) for key, off, length in _read_index(path))
    for (a, *_), (b, *_) in zip(entries, entries[1:]):
        if a == b:
            raise DuplicateKeyError(f"duplicate record key {a!r} in the parts {[p for p, _ in parts]}")
    handles: collections.OrderedDict = collections.OrderedDict()
    try:
        for key, n, off, length in entries:
            f = handles.pop(n, None) or journal.open_read(parts[n][0])
            handles[n] = f
            if len(handles) > 64:
                handles.popitem(last=False)[1].close()
            f.seek(off)
            yield key, next(tfrecord.read_records(io.BytesIO(f.read(length)), parts[n][0]))
    finally:
        for f in handles.values():
            f.close()


# ------------------------------------------------------------------------------ shard writers


def write_tfrecord(path: str, records: Iterable[tuple[str, bytes]]) -> dict:
    """``records`` (key order) into a TFRecord file at ``path``, atomically."""
    w = PartWriter(path)
    try:
        for key, value in records:
            w.add(key, value)
        info = w.commit(index=False)
    except BaseException:
        w.abort()
        raise
    return info


def write_lmdb(path: str, records: Iterable[tuple[str, bytes]]) -> dict:
    """``records`` into a new LMDB environment (a folder) at ``path``, written aside and renamed;
    committed every 1000 records, so memory holds one transaction."""
    tmp = names.tmp_name(path)
    os.makedirs(tmp)
    env = lmdb.open_write(tmp)
    n = 0
    try:
        txn = env.begin(write=True)
        for key, value in records:
            if not txn.put(key.encode("utf-8"), value, overwrite=False):
                raise DuplicateKeyError(f"duplicate record key {key!r} in {os.path.basename(path)}")
            n += 1
            if n % 1000 == 0:
                txn.commit()
                txn = env.begin(write=True)
        txn.commit()
        env.sync(True)
    except lmdb.Error as e:
        env.close()
        journal.remove(tmp)
        raise _lmdb_write_error(e, path) from None
    except BaseException:
        env.close()
        journal.remove(tmp)
        raise
    env.close()
    journal.rename(tmp, path)
    return {"file": os.path.basename(path), "examples": n}


def _lmdb_write_error(e: Exception, path: str) -> Exception:
    """The real cause of an LMDB write failure: LMDB reports a full disk as "Input/output error"
    (a short write), so the free space of the file system is looked at; an OSError naming it."""
    try:
        st = os.statvfs(os.path.dirname(os.path.abspath(path)))
        free = st.f_bavail * st.f_frsize
    except OSError:
        return e
    if free < (64 << 20):
        return OSError(errno.ENOSPC, f"no space left on the device writing {path} ({free} bytes free; "
                                     f"LMDB reported: {e})")
    return OSError(errno.EIO, f"writing {path} failed: {e} ({free} bytes free on the device)")


def write_shard(output_dir: str, shard: Shard, parts: list[tuple[str, dict]]) -> dict:
    """One shard from its parts; returns its journal record {split, index, num_shards, file,
    examples, bytes, sha256}."""
    path = os.path.join(output_dir, shard.file)
    records = ordered_records(parts)
    if shard.fmt == "tfrecord":
        info = write_tfrecord(path, records)
    elif shard.fmt == "lmdb":
        info = write_lmdb(path, records)
    else:
        try:
            info = caffe_lmdb.write_caffe_lmdbs(path, records)
        except lmdb.Error as e:
            raise _lmdb_write_error(e, path) from None
    size, sha = journal.digest(path)
    return {"split": shard.split, "index": shard.index, "num_shards": shard.count, "file": shard.file,
            "examples": info["examples"], "bytes": size, "sha256": sha}


# ------------------------------------------------------------------------------ the two DoFns


SWITCH_INTERVAL = 0.001  # s: the longest a thread keeps the GIL from another (Python's default: 0.005)
STARVED = 0.05  # s: the longest the worker waits for a background encode before encoding moves to a normal thread


def _lowest_cpu_priority() -> None:
    """The calling thread runs only on CPU time no other thread wants (Linux ``SCHED_IDLE``)."""
    try:
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    except (AttributeError, OSError):  # not Linux, or not permitted: it stays at normal priority
        pass


class Encoder:
    """Runs ``fn(item)`` on one helper thread, for a worker that takes the results in the order it
    submitted the items.

    The thread runs at the lowest CPU priority (Linux ``SCHED_IDLE``; elsewhere at normal
    priority). A render worker keeps the cores busy with Mesa's rasteriser while a view is drawn,
    and leaves one mostly idle while it reads the view back and submits the next: at normal
    priority the encoding took its share of the cores from the rasteriser (1,000-view chair, one
    worker: 12.78 -> 12.25 s over six interleaved runs each, 12.07 -> 11.90 s over eight more;
    two workers: no change above the noise).
    A thread at that priority gets almost no CPU while other programs keep the cores busy (300
    views took 191 s instead of 9.5 s beside two busy loops), and an unprivileged process cannot
    raise it again; so once the worker has waited :data:`STARVED` for a result, encoding moves for
    good to a new thread at normal priority, and every item not yet taken is submitted to it again
    (``fn`` must be a pure function of its item: the results are the same)."""

    def __init__(self, fn: Callable[[Any], Any]):
        self._fn = fn
        self._background = hasattr(os, "SCHED_IDLE")
        self._pool = concurrent.futures.ThreadPoolExecutor(
            1, thread_name_prefix="kpdata-encode", initializer=_lowest_cpu_priority if self._background else None)
        self._open: collections.deque = collections.deque()  # [future, item] not yet taken, in order

    @property
    def background(self) -> bool:
        """Whether encoding still runs on the low-priority thread."""
        return self._background

    def submit(self, item) -> list:
        """Queue ``fn(item)``; returns the job to pass to :meth:`result`."""
        job = [self._pool.submit(self._fn, item), item]
        self._open.append(job)
        return job

    def result(self, job: list):
        """``fn(item)`` of ``job`` (its exception raised here), waiting for it."""
        if self._background and not job[0].done():
            try:
                concurrent.futures.wait([job[0]], timeout=STARVED)
            finally:
                if not job[0].done():
                    self._to_foreground()
        self._open.remove(job)
        return job[0].result()

    def cancel(self) -> None:
        """Drop the jobs not taken; returns when none of them runs any more (an item abandoned by
        :meth:`_to_foreground` may still finish on the old thread: its result is never read)."""
        jobs, self._open = list(self._open), collections.deque()
        for future, _ in jobs:
            future.cancel()
        concurrent.futures.wait([future for future, _ in jobs])

    def shutdown(self) -> None:
        self.cancel()
        self._pool.shutdown()

    def _to_foreground(self) -> None:
        old, self._pool = self._pool, concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="kpdata-encode")
        self._background = False
        stale = [job for job in self._open if not job[0].done()]
        old.shutdown(wait=False, cancel_futures=True)  # the item it runs finishes unseen
        for job in stale:
            job[0] = self._pool.submit(self._fn, job[1])


class WriteUnits(beam.DoFn):
    """Unit -> its id, after making it: ``worker`` (the pipeline's DoFn) runs on each task; its main
    outputs become records through ``records(output) -> [(key, bytes)]`` streamed into the unit's
    part (or its ``final`` file), or, when ``records`` is None, are kept in the unit's journal
    record (``items``). Tagged outputs (``failed``, ``timing``, counters...) go to the record too.

    ``final_empty``: write a unit's final file even when it has no record.

    Encoding overlaps making: ``records(output)`` runs on one helper thread (:class:`Encoder`; PNG
    and zlib release the GIL) while the worker makes the next outputs, at most :attr:`AHEAD` outputs
    ahead; records are written in the order the outputs came, so the bytes are those of a serial run."""

    AHEAD = 2

    def __init__(self, output_dir: str, worker: beam.DoFn, records: Callable[[Any], Iterable] | None,
                 final_empty: bool = False):
        self.output_dir, self.worker, self.records, self.final_empty = output_dir, worker, records, final_empty
        self._encoder = None

    def setup(self):
        self.worker.setup()

    def teardown(self):
        self.worker.teardown()
        if self._encoder is not None:
            self._encoder.shutdown()
            self._encoder = None

    def process(self, unit: Unit):
        out = self.output_dir
        outputs: dict[str, list] = collections.defaultdict(list)
        ticker = progress.Ticker(journal.progress_path(out, unit.id))
        writer = None
        if self.records is not None:
            target = os.path.join(out, unit.final) if unit.final else journal.part_path(out, unit.id)
            writer = PartWriter(target)
        if writer is not None and self._encoder is None:
            self._encoder = Encoder(lambda x: list(self.records(x)))
            # The worker's thread releases the GIL around each of its many short GL calls; with the
            # encoder's Python holding it, taking it back waited up to Python's switch interval
            # (5 ms) each time: 1 ms made a 1,000-view render 3.5 % faster here (no gain below).
            sys.setswitchinterval(min(sys.getswitchinterval(), SWITCH_INTERVAL))
        pending: collections.deque = collections.deque()
        t0 = time.perf_counter()
        try:
            for task in unit.tasks:
                self._task(unit, task, writer, outputs, ticker, pending)
            part = None
            if writer is not None:
                self._encoded(pending, writer, outputs, 0)
                if unit.final and not writer.index and not self.final_empty:
                    writer.abort()
                else:
                    part = writer.commit(sort=bool(unit.final), index=not unit.final)
        except BaseException:
            if self._encoder is not None:
                self._encoder.cancel()
            if writer is not None:
                writer.abort()
            raise
        finally:
            ticker.close()
        journal.write_json(journal.unit_record(out, unit.id), {
            "key": unit.key, "split": unit.split, "shard": unit.shard, "final": unit.final, "part": part,
            "outputs": outputs, "seconds": round(time.perf_counter() - t0, 3)})
        yield unit.id


    def _encoded(self, pending: collections.deque, writer: PartWriter, outputs: dict, limit: int) -> None:
        """Write the oldest pending outputs' records until at most ``limit`` are pending. A data error
        (:data:`DATA_ERRORS`) raised encoding an output drops that record alone: one dead letter of
        stage ``encode`` (its key from the output, its path from the worker's ``source(task)``)."""
        while len(pending) > limit:
            job, item, task, unit = pending.popleft()
            try:
                records = self._encoder.result(job)
            except DATA_ERRORS as e:
                key, path = _source(self.worker, task, unit)
                outputs["failed"].append(dead_letter(e, _item_key(item, key), path, "encode"))
                continue
            for key, value in records:
                writer.add(key, value)

    def _task(self, unit: Unit, task, writer, outputs: dict, ticker, pending: collections.deque) -> None:
        """One task through the worker; its outputs' encoding is queued on the encoder thread
        (:meth:`_encoded`). A data error (:data:`DATA_ERRORS`) the worker lets out ends the task as
        one dead letter (key and path from the worker's ``source(task)``, stage from the error or the
        worker's ``stage``). Records the task made before stay: each is whole and good."""
        try:
            for item in self.worker.process(task) or ():
                if isinstance(item, beam.pvalue.TaggedOutput):
                    outputs[item.tag].append(item.value)
                    ticker.tick(item.tag in progress.ITEM_TAGS)
                elif writer is None:
                    outputs["items"].append(item)
                    ticker.tick()
                else:
                    pending.append((self._encoder.submit(item), item, task, unit))
                    self._encoded(pending, writer, outputs, self.AHEAD)
                    ticker.tick()
        except DATA_ERRORS as e:
            key, path = _source(self.worker, task, unit)
            outputs["failed"].append(dead_letter(e, key, path, getattr(self.worker, "stage", "") or "render"))
            beam.metrics.Metrics.counter("kpdata", "inputs_failed").inc()


class AssembleShards(beam.DoFn):
    """Shard -> its id, after writing it from its units' parts (:func:`write_shard`), recording it
    in the journal and deleting the parts."""

    def __init__(self, output_dir: str):
        self.output_dir = output_dir

    def process(self, shard: Shard):
        out = self.output_dir
        done = journal.read_record(journal.shard_record(out, shard.id))
        if done is not None and journal.intact(os.path.join(out, shard.file), done):
            yield shard.id  # made already: a runner's retry of a finished element (Dask re-runs them)
            return
        parts = []
        for uid in shard.units:
            rec = journal.read_record(journal.unit_record(out, uid))
            if rec is None:
                raise journal.FolderError(f"{journal.unit_record(out, uid)}: missing; the unit was not made")
            parts.append((journal.part_path(out, uid), rec["part"]))
        info = write_shard(out, shard, parts)
        journal.write_json(journal.shard_record(out, shard.id), info)
        for path, _ in parts:
            journal.remove(path)
            journal.remove(journal.index_path(path))
        yield shard.id
