"""The streaming write path (pipelines.stream) without GL: part files, the key-ordered read of parts,
shard writers, and the two stages (units, shards) under Beam on a synthetic DoFn. What is written
is read back with schemas.tfrecord / LMDB and compared with the records the DoFn made."""
import errno
import json
import os

import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import PipelineOptions

from kpdata.seeding import bucket
from pipelines import journal, skeleton, stream
from schemas import tfrecord
from schemas.dataset import lmdb
from schemas.dataset.names import ERRORS_DIR, FAILURES_FILE, TEMP_NAME, shard_name


def _read(path):
    with open(path, "rb") as f:
        return list(tfrecord.read_records(f, path))


def _part(tmp_path, name, records, **commit):
    w = stream.PartWriter(str(tmp_path / name))
    for k, v in records:
        w.add(k, v)
    return str(tmp_path / name), w.commit(**commit)


def test_part_writer_streams_records_with_index_and_digest(tmp_path):
    recs = [(f"m/v{i:03d}", bytes([i]) * (i + 1)) for i in range(5)]
    path, info = _part(tmp_path, "p.tfrecord", recs)
    assert _read(path) == [v for _, v in recs]
    assert journal.digest(path) == (info["bytes"], info["sha256"]) and info["bytes"] == os.path.getsize(path)
    assert (info["examples"], info["sorted"], info["first"], info["last"]) == (5, True, "m/v000", "m/v004")
    index = [json.loads(x) for x in open(journal.index_path(path)).read().splitlines()]
    assert [k for k, _, _ in index] == [k for k, _ in recs] and index[1][1] == index[0][2]
    assert not [n for n in os.listdir(tmp_path) if TEMP_NAME.search(n)]


def test_part_writer_sorts_on_request_and_refuses_duplicates(tmp_path):
    recs = [("c", b"3"), ("a", b"1"), ("b", b"2")]
    path, info = _part(tmp_path, "s.tfrecord", recs, sort=True, index=False)
    assert _read(path) == [b"1", b"2", b"3"] and info["sorted"] and info["first"] == "a"
    assert journal.digest(path) == (info["bytes"], info["sha256"])
    w = stream.PartWriter(str(tmp_path / "d.tfrecord"))
    w.add("a", b"1")
    with pytest.raises(stream.DuplicateKeyError, match="'a'"):
        w.add("a", b"2")
    w.abort()
    w = stream.PartWriter(str(tmp_path / "e.tfrecord"))
    for k in ("b", "a", "b"):
        w.add(k, b"x")
    with pytest.raises(stream.DuplicateKeyError, match="'b'"):
        w.commit()
    assert not [n for n in os.listdir(tmp_path) if TEMP_NAME.search(n)]


def test_ordered_records_chains_or_merges_parts(tmp_path):
    a = _part(tmp_path, "a", [("k1", b"1"), ("k3", b"3")])
    b = _part(tmp_path, "b", [("k4", b"4"), ("k5", b"5")])
    c = _part(tmp_path, "c", [("k2", b"2"), ("k0", b"0")])  # unsorted, interleaving a
    assert list(stream.ordered_records([a, b])) == [("k1", b"1"), ("k3", b"3"), ("k4", b"4"), ("k5", b"5")]
    assert [k for k, _ in stream.ordered_records([a, b, c])] == ["k0", "k1", "k2", "k3", "k4", "k5"]
    d = _part(tmp_path, "d", [("k3", b"other")])
    with pytest.raises(stream.DuplicateKeyError, match="k3"):
        list(stream.ordered_records([a, d, b]))


def test_a_changed_part_is_refused(tmp_path):
    path, info = _part(tmp_path, "a", [("k1", b"1"), ("k2", b"2")])
    data = bytearray(open(path, "rb").read())
    data[-5] ^= 1  # inside the last record's data: the CRC or the digest catches it
    open(path, "wb").write(bytes(data))
    with pytest.raises((journal.FolderError, tfrecord.CorruptRecordError)):
        list(stream.ordered_records([(path, info)]))


class MakeRecords(beam.DoFn):
    """A synthetic unit worker: task (model, n, split) -> n records, one failure for model 'bad'."""

    def process(self, task):
        model, n, split = task
        if model == "bad":
            yield beam.pvalue.TaggedOutput("failed", {"key": model, "stage": "load", "error": "corrupt_mesh",
                                                      "message": "no faces", "path": "/in/bad"})
            return
        for i in range(n):
            yield split, f"{model}/v{i:03d}", f"{model}:{i}".encode()
        yield beam.pvalue.TaggedOutput("timing", ("render", 0.5))


# "m" and "m/a": unit order m < m/a, record order m/a/v... < m/v...: their parts are merged.
MODELS = [("m-b", 3, "train"), ("m/a", 4, "train"), ("m", 2, "train"), ("t", 2, "test"), ("bad", 2, "train"),
          ("z", 1, "train")]


