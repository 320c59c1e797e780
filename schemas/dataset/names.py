"""The file names of a written dataset folder: metadata, shards, dead letters, temporaries.

One place for every name a writer (``pipelines/sinks``), the validator and ``training/`` use::

    <output_dir>/
      <name>-<split>.tfrecord-<i:05d>-of-<n:05d>   TFRecord shards (DESIGN §4)
      <name>-<split>.lmdb/                          or one LMDB environment per split
      kpdata_info.json                              kpdata's metadata (every dataset: configuration,
                                                    seed, command, record kind, splits, our schema)
      dataset_info.json  features.json              TFDS's DatasetInfo and FeaturesDict JSON, where the
                                                    shards are TFRecord in TFDS's file template
                                                    (schemas.dataset.tfds; not LMDB, KeyPose, KeypointNet)
      stats.json  preview.png
      errors/failures.jsonl                         dead letters (errors/dropped.jsonl: dropped views,
                                                    errors/backgrounds.jsonl: background photos)
      .kpdata/                                      the run's journal (pipelines.journal): resume, lock

A file being written has a hidden temporary name (:func:`tmp_name`) in the same folder and is
renamed when complete; :data:`TEMP_NAME` matches every temporary name kpdata writes.

The layouts of the original projects add their own files (formats.md)::

    KeypointNet   <synset>_<model_id>.tfrecord per model; train.txt dev.txt test.txt (the split's
                  record files, no extension), job.txt, projection.txt
    KeyPose       tfrecords/0000.tfrecord ... (train first, then val), tfrecords/tfset.pbtxt,
                  tfrecords/data_params.pbtxt (kpdata.keypose.DATA_PARAMS), tfset_def.pbtxt
    stereo        <object>/<sequence>/ with data_params.pbtxt, scene.json and the frames;
                  objects/<object>.obj
    Click-Here    <split>/<field>_lmdb/ (schemas.clickhere.CAFFE_LAYOUT), <split>/keys.txt,
                  <split>/views.jsonl (schemas.dataset.caffe_lmdb)
"""
from __future__ import annotations

import os
import re
import uuid

__all__ = ["KPDATA_INFO", "DATASET_INFO", "FEATURES", "STATS", "PREVIEW", "ERRORS_DIR", "FAILURES_FILE", "DROPPED_FILE",
           "BACKGROUNDS_FILE",
           "SHARD_NAME", "TEMP_NAME", "JOURNAL_DIR", "LMDB_DATA", "TFRECORD_EXT", "shard_name", "lmdb_name", "tmp_name",
           "KEYPOINTNET_SPLITS", "KEYPOINTNET_PROJECTION", "KEYPOINTNET_JOB", "split_list",
           "KEYPOSE_RECORDS_DIR", "KEYPOSE_TFSET", "KEYPOSE_TFSET_DEF", "keypose_record_file",
           "KEYPOSE_SEQUENCES", "SCENE_JSON", "OBJECTS_DIR"]

KPDATA_INFO = "kpdata_info.json"  # kpdata's own metadata (schemas.dataset.records.load_info)
DATASET_INFO = "dataset_info.json"  # TFDS's DatasetInfo JSON (schemas.dataset.tfds)
FEATURES = "features.json"  # TFDS's FeaturesDict JSON (schemas.dataset.tfds)
STATS = "stats.json"
PREVIEW = "preview.png"
ERRORS_DIR = "errors"
FAILURES_FILE = "failures.jsonl"  # one line per failed input
DROPPED_FILE = "dropped.jsonl"  # Click-Here views dropped for having no keypoint (not failures)
BACKGROUNDS_FILE = "backgrounds.jsonl"  # Click-Here background photos rejected or converted, one line each

SHARD_NAME = re.compile(r"^(?P<name>.+)-(?P<split>[A-Za-z0-9_]+)\.tfrecord-(?P<i>\d{5})-of-(?P<n>\d{5})$")
JOURNAL_DIR = ".kpdata"  # the run's journal: configuration, lock, committed units and shards
TEMP_NAME = re.compile(r"\.incomplete-|\.tmp-|\.tmp$|^\.tmp")
LMDB_DATA = "data.mdb"  # the data file inside an LMDB environment folder
TFRECORD_EXT = ".tfrecord"

KEYPOINTNET_SPLITS = ("train", "dev", "test")  # the only split names KeypointNet's trainer reads
KEYPOINTNET_PROJECTION = "projection.txt"  # the 4x4 projection matrix, row-major (formats.md §1.1)
KEYPOINTNET_JOB = "job.txt"

KEYPOSE_RECORDS_DIR = "tfrecords"
KEYPOSE_TFSET = "tfset.pbtxt"  # in KEYPOSE_RECORDS_DIR: the set's train / val record files
KEYPOSE_TFSET_DEF = "tfset_def.pbtxt"  # beside it: the input set the records were made from

KEYPOSE_SEQUENCES = "keypose_sequences"  # kpdata_info.json's record of a folder of stereo sequences
SCENE_JSON = "scene.json"  # a stereo sequence's scene: placement, world keypoints
OBJECTS_DIR = "objects"  # the KeyPose CAD files of the objects, <object>.obj


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


def split_list(split: str) -> str:
    """``{split}.txt``: KeypointNet's list of a split's record files."""
    return f"{split}.txt"


def keypose_record_file(index: int) -> str:
    """``{index:04d}.tfrecord``: KeyPose's record file names."""
    return f"{index:04d}.tfrecord"
