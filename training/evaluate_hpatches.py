"""Evaluate a keypoint detector / descriptor on an HPatches-layout folder with KP2D's metrics.

    python -m training.evaluate_hpatches [--hpatches DIR] [--detector sift|orb|MODEL] [flags]

For every sequence and k = 2..6, images 1 and k are resized to ``--image_size`` (the homography
scaled to match, as KP2D's ``PatchesDataset``), the detector runs on both, detections with score
``> --conf_threshold`` are kept, and repeatability, localisation error, homography correctness
C1/C3/C5 and matching score (``kpdata.kp2d.metrics``, formats §4.4) are averaged over the pairs.
The table has a row for all pairs and one per sequence kind (i_ illumination, v_ viewpoint).

Detectors: ``sift`` and ``orb`` (OpenCV; score = the keypoint's response; ORB descriptors are
matched with the Hamming norm, all others with L2), or a path to a model (a SavedModel folder, a
``.keras`` / ``.h5`` Keras file or a ``.tflite`` file). TensorFlow is imported only for a model.
A model takes a ``(1, H, W, 3)`` float32 RGB image (normalised per ``--model_input``) and returns
KP2D's three outputs -- ``score (1, Hc, Wc, 1)``, ``coord (1, Hc, Wc, 2)`` (x, y in input pixels)
and ``desc (1, Hc, Wc, D)`` -- as a tuple/list in that order or a dict whose keys contain
``score``, ``coord`` and ``desc``; channels-first outputs ``(1, C, Hc, Wc)`` are accepted too.

With no ``--hpatches``, an HPatches-layout set is made from the built-in demo photos in a
temporary folder (seed 0) and evaluated.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import re
import shutil
import sys
import tempfile
import time

import cv2
import numpy as np

from kpdata.kp2d import hpatches

from kpdata.kp2d import metrics as kp_metrics

from kpdata.sources import photos
from kpdata.errors import InputError
from kpdata.seeding import rng_for
from kpdata.demo import photos as demo_photos

COLUMNS = (("repeatability", "Repeatability"), ("localization_error", "Localization"), ("c1", "C1"),
           ("c3", "C3"), ("c5", "C5"), ("matching_score", "MScore"))


def _image_size(text: str) -> tuple[int, int]:
    m = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", text)
    if not m or min(int(m.group(1)), int(m.group(2))) < 2:
        raise argparse.ArgumentTypeError(f"expected WxH with integers >= 2, e.g. 320x240, got {text!r}")
    return int(m.group(1)), int(m.group(2))


class OpenCVDetector:
    """SIFT or ORB on the greyscale image; score = response."""

    def __init__(self, name: str, max_features: int = 0):
        self.name = name
        if name == "sift":
            self.impl = cv2.SIFT_create(nfeatures=max_features)
        elif name == "orb":
            self.impl = cv2.ORB_create(nfeatures=max_features or 1000)
        else:
            raise ValueError(f"unknown OpenCV detector {name!r}")

    def __call__(self, image: np.ndarray) -> kp_metrics.Detections:
        grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
        kps, desc = self.impl.detectAndCompute(grey, None)
        if desc is None or not kps:
            dim, dtype = (32, np.uint8) if self.name == "orb" else (128, np.float32)
            return kp_metrics.Detections(np.zeros((0, 2)), np.zeros(0), np.zeros((0, dim), dtype))
        return kp_metrics.Detections(np.array([k.pt for k in kps]), np.array([k.response for k in kps]), desc)


def _split_outputs(out) -> tuple:
    if isinstance(out, dict):
        def pick(word):
            hits = [k for k in sorted(out) if word in k.lower()]
            if len(hits) != 1:
                raise ValueError(f"model outputs {sorted(out)}: expected exactly one key containing {word!r}")
            return out[hits[0]]
        return pick("score"), pick("coord"), pick("desc")
    if isinstance(out, (list, tuple)) and len(out) == 3:
        return tuple(out)
    raise ValueError(f"expected the model to return (score, coord, desc), got {type(out).__name__}")


def _nhwc(a: np.ndarray, channels: int | None, name: str) -> np.ndarray:
    """(1, Hc, Wc, C) from (1, Hc, Wc, C) or (1, C, Hc, Wc)."""
    a = np.asarray(a)
    if a.ndim != 4 or a.shape[0] != 1:
        raise ValueError(f"model output {name}: expected (1, Hc, Wc, C), got {a.shape}")
    if channels is not None and a.shape[3] != channels and a.shape[1] == channels:
        a = np.transpose(a, (0, 2, 3, 1))
    return a


def detections_from_maps(score, coord, desc) -> kp_metrics.Detections:
    """KP2D's dense outputs (one candidate per cell) -> Detections."""
    score = _nhwc(score, 1, "score")
    coord = _nhwc(coord, 2, "coord")
    hc, wc = score.shape[1:3]
    desc = np.asarray(desc)
    if desc.ndim == 4 and desc.shape[1:3] != (hc, wc) and desc.shape[2:4] == (hc, wc):
        desc = np.transpose(desc, (0, 2, 3, 1))
    if coord.shape[1:3] != (hc, wc) or desc.ndim != 4 or desc.shape[1:3] != (hc, wc):
        raise ValueError(f"model outputs disagree: score {score.shape}, coord {coord.shape}, desc {desc.shape}")
    return kp_metrics.Detections(coord.reshape(-1, 2), score.reshape(-1), desc.reshape(hc * wc, -1).astype(np.float32))


