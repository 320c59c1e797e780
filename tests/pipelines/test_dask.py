"""Pipelines on a real Dask cluster (conftest ``dask_cluster``: ``dask scheduler`` and two ``dask
worker`` processes): the graph shape every pipeline uses runs each unit once, spread over both
workers; the default job writes the same bytes as on DirectRunner."""
from __future__ import annotations

import collections
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PROBE = os.path.join(ROOT, "tests", "pipelines", "dask_probe.py")


def _run(cmd: list[str], env: dict, timeout: int = 600) -> subprocess.CompletedProcess:
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, cwd=ROOT, check=False)
    assert res.returncode == 0, f"{' '.join(cmd)} exited {res.returncode}:\n{res.stdout[-3000:]}\n{res.stderr[-6000:]}"
    return res


def _probe(out_dir, units: int, address: str, env: dict, *extra: str) -> dict:
    """Run dask_probe.py on the cluster; the files it wrote, by kind."""
    _run([sys.executable, PROBE, str(out_dir), str(units), "--runner", "DaskRunner",
          "--dask_client_address", address, *extra], env)
    found = collections.defaultdict(list)
    for name in sorted(os.listdir(out_dir)):
        kind = name.split("-")[0]
        with open(os.path.join(out_dir, name), encoding="utf-8") as f:
            found[kind].append((name, json.load(f)))
    return found


def _workers(address: str) -> set[str]:
    from distributed import Client
    with Client(address, timeout=60) as client:
        return set(client.scheduler_info()["workers"])


def test_units_run_once_each_spread_over_both_workers(dask_cluster, dask_env, tmp_path):
    """Create -> Reshuffle -> ParDo with runners.prepare: every unit processed exactly once, one
    DoFn setup and teardown per unit (a partition each), both workers used."""
    units = 8
    found = _probe(tmp_path / "probe", units, dask_cluster, dask_env)
    processed = collections.Counter(payload["unit"] for _, payload in found["unit"])
    assert processed == {u: 1 for u in range(units)}
    assert {payload["worker"] for _, payload in found["unit"]} == _workers(dask_cluster)
    setups = {name.removeprefix("setup-") for name, _ in found["setup"]}
    assert len(setups) == units
    assert {name.removeprefix("teardown-") for name, _ in found["teardown"]} == setups
    assert {payload["setup"] for _, payload in found["unit"]} == setups


def test_beam_default_partitioning_puts_a_small_job_on_one_worker(dask_cluster, dask_env, tmp_path):
    """Why runners.prepare exists: with Beam's own default (128 elements per partition) 8 units
    are one partition, one setup, one worker, whatever the cluster."""
    found = _probe(tmp_path / "probe", 8, dask_cluster, dask_env, "--beam_defaults")
    assert sorted(payload["unit"] for _, payload in found["unit"]) == list(range(8))
    assert len({payload["worker"] for _, payload in found["unit"]}) == 1
    assert len(found["setup"]) == len(found["teardown"]) == 1


def _shards(out_dir) -> list[str]:
    with open(os.path.join(out_dir, "kpdata_info.json"), encoding="utf-8") as f:
        info = json.load(f)
    return sorted(shard["file"] for split in info["splits"].values() for shard in split["shards"])


def _bytes(path) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def test_default_job_on_dask_writes_the_directrunner_bytes(dask_cluster, dask_env, tmp_path, gl):
    """``python -m pipelines.render_shapenet`` (the README's main job) on DirectRunner and on the
    cluster: the same shard files, byte for byte, and the same dead letters."""
    direct, dask = tmp_path / "direct", tmp_path / "dask"
    _run([sys.executable, "-m", "pipelines.render_shapenet", "--output_dir", str(direct)], dask_env)
    _run([sys.executable, "-m", "pipelines.render_shapenet", "--runner", "DaskRunner",
          "--dask_client_address", dask_cluster, "--output_dir", str(dask)], dask_env)
    shards = _shards(direct)
    assert shards and _shards(dask) == shards
    for name in shards:
        assert _bytes(direct / name) == _bytes(dask / name), f"{name} differs between DirectRunner and Dask"
    failures = os.path.join("errors", "failures.jsonl")
    assert _bytes(direct / failures) == _bytes(dask / failures)
