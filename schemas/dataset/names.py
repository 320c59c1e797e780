"""The file names of a written dataset folder: metadata, shards, dead letters, temporaries.

One place for every name a writer (``pipelines/sinks``), the validator and ``training/`` use::

    <output_dir>/
      <name>-<split>.tfrecord-<i:05d>-of-<n:05d>   TFRecord shards (DESIGN §4)
      <name>-<split>.lmdb/                          or one LMDB environment per split
      dataset_info.json  features.json  stats.json  preview.png
      errors/failures.jsonl                         dead letters (errors/dropped.jsonl: dropped views)
      projection.txt  dev.txt  test.txt             KeypointNet layout: what KeypointNet's tools read
      tfrecords/tfset.pbtxt                         KeyPose layout: the set KeyPose's trainer reads

A file being written has a hidden temporary name (:func:`tmp_name`) in the same folder and is
renamed when complete; :data:`TEMP_NAME` matches every temporary name kpdata writes.
"""
from __future__ import annotations

import os
import re
import uuid

__all__ = ["DATASET_INFO", "FEATURES", "STATS", "PREVIEW", "ERRORS_DIR", "FAILURES_FILE", "DROPPED_FILE",
           "PROJECTION_FILE", "DEV_LIST", "TEST_LIST", "TFSET_FILE", "TFSET_DIR", "SHARD_NAME", "TEMP_NAME",
           "shard_name", "lmdb_name", "tmp_name"]

DATASET_INFO = "dataset_info.json"
FEATURES = "features.json"
STATS = "stats.json"
PREVIEW = "preview.png"
ERRORS_DIR = "errors"
FAILURES_FILE = "failures.jsonl"  # one line per failed input
DROPPED_FILE = "dropped.jsonl"  # Click-Here views dropped for having no keypoint (not failures)

# Files that the original projects' own readers look for (formats.md §1.1, §2)
PROJECTION_FILE = "projection.txt"  # KeypointNet: the 4x4 projection matrix, row-major
DEV_LIST, TEST_LIST = "dev.txt", "test.txt"  # KeypointNet: the record files of the dev / test splits
TFSET_FILE = "tfset.pbtxt"  # KeyPose: the train / val record files of a set
TFSET_DIR = "tfrecords"  # KeyPose: gen_tfrecords' folder of record files and their tfset.pbtxt

SHARD_NAME = re.compile(r"^(?P<name>.+)-(?P<split>[A-Za-z0-9_]+)\.tfrecord-(?P<i>\d{5})-of-(?P<n>\d{5})$")
TEMP_NAME = re.compile(r"\.incomplete-|\.tmp-|\.tmp$|^\.tmp")


def shard_name(name: str, split: str, index: int, count: int) -> str:
    """``{name}-{split}.tfrecord-{index:05d}-of-{count:05d}`` (DESIGN §4)."""
    return f"{name}-{split}.tfrecord-{index:05d}-of-{count:05d}"


def lmdb_name(name: str, split: str) -> str:
    """``{name}-{split}.lmdb``: the LMDB environment (a folder) of one split."""
    return f"{name}-{split}.lmdb"


def tmp_name(path: str) -> str:
    """A hidden, unique temporary sibling of ``path`` (``.<base>.incomplete-<12 hex>``)."""
    d, b = os.path.split(path)
    return os.path.join(d, f".{b}.incomplete-{uuid.uuid4().hex[:12]}")
