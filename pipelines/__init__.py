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

The package exports nothing itself: modules are imported by name.
"""

import logging as _logging
import sys as _sys

__all__: list[str] = []

# Quiet by default: Beam's import warns on the root logger that the optional Google Cloud client
# libraries are missing (``apitools not found ...``), which is irrelevant for local runs. Filtered
# here, before any command imports Beam; ``--verbose`` keeps it.
QUIET_MESSAGES = ("apitools not found", "bigquery client libraries are not available")


def _drop_library_noise(record: _logging.LogRecord) -> bool:
    message = str(record.msg)
    return not any(m in message for m in QUIET_MESSAGES)


if "--verbose" not in _sys.argv:
    _logging.getLogger().addFilter(_drop_library_noise)