class ModelDetector:
    """A TensorFlow model (SavedModel folder, .keras / .h5, .tflite); TensorFlow loads here."""

    def __init__(self, path: str, model_input: str = "kp2d"):
        import tensorflow as tf

        self.tf, self.model_input, self.path = tf, model_input, path
        if not os.path.exists(path):
            raise InputError("missing_model", "no such model file or folder", path)
        self.interpreter = None
        if path.endswith(".tflite"):
            self.interpreter = tf.lite.Interpreter(model_path=path)
        elif path.endswith((".keras", ".h5")):
            self.fn = tf.keras.models.load_model(path, compile=False)
        else:
            loaded = tf.saved_model.load(path)
            sig = getattr(loaded, "signatures", {})
            self.fn = (lambda x: sig["serving_default"](x)) if "serving_default" in sig else loaded
            self._loaded = loaded  # keep the object alive

    def _prepare(self, image: np.ndarray) -> np.ndarray:
        x = image.astype(np.float32)[None] / 255.0
        if self.model_input == "kp2d":
            x = (x - 0.5) * 0.225  # KP2D utils/image.py:to_color_normalized
        elif self.model_input == "uint8":
            x = x * 255.0
        return x

    def __call__(self, image: np.ndarray) -> kp_metrics.Detections:
        x = self._prepare(image)
        if self.interpreter is not None:
            it = self.interpreter
            inp = it.get_input_details()[0]
            if tuple(inp["shape"]) != x.shape:
                it.resize_tensor_input(inp["index"], x.shape)
            it.allocate_tensors()
            it.set_tensor(inp["index"], x.astype(inp["dtype"]))
            it.invoke()
            outs = {d["name"]: it.get_tensor(d["index"]) for d in it.get_output_details()}
            if not all(any(w in k.lower() for k in outs) for w in ("score", "coord", "desc")):
                outs = [outs[k] for k in sorted(outs)]  # unnamed: assume (score, coord, desc) order
        else:
            outs = self.fn(self.tf.constant(x))
        if isinstance(outs, dict):
            outs = {k: np.asarray(v) for k, v in outs.items()}
        else:
            outs = [np.asarray(v) for v in outs]
        return detections_from_maps(*_split_outputs(outs))


def make_detector(name: str, model_input: str = "kp2d", max_features: int = 0):
    if name in ("sift", "orb"):
        return OpenCVDetector(name, max_features)
    return ModelDetector(name, model_input)


def evaluate(root: str, detector, image_size=(320, 240), top_k: int = 300, conf_threshold: float = 0.0,
             kind: str = "all") -> dict:
    """{"all": summary, "i": summary, "v": summary, "pairs": [per-pair dicts]} over the layout."""
    seqs = hpatches.read_layout(root, kind)
    if not seqs:
        raise InputError("empty_layout", "no sequence folders (v_*/, i_*/) found", root)
    results = []
    for seq in seqs:
        det1 = None
        for k in range(2, hpatches.NUM_IMAGES + 1):
            img1, imgk, h = hpatches.load_pair(seq, k, image_size)
            if det1 is None:
                det1 = detector(img1).above(conf_threshold)
            detk = detector(imgk).above(conf_threshold)
            shape = (img1.shape[1], img1.shape[0])
            res = kp_metrics.evaluate_pair(det1, detk, h, shape, (imgk.shape[1], imgk.shape[0]), top_k)
            results.append({"sequence": seq.name, "k": k, **res})
    out = {"all": kp_metrics.summarize(results), "pairs": results}
    for kd in ("i", "v"):
        sub = [r for r in results if r["sequence"].startswith(kd)]
        if sub:
            out[kd] = kp_metrics.summarize(sub)
    return out


