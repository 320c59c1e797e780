"""A new user's first runs: a quiet default run, Ctrl-C, reruns into a used output folder."""
import os
import signal
import subprocess
import sys
import time

from pipelines import render_shapenet, validate
from schemas.dataset.records import load_info

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ENV = {**os.environ, "PYOPENGL_PLATFORM": "egl"}
TINY = ["--image_size", "64x64", "--views_per_model", "2", "--preview", "0"]


def _tfrecord_files(folder) -> list[str]:
    return sorted(f for f in os.listdir(folder) if ".tfrecord" in f)


def test_default_run_prints_no_warning_or_traceback(tmp_path, gl):
    r = subprocess.run([sys.executable, "-m", "pipelines.render_shapenet", *TINY, "--output_dir", str(tmp_path)],
                       cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=300, check=False)
    assert r.returncode == 0, r.stderr
    for line in (r.stdout + r.stderr).splitlines():
        assert not line.startswith(("WARNING", "ERROR", "E0000", "Traceback")) and "apitools" not in line, line


def test_multi_processing_workers_log_to_the_journal_not_the_terminal(tmp_path, gl):
    r = subprocess.run([sys.executable, "-m", "pipelines.render_shapenet", *TINY, "--output_dir", str(tmp_path),
                        "--direct_running_mode", "multi_processing", "--direct_num_workers", "2"],
                       cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=300, check=False)
    assert r.returncode == 0, r.stderr
    lines = (r.stdout + r.stderr).splitlines()
    assert not [line for line in lines if line.startswith(("INFO:", "WARNING", "ERROR"))], r.stderr
    assert any(line.startswith("render:") for line in lines) and "views planned 8" in r.stdout
    with open(tmp_path / ".kpdata" / "workers.log", encoding="utf-8") as f:
        assert "sdk_worker" in f.read()


def test_ctrl_c_during_a_render_exits_130_with_one_line(tmp_path, gl):
    p = subprocess.Popen([sys.executable, "-m", "pipelines.render_shapenet", "--views_per_model", "300",
                          "--image_size", "320x240", "--preview", "0", "--output_dir", str(tmp_path)],
                         cwd=ROOT, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen = []
    t = time.time()
    while time.time() - t < 240:
        line = p.stderr.readline()
        seen.append(line)
        if line.startswith("render:") or not line:
            break
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=120)
    err = "".join(seen) + err
    assert p.returncode == 130, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    assert [line for line in err.splitlines() if line.startswith("interrupted")] == [
        f"interrupted; what is finished is kept in {tmp_path} (rerun the same command to resume)"]


def test_rerun_into_a_used_folder_is_refused_or_leaves_exactly_the_new_dataset(tmp_path, capsys, gl):
    """view then clickhere, and 3 shards then 1: refused without --overwrite (the folder keeps the
    first dataset), and with it the folder holds the new dataset only, which validates."""
    out = str(tmp_path / "out")
    assert render_shapenet.run([*TINY, "--output_dir", out, "--num_shards", "3"]) == 0
    assert len(_tfrecord_files(out)) == 3
    assert render_shapenet.run([*TINY, "--output_dir", out, "--num_shards", "1"]) == 2
    assert "--overwrite" in capsys.readouterr().err and len(_tfrecord_files(out)) == 3
    assert render_shapenet.run([*TINY, "--output_dir", out, "--num_shards", "1", "--overwrite"]) == 0
    assert _tfrecord_files(out) == ["shapenet_views-train.tfrecord-00000-of-00001"]
    assert validate.run([out]) == 0

    assert render_shapenet.run([*TINY, "--layout", "clickhere", "--output_dir", out]) == 2
    assert load_info(out)["record"] == "view"
    assert render_shapenet.run([*TINY, "--layout", "clickhere", "--output_dir", out, "--overwrite"]) == 0
    info = load_info(out)
    assert info["record"] != "view"
    listed = {s["file"] for split in info["splits"].values() for s in split["shards"]}
    assert set(_tfrecord_files(out)) == listed
    assert not [f for f in os.listdir(out) if f.startswith(".") and f != ".kpdata" or ".tmp" in f]
    assert validate.run([out]) == 0


def test_a_command_pauses_the_collector_only_for_its_start_up_imports():
    # python -m pipelines.<command>: runpy imports the package with sys.argv[0] "-m"; set as it does.
    probe = ("import gc, sys; sys.argv[0] = '-m'; sys.orig_argv = [sys.executable, '-m', 'pipelines.validate']\n"
             "import pipelines; print('start-up', gc.isenabled())\n"
             "pipelines.run_command(lambda: print('run', gc.isenabled()) or 3)")
    r = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)
    assert (r.returncode, r.stdout.split()) == (3, ["start-up", "False", "run", "True"]), r.stderr
    plain = subprocess.run([sys.executable, "-c", "import gc, pipelines; print(gc.isenabled())"], cwd=ROOT,
                           capture_output=True, text=True, timeout=60, check=True)
    assert plain.stdout.strip() == "True"  # imported as a library (tests, notebooks): untouched


def test_every_command_module_ends_in_run_command():
    # A command whose __main__ block skips run_command would run with the collector paused.
    import ast
    import glob
    commands = 0
    for path in sorted(glob.glob(os.path.join(ROOT, "pipelines", "*.py"))):
        with open(path, encoding="utf-8") as f:
            tree = ast.parse(f.read())
        for node in tree.body:
            if isinstance(node, ast.If) and "__main__" in ast.unparse(node.test):
                commands += 1
                calls = [ast.unparse(c.func) for c in ast.walk(node) if isinstance(c, ast.Call)]
                assert calls == ["run_command"], (path, calls)
    assert commands == 7  # render_shapenet, render_stereo, gen_tfrecords, gen_homography_pairs, fit_viewpoints, validate, preview
