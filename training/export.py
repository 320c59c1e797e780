"""Export a trained model as a SavedModel or a TFLite flatbuffer, and check it.

    python -m training.export --model_dir M --format saved_model|tflite [--quantize int8]

Writes M/export/saved_model/ (signature ``serving_default``: ``image`` (B, S, S, 3) float32 in
[0, 1] -> the model's named outputs) or M/export/model.tflite (M/export/model_int8.tflite with
--quantize int8: weights and activations int8, calibrated on training images, float32 input and
output), then runs a batch of the dataset's images through the Keras model and the export and
compares the outputs: the SavedModel must match the Keras model within 1e-4 (max absolute
difference); a float TFLite model must match the SavedModel within 1e-3 relative to the largest
output magnitude; an int8 model within 10% of each output's range (mean absolute difference),
and the check prints how often its decoded predictions agree. Results go to
M/export/check.json; the command fails (exit 1) when a check fails.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

from training import tfquiet  # first: imports TensorFlow without its start-up noise
import numpy as np
import tensorflow as tf

from training import common, data

SAVED_MODEL_TOL = 1e-4       # max |SavedModel - Keras|
TFLITE_FLOAT_TOL = 1e-3      # max |TFLite - SavedModel| / max |SavedModel|
TFLITE_INT8_TOL = 0.10       # mean |TFLite - SavedModel| / (max - min of SavedModel), per output


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m training.export", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model_dir", default=common.DEFAULT_MODEL_DIR, help="(default: %(default)s)")
    p.add_argument("--format", choices=("saved_model", "tflite"), default="saved_model", help="(default: %(default)s)")
    p.add_argument("--quantize", choices=("none", "int8"), default="none",
                   help="tflite only: full-integer int8 quantization (default: %(default)s)")
    p.add_argument("--data", default="", help="images for the check and int8 calibration "
                                              "(default: the data the model was trained on)")
    p.add_argument("--check_batch", type=int, default=16, help="images compared (default: %(default)s)")
    p.add_argument("--calibration_batches", type=int, default=8,
                   help="int8: batches of 16 training images for calibration (default: %(default)s)")
    p.add_argument("--verbose", action="store_true", help="keep TensorFlow's log lines and warnings")
    return p


def _input_batches(source, task, split, batch_size):
    """{input name: numpy batch} of the exported model's inputs."""
    ds = data.build(source, task, split, batch_size=batch_size, training=False)
    for inputs, _ in ds:
        x = task.model_inputs(inputs)
        yield {k: v.numpy() for k, v in x.items()} if isinstance(x, dict) else {"image": x.numpy()}


def _call(model, batch):
    return model(batch if len(batch) > 1 else batch["image"], training=False)


def save_saved_model(model, path: str) -> None:
    """Keras 3's own export (an ExportArchive tracking every variable; a hand-made tf.Module
    loses Keras 3 variables on the way to TFLite)."""
    model.export(path, format="tf_saved_model", verbose=False)


def _interpreter(path: str):
    try:  # LiteRT, TFLite's successor, when installed; tf.lite otherwise
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        Interpreter = tf.lite.Interpreter
    return Interpreter(model_path=path)


def run_tflite(path: str, batch: dict) -> dict:
    with tfquiet.quiet_stderr():  # TFLite's delegate note on the first call
        interp = _interpreter(path)
        runner = interp.get_signature_runner("serving_default")
        n = len(next(iter(batch.values())))
        outs = [runner(**{k: v[i:i + 1].astype(np.float32) for k, v in batch.items()}) for i in range(n)]  # batch 1
    return {k: np.concatenate([o[k] for o in outs]) for k in outs[0]}


def convert_tflite(saved_model: str, path: str, quantize: str, calibration) -> None:
    converter = tf.lite.TFLiteConverter.from_saved_model(saved_model)
    if quantize == "int8":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]

        def representative():
            for batch in calibration:
                for i in range(len(next(iter(batch.values())))):
                    yield {k: v[i:i + 1].astype(np.float32) for k, v in batch.items()}

        converter.representative_dataset = representative
    with tfquiet.quiet_stderr():  # the converter's C++ log lines
        flat = converter.convert()
    with open(path, "wb") as f:
        f.write(flat)


