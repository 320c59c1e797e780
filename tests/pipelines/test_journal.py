"""The run folder (pipelines.journal.RunFolder): one run at a time (lock), the same configuration
resumes, another is refused unless --overwrite, foreign files are never deleted, temporaries of a
killed run are removed, datasets nested in the folder are left alone."""
import dataclasses
import os
import subprocess
import sys

import pytest

from pipelines import journal
from schemas.dataset import names


@dataclasses.dataclass(frozen=True)
class Config:
    output_dir: str
    views: int = 8
    preview: int = 16


def _folder(out, views=8, overwrite=False, preview=16):
    return journal.RunFolder(str(out), journal.fingerprint("cmd", Config(str(out), views, preview)), overwrite)


def test_same_configuration_resumes_and_output_only_fields_may_change(tmp_path):
    with _folder(tmp_path):
        (tmp_path / "ds-train.tfrecord-00000-of-00001").write_bytes(b"x")
    with _folder(tmp_path, preview=0):  # preview, output_dir, max_failure_rate do not decide the output
        pass
    assert (tmp_path / "ds-train.tfrecord-00000-of-00001").exists()


def test_another_configuration_is_refused_then_overwritten(tmp_path):
    with _folder(tmp_path):
        (tmp_path / names.DATASET_INFO).write_text("{}")
        (tmp_path / "errors").mkdir()
    with pytest.raises(journal.FolderError, match=r"another configuration \(views: 8 -> 16\).*--overwrite"):
        with _folder(tmp_path, views=16):
            pass
    assert (tmp_path / names.DATASET_INFO).exists()
    with _folder(tmp_path, views=16, overwrite=True):
        assert sorted(os.listdir(tmp_path)) == [names.JOURNAL_DIR]


def test_foreign_files_are_refused_even_with_overwrite(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    for overwrite in (False, True):
        with pytest.raises(journal.FolderError, match="notes.txt"):
            with _folder(tmp_path, overwrite=overwrite):
                pass
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_a_dataset_without_journal_needs_overwrite(tmp_path):
    (tmp_path / names.DATASET_INFO).write_text("{}")
    with pytest.raises(journal.FolderError, match="without a run journal"):
        with _folder(tmp_path):
            pass


def test_nested_datasets_are_not_foreign_and_survive_overwrite(tmp_path):
    nested = tmp_path / "keypose_tfrecords"
    with _folder(nested):
        (nested / names.DATASET_INFO).write_text("{}")
    with _folder(tmp_path):
        (tmp_path / names.DATASET_INFO).write_text("{}")
    with _folder(tmp_path, views=4, overwrite=True):
        pass
    assert (nested / names.DATASET_INFO).exists() and not (tmp_path / names.DATASET_INFO).exists()


def test_temporaries_of_a_killed_run_are_removed(tmp_path):
    with _folder(tmp_path):
        pass
    tmp_file = names.tmp_name(str(tmp_path / "ds-train.tfrecord-00000-of-00001"))
    open(tmp_file, "wb").close()
    (tmp_path / ".seq.incomplete-0123456789ab").mkdir()
    progress = journal.progress_path(str(tmp_path), "u")
    os.makedirs(os.path.dirname(progress))
    open(progress, "w").close()
    with _folder(tmp_path):
        left = [os.path.join(r, n) for r, ds, fs in os.walk(tmp_path) for n in ds + fs if names.TEMP_NAME.search(n)]
        assert left == [] and not os.path.exists(progress)


def test_a_folder_in_use_is_locked(tmp_path):
    """A second run (another process) exits at once with a message naming the holder."""
    code = ("import sys; from pipelines import journal; "
            "f = journal.RunFolder(sys.argv[1], {'command': 'cmd', 'config': {}}, command_line='second');\n"
            "try:\n    f.__enter__()\nexcept journal.FolderError as e:\n    print(e); sys.exit(3)")
    with _folder(tmp_path):
        r = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True,
                           cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))))
        assert r.returncode == 3, r.stderr
        assert "in use by another run" in r.stdout and f"pid {os.getpid()}" in r.stdout
    r = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True,
                       cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))))
    assert r.returncode == 3 and "another configuration" in r.stdout  # unlocked now; refused on its config


def test_digest_of_a_folder_covers_names_and_contents(tmp_path):
    d = tmp_path / "env"
    d.mkdir()
    (d / "data.mdb").write_bytes(b"abc")
    size, sha = journal.digest(str(d))
    assert size == 3
    (d / "data.mdb").write_bytes(b"abd")
    assert journal.digest(str(d))[1] != sha
    assert journal.unit_id("02958343/1a2b") == "02958343%2F1a2b"


def test_a_failed_run_removes_its_temporaries_and_keeps_what_it_committed(tmp_path):
    """Issue 14.11: on a full disk the temporaries of a failed run would keep it full."""
    out = tmp_path / "out"
    with pytest.raises(OSError):
        with _folder(out):
            (out / ".shard.incomplete-0123456789ab").write_bytes(b"x" * 100)
            os.makedirs(out / ".kpdata" / "parts")
            (out / ".kpdata" / "parts" / ".u.tfrecord.incomplete-aaaaaaaaaaaa").write_bytes(b"y")
            (out / ".kpdata" / "parts" / "u.tfrecord").write_bytes(b"committed")
            raise OSError(28, "No space left on device")
    left = sorted(os.path.relpath(os.path.join(r, n), out) for r, ds, fs in os.walk(out) for n in ds + fs)
    assert not [n for n in left if names.TEMP_NAME.search(os.path.basename(n))]
    assert os.path.join(".kpdata", "parts", "u.tfrecord") in left
