"""Open kpdata datasets with TensorFlow Datasets and compare every record with kpdata's own reader
(run in a subprocess by test_tfds.py: TensorFlow never enters the pytest process).

``python tests/pipelines/tfds_probe.py DIR...`` prints one JSON object: {DIR: {"splits": {split:
records compared}, "shapes": {field: [TFDS shape, our array shape] of the first record},
"mismatches": [...], "jpeg_accurate_equal": bool or None}}.
"""
from __future__ import annotations

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import tensorflow_datasets as tfds  # noqa: E402

from kpdata.clickhere import imageops  # noqa: E402
from schemas import clickhere, kp2d, view  # noqa: E402
from schemas.dataset import records  # noqa: E402
from schemas.features import PNGImage  # noqa: E402

SCHEMAS = {s.name: s for s in (view.VIEW, clickhere.CLICKHERE_VIEW, clickhere.CLICKHERE_INSTANCE, kp2d.KP2D_PAIR)}


def same(field, got, ours) -> tuple[bool, list, list]:
    """(equal, TFDS shape, our shape) of one field: strings as UTF-8 bytes, a 2-D PNG with TFDS's
    trailing channel of 1."""
    if isinstance(ours, str):
        return got == ours.encode("utf-8"), [], []
    if isinstance(ours, bytes):
        return got == ours, [], []
    if isinstance(ours, list):
        return [g.decode("utf-8") for g in got] == ours, list(got.shape), [len(ours)]
    ours = np.asarray(ours, dtype=field.dtype)  # a scalar decodes as a Python number
    g = np.asarray(got)
    shape = list(g.shape)
    if isinstance(field, PNGImage) and len(field.shape) == 2:
        if g.shape[-1:] != (1,):
            return False, shape, list(ours.shape)
        g = g[..., 0]
    return g.shape == ours.shape and g.dtype == ours.dtype and np.array_equal(g, ours), shape, list(ours.shape)


def probe(folder: str) -> dict:
    info = records.load_info(folder)
    schema = SCHEMAS[info["record"]]
    builder = tfds.builder_from_directory(folder)
    out = {"splits": {}, "shapes": {}, "mismatches": [], "jpeg_accurate_equal": None,
           "tfds_num_examples": {s: builder.info.splits[s].num_examples for s in builder.info.splits}}
    for split in sorted(info["splits"]):
        ours_iter = records.iter_records(folder, split, info)
        n = 0
        for ex in tfds.as_numpy(builder.as_dataset(split=split, shuffle_files=False)):
            _, raw = next(ours_iter)
            ours = schema.decode(raw, arrays=True)
            for f in schema.fields:
                ok, gs, os_ = same(f, ex[f.name], ours[f.name])
                if n == 0 and split == sorted(info["splits"])[0]:
                    out["shapes"][f.name] = [gs, os_]
                if not ok:
                    out["mismatches"].append([split, n, f.name])
            if "image/jpeg" in ours:  # TF's accurate IDCT decodes the stored JPEG as our reader does
                t = tf.io.decode_jpeg(ours["image/jpeg"], channels=3, dct_method="INTEGER_ACCURATE").numpy()
                eq = np.array_equal(t, imageops.decode_jpeg(ours["image/jpeg"]))
                out["jpeg_accurate_equal"] = eq if out["jpeg_accurate_equal"] is None else out["jpeg_accurate_equal"] and eq
            if schema is view.VIEW and n == 0:  # the depth our reader rebuilds, from TFDS's arrays
                ref = next(records.iter_views(folder, split))
                depth = view.decode_depth(ex["depth/encoded"][..., 0], ex["depth/scale"])
                out["depth_equal"] = bool(np.array_equal(depth, ref["depth"]))
            n += 1
        out["splits"][split] = n
        out["ours_left"] = out.get("ours_left", 0) + sum(1 for _ in ours_iter)
    return out


if __name__ == "__main__":
    print(json.dumps({d: probe(d) for d in sys.argv[1:]}))
