"""Runner names, the Dask partitioning and the graph check (no cluster: tests/pipelines/test_dask.py
runs on one)."""
import os
import subprocess
import sys

import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import DirectOptions, PipelineOptions, StandardOptions
from apache_beam.runners.dask.dask_runner import DaskOptions

from pipelines import options, render_shapenet, runners
from pipelines.runners import DASK_RUNNER, MAX_DASK_PARTITIONS

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.mark.parametrize("args, expected", [
    (["--runner", "DaskRunner"], ["--runner", DASK_RUNNER]),
    (["--runner=DaskRunner"], ["--runner=" + DASK_RUNNER]),
    (["--runner", "dask", "--x"], ["--runner", DASK_RUNNER, "--x"]),
    (["--runner=daskrunner"], ["--runner=" + DASK_RUNNER]),
    (["--runner", DASK_RUNNER], ["--runner", DASK_RUNNER]),
    (["--runner", "DirectRunner", "--direct_num_workers=2"], ["--runner", "DirectRunner", "--direct_num_workers=2"]),
    (["--runner=FlinkRunner", "--job_name=dask"], ["--runner=FlinkRunner", "--job_name=dask"]),
    ([], []),
])
def test_normalize_beam_args_spells_dask_out_and_leaves_the_rest(args, expected):
    assert runners.normalize_beam_args(args) == expected


def test_parse_accepts_the_short_dask_name_and_its_flags():
    _, opts = options.parse(render_shapenet.build_parser(),
                            ["--runner", "DaskRunner", "--dask_client_address", "tcp://10.0.0.1:8786", "--seed", "3"])
    assert opts.view_as(StandardOptions).runner == DASK_RUNNER
    assert opts.view_as(DaskOptions).address == "tcp://10.0.0.1:8786"
    assert runners.is_dask(opts)


def test_parse_registers_the_dask_flags_in_a_fresh_process():
    """Beam declares the --dask_* flags in its Dask runner module; parse imports it when asked for
    Dask (here in a process that has not imported it)."""
    code = ("import sys\n"
            "from pipelines import options, render_shapenet\n"
            "assert 'apache_beam.runners.dask.dask_runner' not in sys.modules\n"
            "_, o = options.parse(render_shapenet.build_parser(), ['--runner=dask', "
            "'--dask_client_address', 'tcp://127.0.0.1:1', '--dask_connection_timeout', '5'])\n"
            "print(sorted(o.get_all_options(drop_default=True).items()))")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=ROOT, check=False)
    assert res.returncode == 0, res.stderr[-3000:]
    assert f"('address', 'tcp://127.0.0.1:1'), ('runner', '{DASK_RUNNER}'), ('timeout', 5)" in res.stdout


def _dask(*extra):
    return PipelineOptions(runners.normalize_beam_args(["--runner", "DaskRunner", *extra]))


@pytest.mark.parametrize("n, size", [(0, 1), (1, 1), (10, 1), (MAX_DASK_PARTITIONS, 1), (MAX_DASK_PARTITIONS + 1, 2),
                                     (10 * MAX_DASK_PARTITIONS, 10), (10 * MAX_DASK_PARTITIONS + 1, 11)])
