"""Close the loop: render a small dataset, train each reference model for a bounded time, evaluate
against its trivial baseline, compare the input pipeline's examples/s with the training step's,
and check the TFLite exports.

    python bench/train_reference.py [--models 64] [--views 48] [--minutes 9.5] [--out DIR]

Every stage runs in its own subprocess: rendering (Mesa) and TensorFlow never share a process.
The dataset: the demo set grown to ``--models`` models with seeded variants
(``kpdata.demo.write_demo_set(root, count)``), ``--views`` views each at 128x128, split by model
(train 0.75 / test 0.25), so the test split holds models never seen in training.

Acceptance (issue 6), printed at the end:
- keypoints: PCK@0.1 on held-out models >= mean-position baseline + 0.2
- viewpoint: Acc_pi/6 >= most-frequent-bin baseline + 0.2
- keypointnet: mean angular error < identity-rotation baseline
- input pipeline examples/s >= 3x the training step's examples/s, for every task
- TFLite outputs match the SavedModel's within the tolerances of training/export.py
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


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", type=int, default=64, help="demo models incl. variants (default: %(default)s)")
    p.add_argument("--views", type=int, default=48, help="views per model (default: %(default)s)")
    p.add_argument("--minutes", type=float, default=9.5, help="training time per model (default: %(default)s)")
    p.add_argument("--tasks", default=",".join(TASKS), help="(default: %(default)s)")
    p.add_argument("--batch_size", type=int, default=32, help="(default: %(default)s)")
    p.add_argument("--out", default="bench_out/train_reference", help="(default: %(default)s)")
    p.add_argument("--reuse_data", action="store_true", help="keep an already rendered dataset in --out")
    a = p.parse_args(argv)
    out = os.path.abspath(a.out)
    os.makedirs(out, exist_ok=True)
    log = os.path.join(out, "log.txt")
    data = os.path.join(out, "views")
    print(f"bench: {a.models} models x {a.views} views; log {log}")
    if not (a.reuse_data and os.path.exists(os.path.join(data, "dataset_info.json"))):
        shapenet = os.path.join(out, "demo")
        demo.write_demo_set(shapenet, a.models)
        sh(["-m", "pipelines.render_shapenet", "--shapenet_dir", shapenet, "--image_size", "128x128",
            "--focal", "200", "--views_per_model", str(a.views), "--splits", "train=0.75,test=0.25",
            "--output_dir", data, "--num_shards", "4", "--preview", "16"], log)
    results = {}
    for task in a.tasks.split(","):
        model_dir = os.path.join(out, f"model_{task}")
        if os.path.exists(model_dir):
            subprocess.run(["rm", "-rf", model_dir], check=True)
        print(f"{task}:")
        sh(["-m", "training.train", "--data", data, "--task", task, "--model_dir", model_dir, "--steps", "100000",
            "--batch_size", str(a.batch_size), "--time_limit", str(a.minutes * 60), "--log_every", "100",
            "--checkpoint_every", "500"], log)
        sh(["-m", "training.evaluate", "--data", data, "--model_dir", model_dir, "--split", "test"], log)
        pipe = sh(["-m", "training.data", "--data", data, "--task", task, "--batches", "40",
                   "--batch_size", str(a.batch_size)], log)
        checks = {}
        for q in (("none", "int8") if task == "keypoints" else ("none",)):
            sh(["-m", "training.export", "--model_dir", model_dir, "--format", "tflite", "--quantize", q], log)
            with open(os.path.join(model_dir, "export", "check.json"), encoding="utf-8") as f:
                checks[q] = json.load(f)
        with open(os.path.join(model_dir, "metrics.json"), encoding="utf-8") as f:
            metrics = json.load(f)
        with open(os.path.join(model_dir, "train_stats.json"), encoding="utf-8") as f:
            stats = json.load(f)
        pipeline_rate = float(re.search(r"([\d.]+) examples/s", pipe).group(1))
        results[task] = {"metrics": metrics, "train": stats, "pipeline_examples_per_s": pipeline_rate,
                         "export": checks}

    print("\n== results (test split = held-out models)")
    verdict = {}
    for task, r in results.items():
        m, b = r["metrics"]["model"], r["metrics"]["baseline"]
        st = r["train"]
        if task == "keypoints":
            key, ok = "pck@0.1", m["pck@0.1"] - b["pck@0.1"] >= 0.2
            extra = f"pck@0.05 {m['pck@0.05']:.3f} (baseline {b['pck@0.05']:.3f}), mean px error {m['mean_px_error']:.2f} (baseline {b['mean_px_error']:.2f})"
        elif task == "viewpoint":
            key, ok = "acc_pi6", m["acc_pi6"] - b["acc_pi6"] >= 0.2
            extra = f"MedErr {m['med_err']:.1f} deg (baseline {b['med_err']:.1f})"
        else:
            key, ok = "angular_error_mean", m["angular_error_mean"] < b["angular_error_mean"]
            extra = f"median {m['angular_error_median']:.1f} deg (baseline {b['angular_error_median']:.1f})"
        ratio = r["pipeline_examples_per_s"] / st["step_examples_per_s"]
        lite_ok = all(c["ok"] for c in r["export"].values())
        verdict[task] = {"metric": ok, "pipeline_ratio": ratio >= 3, "tflite": lite_ok}
        print(f"{task:12s} {key} {m[key]:.3f} vs baseline {b[key]:.3f} ({'PASS' if ok else 'FAIL'}); {extra}")
        print(f"{'':12s} trained {st['step']} steps in {st['seconds']:.0f} s; step {st['step_examples_per_s']:.1f} ex/s, "
              f"input pipeline {r['pipeline_examples_per_s']:.1f} ex/s: ratio {ratio:.1f}x "
              f"({'PASS' if ratio >= 3 else 'FAIL'}); input wait {st['input_wait_fraction']:.3f} of step time")
        for q, c in r["export"].items():
            print(f"{'':12s} tflite[{q}] vs SavedModel: {c['tflite_vs_saved_model']} ({c['tflite_measure']}, "
                  f"tolerance {c['tflite_tolerance']}); decoded {c['decoded_agreement']} "
                  f"({'PASS' if c['ok'] else 'FAIL'})")
    with open(os.path.join(out, "results.json"), "w", encoding="utf-8") as f:
        json.dump({"results": results, "verdict": verdict, "args": vars(a)}, f, indent=2, sort_keys=True)
    print(f"wrote {os.path.join(out, 'results.json')}")
    return 0 if all(all(v.values()) for v in verdict.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
