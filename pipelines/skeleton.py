"""The run every pipeline shares: flags -> config -> plan -> work -> metadata -> finish.

A pipeline module holds what differs: its parser, ``config_from_args`` (flags -> a frozen
configuration, whose output part is a :class:`pipelines.options.OutputConfig`) and its
:class:`Steps`:

* ``plan(config)``: the driver's listing before the graph: the work units, the planned counts and
  what the work needs (a :class:`Plan`). Bad input as a whole (an :class:`InputError`, or
  :class:`NoInput`), or ``--splits`` the inputs cannot fill (:class:`kpdata.seeding.SplitError`),
  ends the run with ``error: ...`` and exit status 2;
* ``work(plan)``: the units to make and how (a :class:`Work`: the pipeline's DoFn, how its outputs
  become records, the shards they are assembled into);
* ``write_metadata(_, config, command, counts, failures, timings, *lists, *args)``: the files
  beside the records, run once after everything else (usually through :func:`write_dataset_files`);
  returns the stats dict.

:func:`execute` runs them in that order over the output folder's journal (:mod:`pipelines.journal`:
lock, configuration check, resume): two Beam runs of the streaming write path
(:mod:`pipelines.stream`: units, then shards) with a progress line (:mod:`pipelines.progress`);
then, in the driver, the dead letters (``errors/failures.jsonl``) and the metadata from the
units' journal records, and :func:`pipelines.report.finish` (summary, preview, exit status).
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import logging
import os
import signal
import sys
import threading
import time
from typing import Any, Callable

import apache_beam as beam

from kpdata.errors import InputError
from kpdata.seeding import SplitError
from pipelines import journal, progress, report, runners, sinks, stream
from pipelines import options as opts
from pipelines.options import OutputConfig
from schemas.dataset import names
from schemas.dataset import tfds as tfds_meta
from schemas.features import Schema

LOG_FORMAT = "%(levelname)s %(name)s: %(message)s"


class NoInput(Exception):
    """The driver found nothing to do, or inputs it cannot use as a whole (printed as
    ``error: <message>``; the run exits with status 2)."""


@dataclasses.dataclass(frozen=True)
class Plan:
    """What the driver planned. A pipeline subclasses it with what its graph needs.

    ``config``: the configuration the run records (``plan`` may have resolved a default input);
    ``tasks``: the work units, one Beam element each; ``counts``: the planned counts handed to
    ``write_metadata``; ``message``: the line logged before the run."""

    config: Any
    tasks: list
    counts: dict
    message: str


@dataclasses.dataclass(frozen=True)
class Work:
    """The units a plan makes and how (:mod:`pipelines.stream`).

    ``units``: :class:`stream.Unit` in key order, shards assigned; ``worker``: the pipeline's DoFn,
    run on each unit's tasks; ``records(output) -> [(key, bytes)]``: its main outputs as records
    (None: they are kept as the units' ``items``); ``shards``: :class:`stream.Shard` the units' parts
    are assembled into (none when each unit writes a final file, or no records); ``final_empty``:
    a unit's final file is written even without records. ``lists``: what ``write_metadata`` reads
    after failures and timings, in order: ``"shards"`` (the shard records, or the units' final file
    records) or an output tag of the units (``items``, ``counts``...); ``args``: plain values after
    them. ``dead_letters``: (output tag, file in errors/) pairs, each file always written;
    ``plan_failures``: dead letters of the driver's plan; ``stage`` and ``label``: the progress
    line's words (``render``, ``views``)."""

    units: list
    worker: beam.DoFn
    records: Callable | None = None
    shards: list = ()
    final_empty: bool = False
    lists: tuple = ("shards",)
    args: tuple = ()
    dead_letters: tuple = (("failed", names.FAILURES_FILE),)
    plan_failures: tuple = ()
    stage: str = "render"
    label: str = "views"


@dataclasses.dataclass(frozen=True)
class Steps:
    """One pipeline's own parts of the run (see the module docstring).

    ``command``: the entry point's module (``pipelines.render_shapenet``), for kpdata_info.json;
    ``summary(config)``: keyword arguments of :func:`pipelines.report.finish` (``counts``,
    ``extra``, ``written``); ``output(config)``: the configuration's output part (default:
    the configuration itself)."""

    command: str
    log: logging.Logger
    plan: Callable[[Any], Plan]
    work: Callable[[Plan], Work]
    write_metadata: Callable[..., dict]
    summary: Callable[[Any], dict] | None = None
    output: Callable[[Any], OutputConfig] | None = None

    def output_of(self, config) -> OutputConfig:
        return self.output(config) if self.output else config


def setup_logging() -> None:
    """kpdata's own messages (``kpdata.*`` loggers: the plan, resuming, --overwrite) at INFO on
    stderr. Beam's import has already given the root logger a WARNING handler, so Beam's INFO
    chatter stays off."""
    log = logging.getLogger("kpdata")
    if not log.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter(LOG_FORMAT))
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        log.propagate = False


