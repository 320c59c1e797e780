"""Beam entry points (``python -m pipelines.<name>``), their composite transforms and sinks.

Commands: ``render_shapenet`` (``--layout`` ``view``: :mod:`~pipelines.view`, ``clickhere``:
:mod:`~pipelines.clickhere`, ``keypointnet``: :mod:`~pipelines.keypointnet`), ``render_stereo``,
``gen_tfrecords``, ``gen_homography_pairs``, ``fit_viewpoints``, ``validate``, ``preview``.

What the commands share (these modules import no command module):
* :mod:`~pipelines.skeleton`: the run every pipeline shares (flags -> config -> plan -> work ->
  metadata -> finish), the kpdata_info.json / TFDS dataset_info.json, features.json / stats.json writer;
* :mod:`~pipelines.stream`: the streaming write path (work units -> part files -> shards: TFRecord,
  LMDB, Caffe LMDBs), the two single-output DoFns every runner executes alike;
* :mod:`~pipelines.journal`: the output folder's journal (``.kpdata/``): committed units and
  shards (resume), the configuration check, ``--overwrite``, the lock;
* :mod:`~pipelines.progress`: workers' progress counts and the driver's progress line;
* :mod:`~pipelines.runners`: runner names (``--runner DaskRunner``) and per-runner options;
* :mod:`~pipelines.options`: the output part of every configuration and its flags, flag types,
  our flags split from Beam's;
* :mod:`~pipelines.workers`: the render DoFn base (one renderer per worker, ``process`` = load ->
  dead letter or render -> timing);
* :mod:`~pipelines.shapenet_views`: what render_shapenet's layouts share (configuration, model
  tasks, view planning) and the layout registry ``--layout`` dispatches through;
* :mod:`~pipelines.sinks`: dead letters, JSON and text files, shard statistics;
* :mod:`~pipelines.report`: the end of a run (summary, preview sheet, exit status).

Reading a written dataset back, checking it and drawing its sheet is :mod:`schemas.dataset`'s
(``validate`` and ``preview`` are thin commands over it).

The package itself holds only :func:`run_command`, the end of every command module; everything else
is imported by module name.
"""

import gc as _gc
import logging as _logging
import sys as _sys
from typing import Callable as _Callable, NoReturn as _NoReturn

__all__ = ["run_command"]


def _started_as_command() -> bool:
    """True while ``python -m pipelines.<command>`` imports this package: runpy imports the package
    before the command's module, with ``sys.argv[0]`` still ``-m``."""
    argv = list(getattr(_sys, "orig_argv", ()))
    return (_sys.argv[:1] == ["-m"] and "-m" in argv[:-1]
            and argv[argv.index("-m") + 1].startswith("pipelines."))


# A command's start-up imports (Beam, trimesh, scipy, pyrender) make a few hundred thousand objects
# that live until the process ends; the cyclic garbage collector walked all of them three times
# during the imports (0.15-0.4 s of every run here) and freed about 3,000. It is paused from here
# until run_command, which freezes what the imports made and resumes it.
if _started_as_command():
    _gc.disable()


def run_command(run: _Callable[[], int]) -> _NoReturn:
    """Run a command module's ``run()`` as the process and exit with its status.

    The objects alive at the start (the imports') and at the end are frozen out of the garbage
    collector (:func:`gc.freeze`): collections during the run skip the first, the interpreter's
    shutdown the second (0.03 s instead of 0.25 s here). atexit handlers and stream flushes still
    run."""
    _gc.freeze()
    _gc.enable()
    rc = run()
    _gc.freeze()
    _sys.exit(rc)

# Quiet by default: Beam's import warns on the root logger that the optional Google Cloud client
# libraries are missing (``apitools not found ...``), which is irrelevant for local runs. Filtered
# here, before any command imports Beam; ``--verbose`` keeps it.
QUIET_MESSAGES = ("apitools not found", "bigquery client libraries are not available")


def _drop_library_noise(record: _logging.LogRecord) -> bool:
    message = str(record.msg)
    return not any(m in message for m in QUIET_MESSAGES)


if "--verbose" not in _sys.argv:
    _logging.getLogger().addFilter(_drop_library_noise)
