"""The validation report: statuses, the text form (defects per check capped, exit line), the JSON form."""
from schemas.dataset.validation.report import SHOW_DEFECTS, Report


def test_clean_report_text_and_dict():
    r = Report("/data/x")
    r.kind = "view, tfrecord"
    r.check("metadata").note("dataset_info.json read")
    r.check("files").note("1 shard(s)")
    r.check("files").note("no temporary files")
    assert r.text().splitlines() == [
        "== validate /data/x (view, tfrecord)",
        "   ok    metadata     dataset_info.json read",
        "   ok    files        1 shard(s); no temporary files",
        "   no defects"]
    d = r.as_dict()
    assert d == {"dir": "/data/x", "kind": "view, tfrecord", "ok": True, "defects": [],
                 "checks": [{"name": "metadata", "status": "ok", "notes": ["dataset_info.json read"], "defects": 0},
                            {"name": "files", "status": "ok", "notes": ["1 shard(s)", "no temporary files"],
                             "defects": 0}]}


def test_defects_are_listed_per_check_and_capped():
    r = Report("d")
    keys = r.check("keys")
    for i in range(SHOW_DEFECTS + 3):
        keys.defect("a.tfrecord", f"bad {i}", key=f"k{i}")
    r.check("errors").defect("errors/failures.jsonl", "missing")
    r.check("hpatches").skipped = True
    lines = r.text().splitlines()
    assert lines[1] == f"   FAIL  keys           [{SHOW_DEFECTS + 3} defect(s)]"
    assert lines[3] == "   skip  hpatches     "
    assert lines[4] == f"   DEFECTS {SHOW_DEFECTS + 4}:"
    assert lines[5] == "   - keys: a.tfrecord [k0]: bad 0"
    assert "   - keys: ... and 3 more (see --json)" in lines
    assert lines[-2] == "   - errors: errors/failures.jsonl: missing" and lines[-1] == "   exit 1"
    d = r.as_dict()
    assert not d["ok"] and len(d["defects"]) == SHOW_DEFECTS + 4
    assert d["defects"][0] == {"check": "keys", "file": "a.tfrecord", "key": "k0", "message": "bad 0"}


def test_rel_names_paths_inside_the_folder_relative():
    r = Report("/data/x")
    assert r.rel("/data/x/errors/a.jsonl") == "errors/a.jsonl"
    assert r.rel("/elsewhere/b") == "/elsewhere/b"