def _work(fmt, shards):
    units = [stream.Unit(m, s, ((m, n, s),), n) for m, n, s in MODELS]
    units, shard_list = skeleton.shard_layout(units, shards, fmt, "ds")
    return skeleton.Work(units, MakeRecords(), stream.keyed, shard_list)


def _expected(split):
    return sorted(f"{m}/v{i:03d}" for m, n, s in MODELS if s == split and m != "bad" for i in range(n))


@pytest.mark.parametrize("fmt", ["tfrecord", "lmdb"])
def test_units_then_shards_under_beam(tmp_path, fmt):
    out = str(tmp_path)
    shards = {"train": 3, "test": 1, "val": 1}  # val has no unit: its shard is written empty
    work = _work(fmt, shards)
    options = PipelineOptions([])
    skeleton.make(work, out, options, skeleton.logging.getLogger("test"))
    failures, timings, (infos,), _ = skeleton.gather(work, out)
    assert [(f["key"], f["error"]) for f in failures] == [("bad", "corrupt_mesh")]
    assert timings == [("render", 0.5)] * 5
    for split in shards:
        files = [i for i in infos if i["split"] == split]
        got = []
        for info in files:
            path = os.path.join(out, info["file"])
            assert journal.digest(path) == (info["bytes"], info["sha256"])
            if fmt == "lmdb":
                keys = [k.decode() for k, _ in lmdb.items(path)]
            else:
                raws = _read(path)
                keys = [r.decode().split(":")[0] + "/v" + f"{int(r.decode().split(':')[1]):03d}" for r in raws]
                for k in keys:  # each model in the shard its key hashes to
                    assert bucket(k.rsplit("/", 1)[0], shards[split]) == info["index"]
                assert info["file"] == shard_name("ds", split, info["index"], shards[split])
            assert keys == sorted(keys) and info["examples"] == len(keys)
            got += keys
        assert sorted(got) == _expected(split)
    jdir = journal.journal_dir(out)
    assert not os.path.exists(os.path.join(jdir, journal.PARTS)) or not os.listdir(os.path.join(jdir, journal.PARTS))


def test_execute_resumes_from_the_journal_and_writes_dead_letters(tmp_path):
    """A unit record and part left by a killed run are reused; the result equals a clean run's."""
    clean, resumed = str(tmp_path / "clean"), str(tmp_path / "resumed")
    log = skeleton.logging.getLogger("test")
    work = _work("tfrecord", {"train": 2, "test": 1})
    skeleton.make(work, clean, PipelineOptions([]), log)
    # A killed run: one unit committed (its part and record), nothing else.
    first = work.units[0]
    done = skeleton.Work([first], MakeRecords(), stream.keyed, [])
    skeleton.make(done, resumed, PipelineOptions([]), log)
    units, shards, before = skeleton.pending(work, resumed)
    assert first not in units and before == first.planned and len(shards) == 3
    skeleton.make(work, resumed, PipelineOptions([]), log)
    for s in work.shards:
        assert open(os.path.join(clean, s.file), "rb").read() == open(os.path.join(resumed, s.file), "rb").read()
    units, shards, before = skeleton.pending(work, resumed)
    assert (units, shards) == ([], [])
    path = skeleton.sinks.write_dead_letters(resumed, skeleton.gather(work, resumed)[0])
    assert path == os.path.join(resumed, ERRORS_DIR, FAILURES_FILE)
    assert [json.loads(x)["key"] for x in open(path)] == ["bad"]


FAILURES = [skeleton.sinks.failure_record("m2", "load", "corrupt_mesh", "cannot parse OBJ", "/data/m2/model.obj"),
            skeleton.sinks.failure_record("m0", "render", "no_keypoints", "no annotation", "/data/m0"),
            skeleton.sinks.failure_record("m0", "load", "missing_texture", "texture missing", "/data/m0/t.png")]


def test_dead_letters_sorted_by_key_and_stage_and_always_written(tmp_path):
    sinks = skeleton.sinks
    path = sinks.write_dead_letters(str(tmp_path), FAILURES)
    rows = [json.loads(line) for line in open(path).read().splitlines()]
    assert [(r["key"], r["stage"]) for r in rows] == [("m0", "load"), ("m0", "render"), ("m2", "load")]
    assert rows[0] == FAILURES[2]
    assert sinks.failure_summary(rows) == {"total": 3, "by_stage": {"load": 2, "render": 1},
                                           "by_error": {"missing_texture": 1, "no_keypoints": 1, "corrupt_mesh": 1}}
    empty = sinks.write_dead_letters(str(tmp_path), [], "dropped.jsonl")
    assert empty == os.path.join(str(tmp_path), ERRORS_DIR, "dropped.jsonl") and open(empty).read() == ""


# ------------------------------------------------------------------ a full disk (issue 14.10)


