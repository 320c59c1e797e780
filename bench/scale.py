"""Scale: flat memory, resume after kill -9, and the progress line, measured on render_shapenet runs.

    python bench/scale.py [memory] [resume] [throughput] [--models 16] [--size 640x480] [--src TREE]

* ``memory``: peak RSS of the whole process tree (sampled every 50 ms with psutil) of the default job
  at 1x (``--views_per_model 8``) and 16x (128) the views, same models, ``--size``; prints the
  ratio 16x / 1x (goal: <= 1.15). ``--src`` runs another checkout (e.g. the previous commit) the
  same way, for the before / after.
* ``resume``: an uninterrupted run (time T, its progress lines timed), then the same command into
  another folder killed with SIGKILL when its progress line passes 60 %, then rerun: prints the
  rerun's time / T (goal: <= 0.7), whether the shards are byte-identical to the uninterrupted
  run's, the temporaries left, when the first progress line appeared, and each ETA's error
  against the real end of the render stage.

* ``throughput``: the Click-Here layout (960x540 renders, compact and full Caffe LMDB output) with 1
  and 2 workers (DirectRunner multi_processing): views/s of the render stage (from its last progress
  line) and of the whole command, per core; then the projection for Render for CNN's 2.4 M views on
  one 16-core machine and on 100 one-core workers.

``--models N`` grows the demo set to N models with seeded variants (kpdata.demo.write_demo_set).
"""
from __future__ import annotations

import argparse
import hashlib
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

import psutil

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from kpdata import demo  # noqa: E402
from schemas.dataset import names  # noqa: E402

LINE = re.compile(r"^render: ([\d,]+)/([\d,]+) views \((\d+)%\).*?(?:ETA (?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?)?$")


def command(src: str, models: str, out: str, size: str, views: int) -> list[str]:
    return [sys.executable, "-m", "pipelines.render_shapenet", "--shapenet_dir", models, "--output_dir", out,
            "--image_size", size, "--views_per_model", str(views), "--preview", "0"]


def tree_rss(proc: psutil.Process) -> int:
    try:
        procs = [proc] + proc.children(recursive=True)
    except psutil.Error:  # the run has ended (or was killed)
        return 0
    total = 0
    for p in procs:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            pass
    return total


def run(cmd: list[str], cwd: str, kill_at: int | None = None) -> dict:
    """Run ``cmd``; peak tree RSS, wall time, timed stderr lines; SIGKILL at ``kill_at`` % progress."""
    env = dict(os.environ, PYOPENGL_PLATFORM="egl", PYTHONUNBUFFERED="1")
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    ps = psutil.Process(proc.pid)
    peak, lines, killed = 0, [], False
    done = threading.Event()

    def sample():
        nonlocal peak
        while not done.is_set():
            peak = max(peak, tree_rss(ps))
            time.sleep(0.05)
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    for line in proc.stdout:
        lines.append((time.monotonic() - t0, line.rstrip("\n")))
        m = LINE.match(line.strip())
        if kill_at is not None and m and int(m.group(3)) >= kill_at:
            os.killpg(proc.pid, signal.SIGKILL)
            killed = True
            break
    proc.wait()
    done.set()
    sampler.join()
    return {"wall": time.monotonic() - t0, "peak": peak, "lines": lines, "rc": proc.returncode, "killed": killed}


def shards(out: str) -> dict[str, str]:
    return {n: hashlib.sha256(open(os.path.join(out, n), "rb").read()).hexdigest()
            for n in sorted(os.listdir(out)) if names.SHARD_NAME.match(n)}


def temporaries(out: str) -> list[str]:
    left = [os.path.join(r, n) for r, ds, fs in os.walk(out) for n in ds + fs if names.TEMP_NAME.search(n)]
    parts = os.path.join(out, names.JOURNAL_DIR, "parts")
    return left + ([parts] if os.path.exists(parts) else [])


def memory(a, models: str, work: str) -> None:
    print(f"== memory: peak RSS of the process tree, {a.models} models at {a.size}")
    for src in [ROOT] + ([a.src] if a.src else []):
        peaks = {}
        for views in (8, 128):
            out = os.path.join(work, f"mem-{views}")
            shutil.rmtree(out, ignore_errors=True)
            r = run(command(src, models, out, a.size, views), src)
            assert r["rc"] == 0, "\n".join(t for _, t in r["lines"][-20:])
            size = sum(os.path.getsize(os.path.join(out, n)) for n in os.listdir(out) if names.SHARD_NAME.match(n))
            peaks[views] = r["peak"]
            print(f"   {src}: {views:>4} views/model  peak {r['peak'] / 2**20:7.0f} MiB  wall {r['wall']:6.1f} s  "
                  f"written {size / 2**20:7.1f} MiB")
        print(f"   ratio 16x / 1x = {peaks[128] / peaks[8]:.3f}  (goal <= 1.15)")


