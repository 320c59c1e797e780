"""The input pipeline of a task: batches of ``(inputs, labels)`` from a dataset's split.

    python -m training.data [--data DIR] [--task keypoints] [--batches 50] [--batch_size 32] [--keypoint_map]

(the command measures the input pipeline alone: examples/s of the task's training batches.)

A split's records (``training.readers``) are parsed and mapped onto the task's common sample by
the record's layout (``training.layouts``), prepared by the task (``training.tasks``) with
``AUTOTUNE`` parallelism, batched and prefetched. Everything random takes the seed.
"""
from __future__ import annotations

import argparse
import sys
import time

from training import tfquiet  # noqa: F401 - first: imports TensorFlow without its start-up noise
import tensorflow as tf

from training import common, layouts, spec, tasks
from training.readers import AUTOTUNE, plain


def build(source: spec.Source, task, split: str, *, batch_size: int, training: bool, seed: int = 0,
          limit: int | None = None) -> tf.data.Dataset:
    """Batches of ``(inputs, labels)`` for ``task`` (a ``training.tasks.Task``) from ``split``.

    Training: shuffled, repeated, whole batches. Otherwise: one pass in record order, the last
    batch may be short. ``limit``: at most this many records (evaluation of a subset)."""
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
    p = argparse.ArgumentParser(prog="python -m training.data", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=common.DEFAULT_DATA, help="dataset folder (default: %(default)s)")
    p.add_argument("--task", choices=sorted(tasks.TASKS), default="keypoints", help="(default: %(default)s)")
    p.add_argument("--split", default="train", help="(default: %(default)s)")
    p.add_argument("--batches", type=int, default=50, help="batches to time (default: %(default)s)")
    p.add_argument("--batch_size", type=int, default=32, help="(default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="(default: %(default)s)")
    p.add_argument("--keypoint_map", action="store_true", help="viewpoint: with Click-Here's keypoint inputs")
    p.add_argument("--verbose", action="store_true", help="keep TensorFlow's start-up log lines")
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
