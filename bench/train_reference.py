"""Close the loop: render small datasets of every layout, train each reference model for a bounded
time, evaluate against its trivial baseline, compare the input pipeline's examples/s with the
training step's, and check the TFLite exports (view layout).

    python bench/train_reference.py [--models 64] [--views 48] [--minutes 9.5]
                                    [--layouts view,clickhere,keypointnet,keypose] [--layout_minutes 2] [--out DIR]

Every stage runs in its own subprocess: rendering (Mesa) and TensorFlow never share a process.
The models: the demo set grown to ``--models`` models with seeded variants
(``kpdata.demo.write_demo_set(root, count)``), split by model (train 0.75 / test 0.25), so the test
split holds models never seen in training. Layouts and what trains on them:

- ``view`` (``--views`` views per model, 128x128): keypoints, viewpoint, keypointnet (pairs of
  views), ``--minutes`` each; TFLite export checks;
- ``clickhere`` (compact LMDB, maps rebuilt at read time; ``--clickhere_views`` per model):
  viewpoint with Click-Here's keypoint-map inputs, and keypoints;
- ``keypointnet`` (``--layout keypointnet``, ``--pairs`` per model, 128x128): keypointnet;
- ``keypose`` (``render_stereo`` of the cars among the models, ``--stereo_frames`` frames each,
  ``gen_tfrecords`` at 378x212_fl200, a quarter of the cars held out as val): stereo keypoints
  with KeyPose's metrics;
the new layouts ``--layout_minutes`` per model.

Acceptance (issue 6, view layout), printed at the end:
- keypoints: PCK@0.1 on held-out models >= mean-position baseline + 0.2
- viewpoint: Acc_pi/6 >= most-frequent-bin baseline + 0.2
- keypointnet: mean angular error < identity-rotation baseline
- input pipeline examples/s >= 3x the training step's examples/s, for every task
- TFLite outputs match the SavedModel's within the tolerances of training/export.py
The other layouts report their metrics against the same baselines (and the pipeline ratio).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from kpdata import demo

TASKS = ("keypoints", "viewpoint", "keypointnet")
LAYOUTS = ("view", "clickhere", "keypointnet", "keypose")
CAR = "02958343"


def sh(args, log, timeout=None):
    """Run ``python -m ...`` args in ROOT; output appended to ``log``; returns stdout text."""
    t = time.perf_counter()
    with open(log, "a", encoding="utf-8") as f:
        f.write(f"\n$ {' '.join(args)}\n")
        f.flush()
        r = subprocess.run([sys.executable, *args], cwd=ROOT, stdout=subprocess.PIPE, stderr=f,
                           text=True, timeout=timeout, check=False, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
        f.write(r.stdout)
    print(f"  [{time.perf_counter() - t:6.1f} s] {' '.join(args[:3])} ...", flush=True)
    if r.returncode not in (0,):
        raise SystemExit(f"failed ({r.returncode}): {' '.join(args)}; see {log}")
    return r.stdout


def render(layout: str, a, shapenet: str, out: str, log: str) -> str:
    """Render the ``layout`` dataset (once; ``--reuse_data`` keeps it); returns its folder."""
    data = os.path.join(out, layout if layout != "view" else "views")
    done = os.path.join(data, "kpdata_info.json")
    if a.reuse_data and os.path.exists(done):
        return data
    subprocess.run(["rm", "-rf", data], check=True)
    splits = ["--splits", "train=0.75,test=0.25"]
    if layout == "view":
        sh(["-m", "pipelines.render_shapenet", "--shapenet_dir", shapenet, "--image_size", "128x128", "--focal", "200",
            "--views_per_model", str(a.views), *splits, "--output_dir", data, "--num_shards", "4", "--preview", "16"], log)
    elif layout == "clickhere":
        sh(["-m", "pipelines.render_shapenet", "--layout", "clickhere", "--compact", "--format", "lmdb",
            "--shapenet_dir", shapenet, "--image_size", "480x270", "--focal", "525",
            "--views_per_model", str(a.clickhere_views), *splits, "--output_dir", data, "--preview", "16"], log)
    elif layout == "keypointnet":
        sh(["-m", "pipelines.render_shapenet", "--layout", "keypointnet", "--shapenet_dir", shapenet,
            "--pairs_per_model", str(a.pairs), "--splits", "train=0.75,dev=0.05,test=0.2", "--output_dir", data,
            "--preview", "16"], log)
    else:
        seq = os.path.join(out, "keypose_sequences")
        subprocess.run(["rm", "-rf", seq], check=True)
        sh(["-m", "pipelines.render_stereo", "--models", shapenet, "--synsets", CAR, "--frames", str(a.stereo_frames),
            "--image_size", "756x424", "--focal", "400", "--output_dir", seq, "--preview", "4"], log)
        cars = sorted(d for d in os.listdir(seq) if d.startswith("car_"))
        val = ",".join(f"{c}/*" for c in cars[: max(1, len(cars) // 4)])
        sh(["-m", "pipelines.gen_tfrecords", "--input", os.path.join(seq, "car_*", "texture_*_pose_*"), "--val", val,
            "--image_size", "378x212_fl200", "--output_dir", data, "--preview", "4"], log)
    return data


def jobs(layouts, tasks):
    """(layout, task, extra train flags) to run."""
    out = []
    for layout in layouts:
        if layout == "view":
            out += [(layout, t, []) for t in tasks]
        elif layout == "clickhere":
            out += [(layout, "viewpoint", ["--keypoint_map"]), (layout, "keypoints", [])]
        elif layout == "keypointnet":
            out.append((layout, "keypointnet", []))
        else:
            out.append((layout, "keypoints", []))
    return out


def summary_line(task: str, m: dict, b: dict, stereo: bool):
    """(headline metric, model better than baseline, acceptance margin met, details)."""
    if task == "keypoints":
        extra = (f"pck@0.05 {m['pck@0.05']:.3f} (baseline {b['pck@0.05']:.3f}), mean px error "
                 f"{m['mean_px_error']:.2f} (baseline {b['mean_px_error']:.2f})")
        if stereo:
            extra += "; KeyPose: " + ", ".join(f"{k} {m[k]:.4g} (baseline {b[k]:.4g})"
                                               for k in ("mae_uv", "mae_disp", "mae_world", "mae_2cm"))
        return "pck@0.1", m["pck@0.1"] > b["pck@0.1"], m["pck@0.1"] - b["pck@0.1"] >= 0.2, extra
    if task == "viewpoint":
        extra = f"MedErr {m['med_err']:.1f} deg (baseline {b['med_err']:.1f})"
        return "acc_pi6", m["acc_pi6"] > b["acc_pi6"], m["acc_pi6"] - b["acc_pi6"] >= 0.2, extra
    extra = f"median {m['angular_error_median']:.1f} deg (baseline {b['angular_error_median']:.1f})"
    ok = m["angular_error_mean"] < b["angular_error_mean"]
    return "angular_error_mean", ok, ok, extra


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", type=int, default=64, help="demo models incl. variants (default: %(default)s)")
    p.add_argument("--views", type=int, default=48, help="view layout: views per model (default: %(default)s)")
    p.add_argument("--minutes", type=float, default=9.5, help="view layout: training time per model (default: %(default)s)")
    p.add_argument("--tasks", default=",".join(TASKS), help="view layout's tasks (default: %(default)s)")
    p.add_argument("--layouts", default=",".join(LAYOUTS), help="(default: %(default)s)")
    p.add_argument("--layout_minutes", type=float, default=2.0,
                   help="training time per model on the other layouts (default: %(default)s)")
    p.add_argument("--clickhere_views", type=int, default=12, help="(default: %(default)s)")
    p.add_argument("--pairs", type=int, default=24, help="keypointnet layout: pairs per model (default: %(default)s)")
    p.add_argument("--stereo_frames", type=int, default=6, help="keypose: frames per car (default: %(default)s)")
    p.add_argument("--batch_size", type=int, default=32, help="(default: %(default)s)")
    p.add_argument("--out", default="bench_out/train_reference", help="(default: %(default)s)")
    p.add_argument("--reuse_data", action="store_true", help="keep already rendered datasets in --out")
    a = p.parse_args(argv)
    out = os.path.abspath(a.out)
    os.makedirs(out, exist_ok=True)
    log = os.path.join(out, "log.txt")
    layouts = [x for x in a.layouts.split(",") if x]
    unknown = set(layouts) - set(LAYOUTS)
    if unknown:
        raise SystemExit(f"--layouts: unknown {sorted(unknown)} (known: {', '.join(LAYOUTS)})")
    print(f"bench: {a.models} models; layouts {', '.join(layouts)}; log {log}")
    shapenet = os.path.join(out, "demo")
    demo.write_demo_set(shapenet, a.models)
    data = {layout: render(layout, a, shapenet, out, log) for layout in layouts}
    results = {}
    for layout, task, flags in jobs(layouts, a.tasks.split(",")):
        name = f"{layout}/{task}"
        model_dir = os.path.join(out, f"model_{task}" if layout == "view" else f"model_{layout}_{task}")
        subprocess.run(["rm", "-rf", model_dir], check=True)
        minutes = a.minutes if layout == "view" else a.layout_minutes
        batch = a.batch_size if task != "keypointnet" or layout == "view" else min(a.batch_size, 16)
        print(f"{name}:")
        sh(["-m", "training.train", "--data", data[layout], "--task", task, "--model_dir", model_dir, "--steps", "100000",
            "--batch_size", str(batch), "--time_limit", str(minutes * 60), "--log_every", "100",
            "--checkpoint_every", "500", *flags], log)
        sh(["-m", "training.evaluate", "--data", data[layout], "--model_dir", model_dir, "--split", "test"], log)
        pipe = sh(["-m", "training.data", "--data", data[layout], "--task", task, "--batches", "40",
                   "--batch_size", str(batch), *(["--keypoint_map"] if "--keypoint_map" in flags else [])], log)
        checks = {}
        if layout == "view":
            for q in (("none", "int8") if task == "keypoints" else ("none",)):
                sh(["-m", "training.export", "--model_dir", model_dir, "--format", "tflite", "--quantize", q], log)
                with open(os.path.join(model_dir, "export", "check.json"), encoding="utf-8") as f:
                    checks[q] = json.load(f)
        with open(os.path.join(model_dir, "metrics.json"), encoding="utf-8") as f:
            metrics = json.load(f)
        with open(os.path.join(model_dir, "train_stats.json"), encoding="utf-8") as f:
            stats = json.load(f)
        pipeline_rate = float(re.search(r"([\d.]+) examples/s", pipe).group(1))
        results[name] = {"metrics": metrics, "train": stats, "pipeline_examples_per_s": pipeline_rate,
                         "export": checks}

    print("\n== results (test split = held-out models; KeyPose: the val cars)")
    verdict = {}
    for name, r in results.items():
        layout, task = name.split("/")
        m, b = r["metrics"]["model"], r["metrics"]["baseline"]
        st = r["train"]
        key, better, margin, extra = summary_line(task, m, b, layout == "keypose")
        ratio = r["pipeline_examples_per_s"] / st["step_examples_per_s"]
        lite_ok = all(c["ok"] for c in r["export"].values())
        if layout == "view":  # the acceptance
            verdict[name] = {"metric": margin, "pipeline_ratio": ratio >= 3, "tflite": lite_ok}
            mark = "PASS" if margin else "FAIL"
        else:
            verdict[name] = {"beats_baseline": better, "pipeline_ratio": ratio >= 3}
            mark = "better than baseline" if better else "NOT better than baseline"
        print(f"{name:22s} {key} {m[key]:.3f} vs baseline {b[key]:.3f} ({mark}); {extra}")
        print(f"{'':22s} trained {st['step']} steps in {st['seconds']:.0f} s; step {st['step_examples_per_s']:.1f} ex/s, "
              f"input pipeline {r['pipeline_examples_per_s']:.1f} ex/s: ratio {ratio:.1f}x "
              f"({'PASS' if ratio >= 3 else 'FAIL'}); input wait {st['input_wait_fraction']:.3f} of step time")
        for q, c in r["export"].items():
            print(f"{'':22s} tflite[{q}] vs SavedModel: {c['tflite_vs_saved_model']} ({c['tflite_measure']}, "
                  f"tolerance {c['tflite_tolerance']}); decoded {c['decoded_agreement']} "
                  f"({'PASS' if c['ok'] else 'FAIL'})")
    with open(os.path.join(out, "results.json"), "w", encoding="utf-8") as f:
        json.dump({"results": results, "verdict": verdict, "args": vars(a)}, f, indent=2, sort_keys=True)
    print(f"wrote {os.path.join(out, 'results.json')}")
    accepted = [v for k, v in verdict.items() if k.startswith("view/")]
    return 0 if all(all(v.values()) for v in accepted) else 1


if __name__ == "__main__":
    sys.exit(main())
