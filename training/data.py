"""tf.data readers built from ``schemas``: serialized records of a split -> parsed feature dicts.

    python -m training.data [--data DIR] [--task keypoints] [--batches 50] [--batch_size 32] [--keypoint_map]

(the command measures the input pipeline alone: examples/s of the task's training batches.)

TFRecord shards are read with a parallel, deterministic interleave; LMDB environments through a
generator over their keys (shuffled per epoch with the seed). Serialized records are shuffled
before parsing (cheap to hold), then parsed with the spec generated from the record's Schema
(``spec.parse_plan``: no second list of feature names), mapped with ``AUTOTUNE`` parallelism,
batched and prefetched. Everything random takes the seed.
"""
from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import tensorflow as tf

from schemas.dataset import lmdb
from training import spec

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


_lmdb_env = lmdb.shared_reader


def _lmdb_values(path: str, seed: int, shuffle: bool):
    """The values of an LMDB environment: in key order, or in a seeded permutation. Each value is
    read in its own short transaction: a generator suspended between values holds none (a
    thread may hold only one read transaction, and the next epoch's generator runs beside it)."""
    env = _lmdb_env(path)
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
                lambda p, s: _lmdb_values(p.decode(), int(s), shuffle), args=(path, salt),
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


def build(source: spec.Source, task, split: str, *, batch_size: int, training: bool, seed: int = 0,
          limit: int | None = None) -> tf.data.Dataset:
    """Batches of ``(inputs, labels)`` for ``task`` (a ``training.tasks.Task``) from ``split``.

    Training: shuffled, repeated, whole batches. Otherwise: one pass in record order, the last
    batch may be short. ``limit``: at most this many records (evaluation of a subset)."""
    from training import layouts

    layout = layouts.get(source.record)
    ds = layout.read(source, split, task.name, shuffle=training, seed=seed, repeat=training, limit=limit,
                     task_obj=task)
    adapt = layout.adapter(task.name, source)
    ds = ds.map(plain(adapt), num_parallel_calls=AUTOTUNE, deterministic=True)
    ds = layout.group(task.name, ds, training=training, seed=seed)
    ds = ds.map(plain(lambda s: task.prepare(s, training)), num_parallel_calls=AUTOTUNE, deterministic=True)
    if training:
        ds = ds.filter(plain(task.usable))
    ds = ds.batch(batch_size, drop_remainder=training, num_parallel_calls=AUTOTUNE, deterministic=True)
    options = tf.data.Options()
    options.deterministic = True
    options.experimental_optimization.map_parallelization = True
    return ds.with_options(options).prefetch(AUTOTUNE)


def throughput(dataset: tf.data.Dataset, batches: int, warmup: int = 3) -> float:
    """Examples per second the pipeline delivers (after ``warmup`` batches)."""
    it = iter(dataset)
    for _ in range(warmup):
        next(it)
    n, t = 0, time.perf_counter()
    for _ in range(batches):
        inputs, _ = next(it)
        n += int(tf.nest.flatten(inputs)[0].shape[0])
    return n / (time.perf_counter() - t)


def main(argv=None) -> int:
    from training import common, tasks

    p = argparse.ArgumentParser(prog="python -m training.data", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=common.DEFAULT_DATA, help="dataset folder (default: %(default)s)")
    p.add_argument("--task", choices=sorted(tasks.TASKS), default="keypoints", help="(default: %(default)s)")
    p.add_argument("--split", default="train", help="(default: %(default)s)")
    p.add_argument("--batches", type=int, default=50, help="batches to time (default: %(default)s)")
    p.add_argument("--batch_size", type=int, default=32, help="(default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="(default: %(default)s)")
    p.add_argument("--keypoint_map", action="store_true", help="viewpoint: with Click-Here's keypoint inputs")
    a = p.parse_args(argv)
    source = common.open_data(a.data)
    extra = {"keypoint_map": True} if a.keypoint_map else {}
    task = tasks.TASKS[a.task].from_source(source, seed=a.seed, **extra)
    ds = build(source, task, a.split, batch_size=a.batch_size, training=True, seed=a.seed)
    rate = throughput(ds, a.batches)
    print(f"input pipeline ({a.task}, {source.record} records, {a.split}): {rate:.1f} examples/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
