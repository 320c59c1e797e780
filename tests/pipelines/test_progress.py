"""Progress (pipelines.progress): workers' tickers and the driver's line, read from the journal."""
import io
import os
import time

from pipelines import journal, progress


def test_ticker_writes_at_once_then_at_most_every_interval(tmp_path):
    path = str(tmp_path / "u")
    t = progress.Ticker(path, every=60.0)
    t.tick()
    assert open(path).read() == "1"  # the first tick is written at once
    t.tick(4)
    assert open(path).read() == "1" and t.count == 5  # then not before `every` seconds
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
    p._first = (time.monotonic() - 10.0, 5)  # the first items seen 10 s ago
    p.done = 30  # 2.5 views/s since: 70 left take 28 s
    assert p.line().endswith("ETA 28s") and "2.5 views/s" in p.line()
    assert progress.duration(3725) == "1h02m05s" and progress.duration(65) == "1m05s"
