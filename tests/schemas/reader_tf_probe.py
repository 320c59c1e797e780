"""Run in a subprocess (TensorFlow): read dataset folders with the TF readers of ``training/`` and
pickle what they yield, for ``test_reader.py`` to compare with the numpy reader.

    python tests/schemas/reader_tf_probe.py OUT.pkl DIR [DIR ...]

OUT.pkl: {DIR: {split: [record dict of numpy values / str / list of str]}}, each split read in
one pass in record order (``shuffle=False``): Examples through ``readers.records`` and the parser
generated from the record's schema (PNG fields decoded by ``readers.decode_png``); Click-Here's
compact and Caffe LMDB layouts through their training layout readers (the instance fields those
readers make).
"""
from __future__ import annotations

import os
import pickle
import sys

import numpy as np
import tensorflow as tf

from schemas import clickhere as chs
from schemas.features import PNGImage
from training import layouts, readers, spec

INSTANCE_FIELDS = ["key", "image", "keypoint_pixel", "keypoint_class", "viewpoint_label", "chessboard_dt_map"]


def _py(v):
    v = v.numpy() if hasattr(v, "numpy") else v
    if isinstance(v, bytes):
        return v.decode("utf-8")
    if isinstance(v, np.ndarray) and v.dtype == object:
        return [b.decode("utf-8") for b in v.ravel()]
    return v


def read_split(source, split):
    if source.record in (chs.CLICKHERE_VIEW.name, layouts.CAFFE_RECORD):
        layout = layouts.get(source.record)
        ds = layout.reader(layout, source, split, INSTANCE_FIELDS, False, 0, False, None)
        return [{k: _py(v) for k, v in r.items()} for r in ds]
    schema = spec.find_schema(source.record)
    first = next(iter(readers.records(source, split, shuffle=False, seed=0, repeat=False)))
    present = set(tf.train.Example.FromString(first.numpy()).features.feature)
    fields = [f.name for f in schema.fields if f.name in present]  # KeypointNet without extras: the core six
    parse = readers.make_parser(schema, fields)
    out = []
    for r in readers.records(source, split, shuffle=False, seed=0, repeat=False).map(parse):
        rec = {}
        for name, v in r.items():
            if isinstance(schema.field_map[name], PNGImage):
                v = readers.decode_png(parse.plan[name], v)
            rec[name] = _py(v)
        out.append(rec)
    return out


def main(out_path, dirs):
    result = {}
    for d in dirs:
        source = spec.load_source(d)
        result[d] = {split: read_split(source, split) for split in sorted(source.splits)}
    with open(out_path, "wb") as f:
        pickle.dump(result, f)
    print("read", {os.path.basename(d): {s: len(v) for s, v in r.items()} for d, r in result.items()})


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
