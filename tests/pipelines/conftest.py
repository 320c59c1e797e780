"""A real Dask cluster for the pipeline tests: a scheduler and two one-thread workers started as
separate processes, as ``dask scheduler`` / ``dask worker`` start them on a cluster."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DASK_WORKERS = 2


@pytest.fixture(scope="session")
def dask_env() -> dict:
    """The environment of the Dask cluster's processes and of the pipelines run against it: Mesa
    EGL, and this checkout first on the import path (the scheduler unpickles the task graph and
    the workers run it: both must import the same code as the driver)."""
    env = dict(os.environ, PYOPENGL_PLATFORM="egl")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (ROOT, os.environ.get("PYTHONPATH")) if p)
    return env


def _tail(path: str, lines: int = 30) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return "".join(f.readlines()[-lines:])
    except OSError as e:
        return f"({e})"


def _stop(procs: list[subprocess.Popen], grace: float = 15) -> None:
    """Stop the cluster: SIGTERM to the workers' process groups (a ``dask worker`` is a nanny with
    worker children) while the scheduler still answers them, then to the scheduler's; SIGKILL to
    each group after ``grace`` seconds or at once when its leader has exited."""
    for group in (procs[1:], procs[:1]):
        for p in group:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        for p in group:
            try:
                p.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            p.wait()


@pytest.fixture(scope="session")
def dask_cluster(tmp_path_factory, dask_env):
    """The scheduler's address (``tcp://127.0.0.1:PORT``) of a running cluster: ``dask
    scheduler`` and two ``dask worker --nworkers 1 --nthreads 1`` processes, started here with a
    scheduler file in a temporary folder; yielded once both workers are registered; every process
    is stopped afterwards, whatever happened."""
    from distributed import Client

    d = tmp_path_factory.mktemp("dask_cluster")
    scheduler_file = str(d / "scheduler.json")
    dask = [sys.executable, "-m", "dask"]
    commands = {"scheduler": dask + ["scheduler", "--scheduler-file", scheduler_file, "--host", "127.0.0.1",
                                     "--port", "0", "--no-dashboard"]}
    for i in range(DASK_WORKERS):
        commands[f"worker{i}"] = dask + ["worker", "--scheduler-file", scheduler_file, "--nworkers", "1",
                                         "--nthreads", "1", "--no-dashboard", "--local-directory", str(d / f"w{i}")]
    env = dask_env
    procs, logs = [], {}

    def failed(what: str) -> str:
        return what + "".join(f"\n--- {name} log ({logs[name]}) ---\n{_tail(logs[name])}" for name in logs)

    try:
        for name, cmd in commands.items():
            logs[name] = str(d / f"{name}.log")
            with open(logs[name], "w") as log:
                procs.append(subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=str(d),
                                              start_new_session=True))
            if name == "scheduler":
                deadline = time.monotonic() + 60
                while not os.path.exists(scheduler_file):
                    if procs[0].poll() is not None or time.monotonic() > deadline:
                        pytest.fail(failed(f"the Dask scheduler wrote no {scheduler_file}"))
                    time.sleep(0.2)
        with Client(scheduler_file=scheduler_file, timeout=60) as client:
            try:
                client.wait_for_workers(DASK_WORKERS, timeout=120)
            except TimeoutError:
                pytest.fail(failed(f"{DASK_WORKERS} Dask workers did not register within 120 s"))
            address = client.scheduler.address
        yield address
    finally:
        _stop(procs)