def parse(parser: argparse.ArgumentParser, argv=None) -> tuple[list[str], argparse.Namespace, Any]:
    """Set up logging and split the command line: (argv as a list, our flags, Beam's options)."""
    setup_logging()
    argv = list(sys.argv[1:] if argv is None else argv)
    args, pipeline_options = opts.parse(parser, argv)
    if getattr(args, "verbose", False):
        logging.getLogger().setLevel(logging.INFO)
    return argv, args, pipeline_options


def run(argv, parser: argparse.ArgumentParser, config_from_args: Callable, steps: Steps,
        config_errors: tuple = ()) -> int:
    """A whole pipeline run from its command line; returns the exit status. ``config_errors``: the
    exceptions of ``config_from_args`` that end the run with ``error: ...`` and status 2 (others
    propagate: argparse's and SystemExit's own exits)."""
    argv, args, pipeline_options = parse(parser, argv)
    try:
        config = config_from_args(args)
    except config_errors as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return execute(steps, config, pipeline_options, argv, overwrite=args.overwrite)


def execute(steps: Steps, config, pipeline_options, argv: list[str], overwrite: bool = False) -> int:
    """Plan, take the output folder (:class:`journal.RunFolder`), make what is not committed yet,
    write the dead letters and the metadata, finish."""
    start = time.time()
    try:
        plan = steps.plan(config)
    except (InputError, NoInput, SplitError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    out = steps.output_of(plan.config)
    command = f"python -m {steps.command} " + " ".join(argv)
    work = steps.work(plan)
    try:
        with journal.RunFolder(out.output_dir, journal.fingerprint(steps.command, plan.config), overwrite,
                               command) as folder:
            steps.log.info("%s", plan.message)
            with exit_on_interrupt(out.output_dir), worker_logs_to_file(out.output_dir, pipeline_options, argv):
                make(work, out.output_dir, pipeline_options, steps.log)
            failures, timings, lists, records = gather(work, out.output_dir)
            for tag, file_name in work.dead_letters:
                sinks.write_dead_letters(out.output_dir, failures if tag == "failed" else outputs_of(records, tag),
                                         file_name)
            steps.write_metadata(None, plan.config, command, plan.counts, failures, timings, *lists, *work.args)
            folder.finish()
    except journal.FolderError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\n" + _interrupted_message(out.output_dir), file=sys.stderr, flush=True)
        return 130
    summary = steps.summary(plan.config) if steps.summary else {}
    return report.finish(out.output_dir, out.max_failure_rate, out.preview, start, **summary)


def _interrupted_message(output_dir: str) -> str:
    return f"interrupted; what is finished is kept in {output_dir} (rerun the same command to resume)"


@contextlib.contextmanager
def exit_on_interrupt(output_dir: str):
    """Ctrl-C (SIGINT) while Beam runs: one line and exit status 130 at once. Beam turns a
    KeyboardInterrupt inside a transform into a logged RuntimeError with pages of traceback, so the
    driver exits from the signal handler instead; the journal keeps every committed unit (a rerun
    resumes) and the folder's lock is an flock, released with the process."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_sigint(signum, frame):
        try:
            sys.stdout.flush()
            sys.stderr.write("\n" + _interrupted_message(output_dir) + "\n")
            sys.stderr.flush()
        finally:
            os._exit(130)

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


WORKERS_LOG = "workers.log"


@contextlib.contextmanager
def worker_logs_to_file(output_dir: str, pipeline_options, argv):
    """With ``--direct_running_mode multi_processing`` Beam starts worker processes that inherit
    stderr and log their start-up at INFO level (dozens of lines per worker). Unless ``--verbose``,
    descriptor 2 points at ``<output_dir>/.kpdata/workers.log`` for the Beam run (what the workers
    and Beam's own driver log write goes there), while ``sys.stderr`` and kpdata's log handler
    keep writing to the terminal."""
    mode = pipeline_options.get_all_options().get("direct_running_mode")
    log_dir = os.path.join(output_dir, names.JOURNAL_DIR)
    if mode != "multi_processing" or "--verbose" in argv or not os.path.isdir(log_dir):
        yield
        return
    sys.stderr.flush()
    terminal = os.dup(2)
    log_fd = os.open(os.path.join(log_dir, WORKERS_LOG), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(log_fd, 2)
    os.close(log_fd)
    saved = sys.stderr
    sys.stderr = os.fdopen(os.dup(terminal), "w", buffering=1)
    handlers = [h for h in logging.getLogger("kpdata").handlers if isinstance(h, logging.StreamHandler)]
    previous = [h.setStream(sys.stderr) for h in handlers]
    try:
        yield
    finally:
        sys.stderr.flush()
        for h, stream in zip(handlers, previous):
            h.setStream(stream)
        sys.stderr.close()
        sys.stderr = saved
        os.dup2(terminal, 2)
        os.close(terminal)


def pending(work: Work, output_dir: str) -> tuple[list, list, int]:
    """(units to make, shards to assemble, items done before): what the journal does not hold
    committed and intact (:func:`journal.intact`) yet."""
    unit_recs = {u.id: journal.read_record(journal.unit_record(output_dir, u.id)) for u in work.units}
    done_shards = set()
    for s in work.shards:
        rec = journal.read_record(journal.shard_record(output_dir, s.id))
        if rec is not None and all(unit_recs[uid] is not None for uid in s.units) and \
                journal.intact(os.path.join(output_dir, s.file), rec):
            done_shards.add(s.id)
    shard_of = {uid: s.id for s in work.shards for uid in s.units}
    units, before = [], 0
    for u in work.units:
        rec = unit_recs[u.id]
        if rec is not None and (shard_of.get(u.id) in done_shards or _unit_intact(output_dir, u, rec)):
            before += u.planned
        else:
            units.append(u)
    return units, [s for s in work.shards if s.id not in done_shards], before


def _unit_intact(output_dir: str, unit, rec: dict) -> bool:
    part = rec.get("part")
    if part is None:  # no records (items only, or a final file left unwritten): the unit's own output
        return not unit.final or journal.exists(os.path.join(output_dir, unit.final)) or not rec["outputs"].get("items")
    if unit.final:
        return journal.intact(os.path.join(output_dir, unit.final), part)
    path = journal.part_path(output_dir, unit.id)
    return journal.exists(journal.index_path(path)) and journal.intact(path, part)


def make(work: Work, output_dir: str, pipeline_options, log: logging.Logger) -> None:
    """The two stages over what is pending: units (:class:`stream.WriteUnits`), then shards
    (:class:`stream.AssembleShards`), each one Beam run with its progress line."""
    units, shards, before = pending(work, output_dir)
    if before:
        log.info("resuming: %d of %d %s already made in %s", before, before + sum(u.planned for u in units),
                 work.label, output_dir)
    if units:
        with progress.Progress(output_dir, work.stage, {u.id: u.planned for u in units}, before, work.label):
            beam_run(pipeline_options, units, "Units", stream.WriteUnits(output_dir, work.worker, work.records,
                                                                       work.final_empty))
    if shards:
        with progress.Progress(output_dir, "assemble", {s.id: 1 for s in shards}, len(work.shards) - len(shards),
                               "shards", folder=journal.SHARDS):
            beam_run(pipeline_options, shards, "Shards", stream.AssembleShards(output_dir))


def beam_run(pipeline_options, elements: list, label: str, dofn: beam.DoFn) -> None:
    """``Create(elements) -> Reshuffle -> ParDo(dofn)``, run to the end: the primitives every runner
    executes alike (one output, no side input, no grouping of records). One element goes straight
    from ``Create`` to the ``ParDo``: the Reshuffle, there to spread elements over workers, would
    only add a stage (0.05 s of a local run)."""
    options = runners.prepare(pipeline_options, len(elements))
    p = beam.Pipeline(runner=runners.local_runner(options), options=options)
    listed = p | f"List{label}" >> beam.Create(elements)
    if len(elements) > 1:
        listed = listed | "Reshuffle" >> beam.Reshuffle()
    _ = listed | f"Write{label}" >> beam.ParDo(dofn)
    runners.check_graph(p)
    p.run().wait_until_finish()


def unit_records(work: Work, output_dir: str) -> list[tuple[Any, dict]]:
    """Every unit with its journal record, in unit key order (each record read once)."""
    out = []
    for u in work.units:
        rec = journal.read_record(journal.unit_record(output_dir, u.id))
        if rec is None:
            raise journal.FolderError(f"{journal.unit_record(output_dir, u.id)}: missing after the run")
        out.append((u, rec))
    return out


def outputs_of(records: list[tuple[Any, dict]], tag: str) -> list:
    """One output tag of every unit of ``records`` (:func:`unit_records`), in unit key order."""
    return [v for _, rec in records for v in rec["outputs"].get(tag, [])]


def gather(work: Work, output_dir: str) -> tuple[list, list, list, list]:
    """(failures, timings, lists, unit records) for ``write_metadata`` and the dead letters, from
    the journal; the failures start with the plan's."""
    records = unit_records(work, output_dir)
    lists = []
    for name in work.lists:
        if name != "shards":
            lists.append(outputs_of(records, name))
        elif work.shards:
            lists.append([journal.read_record(journal.shard_record(output_dir, s.id)) for s in work.shards])
        else:  # the units' final files
            lists.append([{"split": u.split, "key": u.key, **r["part"], "file": u.final} for u, r in records if r["part"]])
    timings = [tuple(t) for t in outputs_of(records, "timing")]
    return list(work.plan_failures) + outputs_of(records, "failed"), timings, lists, records


def shard_layout(units: list, shards: dict[str, int], fmt: str, name: str) -> tuple[list, list]:
    """(units with their shards, :class:`stream.Shard` list) for records in ``shards`` {split: n}
    TFRecord shards (``fmt='tfrecord'``), one LMDB environment per split (``'lmdb'``) or one Caffe
    LMDB split folder per split (``'caffe'``)."""
    if fmt != "tfrecord":
        shards = {s: 1 for s in shards}
    units = stream.assign_shards(units, shards)

    def file_of(split, index, count):
        if fmt == "tfrecord":
            return names.shard_name(name, split, index, count)
        return names.lmdb_name(name, split) if fmt == "lmdb" else split
    return units, stream.plan_shards(units, shards, fmt, file_of)


def shards_per_split(counts: dict[str, int], num_shards: int, bytes_per_record: float) -> dict[str, int]:
    """{split: shards}: ``num_shards`` each, or (0) enough for about 256 MB per shard."""
    return {s: (num_shards or sinks.auto_num_shards(n, bytes_per_record)) for s, n in counts.items()}


def rate(lost: float, planned: float) -> float:
    """The failure rate: the fraction of planned work lost (0 when nothing was planned)."""
    return lost / planned if planned else 0.0


def write_dataset_files(out: OutputConfig, config, command: str, *, info: dict, counts: dict, failures: list,
                        failure_rate: float, timings: list, schema=None) -> dict:
    """Write the metadata every pipeline writes beside its records and return the stats:

    * ``kpdata_info.json`` (:data:`names.KPDATA_INFO`): ``name``, the whole ``config``, ``seed``,
      ``command``, ``code_version``, the pipeline's own ``info`` (splits, record kind, version, ...)
      and ``features``: ``schema.describe()`` (our record schema), when a ``schema`` is given;
    * TFDS's ``dataset_info.json`` and ``features.json`` (:mod:`schemas.dataset.tfds`) when
      ``schema`` is a record :class:`~schemas.features.Schema` and the splits are TFRecord shards in
      TFDS's file template (``tfds.builder_from_directory`` then opens the folder);
    * ``stats.json``: ``counts``, the failures by stage and error kind, ``failure_rate`` and the
      summed ``timings`` ((stage, seconds) pairs) per stage.
    """
    kp_info = {"name": out.name, "config": dataclasses.asdict(config), "seed": out.seed, "command": command,
               "code_version": report.code_version(), **info}
    if schema is not None:
        kp_info["features"] = schema.describe()
    splits = info.get("splits") or {}
    if isinstance(schema, Schema) and tfds_meta.tfds_compatible(out.name, splits):
        sinks.write_json(os.path.join(out.output_dir, names.FEATURES), tfds_meta.features_json(schema))
        sinks.write_json(os.path.join(out.output_dir, names.DATASET_INFO),
                         tfds_meta.dataset_info_json(out.name, schema, splits))
    sinks.write_json(os.path.join(out.output_dir, names.KPDATA_INFO), kp_info)
    stats = {
        "counts": counts,
        "failures": sinks.failure_summary(failures),
        "failure_rate": failure_rate,
        "timings": {stage: round(sum(t for s, t in timings if s == stage), 3) for stage, _ in timings},
    }
    sinks.write_json(os.path.join(out.output_dir, names.STATS), stats)
    return stats