def resume(a, models: str, work: str) -> None:
    views = a.resume_views
    print(f"== resume: {a.models} models x {views} views at {a.size}, SIGKILL at 60 %, then the same command")
    full, cut = os.path.join(work, "full"), os.path.join(work, "cut")
    for d in (full, cut):
        shutil.rmtree(d, ignore_errors=True)
    r = run(command(ROOT, models, full, a.size, views), ROOT)
    assert r["rc"] == 0, "\n".join(t for _, t in r["lines"][-20:])
    progress = [(t, LINE.match(x.strip())) for t, x in r["lines"] if LINE.match(x.strip())]
    end = next(t for t, x in r["lines"] if x.startswith("render:") and " in " in x)
    print(f"   uninterrupted: {r['wall']:.1f} s; render stage ended at {end:.1f} s")
    print(f"   first progress line at {progress[0][0]:.1f} s after the start (goal <= 10 s)")
    for t, m in progress:
        if m.group(4) or m.group(5) or m.group(6):
            eta = int(m.group(4) or 0) * 3600 + int(m.group(5) or 0) * 60 + int(m.group(6) or 0)
            print(f"   at {m.group(3):>3}% ({t:5.1f} s): ETA {eta:4d} s, real {end - t:5.1f} s, error {eta - (end - t):+5.1f} s")
    k = run(command(ROOT, models, cut, a.size, views), ROOT, kill_at=60)
    assert k["killed"], "the run ended before 60 %"
    print(f"   killed at {k['wall']:.1f} s ({[x for _, x in k['lines'] if x.startswith('render:')][-1]})")
    again = run(command(ROOT, models, cut, a.size, views), ROOT)
    assert again["rc"] == 0, "\n".join(t for _, t in again["lines"][-20:])
    resumed = [x for _, x in again["lines"] if "resuming" in x]
    print(f"   rerun: {again['wall']:.1f} s = {again['wall'] / r['wall']:.2f} x the uninterrupted run (goal <= 0.7); "
          f"{resumed[0].split(': ', 1)[-1] if resumed else 'no resume line'}")
    same = shards(full) == shards(cut) and bool(shards(full))
    print(f"   shards byte-identical to the uninterrupted run: {same} ({len(shards(full))} shards)")
    for f in (names.FAILURES_FILE,):
        print(f"   errors/{f} identical: "
              f"{open(os.path.join(full, names.ERRORS_DIR, f)).read() == open(os.path.join(cut, names.ERRORS_DIR, f)).read()}")
    print(f"   temporaries left: {temporaries(cut) or 'none'}")


RATE = re.compile(r"^render: ([\d,]+)/[\d,]+ views \(100%\)\s+([\d.]+) views/s")
R4CNN_VIEWS = 2_400_000  # Render for CNN's renders (its README: "many days on multiple cores")


def throughput(a, models: str, work: str) -> None:
    views = a.throughput_views
    print(f"== throughput: --layout clickhere, {a.models} models x {views} views, 960x540 renders")
    per_core = {}
    for layout, flags in (("compact", ["--compact"]), ("caffe lmdb", ["--format", "lmdb"])):
        for workers in (1, 2):
            out = os.path.join(work, f"ch-{layout.split()[0]}-{workers}")
            shutil.rmtree(out, ignore_errors=True)
            cmd = command(ROOT, models, out, "960x540", views) + ["--layout", "clickhere", *flags]
            if workers > 1:
                cmd += ["--direct_num_workers", str(workers), "--direct_running_mode", "multi_processing"]
            r = run(cmd, ROOT)
            assert r["rc"] == 0, "\n".join(x for _, x in r["lines"][-20:])
            stage = [float(m.group(2)) for _, x in r["lines"] if (m := RATE.match(x.strip()))][-1]
            assemble = [x.rsplit(" in ", 1)[-1] for _, x in r["lines"] if x.startswith("assemble:") and " in " in x]
            n = views * a.models
            size = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(out) for f in fs) / 2**20
            print(f"   {layout:<10} {workers} worker(s): render stage {stage:5.1f} views/s, whole command "
                  f"{n / r['wall']:5.1f} views/s ({r['wall']:.1f} s), {stage / workers:5.1f} views/s per core; "
                  f"assembly {assemble[-1] if assemble else '?'} for {size:,.0f} MiB")
            per_core[(layout, workers)] = stage / workers
    for layout in ("compact", "caffe lmdb"):
        rate = per_core[(layout, 2)]  # both cores busy: the rate a loaded core keeps
        print(f"   projection ({layout}, {rate:.1f} views/s per core with every core busy): {R4CNN_VIEWS:,} views / "
              f"({rate:.1f} x 16 cores) = {R4CNN_VIEWS / (rate * 16) / 3600:.1f} h on one 16-core machine; "
              f"/ ({rate:.1f} x 100 workers) = {R4CNN_VIEWS / (rate * 100) / 3600:.2f} h on 100 one-core workers")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("what", nargs="*", default=["memory", "resume", "throughput"],
                   choices=["memory", "resume", "throughput"])
    p.add_argument("--models", type=int, default=16)
    p.add_argument("--size", default="640x480")
    p.add_argument("--resume_views", type=int, default=32)
    p.add_argument("--throughput_views", type=int, default=16)
    p.add_argument("--src", default="", help="another checkout to measure the same way (memory)")
    p.add_argument("--work", default="", help="folder for the outputs (default: a temporary one)")
    a = p.parse_args(argv)
    work = a.work or tempfile.mkdtemp(prefix="kpdata-scale-")
    models = os.path.join(work, "models")
    if not os.path.isdir(models):
        demo.write_demo_set(models, a.models)
    if "memory" in a.what:
        memory(a, models, work)
    if "resume" in a.what:
        resume(a, models, work)
    if "throughput" in a.what:
        throughput(a, models, work)


if __name__ == "__main__":
    main()