def format_table(label: str, result: dict) -> str:
    head = "| Model | Pairs | " + " | ".join(t for _, t in COLUMNS) + " |"
    lines = [head, "|" + "---|" * (len(COLUMNS) + 2)]
    for part, name in (("all", label), ("i", f"{label} (i_)"), ("v", f"{label} (v_)")):
        if part not in result:
            continue
        s = result[part]
        cells = ["nan" if math.isnan(s[key]) else f"{s[key]:.3f}" for key, _ in COLUMNS]
        lines.append(f"| {name} | {s['pairs']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def make_demo_layout(root: str, size=(320, 240), seed: int = 0) -> list[str]:
    """The built-in demo photos exported into ``root`` as an HPatches-layout set."""
    src = demo_photos.demo_photo_dir()
    names = []
    for rel in photos.list_images(src):
        stem = os.path.splitext(rel)[0]
        names += hpatches.export_photo(photos.read_image(os.path.join(src, rel)), root, stem,
                                       rng_for(seed, "hpatches/" + rel), size)
    return names


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m training.evaluate_hpatches", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--hpatches", default="demo",
                   help="HPatches-layout folder; 'demo' = made from the built-in demo photos (default: %(default)s)")
    p.add_argument("--detector", default="sift",
                   help="sift, orb, or a model path (SavedModel folder, .keras/.h5, .tflite) (default: %(default)s)")
    p.add_argument("--image_size", type=_image_size, default=(320, 240),
                   help="WxH both images are resized to, KP2D's output_shape (default: 320x240)")
    p.add_argument("--top_k", type=int, default=300, help="keypoints kept per image by score (default: %(default)s)")
    p.add_argument("--conf_threshold", type=float, default=0.0,
                   help="detections need a score above this (default: %(default)s)")
    p.add_argument("--sequences", choices=("all", "i", "v"), default="all",
                   help="which sequences: all, i_ only or v_ only (default: %(default)s)")
    p.add_argument("--max_features", type=int, default=0,
                   help="SIFT/ORB feature cap; 0 = OpenCV's default (SIFT: all, ORB: 1000) (default: %(default)s)")
    p.add_argument("--model_input", choices=("kp2d", "unit", "uint8"), default="kp2d",
                   help="a model's input scaling: kp2d = (x/255 - 0.5) * 0.225, unit = x/255, uint8 = x "
                        "(default: %(default)s)")
    p.add_argument("--output_json", default="", help="also write the summaries and per-pair results here (default: none)")
    return p


def run(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if args.top_k <= 0:
        print("error: --top_k must be > 0", file=sys.stderr)
        return 2
    start = time.time()
    tmp = None
    root = args.hpatches
    try:
        if root == "demo":
            tmp = tempfile.mkdtemp(prefix="kpdata_hpatches_demo-")
            make_demo_layout(tmp, args.image_size)
            root = tmp
        detector = make_detector(args.detector, args.model_input, args.max_features)
        result = evaluate(root, detector, args.image_size, args.top_k, args.conf_threshold, args.sequences)
    except InputError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)
    label = os.path.basename(os.path.normpath(args.detector)) + f" k{args.top_k}"
    print(f"== {args.hpatches}: {result['all']['pairs']} pairs at {args.image_size[0]}x{args.image_size[1]}, "
          f"{time.time() - start:.1f} s")
    print(format_table(label, result))
    undefined = {k: v for k, v in result["all"].items() if k.startswith("undefined_") and v}
    if undefined:
        print("pairs where a metric is undefined (no points / no correct point), left out of its mean: "
              + ", ".join(f"{k[10:]} {v}" for k, v in undefined.items()))
    if args.output_json:
        with open(args.output_json, "w", encoding="utf-8") as f:
            json.dump({"hpatches": args.hpatches, "detector": args.detector, "image_size": list(args.image_size),
                       "top_k": args.top_k, "conf_threshold": args.conf_threshold, **result}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(run())
