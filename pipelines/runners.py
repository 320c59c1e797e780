"""What a run needs from its Beam runner beyond Beam's own flags: short runner names Beam does not
register (Dask), the Dask partitioning that spreads a run's work units over the cluster, and the
graph shapes Beam 2.77's ``DaskRunner`` executes wrongly.

Facts about ``DaskRunner`` (``apache_beam/runners/dask``, checked on a scheduler and two workers):

* ``beam.Create`` becomes a dask bag of 128 elements per partition unless ``--dask_npartitions`` or
  ``--dask_partition_size`` is given, so a run of 128 work units or fewer is one partition: one
  task on one worker. ``beam.Reshuffle`` is an identity (it does not spread anything).
* A partition is one task: the DoFn is set up, processes the partition's elements and is torn down.
* Only the last transform of the graph and what it reads are computed: another branch (a second
  sink) never runs, silently.
* A multi-output ``ParDo`` hands every element of every output to each output's consumers.
* The last transform's whole output is gathered into the driver (keep what it yields small).
* A partition whose worker dies, even after it finished, is run again on another worker: a unit
  may be processed twice, so what it writes must be atomic and deterministic.
* ``result.metrics()`` raises ``NotImplementedError`` and ``Metrics`` counters in DoFns go nowhere.
* The ``--dask_*`` flags exist only once ``apache_beam.runners.dask.dask_runner`` is imported.
"""
from __future__ import annotations

import copy
import math
import os

import apache_beam as beam
from apache_beam.options.pipeline_options import DirectOptions, PipelineOptions, StandardOptions

DASK_RUNNER = "apache_beam.runners.dask.dask_runner.DaskRunner"
# Beam looks a runner name up lower-cased, as given or with "runner" appended; Dask is not among
# the names it registers, so these would be "Unexpected pipeline runner" errors.
_SHORT_NAMES = {"dask": DASK_RUNNER, "daskrunner": DASK_RUNNER}

# At most this many dask partitions for one Create. Up to it every work unit is its own partition
# (one task: the scheduler balances units one by one over every worker thread, and a unit's DoFn
# setup, e.g. creating a renderer, is paid once per unit); above it consecutive units share a
# partition, ceil(units / MAX_DASK_PARTITIONS) each, so the scheduler's graph stays small. 4096
# keeps a cluster of up to 4096 worker threads busy.
MAX_DASK_PARTITIONS = 4096


def _runner_name(runner: str) -> str:
    """The runner's full name for a ``--runner`` value (a short Dask name -> its class path)."""
    return _SHORT_NAMES.get(runner.lower(), runner)


def _is_dask_runner(runner) -> bool:
    """Whether ``runner`` (a ``--runner`` value, a runner object or None) is Beam's DaskRunner."""
    if isinstance(runner, str):
        return _runner_name(runner) == DASK_RUNNER
    return any(f"{c.__module__}.{c.__qualname__}" == DASK_RUNNER for c in type(runner).__mro__)


def is_dask(options: PipelineOptions) -> bool:
    """Whether ``options`` select Beam's ``DaskRunner`` (by class path or a short name)."""
    return _is_dask_runner(options.view_as(StandardOptions).runner)


def _register_dask_options() -> None:
    """Import Beam's Dask runner module, which declares the ``--dask_*`` flags."""
    try:
        import apache_beam.runners.dask.dask_runner  # noqa: F401
    except ImportError as e:
        raise ImportError(f"--runner DaskRunner and the --dask_* flags need dask[distributed] "
                          f"(pip install 'apache-beam[dask]'): {e}") from e


