"""The run every pipeline shares: flags -> config -> plan -> graph -> metadata -> finish.

A pipeline module holds what differs: its parser, ``config_from_args`` (flags -> a frozen
configuration, whose output part is a :class:`pipelines.options.OutputConfig`) and its
:class:`Steps`:

* ``plan(config)``: the driver's listing before the graph: the work units, the planned counts and
  what the graph needs (a :class:`Plan`). Bad input as a whole (an :class:`InputError`, or
  :class:`NoInput`) ends the run with ``error: ...`` and exit status 2;
* ``graph(pipeline, plan)``: the composite transforms from the work units to the written records,
  returning a :class:`Graph` (the dead letters, the timings and what the metadata reads);
* ``write_metadata(_, config, command, counts, failures, timings, *lists, *args)``: the files
  beside the records, run once after everything else (usually through :func:`write_dataset_files`);
  returns the stats dict.

:func:`execute` runs them in that order, writes the dead letters (``errors/failures.jsonl``), runs
the Beam pipeline and ends with :func:`pipelines.report.finish` (summary, preview, exit status).
"""
from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import sys
import time
from typing import Any, Callable

import apache_beam as beam

from kpdata.errors import InputError
from pipelines import options as opts
from pipelines import report, sinks
from pipelines.options import OutputConfig
from schemas.dataset import names

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
class Graph:
    """What a graph hands back: ``failures`` (dead-letter dicts, :func:`sinks.failure_record`),
    ``timings`` ((stage, seconds) pairs), ``lists``: the other PCollections ``write_metadata`` reads
    whole, in its argument order, and ``args``: plain values passed after them."""

    failures: beam.PCollection
    timings: beam.PCollection
    lists: tuple = ()
    args: tuple = ()


@dataclasses.dataclass(frozen=True)
class Steps:
    """One pipeline's own parts of the run (see the module docstring).

    ``command``: the entry point's module (``pipelines.render_shapenet``), for dataset_info.json;
    ``summary(config)``: keyword arguments of :func:`pipelines.report.finish` (``counts``,
    ``extra``, ``written``); ``output(config)``: the configuration's output part (default:
    the configuration itself)."""

    command: str
    log: logging.Logger
    plan: Callable[[Any], Plan]
    graph: Callable[[beam.Pipeline, Plan], Graph]
    write_metadata: Callable[..., dict]
    summary: Callable[[Any], dict] | None = None
    output: Callable[[Any], OutputConfig] | None = None

    def output_of(self, config) -> OutputConfig:
        return self.output(config) if self.output else config


def parse(parser: argparse.ArgumentParser, argv=None) -> tuple[list[str], argparse.Namespace, Any]:
    """Set up logging and split the command line: (argv as a list, our flags, Beam's options)."""
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
    argv = list(sys.argv[1:] if argv is None else argv)
    args, pipeline_options = opts.parse(parser, argv)
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
    return execute(steps, config, pipeline_options, argv)


def execute(steps: Steps, config, pipeline_options, argv: list[str]) -> int:
    """Plan, build the graph, write the dead letters and the metadata, run, finish."""
    start = time.time()
    try:
        plan = steps.plan(config)
    except (InputError, NoInput) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    out = steps.output_of(plan.config)
    if "://" not in out.output_dir:
        os.makedirs(out.output_dir, exist_ok=True)
    steps.log.info("%s", plan.message)
    command = f"python -m {steps.command} " + " ".join(argv)

    p = beam.Pipeline(options=pipeline_options)
    graph = steps.graph(p, plan)
    _ = graph.failures | "WriteDeadLetters" >> sinks.WriteDeadLetters(out.output_dir)
    lists = [beam.pvalue.AsList(c) for c in (graph.failures, graph.timings, *graph.lists)]
    _ = (p | "Once" >> beam.Create([None])
         | "WriteMetadata" >> beam.Map(steps.write_metadata, plan.config, command, plan.counts, *lists, *graph.args))
    p.run().wait_until_finish()
    summary = steps.summary(plan.config) if steps.summary else {}
    return report.finish(out.output_dir, out.max_failure_rate, out.preview, start, **summary)


def work(pipeline: beam.Pipeline, list_label: str, tasks: list, step: str, dofn: beam.DoFn, *outputs: str,
         main: str):
    """The head of a graph: the work units (``list_label``), reshuffled over the workers, into the
    multi-output ``dofn`` (labelled ``step``); returns its tagged outputs."""
    return (pipeline | list_label >> beam.Create(tasks)
            | "Reshuffle" >> beam.Reshuffle()
            | step >> beam.ParDo(dofn).with_outputs(*outputs, main=main))


def shards_per_split(counts: dict[str, int], num_shards: int, bytes_per_record: float) -> dict[str, int]:
    """{split: shards}: ``num_shards`` each, or (0) enough for about 256 MB per shard."""
    return {s: (num_shards or sinks.auto_num_shards(n, bytes_per_record)) for s, n in counts.items()}


def rate(lost: float, planned: float) -> float:
    """The failure rate: the fraction of planned work lost (0 when nothing was planned)."""
    return lost / planned if planned else 0.0


def write_dataset_files(out: OutputConfig, config, command: str, *, info: dict, counts: dict, failures: list,
                        failure_rate: float, timings: list, features: dict | None = None) -> dict:
    """Write the metadata every pipeline writes beside its records and return the stats:

    * ``features.json``: ``features`` (the record schema), when given;
    * ``dataset_info.json``: ``name``, the whole ``config``, ``seed``, ``command``, ``code_version``
      and the pipeline's own ``info`` (splits, record kind, version, ...);
    * ``stats.json``: ``counts``, the failures by stage and error kind, ``failure_rate`` and the
      summed ``timings`` ((stage, seconds) pairs) per stage.
    """
    if features is not None:
        sinks.write_json(os.path.join(out.output_dir, names.FEATURES), features)
    sinks.write_json(os.path.join(out.output_dir, names.DATASET_INFO), {
        "name": out.name, "config": dataclasses.asdict(config), "seed": out.seed, "command": command,
        "code_version": report.code_version(), **info})
    stats = {
        "counts": counts,
        "failures": sinks.failure_summary(failures),
        "failure_rate": failure_rate,
        "timings": {stage: round(sum(t for s, t in timings if s == stage), 3) for stage, _ in timings},
    }
    sinks.write_json(os.path.join(out.output_dir, names.STATS), stats)
    return stats
