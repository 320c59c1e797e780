"""What train / evaluate / export share: the model directory and its files.

    <model_dir>/config.json        the task's configuration (vocabularies, sizes) and the data it
                                   was trained on
    <model_dir>/ckpt/              tf.train checkpoints (model, optimizer, step); the latest resumes
    <model_dir>/logs/train/        TensorBoard event files (loss and its terms, examples/s)
    <model_dir>/train_stats.json   steps, seconds, step and input-wait timings of the last run
    <model_dir>/metrics.json       written by training.evaluate
    <model_dir>/export/            written by training.export
"""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys

import keras
import tensorflow as tf

from schemas.dataset import records
from training import layouts, spec, tasks

DEFAULT_DATA = "kpdata_out"          # render_shapenet's default --output_dir
DEFAULT_MODEL_DIR = "kpdata_model"
CONFIG = "config.json"


def open_data(data_dir: str, record: str | None = None) -> spec.Source:
    """The dataset at ``data_dir``. The default folder, when absent, is first rendered by
    ``python -m pipelines.render_shapenet`` (its own defaults) in a subprocess: rendering and
    TensorFlow never share a process."""
    if data_dir == DEFAULT_DATA and records.info_file(data_dir) is None:
        print(f"{data_dir}: not found; rendering the built-in demo set into it "
              f"(python -m pipelines.render_shapenet --output_dir {data_dir})", flush=True)
        subprocess.run([sys.executable, "-m", "pipelines.render_shapenet", "--output_dir", data_dir,
                        "--preview", "0"], check=True, stdout=subprocess.DEVNULL)
    try:
        source = spec.load_source(data_dir, record)
    except (FileNotFoundError, ValueError, KeyError) as e:
        raise SystemExit(f"error: {e}") from None
    if source.record not in layouts.LAYOUTS:
        raise SystemExit(f"error: {data_dir} holds {source.record!r} records, which no training task reads "
                         f"(trainable: {', '.join(sorted(layouts.LAYOUTS))}); e.g. KP2D homography pairs are for "
                         f"KP2D's own trainer, a view dataset of render_shapenet trains here")
    return source


def data_fingerprint(source: spec.Source) -> str:
    """A hash of what a dataset holds: its record type and, per split, the shard files' names,
    sizes and example counts (the same data rendered again gives the same fingerprint; other
    settings, models or splits give another)."""
    desc = {"record": source.record, "splits": {}}
    for name, paths in sorted(source.splits.items()):
        files = []
        for p in paths:
            size = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(p) for f in fs) \
                if os.path.isdir(p) else os.path.getsize(p)
            files.append([os.path.basename(p), size])
        desc["splits"][name] = {"files": files, "examples": source.num_examples.get(name)}
    return hashlib.sha256(json.dumps(desc, sort_keys=True).encode("utf-8")).hexdigest()[:16]


def write_config(model_dir: str, task: tasks.Task, source: spec.Source) -> None:
    os.makedirs(model_dir, exist_ok=True)
    cfg = {**task.to_config(), "data": {"dir": os.path.abspath(source.data_dir), "record": source.record,
                                        "fingerprint": data_fingerprint(source)}}
    with open(os.path.join(model_dir, CONFIG), "w", encoding="utf-8") as f:
        json.dump(cfg, f, indent=2, sort_keys=True)
        f.write("\n")


def read_config(model_dir: str) -> dict | None:
    path = os.path.join(model_dir, CONFIG)
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def checkpoint(model, optimizer, model_dir: str):
    """(tf.train.Checkpoint, CheckpointManager, step variable)."""
    step = tf.Variable(0, dtype=tf.int64, name="step")
    kwargs = {"model": model, "step": step}
    if optimizer is not None:
        kwargs["optimizer"] = optimizer
    ckpt = tf.train.Checkpoint(**kwargs)
    manager = tf.train.CheckpointManager(ckpt, os.path.join(model_dir, "ckpt"), max_to_keep=3)
    return ckpt, manager, step


def load_trained(model_dir: str):
    """(task, Keras model with the latest checkpoint's weights, step, config) of ``model_dir``."""
    cfg = read_config(model_dir)
    if cfg is None:
        raise SystemExit(f"error: {model_dir}: no {CONFIG}; train a model there first (python -m training.train)")
    task = tasks.from_config(cfg)
    model = task.build_model()
    ckpt, manager, step = checkpoint(model, None, model_dir)
    if manager.latest_checkpoint is None:
        raise SystemExit(f"error: {model_dir}/ckpt: no checkpoint")
    ckpt.restore(manager.latest_checkpoint).expect_partial()
    return task, model, int(step.numpy()), cfg


def seed_everything(seed: int) -> None:
    keras.utils.set_random_seed(seed)