def test_prepare_spreads_units_one_per_partition_up_to_the_cap(n, size):
    opts = _dask("--dask_client_address", "tcp://h:1")
    prepared = runners.prepare(opts, n)
    assert prepared.view_as(DaskOptions).partition_size == size
    assert prepared.view_as(DaskOptions).npartitions is None
    assert -(-n // size) <= MAX_DASK_PARTITIONS
    assert prepared.view_as(DaskOptions).address == "tcp://h:1"
    assert opts.view_as(DaskOptions).partition_size is None  # the caller's options are not changed


@pytest.mark.parametrize("flag", ["--dask_npartitions=3", "--dask_partition_size=5"])
def test_prepare_keeps_the_users_partitioning(flag):
    opts = _dask(flag)
    assert runners.prepare(opts, 1000) is opts


def test_prepare_leaves_other_runners_alone():
    for opts in (PipelineOptions([]), PipelineOptions(["--runner=DirectRunner", "--direct_num_workers=2"])):
        assert runners.prepare(opts, 1000) is opts
        assert not runners.is_dask(opts)
    with pytest.raises(ValueError, match="work units >= 0, got -1"):
        runners.prepare(PipelineOptions([]), -1)


def _pipeline(*runner_args):
    return beam.Pipeline(options=PipelineOptions(runners.normalize_beam_args(list(runner_args))))


def _split(x):
    yield beam.pvalue.TaggedOutput("odd" if x % 2 else "even", x)


def test_check_graph_accepts_one_chain():
    p = _pipeline("--runner", "DaskRunner")
    _ = p | beam.Create([1, 2]) | beam.Reshuffle() | beam.Map(str)
    runners.check_graph(p)


def test_check_graph_refuses_a_second_sink_and_a_consumed_multi_output_pardo():
    p = _pipeline("--runner", "DaskRunner")
    src = p | "Units" >> beam.Create([1, 2])
    _ = src | "SinkA" >> beam.Map(str)
    _ = src | "SinkB" >> beam.Map(repr)
    with pytest.raises(ValueError, match=r"2 terminal transforms \(SinkA, SinkB\)"):
        runners.check_graph(p)

    p = _pipeline("--runner=dask")
    tagged = p | beam.Create([1, 2]) | "Split" >> beam.ParDo(_split).with_outputs("odd", "even")
    _ = (tagged.odd, tagged.even) | beam.Flatten() | "Out" >> beam.Map(str)
    with pytest.raises(ValueError, match="multi-output ParDo Split"):
        runners.check_graph(p)


def test_check_graph_is_silent_on_other_runners():
    p = _pipeline()
    src = p | beam.Create([1, 2])
    _ = src | "SinkA" >> beam.Map(str)
    _ = src | "SinkB" >> beam.Map(repr)
    runners.check_graph(p)


@pytest.mark.parametrize("args, cores, expected", [
    (["--direct_num_workers", "2", "--direct_running_mode", "multi_processing"], 2, "1"),
    (["--direct_num_workers", "2", "--direct_running_mode", "multi_processing"], 16, "8"),
    (["--direct_num_workers", "0", "--direct_running_mode", "multi_processing"], 4, "1"),  # 0 = one per core
    (["--direct_num_workers", "8", "--direct_running_mode", "multi_processing"], 2, "1"),  # never 0
    (["--direct_num_workers", "2", "--direct_running_mode", "multi_threading"], 2, "3"),  # one process
    (["--direct_num_workers", "1", "--direct_running_mode", "multi_processing"], 4, "5"),  # one worker
    ([], 2, "3"),  # in-process
    (["--runner", "DaskRunner"], 2, None),
])
def test_local_workers_share_the_rasterizer_threads(monkeypatch, args, cores, expected):
    """multi_processing workers: cores // N threads each; one process: one more thread than cores."""
    monkeypatch.setenv("LP_NUM_THREADS", "")  # recorded, so the test's own setting is undone after
    monkeypatch.delenv("LP_NUM_THREADS")
    monkeypatch.setattr(runners, "_lp_threads_set", None)
    monkeypatch.setattr(runners.os, "cpu_count", lambda: cores)
    runners.share_rasterizer_threads(PipelineOptions(runners.normalize_beam_args(args)))
    assert os.environ.get("LP_NUM_THREADS") == expected


def test_a_users_rasterizer_threads_are_kept(monkeypatch):
    monkeypatch.setenv("LP_NUM_THREADS", "3")
    monkeypatch.setattr(runners, "_lp_threads_set", None)
    runners.share_rasterizer_threads(PipelineOptions(["--direct_num_workers", "2", "--direct_running_mode",
                                                      "multi_processing"]))
    assert os.environ["LP_NUM_THREADS"] == "3"


def test_the_rasterizer_threads_follow_the_next_run(monkeypatch):
    """A value this process set for one run is not taken for the user's: the next run gets its own."""
    monkeypatch.setenv("LP_NUM_THREADS", "")
    monkeypatch.delenv("LP_NUM_THREADS")
    monkeypatch.setattr(runners, "_lp_threads_set", None)
    monkeypatch.setattr(runners.os, "cpu_count", lambda: 4)
    runners.share_rasterizer_threads(PipelineOptions([]))
    assert os.environ["LP_NUM_THREADS"] == "5"
    runners.share_rasterizer_threads(PipelineOptions(["--direct_num_workers", "2", "--direct_running_mode",
                                                      "multi_processing"]))
    assert os.environ["LP_NUM_THREADS"] == "2"


@pytest.mark.parametrize("args, elements, workers, mode", [
    (["--direct_num_workers", "2", "--direct_running_mode", "multi_processing"], 1, 1, "in_memory"),
    (["--direct_num_workers", "4", "--direct_running_mode", "multi_processing"], 3, 3, "multi_processing"),
    (["--direct_num_workers", "2", "--direct_running_mode", "multi_processing"], 16, 2, "multi_processing"),
    (["--direct_num_workers", "0", "--direct_running_mode", "multi_processing"], 1, 1, "in_memory"),
    (["--direct_num_workers", "4", "--direct_running_mode", "multi_threading"], 1, 4, "multi_threading"),
    (["--runner", "DaskRunner", "--direct_num_workers", "4", "--direct_running_mode", "multi_processing"], 1, 4,
     "multi_processing"),
])
def test_prepare_starts_no_worker_process_without_a_unit(monkeypatch, args, elements, workers, mode):
    """More multi_processing workers than work units: one per unit, in-process for one unit; the
    caller's options are not changed; other modes and runners keep theirs."""
    monkeypatch.setenv("LP_NUM_THREADS", "1")
    monkeypatch.setattr(runners.os, "cpu_count", lambda: 2)
    given = PipelineOptions(runners.normalize_beam_args(args))
    before = given.get_all_options()
    got = runners.prepare(given, elements).view_as(DirectOptions)
    assert (got.direct_num_workers or 2, got.direct_running_mode) == (workers, mode)
    assert given.get_all_options() == before


def test_local_runs_use_the_fn_api_runner_and_others_beams_choice():
    from apache_beam.runners.portability.fn_api_runner.fn_runner import FnApiRunner
    for args in ([], ["--runner", "DirectRunner"], ["--runner=direct"]):
        assert isinstance(runners.local_runner(PipelineOptions(args)), FnApiRunner)
    for args in (["--runner", DASK_RUNNER], ["--runner", "PrismRunner"], ["--runner", "DataflowRunner"]):
        assert runners.local_runner(PipelineOptions(args)) is None
