"""Evaluate a trained model with the seeds' metrics, next to its trivial baseline.

    python -m training.evaluate --data DIR --model_dir M [--split test] [--r4cnn_distance]

Prints the metrics and writes M/metrics.json: the model's metrics, the baseline's (statistics
taken from the training split: mean keypoint position per class; most frequent viewpoint bin;
identity rotation) and the differences; and M/errors.png, their distributions (per-keypoint PCK,
or the cumulative distribution of the angle errors).
"""
from __future__ import annotations

import argparse
import json
import os
import sys

from training import tfquiet  # noqa: F401 - first: imports TensorFlow without its start-up noise
import numpy as np

from training import common, data, error_plot


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m training.evaluate", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default="", help="dataset folder (default: the one the model was trained on, "
                                              f"else {common.DEFAULT_DATA})")
    p.add_argument("--model_dir", default=common.DEFAULT_MODEL_DIR, help="(default: %(default)s)")
    p.add_argument("--split", default="test", help="split to evaluate; without a test split: val (KeyPose) or "
                                                   "dev, else the only split, saying so (default: %(default)s)")
    p.add_argument("--batch_size", type=int, default=64, help="(default: %(default)s)")
    p.add_argument("--limit", type=int, default=0, help="evaluate at most this many records; 0 = all (default: %(default)s)")
    p.add_argument("--r4cnn_distance", action="store_true",
                   help="viewpoint: Render for CNN's matrix-2-norm distance instead of the geodesic angle (formats §3.9)")
    p.add_argument("--record", default="", help="record type, overriding kpdata_info.json (default: detected)")
    p.add_argument("--verbose", action="store_true", help="keep TensorFlow's start-up log lines")
    return p


def _collect(task, model, dataset):
    """(outputs, labels) as numpy arrays concatenated over the dataset."""
    outs, labs = [], []
    for inputs, labels in dataset:
        if model is None:
            o = {}
        elif task.name == "keypointnet":
            o = {}
            for i in (0, 1):
                r = model(inputs[f"image{i}"], training=False)
                o[f"uv{i}"], o[f"z{i}"] = r["uv"].numpy(), r["z"].numpy()
        else:
            o = {k: v.numpy() for k, v in model(task.model_inputs(inputs), training=False).items()}
        outs.append(o)
        labs.append({k: v.numpy() for k, v in labels.items()})

    def cat(parts):
        if not parts or not parts[0]:
            return {}
        return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}

    return cat(outs), cat(labs)


def evaluate(source, task, model, split: str, batch_size: int, limit: int = 0, r4cnn: bool = False,
             plot_path: str | None = None) -> dict:
    """The metrics of ``model`` and its baseline on ``split``; ``plot_path``: also draw the error
    distributions there (:mod:`training.error_plot`)."""
    train_ds = data.build(source, task, "train", batch_size=batch_size, training=False, limit=limit or None)
    _, train_labels = _collect(task, None, train_ds)
    baseline = task.baseline_stats(train_labels)
    ds = data.build(source, task, split, batch_size=batch_size, training=False, limit=limit or None)
    outputs, labels = _collect(task, model, ds)
    if not labels:
        raise SystemExit(f"error: split {split!r} of {source.data_dir} gave no examples for {task.name}: nothing "
                         f"to evaluate (render more models or change --splits so that {split!r} gets some)")
    if "category" in labels and np.any(labels["category"] < 0):
        unseen = int(np.sum(labels["category"] < 0))
        print(f"warning: {unseen} of {len(labels['category'])} examples of split {split!r} are of categories the model "
              f"never saw in training (not in its vocabulary); they cannot be scored", file=sys.stderr)
    result = task.evaluate(outputs, labels, baseline, r4cnn=r4cnn) if task.name == "viewpoint" else \
        task.evaluate(outputs, labels, baseline)
    if result["model"].get("keypoints_evaluated") == 0:
        raise SystemExit(f"error: split {split!r} of {source.data_dir}: 0 keypoints to evaluate (no visible keypoint of "
                         f"a class seen in training); nothing to compare with the baseline")
    result["difference"] = {k: v - result["baseline"][k] for k, v in result["model"].items()
                            if isinstance(v, float) and isinstance(result["baseline"].get(k), float)}
    if plot_path and model is not None:
        error_plot.write(plot_path, task, outputs, labels, baseline, r4cnn, f"{task.name} on {split!r} of {source.data_dir}")
    return result


def run(argv=None) -> int:
    args = build_parser().parse_args(argv)
    cfg = common.read_config(args.model_dir)
    data_dir = args.data or (cfg or {}).get("data", {}).get("dir") or common.DEFAULT_DATA
    task, model, step, cfg = common.load_trained(args.model_dir)
    source = common.open_data(data_dir, args.record or cfg.get("data", {}).get("record"))
    split = args.split
    if split not in source.splits:
        held_out = [s for s in ("val", "dev") if s in source.splits]
        if split == "test" and held_out:  # KeyPose sets have train / val, KeypointNet folders dev
            split = held_out[0]
            print(f"note: {data_dir} has no 'test' split; evaluating {split!r}")
        elif len(source.splits) != 1:
            raise SystemExit(f"error: {data_dir} has no split {split!r} (splits: {sorted(source.splits)})")
        else:
            split = next(iter(source.splits))
            print(f"note: {data_dir} has no {args.split!r} split; evaluating {split!r} (the training data)")
    if not source.splits.get(split) or source.num_examples.get(split) == 0:
        raise SystemExit(f"error: split {split!r} of {data_dir} is empty: nothing to evaluate (render more models or "
                         f"change --splits so that {split!r} gets some)")
    result = evaluate(source, task, model, split, args.batch_size, args.limit, args.r4cnn_distance,
                      plot_path=os.path.join(args.model_dir, error_plot.PLOT_NAME))
    report = {"task": task.name, "data": os.path.abspath(data_dir), "split": split, "step": step, **result}
    path = os.path.join(args.model_dir, "metrics.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump(report, f, indent=2, sort_keys=True)
        f.write("\n")
    print(f"{task.name} model at step {step} on {split!r} of {data_dir}:")
    for name in ("model", "baseline", "difference"):
        flat = {k: v for k, v in result[name].items() if not isinstance(v, dict)}
        print(f"  {name:10s} " + "  ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in flat.items()))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(run())