def normalize_beam_args(args: list[str]) -> list[str]:
    """Beam's command-line flags with ``--runner DaskRunner`` / ``--runner=DaskRunner`` (or the
    other short names Beam does not register for Dask: ``dask``, any case) replaced by the class
    path :data:`DASK_RUNNER`; every other argument unchanged. When the Dask runner or a
    ``--dask_*`` flag is given, Beam's Dask options are registered too (importing its runner), so
    ``PipelineOptions`` parses them."""
    out = list(args)
    dask = False
    for i, arg in enumerate(out):
        if arg == "--runner" and i + 1 < len(out):
            out[i + 1] = _runner_name(out[i + 1])
            dask |= out[i + 1] == DASK_RUNNER
        elif arg.startswith("--runner="):
            out[i] = "--runner=" + _runner_name(arg[len("--runner="):])
            dask |= out[i] == "--runner=" + DASK_RUNNER
        dask |= arg.startswith("--dask_")
    if dask:
        _register_dask_options()
    return out


def share_rasterizer_threads(options: PipelineOptions) -> None:
    """Mesa's rasteriser threads (``LP_NUM_THREADS``, inherited by worker processes) for a local
    DirectRunner run, where the rasteriser is the bound:

    * ``multi_processing`` with N > 1 workers: ``cores // N`` (at least 1) for each, instead of one
      per core each: N x cores threads fought over the cores (two workers on two cores with two
      threads each were no faster than with one);
    * one process (in-process modes, or one ``multi_processing`` worker): ``cores + 1``. The
      rasteriser shares the cores with the worker's own threads (its Python, the record encoder);
      one thread more than cores gives it the larger share while they run: a 1,000-view render
      2.7 % faster here (five pairs of runs), its output the same.

    Does nothing when the user set ``LP_NUM_THREADS`` (a value this function did not set) or with
    any other runner."""
    global _lp_threads_set
    if local_runner_name(options) is None or os.environ.get("LP_NUM_THREADS", _lp_threads_set) != _lp_threads_set:
        return
    direct = options.view_as(DirectOptions)
    cores = os.cpu_count() or 1
    workers = direct.direct_num_workers or cores  # Beam: 0 = one worker per core
    if direct.direct_running_mode == "multi_processing" and workers > 1:
        _lp_threads_set = str(max(1, cores // workers))
    else:
        _lp_threads_set = str(cores + 1)
    os.environ["LP_NUM_THREADS"] = _lp_threads_set


_lp_threads_set = None  # the LP_NUM_THREADS share_rasterizer_threads set last


def local_runner_name(options: PipelineOptions) -> str | None:
    """``"DirectRunner"`` when ``options`` name the DirectRunner (any spelling Beam accepts) or no
    runner, else None."""
    runner = options.view_as(StandardOptions).runner
    if runner is None or _runner_name(runner).lower() in ("directrunner", "direct"):
        return "DirectRunner"
    return None


def local_runner(options: PipelineOptions):
    """The runner object for ``options``: Beam's in-process ``FnApiRunner`` when they name the
    DirectRunner or no runner (the runner the DirectRunner itself falls back to, with the same
    provision info), else None (Beam resolves ``--runner``).

    Since Beam 2.6x the DirectRunner first tries the PrismRunner: it downloads a Go binary from
    GitHub and runs the pipeline in another process, or, offline, fails and leaves its worker-pool
    servers running until exit (about 0.1 s a run and 0.3 s at exit here). Our pipelines are built
    for the FnApiRunner (``--direct_num_workers``, ``--direct_running_mode``, a DoFn's setup once
    per worker), so a local run uses it directly; ``--runner PrismRunner`` still chooses Prism."""
    if local_runner_name(options) is None:
        return None
    from apache_beam.portability.api import beam_provision_api_pb2
    from apache_beam.runners.portability.fn_api_runner import fn_runner
    from apache_beam.runners.portability.portable_runner import JobServiceHandle
    encoded = JobServiceHandle.encode_pipeline_options(options.get_all_options())
    return fn_runner.FnApiRunner(provision_info=fn_runner.ExtendedProvisionInfo(
        beam_provision_api_pb2.ProvisionInfo(pipeline_options=encoded)))


def _no_idle_workers(options: PipelineOptions, num_elements: int) -> PipelineOptions:
    """DirectRunner ``multi_processing`` with more workers than work units: a copy with one worker
    per unit, and for one unit (a one-shard assembly, a one-model render) the in-process mode: the
    extra worker processes would only start (import Beam, set up the DoFn) and idle, about 1 s for
    two workers here. Every other case: ``options`` itself."""
    if local_runner_name(options) is None:
        return options
    direct = options.view_as(DirectOptions)
    workers = direct.direct_num_workers or os.cpu_count() or 1  # Beam: 0 = one worker per core
    if direct.direct_running_mode != "multi_processing" or workers <= max(1, num_elements):
        return options
    capped = copy.deepcopy(options)
    capped.view_as(DirectOptions).direct_num_workers = max(1, num_elements)
    if num_elements <= 1:
        capped.view_as(DirectOptions).direct_running_mode = "in_memory"
    return capped


def prepare(options: PipelineOptions, num_elements: int) -> PipelineOptions:
    """The options to build a pipeline of ``num_elements`` work units (its largest ``Create``) with.

    Dask runner, with neither ``--dask_npartitions`` nor ``--dask_partition_size`` given: a copy
    of ``options`` with ``--dask_partition_size`` set so the units are spread over the cluster:
    one partition per unit up to :data:`MAX_DASK_PARTITIONS` partitions, then
    ``ceil(num_elements / MAX_DASK_PARTITIONS)`` units per partition (Beam's default, 128 per
    partition, runs a small job as one task on one worker). Every other case: ``options`` itself.
    """
    if num_elements < 0:
        raise ValueError(f"expected a number of work units >= 0, got {num_elements}")
    options = _no_idle_workers(options, num_elements)
    share_rasterizer_threads(options)
    if not is_dask(options):
        return options
    _register_dask_options()
    from apache_beam.runners.dask.dask_runner import DaskOptions
    dask = options.view_as(DaskOptions)
    if dask.npartitions or dask.partition_size:
        return options
    # partition_size rather than npartitions: dask.bag.from_sequence turns npartitions into
    # floor(n / npartitions) elements per partition above 100 elements, up to twice as many
    # partitions as asked.
    prepared = copy.deepcopy(options)
    prepared.view_as(DaskOptions).partition_size = max(1, math.ceil(num_elements / MAX_DASK_PARTITIONS))
    return prepared


class _Primitives(beam.pipeline.PipelineVisitor):
    """The primitive transforms, in visiting order, and the PCollections something reads."""

    def __init__(self):
        self.nodes = []
        self.read = set()

    def visit_transform(self, node):
        self.nodes.append(node)
        self.read.update(node.inputs)
        self.read.update(si.pvalue for si in node.side_inputs)


def check_graph(pipeline: beam.Pipeline) -> None:
    """Raise ``ValueError`` when ``pipeline`` runs on Dask and has a shape ``DaskRunner`` executes
    wrongly without a word: more than one terminal transform (only the last one would run) or a
    multi-output ``ParDo`` with a consumed output (each consumer would get every output's
    elements). Nothing on other runners."""
    if not _is_dask_runner(pipeline.runner):
        return
    seen = _Primitives()
    pipeline.visit(seen)
    problems = []
    terminals = [n.full_label for n in seen.nodes if not any(o in seen.read for o in n.outputs.values())]
    if len(terminals) > 1:
        problems.append(f"{len(terminals)} terminal transforms ({', '.join(terminals)}): DaskRunner "
                        f"computes only the last one and what it reads")
    for n in seen.nodes:
        if isinstance(n.transform, beam.ParDo) and len(n.outputs) > 1 and any(o in seen.read for o in n.outputs.values()):
            tags = ", ".join("main" if t is None else str(t) for t in n.outputs)
            problems.append(f"multi-output ParDo {n.full_label} (outputs {tags}): "
                            f"DaskRunner hands every output's elements to each consumer")
    if problems:
        raise ValueError("this pipeline would run wrongly on DaskRunner (Beam 2.77): " + "; ".join(problems))
