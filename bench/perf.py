"""End-to-end speed of render_shapenet, each number against its baseline measured in the same run.

    KPDATA_FIXTURES=/work/shared/fixtures python bench/perf.py [--quick] [--bare PATH] [--blender PYTHON]
        [single] [scale] [clickhere] [blender]

* ``single``: the bare pyrender loop (``--bare``, default ``$KPDATA_FIXTURES/../bench/bare_render.py``:
  one renderer, pose changed per view, RGBA + depth in one pass, two PNGs, loop time only) against
  ``render_shapenet`` on the same real ShapeNet v1 chair, 227x227, one worker, timed as a whole
  process (start-up, Beam, render, encode, shards, metadata), at the bare loop's focal length
  (1050 x 227 / 960, the same framing). The bare loop runs before and after; the ratio is against
  their mean. Also the CPU seconds per view of both (user + system, every thread and child): under
  contention wall time drifts, CPU time much less.
  With ``--src DIR`` (another checkout), its render_shapenet runs the same command too (before / after).
* ``scale``: 16 demo models x 128 views, 227x227, multi_processing: 1 worker as by default (cores + 1
  llvmpipe threads: it uses every core), 1 worker pinned to one CPU (the per-core baseline), 2 workers;
  whole process and render stage; the shards of all three must be byte-identical.
* ``clickhere``: ``--layout clickhere --compact`` (960x540 renders with Render for CNN's random
  lamps, crop to the object's box, background, JPEG, keypoint labels) against ``--layout view`` at
  960x540 on the 16 demo models (they have keypoints), same views: views/s and instances/s; then the
  same with ``--clickhere_render box`` (the crop box rendered directly at 227x227): its speed against
  the default, the crop boxes and keypoint maps of the two compared, and the |difference| of their
  227x227 images.
* ``blender``: Blender (``--blender``: a Python with ``bpy``, default /work/bpyenv/bin/python) on the
  same chair: bench/blender_render.py, Cycles at 8 samples and Workbench, 227x227 and 960x540,
  warm views, against render_shapenet's render stage (its progress line: renderer set-up, render,
  labels, encode, write) on the same chair at the same sizes and framing.

``--quick`` (about 5 minutes on a quiet 2-core machine): 300 views instead of 1,000, 16 views per
model in ``scale`` (where start-up then dominates), 2 per model in ``clickhere``, 4 Blender views. Prints one table at the end.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from kpdata import demo  # noqa: E402
from schemas.dataset import names  # noqa: E402

CHAIR_SYNSET = "03001627"
BARE_RATE = re.compile(r"bare render\+encode \S+: ([\d.]+) views/s")
STAGE_RATE = re.compile(r"render: [\d,]+/[\d,]+ views \(100%\)\s+([\d.]+) views/s")
BLENDER_LINE = re.compile(r"^(CYCLES|BLENDER_WORKBENCH)\s+(\d+x\d+):\s+([\d.]+) views/s")


def timed(cmd: list[str], cwd: str = ROOT, cpus: set | None = None, **env_extra: str) -> dict:
    """Run ``cmd`` (``env_extra`` added to its environment; on the CPUs ``cpus`` only, when given);
    wall seconds, CPU seconds (user + system of it and its children), output."""
    env = dict(os.environ, PYOPENGL_PLATFORM="egl", PYTHONUNBUFFERED="1", **env_extra)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    pin = (lambda: os.sched_setaffinity(0, cpus)) if cpus else None
    proc = subprocess.run(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          preexec_fn=pin)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stdout[-3000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall": wall, "cpu": cpu, "out": proc.stdout}


def render_cmd(shapenet_dir: str, out: str, size: str, views: int, *extra: str) -> list[str]:
    return [sys.executable, "-m", "pipelines.render_shapenet", "--shapenet_dir", shapenet_dir,
            "--output_dir", out, "--image_size", size, "--views_per_model", str(views), "--preview", "0",
            "--overwrite", *extra]


def shard_digests(out: str) -> dict[str, str]:
    return {n: hashlib.sha256(open(os.path.join(out, n), "rb").read()).hexdigest()
            for n in sorted(os.listdir(out)) if names.SHARD_NAME.match(n)}


def count(out: str, what: str) -> int:
    """A count of the dataset in ``out`` (``records_written``, ``instances_written``), from its
    stats.json."""
    with open(os.path.join(out, names.STATS), encoding="utf-8") as f:
        return int(json.load(f)["counts"].get(what, 0))


def demo_models(work: str) -> str:
    models = os.path.join(work, "models16")
    if not os.path.isdir(models):
        demo.write_demo_set(models, 16)
    return models


def single(a, rows: list, work: str, rates: dict) -> None:
    n, size = a.views, "227x227"
    focal = 1050.0 * 227 / 960
    bare_cmd = [sys.executable, a.bare, a.fixtures, "227", "227", str(n)]
    b1 = timed(bare_cmd)
    ours = timed(render_cmd(os.path.join(a.fixtures, "shapenet_core_v1"), os.path.join(work, "single"), size, n,
                            "--synsets", CHAIR_SYNSET, "--focal", str(focal)))
    before = None
    if a.src:
        before = timed(render_cmd(os.path.join(a.fixtures, "shapenet_core_v1"), os.path.join(work, "before"), size, n,
                                  "--synsets", CHAIR_SYNSET, "--focal", str(focal)), cwd=a.src)
    b2 = timed(bare_cmd)
    bare_rates = [float(BARE_RATE.search(b["out"]).group(1)) for b in (b1, b2)]
    bare = sum(bare_rates) / 2
    rate = n / ours["wall"]
    rates["view 227"] = rate
    bare_cpu = (b1["cpu"] + b2["cpu"]) / (2 * n)
    rows.append(("single", f"bare loop, chair 227x227, {n} views (loop only; before / after)",
                 f"{bare_rates[0]:.1f} / {bare_rates[1]:.1f}", "baseline"))
    rows.append(("single", f"render_shapenet, same chair and framing, {n} views, 1 worker, whole process",
                 f"{rate:.1f}", f"{rate / bare:.2f}x bare (goal >= 0.8)"))
    if before is not None:
        rb = n / before["wall"]
        rows.append(("single", f"--src {a.src}: same command", f"{rb:.1f}",
                     f"{rb / bare:.2f}x bare; now {rate / rb:.2f}x this; CPU ms/view {1000 * before['cpu'] / n:.1f}"))
    rows.append(("single", "  its render stage alone (progress line: set-up, render, labels, encode, write)",
                 f"{stage_rate(ours):.1f}", f"{stage_rate(ours) / bare:.2f}x bare"))
    rows.append(("single", "CPU ms/view: bare loop process (whole) / render_shapenet (whole)",
                 f"{1000 * bare_cpu:.1f} / {1000 * ours['cpu'] / n:.1f}",
                 f"{bare_cpu / (ours['cpu'] / n):.2f}x"))


def scale(a, rows: list, work: str) -> None:
    """One worker as it runs by default (cores + 1 llvmpipe rasteriser threads, so it already
    uses more than one core), one worker given one CPU (its process and children pinned to CPU 0),
    two workers (``runners.share_rasterizer_threads``: one rasteriser thread each): whole process
    and render stage (progress line). The shards of all three must be byte-identical."""
    models = demo_models(work)
    runs, digests = {}, {}
    for name, workers, cpus in (("1", 1, None), ("1 core", 1, {0}), ("2", 2, None)):
        out = os.path.join(work, f"scale{workers}{'c' if cpus else ''}")
        extra = ["--direct_num_workers", str(workers), "--direct_running_mode", "multi_processing"]
        runs[name] = timed(render_cmd(models, out, "227x227", a.scale_views, *extra), cpus=cpus)
        digests[name] = shard_digests(out)
    n = 16 * a.scale_views
    rate = {k: n / r["wall"] for k, r in runs.items()}
    stage = {k: float(m.group(1)) if (m := STAGE_RATE.search(r["out"])) else float("nan") for k, r in runs.items()}
    same = len(set(map(str, digests.values()))) == 1 and bool(digests["1"])
    rows.append(("scale", f"16 models x {a.scale_views} views 227x227, 1 worker, whole process (render stage)",
                 f"{rate['1']:.1f} ({stage['1']:.1f})", "baseline"))
    rows.append(("scale", "same, 1 worker on one CPU (pinned to CPU 0)",
                 f"{rate['1 core']:.1f} ({stage['1 core']:.1f})", "baseline per core"))
    rows.append(("scale", "same, 2 workers (multi_processing)", f"{rate['2']:.1f} ({stage['2']:.1f})",
                 f"{rate['2'] / rate['1']:.2f}x; per core {rate['2'] / rate['1 core']:.2f}x, render stage "
                 f"{stage['2'] / stage['1 core']:.2f}x (goal >= 1.7); shards identical: {same}"))
    c1, c2 = (1000 * runs[k]["cpu"] / n for k in ("1", "2"))
    rows.append(("scale", "CPU ms/view, whole process: 1 worker / 2 workers (work the cores must do)",
                 f"{c1:.1f} / {c2:.1f}", f"{c1 / c2:.2f}x"))
    rows.append(("scale", "cores used by 1 worker (CPU s / wall s)", f"{runs['1']['cpu'] / runs['1']['wall']:.2f}", ""))


def compare_clickhere(full: str, box: str) -> dict:
    """The same compact Click-Here views written with ``--clickhere_render full`` and ``box``:
    crop boxes equal (views kept by both), instances (keys) in both, keypoint maps identical,
    |difference| of the 227x227 images (every RGB value, grey levels 0-255)."""
    from schemas import clickhere as chs  # noqa: PLC0415
    from schemas.dataset import records  # noqa: PLC0415
    boxes = [{}, {}]
    for i, d in enumerate((full, box)):
        for _, raw in records.iter_records(d):
            rec = chs.decode_view(raw, {"key", "render/crop_box"})
            boxes[i][rec["key"]] = tuple(int(v) for v in rec["render/crop_box"])
    both = sorted(set(boxes[0]) & set(boxes[1]))
    diffs, n_same_maps, n_both = [], 0, 0
    maps = ("keypoint_loc", "gaussian_keypoint_map", "chessboard_dt_map", "euclidean_dt_map", "manhattan_dt_map")
    insts = {r["key"]: r for r in records.iter_instances(box)}
    for r in records.iter_instances(full):
        other = insts.get(r["key"])
        if other is None:
            continue
        n_both += 1
        n_same_maps += all(np.array_equal(r[m], other[m]) for m in maps) and \
            np.array_equal(r["keypoint_pixel"], other["keypoint_pixel"])
        diffs.append(np.abs(r["image"].astype(np.int16) - other["image"].astype(np.int16)).ravel())
    d = np.concatenate(diffs) if diffs else np.zeros(1, np.int16)
    return {"views": (len(boxes[0]), len(boxes[1])), "boxes_same": sum(boxes[0][k] == boxes[1][k] for k in both),
            "views_both": len(both), "instances": (len(list(records.iter_instances(full))), len(insts)),
            "instances_both": n_both, "maps_same": n_same_maps, "mean": float(d.mean()), "max": int(d.max()),
            "over8": 100.0 * float((d > 8).mean())}


def clickhere(a, rows: list, work: str, rates: dict) -> None:
    n, models = a.clickhere_views, demo_models(work)
    view = timed(render_cmd(models, os.path.join(work, "ch-view"), "960x540", n))
    ch = timed(render_cmd(models, os.path.join(work, "ch"), "960x540", n, "--layout", "clickhere", "--compact"))
    chb = timed(render_cmd(models, os.path.join(work, "ch-box"), "960x540", n, "--layout", "clickhere", "--compact",
                           "--clickhere_render", "box"))
    total = 16 * n
    rv, rc = total / view["wall"], total / ch["wall"]
    rates["view 960x540"] = rv
    inst = count(os.path.join(work, "ch"), "instances_written")
    rows.append(("clickhere", f"--layout view 960x540, 16 demo models x {n} views, whole process", f"{rv:.1f}",
                 "baseline"))
    rows.append(("clickhere", f"--layout clickhere --compact, same views ({inst} instances, "
                 f"{count(os.path.join(work, 'ch'), 'records_written')} views kept)",
                 f"{rc:.1f} ({inst / ch['wall']:.1f} inst/s)", f"{rc / rv:.2f}x view layout"))
    rb, ib = total / chb["wall"], count(os.path.join(work, "ch-box"), "instances_written")
    rows.append(("clickhere", f"same, --clickhere_render box ({ib} instances, "
                 f"{count(os.path.join(work, 'ch-box'), 'records_written')} views kept)",
                 f"{rb:.1f} ({ib / chb['wall']:.1f} inst/s)",
                 f"{rb / rc:.2f}x full; CPU ms/view {1000 * ch['cpu'] / total:.0f} full, {1000 * chb['cpu'] / total:.0f} box"))
    sf, sb = stage_rate(ch), stage_rate(chb)
    rows.append(("clickhere", "render stage alone (progress line), --clickhere_render full / box", f"{sf:.1f} / {sb:.1f}",
                 f"box {sb / sf:.2f}x full"))
    c = compare_clickhere(os.path.join(work, "ch"), os.path.join(work, "ch-box"))
    rows.append(("clickhere", f"box vs full: crop boxes equal in {c['boxes_same']}/{c['views_both']} views kept by both "
                 f"(views {c['views'][0]} / {c['views'][1]}); keypoint maps identical in {c['maps_same']}/"
                 f"{c['instances_both']} instances in both ({c['instances'][0]} / {c['instances'][1]})", "-",
                 "box equal: keypoint maps equal"))
    rows.append(("clickhere", "box vs full, 227x227 images of the same instances: |difference| in grey levels "
                 "(RGB values) mean / max / % > 8", f"{c['mean']:.2f} / {c['max']} / {c['over8']:.1f}%",
                 "anti-aliasing + JPEG at 227"))


def stage_rate(run: dict) -> float:
    """views/s of the render stage, from its last progress line."""
    return [float(m.group(1)) for m in STAGE_RATE.finditer(run["out"])][-1]


def blender(a, rows: list, work: str) -> None:
    if not os.path.exists(a.blender):
        rows.append(("blender", f"{a.blender} not found (see docs/performance.md)", "-", "skipped"))
        return
    run = timed([a.blender, os.path.join(ROOT, "bench", "blender_render.py"), "--views", str(a.blender_views)])
    v1 = os.path.join(a.fixtures, "shapenet_core_v1")
    for size in ("227x227", "960x540"):
        w = int(size.split("x")[0])
        ours = stage_rate(timed(render_cmd(v1, os.path.join(work, f"bl-{size}"), size, a.blender_ours_views,
                                           "--synsets", CHAIR_SYNSET, "--focal", str(1050.0 * w / 960))))
        rows.append(("blender", f"render_shapenet {size}, chair, {a.blender_ours_views} views: render stage "
                     "(render, labels, encode, write)", f"{ours:.1f}", "baseline"))
        for line in run["out"].splitlines():
            m = BLENDER_LINE.match(line.strip())
            if m and m.group(2) == size:
                engine, r = m.group(1), float(m.group(3))
                rows.append(("blender", f"Blender 4.2 {engine.replace('BLENDER_', '').title()} {size}"
                             + (" (8 samples)" if engine == "CYCLES" else "") + ", warm views, PNG written",
                             f"{r:.2f}", f"render_shapenet is {ours / r:.1f}x"))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("what", nargs="*", default=["single", "scale", "clickhere", "blender"],
                   choices=["single", "scale", "clickhere", "blender"])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--fixtures", default=os.environ.get("KPDATA_FIXTURES", os.path.join(ROOT, "..", "shared", "fixtures")))
    p.add_argument("--bare", default="")
    p.add_argument("--blender", default="/work/bpyenv/bin/python")
    p.add_argument("--work", default="")
    p.add_argument("--src", default="", help="another checkout (e.g. `git archive` of an older commit): its "
                   "render_shapenet is timed the same way in `single`, for the before / after")
    a = p.parse_args(argv)
    a.fixtures = os.path.abspath(a.fixtures)
    a.bare = a.bare or os.path.join(os.path.dirname(a.fixtures), "bench", "bare_render.py")
    a.views = 300 if a.quick else 1000
    a.scale_views = 16 if a.quick else 128
    a.clickhere_views = 2 if a.quick else 6
    a.blender_views = 4 if a.quick else 20
    a.blender_ours_views = 40 if a.quick else 200
    work = a.work or tempfile.mkdtemp(prefix="kpdata-perf-")
    rows, rates = [], {}
    t0 = time.perf_counter()
    load = os.getloadavg()[0]
    for what in ("single", "scale", "clickhere", "blender"):
        if what not in a.what:
            continue
        print(f"... {what}", flush=True)
        if what == "single":
            single(a, rows, work, rates)
        elif what == "scale":
            scale(a, rows, work)
        elif what == "clickhere":
            clickhere(a, rows, work, rates)
        else:
            blender(a, rows, work)
    width = max(len(r[1]) for r in rows)
    print(f"\n{os.cpu_count()} CPUs, load average {load:.1f} at the start, {os.getloadavg()[0]:.1f} at the end "
          f"({time.perf_counter() - t0:.0f} s); views/s unless marked")
    print(f"{'':<10} {'what':<{width}}  {'views/s':>16}  ratio")
    for group, what, value, ratio in rows:
        print(f"{group:<10} {what:<{width}}  {value:>16}  {ratio}")
    if not a.work:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
