"""errors/*.jsonl: present, one dead letter per line, counts as stats.json says."""
import json

from schemas.dataset.validation.deadletters import check_errors
from schemas.dataset.validation.report import Report

LETTER = {"key": "k", "stage": "load", "error": "e", "message": "m", "path": "p"}


def _check(tmp_path, stats, dropped=None):
    r = Report(str(tmp_path))
    check_errors(str(tmp_path), r, stats, dropped)
    return r


def test_missing_failures_file(tmp_path):
    r = _check(tmp_path, None)
    assert [(d.file, d.message) for d in r.defects] == [
        ("errors/failures.jsonl", "missing (every run writes it, empty when nothing failed)")]
    assert r.checks["errors"].notes == ["no files"]


def test_lines_and_counts(tmp_path):
    (tmp_path / "errors").mkdir()
    (tmp_path / "errors" / "failures.jsonl").write_text(json.dumps(LETTER) + "\n" + '{"key": "a", "stage": 3}\nnope\n')
    (tmp_path / "errors" / "dropped.jsonl").write_text(json.dumps(LETTER) + "\n")
    (tmp_path / "errors" / ".x.jsonl.incomplete-0123456789ab").write_text("nope\n")
    r = _check(tmp_path, {"failures": {"total": 1}}, dropped=2)
    msgs = [(d.file, d.message.split(" (")[0]) for d in r.defects]
    assert msgs == [("errors/failures.jsonl", "line 2 lacks a string stage, error, message, path"),
                    ("errors/failures.jsonl", "line 3 is not JSON"),
                    ("errors/failures.jsonl", "has 3 lines, stats.json says 1 failures"),
                    ("errors/dropped.jsonl", "has 1 lines, stats.json counts 2 dropped views")]
    assert r.checks["errors"].notes == ["dropped.jsonl: 1 line(s), failures.jsonl: 3 line(s)"]
    assert _check(tmp_path, {"failures": {"total": 3}}, dropped=1).defects[-1].message.startswith("line 3")
