"""Validating a written dataset folder (``python -m pipelines.validate`` is the command over it).

:func:`validate` reads ``kpdata_info.json`` and checks the folder with the :class:`RecordKind` its
``record`` names (:data:`KINDS`), into a :class:`Report` of named checks and their defects.

Modules, one concern each:
  report       Report, Check, Defect, UsageError: the result and its text / JSON forms
  files        reading small files into a check; temporaries left behind; folder sizes
  metadata     kpdata_info.json, stats.json; TFDS dataset_info.json, features.json over TFRecord shards
  framing      walking a shard: TFRecord length / data CRCs, LMDB entries
  decode       strict Example decoding against a schema
  kinds        RecordKind, the registry, shared config helpers
  shards       ShardedKind and the record-by-record shard checks, stray shards
  view, kp2d, keypointnet, keypose, clickhere      the record kinds in shards and their layout files
  caffe        Click-Here's Caffe LMDB layout;  sequences: KeyPose sequence folders
  hpatches     HPatches-layout folders;  deadletters: errors/*.jsonl
  validator    validate(): metadata, the kind's checks, HPatches, dead letters

The per-record value checks themselves are :mod:`schemas.dataset.checks`.
"""
from schemas.dataset.validation.kinds import RecordKind
from schemas.dataset.validation.report import Check, Defect, Report, UsageError
from schemas.dataset.validation.validator import KINDS, validate

__all__ = ["validate", "KINDS", "RecordKind", "Report", "Check", "Defect", "UsageError"]