def _tiny_tmpfs(path) -> bool:
    """Mount a 1 MiB tmpfs at ``path`` (root only); False when the system does not allow it."""
    import subprocess
    os.makedirs(path, exist_ok=True)
    return subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1M", "tmpfs", str(path)],
                          capture_output=True).returncode == 0


def test_a_full_disk_under_lmdb_is_named_and_leaves_nothing(tmp_path, monkeypatch):
    """LMDB reports a short write as "Input/output error"; the error names the full disk. On a real
    1 MiB tmpfs when this process may mount one (root), else (or with KPDATA_TEST_NO_MOUNT=1) with
    the file system's free space and LMDB's error simulated."""
    import subprocess
    from schemas.dataset import lmdb as kplmdb
    disk = tmp_path / "disk"
    mounted = not os.environ.get("KPDATA_TEST_NO_MOUNT") and _tiny_tmpfs(disk)
    try:
        if not mounted:
            class _Env:
                def begin(self, write=False):
                    return self

                def put(self, *a, **k):
                    return True

                def commit(self):
                    raise kplmdb.Error("mdb_txn_commit: Input/output error")

                def close(self):
                    pass
            monkeypatch.setattr(kplmdb, "open_write", lambda path: _Env())
            monkeypatch.setattr(os, "statvfs", lambda p: os.statvfs_result((4096, 4096, 256, 0, 0, 0, 0, 0, 0, 255)))
        records = ((f"{i:06d}", os.urandom(4000)) for i in range(2000))
        with pytest.raises(OSError) as e:
            stream.write_lmdb(str(disk / "x.lmdb"), records)
        assert e.value.errno == errno.ENOSPC and "no space left on the device" in str(e.value)
        assert "x.lmdb" in str(e.value) and os.listdir(disk) == []  # the temporary environment is gone
    finally:
        if mounted:
            subprocess.run(["umount", str(disk)], check=False)


def _slow_records(item):
    """Encoding that takes longer for early items, so a thread finishing out of order would show."""
    import time  # noqa: PLC0415
    _, key, value = item
    time.sleep(0.02 if key.endswith(("0", "2")) else 0.0)
    if value == b"boom":
        raise ValueError(f"cannot encode {key}")
    return [(key, value)]


def test_write_units_encodes_ahead_but_writes_in_order(tmp_path):
    out = str(tmp_path)
    dofn = stream.WriteUnits(out, MakeRecords(), _slow_records)
    dofn.setup()
    unit = stream.Unit("m", "train", (("m", 7, "train"),), 7)
    assert list(dofn.process(unit)) == [unit.id]
    dofn.teardown()
    part = journal.part_path(out, unit.id)
    assert _read(part) == [f"m:{i}".encode() for i in range(7)]
    rec = json.load(open(journal.unit_record(out, unit.id)))
    assert rec["part"]["examples"] == 7 and rec["part"]["sorted"]


class MakeOneBad(beam.DoFn):
    def process(self, task):
        for i, value in enumerate([b"a", b"b", b"boom", b"d", b"e"]):
            yield "train", f"m/v{i:03d}", value


def test_write_units_encoding_error_fails_the_unit_and_leaves_no_part(tmp_path):
    out = str(tmp_path)
    dofn = stream.WriteUnits(out, MakeOneBad(), _slow_records)
    dofn.setup()
    unit = stream.Unit("m", "train", (("m", 5, "train"),), 5)
    with pytest.raises(ValueError, match="cannot encode m/v002"):
        list(dofn.process(unit))
    dofn.teardown()
    left = [os.path.join(r, n) for r, _, fs in os.walk(out) for n in fs]
    assert not any(TEMP_NAME.search(p) for p in left)
    assert not os.path.exists(journal.part_path(out, unit.id))


def _sleep_then_policy(seconds):
    import time  # noqa: PLC0415
    time.sleep(seconds)
    return seconds, os.sched_getscheduler(0)


@pytest.mark.skipif(not hasattr(os, "SCHED_IDLE"), reason="Linux scheduling policies")
def test_encoder_runs_at_idle_priority_until_it_keeps_the_worker_waiting():
    enc = stream.Encoder(_sleep_then_policy)
    jobs = [enc.submit(s) for s in (0.0, 4 * stream.STARVED, 0.0, 0.0)]
    jobs[0][0].result()  # (its future) done on the background thread, however busy this machine is
    assert enc.result(jobs[0]) == (0.0, os.SCHED_IDLE) and enc.background
    # The second keeps the worker waiting past STARVED: it and the ones after run again on a new
    # thread at normal priority, for good.
    assert enc.result(jobs[1]) == (4 * stream.STARVED, os.SCHED_OTHER) and not enc.background
    assert [enc.result(j) for j in jobs[2:]] == [(0.0, os.SCHED_OTHER)] * 2
    assert enc.result(enc.submit(0.0)) == (0.0, os.SCHED_OTHER)
    enc.shutdown()