def decoded_agreement(task, ref: dict, out: dict) -> dict:
    """How far the task's decoded predictions move between two sets of outputs."""
    if task.name == "keypoints":
        a, b = task.predict(ref), task.predict(out)
        return {"keypoint_shift_px_mean": float(np.linalg.norm(a - b, axis=-1).mean())}
    if task.name == "viewpoint":
        return {f"{k}_argmax_agreement": float((ref[k].argmax(-1) == out[k].argmax(-1)).mean()) for k in ref}
    return {"uv_shift_px_mean": float(np.linalg.norm(ref["uv"] - out["uv"], axis=-1).mean()),
            "z_shift_mean": float(np.abs(ref["z"] - out["z"]).mean())}


def run(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if args.quantize != "none" and args.format != "tflite":
        raise SystemExit("error: --quantize needs --format tflite")
    task, model, step, cfg = common.load_trained(args.model_dir)
    source = common.open_data(args.data or cfg["data"]["dir"], cfg["data"]["record"])
    split = "test" if "test" in source.splits else "train"
    images = next(_input_batches(source, task, split, args.check_batch))
    keras_out = {k: v.numpy() for k, v in _call(model, images).items()}

    out_dir = os.path.join(args.model_dir, "export")
    sm_path = os.path.join(out_dir, "saved_model")
    save_saved_model(model, sm_path)
    serve = tf.saved_model.load(sm_path).signatures["serving_default"]
    sm_out = {k: v.numpy() for k, v in serve(**{k: tf.constant(v) for k, v in images.items()}).items()}
    sm_diff = max(float(np.abs(sm_out[k] - keras_out[k]).max()) for k in keras_out)
    check = {"task": task.name, "step": step, "images": len(images), "saved_model": sm_path,
             "saved_model_vs_keras_max_abs": sm_diff, "saved_model_tolerance": SAVED_MODEL_TOL}
    ok = sm_diff <= SAVED_MODEL_TOL
    print(f"SavedModel {sm_path}: max |SavedModel - Keras| = {sm_diff:.2e} (tolerance {SAVED_MODEL_TOL:g})")
    if args.format == "tflite":
        name = "model_int8.tflite" if args.quantize == "int8" else "model.tflite"
        path = os.path.join(out_dir, name)
        calib = []
        if args.quantize == "int8":
            for i, b in enumerate(_input_batches(source, task, "train", 16)):
                if i >= args.calibration_batches:
                    break
                calib.append(b)
        convert_tflite(sm_path, path, args.quantize, calib)
        lite = run_tflite(path, images)
        per = {}
        for k, ref in sm_out.items():
            diff = np.abs(lite[k] - ref)
            if args.quantize == "int8":
                per[k] = float(diff.mean() / max(float(ref.max() - ref.min()), 1e-12))
            else:
                per[k] = float(diff.max() / max(float(np.abs(ref).max()), 1e-12))
        tol = TFLITE_INT8_TOL if args.quantize == "int8" else TFLITE_FLOAT_TOL
        worst = max(per.values())
        ok = ok and worst <= tol
        agreement = decoded_agreement(task, sm_out, lite)
        check.update({"tflite": path, "tflite_bytes": os.path.getsize(path), "quantize": args.quantize,
                      "tflite_vs_saved_model": per, "tflite_tolerance": tol,
                      "tflite_measure": "mean |d| / output range" if args.quantize == "int8" else "max |d| / max |ref|",
                      "decoded_agreement": agreement})
        print(f"TFLite {path} ({os.path.getsize(path)} bytes): "
              + ", ".join(f"{k} {v:.2e}" for k, v in per.items())
              + f" ({check['tflite_measure']}, tolerance {tol:g}); decoded: "
              + ", ".join(f"{k}={v:.4f}" for k, v in agreement.items()))
    check["ok"] = bool(ok)
    with open(os.path.join(out_dir, "check.json"), "w", encoding="utf-8") as f:
        json.dump(check, f, indent=2, sort_keys=True)
        f.write("\n")
    print("check passed" if ok else "check FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(run())
