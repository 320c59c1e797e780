"""tf.data basics built from ``schemas``: the serialized records of a split and the parser
generated from a record's Schema. The layouts (``training/layouts.py``) and the input pipeline of
a task (``training/data.py``) are built from these.

TFRecord shards are read with a parallel, deterministic interleave; LMDB environments through a
generator over their keys (shuffled per epoch with the seed). Serialized records are shuffled
before parsing (cheap to hold), then parsed with the spec generated from the record's Schema
(``spec.parse_plan``: no second list of feature names). Everything random takes the seed.
"""
from __future__ import annotations

import numpy as np
import tensorflow as tf

from schemas.dataset import lmdb
from training import spec

__all__ = ["AUTOTUNE", "plain", "tf_features", "make_parser", "decode_png", "lmdb_values", "records"]

AUTOTUNE = tf.data.AUTOTUNE
plain = tf.autograph.experimental.do_not_convert  # our map functions need no AutoGraph
_DTYPES = {"string": tf.string, "int64": tf.int64, "float32": tf.float32}


def tf_features(plan: dict[str, spec.ParseEntry]) -> dict:
    """The ``tf.io.parse_single_example`` spec of a parse plan."""
    out = {}
    for name, e in plan.items():
        if e.shape is None:
            out[name] = tf.io.VarLenFeature(_DTYPES[e.dtype])
        else:
            out[name] = tf.io.FixedLenFeature(list(e.shape), _DTYPES[e.dtype])
    return out


def make_parser(schema, fields=None):
    """serialized Example (scalar string tensor) -> {field: tensor}: fixed fields as declared,
    variable lists densified and reshaped to (-1, stride), PNG fields still encoded (decode
    them with :func:`decode_png` where needed)."""
    plan = spec.parse_plan(schema, fields)
    features = tf_features(plan)

    def parse(serialized):
        parsed = tf.io.parse_single_example(serialized, features)
        out = {}
        for name, e in plan.items():
            v = parsed[name]
            if e.shape is None:
                v = tf.sparse.to_dense(v)
                if e.reshape:
                    v = tf.reshape(v, e.reshape)
                elif e.stride > 1:
                    v = tf.reshape(v, [-1, e.stride])
            out[name] = v
        return out

    parse.plan = plan
    return parse


def decode_png(entry: spec.ParseEntry, raw):
    """PNG bytes of a PNG field -> (H, W, C) uint8/uint16 tensor."""
    channels, dtype = entry.image
    return tf.io.decode_png(raw, channels=channels, dtype=tf.uint16 if dtype == "uint16" else tf.uint8)


def lmdb_values(path: str, seed: int, shuffle: bool):
    """The values of an LMDB environment: in key order, or in a seeded permutation. Each value is
    read in its own short transaction: a generator suspended between values holds none (a
    thread may hold only one read transaction, and the next epoch's generator runs beside it).
    The environment is the process's shared reader of ``path`` (``schemas.dataset.lmdb``)."""
    env = lmdb.shared_reader(path)
    with env.begin() as txn:
        keys = [bytes(k) for k in txn.cursor().iternext(keys=True, values=False)]
    order = np.random.default_rng(seed).permutation(len(keys)) if shuffle else range(len(keys))
    for i in order:
        with env.begin() as txn:
            value = txn.get(keys[i])
        yield value


def records(source: spec.Source, split: str, *, shuffle: bool, seed: int, repeat: bool,
            shuffle_buffer: int = 2048) -> tf.data.Dataset:
    """Serialized records of ``split``; shuffled (files, then a buffer) and repeated for training."""
    files = source.files(split)
    if source.format == "lmdb":
        epoch = tf.data.Dataset.from_tensor_slices(files)

        def env_records(path, salt):
            return tf.data.Dataset.from_generator(
                lambda p, s: lmdb_values(p.decode(), int(s), shuffle), args=(path, salt),
                output_signature=tf.TensorSpec([], tf.string))

        counter = tf.data.Dataset.counter()
        ds = (epoch.repeat() if repeat else epoch)
        ds = tf.data.Dataset.zip((ds, counter.map(lambda i: i + seed)))
        ds = ds.interleave(env_records, cycle_length=max(1, min(len(files), 4)),
                           num_parallel_calls=AUTOTUNE, deterministic=True)
    else:
        ds = tf.data.Dataset.from_tensor_slices(files)
        if shuffle:
            ds = ds.shuffle(len(files), seed=seed, reshuffle_each_iteration=True)
        if repeat:
            ds = ds.repeat()
        ds = ds.interleave(tf.data.TFRecordDataset, cycle_length=max(1, min(len(files), 8)),
                           num_parallel_calls=AUTOTUNE, deterministic=True)
    if shuffle:
        ds = ds.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    return ds
