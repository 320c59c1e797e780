"""Train a reference model on a kpdata dataset.

    python -m training.train --data DIR --task keypoints|viewpoint|keypointnet --model_dir M
                             [--steps N] [--batch_size B] [...]

Checkpoints go to M/ckpt every --checkpoint_every steps, at the end, and when interrupted (Ctrl-C,
SIGTERM); rerunning the same command resumes from the latest one (model, optimizer and step; the
data order continues with a shuffle seed derived from the resumed step). TensorBoard logs go to
M/logs/train. A progress bar shows the loss and the examples/s of the training step.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time

from training import tfquiet  # noqa: F401 - first: imports TensorFlow without its start-up noise
import keras
import tensorflow as tf
from tensorflow.core.framework import summary_pb2

from training import common, data, tasks


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m training.train", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=common.DEFAULT_DATA, help="dataset folder (default: %(default)s)")
    p.add_argument("--task", choices=sorted(tasks.TASKS), default="keypoints", help="(default: %(default)s)")
    p.add_argument("--model_dir", default=common.DEFAULT_MODEL_DIR, help="(default: %(default)s)")
    p.add_argument("--steps", type=int, default=40, help="total training steps (default: %(default)s)")
    p.add_argument("--batch_size", type=int, default=32, help="(default: %(default)s)")
    p.add_argument("--learning_rate", type=float, default=1e-3, help="Adam, cosine decay (default: %(default)s)")
    p.add_argument("--image_size", type=int, default=64, help="network input side in pixels (default: %(default)s)")
    p.add_argument("--time_limit", type=float, default=0.0,
                   help="stop (and checkpoint) after this many seconds; 0 = no limit (default: %(default)s)")
    p.add_argument("--checkpoint_every", type=int, default=200, help="(default: %(default)s)")
    p.add_argument("--log_every", type=int, default=10, help="steps between log / progress updates (default: %(default)s)")
    p.add_argument("--keypoint_map", action="store_true",
                   help="viewpoint: Click-Here's keypoint inputs (a keypoint's chessboard distance map and class one-hot)")
    p.add_argument("--record", default="", help="record type, overriding kpdata_info.json (default: detected)")
    p.add_argument("--seed", type=int, default=0, help="(default: %(default)s)")
    p.add_argument("--resume_other_data", action="store_true",
                   help="resume a --model_dir that was trained on other data (refused without it)")
    p.add_argument("--verbose", action="store_true", help="keep TensorFlow's start-up log lines")
    return p


class _Stop(Exception):
    pass


def _scalar_metadata():
    return summary_pb2.SummaryMetadata(plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="scalars"))


def log_scalar(name: str, value, step: int) -> None:
    """A TensorBoard scalar, written with TensorFlow's own ``tf.summary.write`` (the format of
    ``tensorboard.summary.scalar``; TensorBoard itself need not be installed to train)."""
    tf.summary.write(name, tf.cast(value, tf.float32), step=step, metadata=_scalar_metadata())


class Progress:
    """A one-line progress bar (redrawn in place on a terminal, one line per update otherwise)."""

    def __init__(self, total: int, start: int, width: int = 24):
        self.total, self.start, self.width = total, start, width
        self.t0 = time.perf_counter()
        self.tty = sys.stdout.isatty()

    def update(self, step: int, loss: float, rate: float) -> None:
        done = step / self.total
        filled = round(done * self.width)
        elapsed = time.perf_counter() - self.t0
        eta = elapsed / max(step - self.start, 1) * (self.total - step)
        line = (f"[{'#' * filled}{'.' * (self.width - filled)}] {step}/{self.total}  loss {loss:.4f}  "
                f"{rate:.1f} examples/s  eta {int(eta) // 60}m{int(eta) % 60:02d}s")
        print(("\r" + line) if self.tty else line, end="" if self.tty else "\n", flush=True)


def run(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if args.steps <= 0 or args.batch_size <= 0:
        raise SystemExit("error: --steps and --batch_size must be > 0")
    source = common.open_data(args.data, args.record or None)
    cfg = common.read_config(args.model_dir)
    if cfg is not None:
        if cfg["task"] != args.task:
            raise SystemExit(f"error: {args.model_dir} holds a {cfg['task']!r} model, not {args.task!r}")
        trained_on = cfg.get("data", {})
        now = common.data_fingerprint(source)
        if trained_on.get("fingerprint") not in (None, now) and not args.resume_other_data:
            raise SystemExit(f"error: {args.model_dir} was trained on other data ({trained_on.get('dir')}, fingerprint "
                             f"{trained_on.get('fingerprint')}; {args.data} has {now}); give a new --model_dir, or "
                             f"--resume_other_data to continue training it on {args.data}")
        task = tasks.from_config(cfg)
    else:
        extra = {"keypoint_map": True} if args.keypoint_map else {}
        if args.keypoint_map and args.task != "viewpoint":
            raise SystemExit("error: --keypoint_map is a viewpoint option")
        task = tasks.TASKS[args.task].from_source(source, seed=args.seed, image_size=args.image_size, **extra)
        common.write_config(args.model_dir, task, source)
    common.seed_everything(args.seed)
    model = task.build_model()
    schedule = keras.optimizers.schedules.CosineDecay(args.learning_rate, args.steps, alpha=0.05)
    optimizer = keras.optimizers.Adam(schedule)
    optimizer.build(model.trainable_variables)
    ckpt, manager, step = common.checkpoint(model, optimizer, args.model_dir)
    if manager.latest_checkpoint:
        ckpt.restore(manager.latest_checkpoint).assert_existing_objects_matched()
        print(f"resumed from {manager.latest_checkpoint} (step {int(step.numpy())})", flush=True)
    start_step = int(step.numpy())
    if start_step >= args.steps:
        print(f"{args.model_dir}: already trained for {start_step} >= {args.steps} steps")
        return 0
    ds = data.build(source, task, "train", batch_size=args.batch_size, training=True, seed=args.seed + start_step)
    writer = tf.summary.create_file_writer(os.path.join(args.model_dir, "logs", "train"))

    @tf.function(reduce_retracing=True)
    def train_step(inputs, labels):
        with tf.GradientTape() as tape:
            loss, logs = task.loss(model, inputs, labels, True)
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        return loss, logs

    stop = []  # SIGTERM sets it; the loop stops at the next step boundary

    def on_signal(signum, frame):
        stop.append(signum)

    signal.signal(signal.SIGTERM, on_signal)
    bar = Progress(args.steps, start_step)
    t_start = time.perf_counter()
    compute = wait = 0.0
    timed_examples = 0
    window_t, window_n = time.perf_counter(), 0
    it = iter(ds)
    status = 0
    loss_value = float("nan")
    try:
        while int(step.numpy()) < args.steps:
            if stop:
                raise _Stop()
            if args.time_limit and time.perf_counter() - t_start > args.time_limit:
                print(f"\ntime limit of {args.time_limit:g} s reached at step {int(step.numpy())}", flush=True)
                break
            t0 = time.perf_counter()
            inputs, labels = next(it)
            t1 = time.perf_counter()
            loss, logs = train_step(inputs, labels)
            loss_value = float(loss)  # waits for the step
            t2 = time.perf_counter()
            s = int(step.assign_add(1).numpy())
            n = int(tf.nest.flatten(inputs)[0].shape[0])
            if s - start_step > 5:  # the first steps trace the function
                compute += t2 - t1
                wait += t1 - t0
                timed_examples += n
            window_n += n
            if s % args.log_every == 0 or s == args.steps:
                now = time.perf_counter()
                rate = window_n / (now - window_t)
                window_t, window_n = now, 0
                with writer.as_default():
                    log_scalar("loss", loss_value, s)
                    for k, v in logs.items():
                        log_scalar(f"loss/{k}", v, s)
                    log_scalar("examples_per_second", rate, s)
                bar.update(s, loss_value, rate)
            if s % args.checkpoint_every == 0:
                manager.save(checkpoint_number=s)
    except (KeyboardInterrupt, _Stop):
        print(f"\ninterrupted at step {int(step.numpy())}; checkpointing", flush=True)
        status = 130
    s = int(step.numpy())
    manager.save(checkpoint_number=s)
    writer.flush()
    stats = {"task": task.name, "start_step": start_step, "step": s, "batch_size": args.batch_size,
             "seconds": round(time.perf_counter() - t_start, 2), "final_loss": loss_value,
             "step_examples_per_s": round(timed_examples / compute, 1) if compute else None,
             "input_wait_fraction": round(wait / (wait + compute), 4) if compute else None}
    with open(os.path.join(args.model_dir, "train_stats.json"), "w", encoding="utf-8") as f:
        json.dump(stats, f, indent=2, sort_keys=True)
    print(f"\n{task.name}: step {s}, loss {loss_value:.4f}, {stats['step_examples_per_s']} examples/s in the "
          f"training step, input wait {stats['input_wait_fraction']}; checkpoint {manager.latest_checkpoint}")
    return status


if __name__ == "__main__":
    sys.exit(run())
