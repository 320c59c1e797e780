"""Small files read into a check; temporaries left behind anywhere in the folder."""
from schemas.dataset.validation.files import check_temporaries, check_temporaries_in, dir_bytes, read_json, read_lines
from schemas.dataset.validation.report import Check, Report


def test_read_json_and_lines_report_missing_and_unparseable(tmp_path):
    c = Check("x")
    assert read_json(str(tmp_path / "a.json"), c, "a.json") is None
    (tmp_path / "b.json").write_text("{")
    assert read_json(str(tmp_path / "b.json"), c, "b.json") is None
    (tmp_path / "c.txt").write_bytes(b"one\n\xff\n")
    assert read_lines(str(tmp_path / "c.txt"), c, "c.txt") is None
    (tmp_path / "d.txt").write_text("one\ntwo\n")
    assert read_lines(str(tmp_path / "d.txt"), c, "d.txt") == ["one", "two"]
    assert [(d.file, d.message.split(" (")[0]) for d in c.defects] == [
        ("a.json", "missing"), ("b.json", "does not parse as JSON"), ("c.txt", "unreadable")]


def test_temporaries_anywhere_are_defects(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "ok.txt").write_text("x")
    r = Report(str(tmp_path))
    check_temporaries(str(tmp_path), r)
    assert r.defects == [] and r.checks["files"].notes == ["no temporary files"]
    (tmp_path / "sub" / ".a.tfrecord.incomplete-0123456789ab").write_text("x")
    (tmp_path / ".tmp-dir").mkdir()
    (tmp_path / ".tmp-dir" / "inside").write_text("x")  # not reported twice
    r = Report(str(tmp_path))
    check_temporaries(str(tmp_path), r)
    assert sorted(d.file for d in r.defects) == [".tmp-dir", "sub/.a.tfrecord.incomplete-0123456789ab"]
    c = Check("hpatches")
    check_temporaries_in(str(tmp_path), c, "hp")
    assert sorted(d.file for d in c.defects) == ["hp/.tmp-dir", "hp/sub/.a.tfrecord.incomplete-0123456789ab"]
    assert dir_bytes(str(tmp_path)) == 3  # three one-byte files
