"""Reading a written dataset folder back, without Beam or TensorFlow.

* its metadata: :func:`load_info` (``kpdata_info.json``: ``record`` kind, ``splits`` with their
  shards, configuration; TFDS's ``dataset_info.json`` / ``features.json`` are for TFDS,
  :mod:`schemas.dataset.tfds`);
* its serialized records: :func:`iter_records` (TFRecord shards and LMDB splits, in the order
  ``kpdata_info.json`` lists them; :func:`split_shards` and :func:`iter_shard` shard by shard);
* the decoded items of each record kind: :func:`iter_views` (``view``), :func:`iter_instances`
  (Click-Here instances of any of its layouts), :func:`iter_keypointnet_pairs`,
  :func:`iter_kp2d_pairs`, :func:`iter_keypose_records` (``keypose`` records; :func:`keypose_frame`
  decodes one as a stereo frame);
* KeyPose sequence folders (render_stereo output, or any tree of KeyPose sequences), which have no
  records: :func:`sequence_frames` lists their frames, :func:`read_sequence_frame` reads one.

Metadata and TFRecord shards are read through ``fs``, anything with ``exists(path) -> bool`` and
``open(path) -> binary file``: :data:`LOCAL` (the default) reads local paths; a pipeline passes
``apache_beam.io.filesystems.FileSystems`` to read ``gs://`` and other remote outputs. LMDB splits
and KeyPose folders are local.

A stereo frame (:func:`keypose_frame`, :func:`read_sequence_frame`) is a dict: ``key``,
``img_L``, ``img_R`` (H, W, 3|4) uint8 RGB(A) (a ``keypose`` record stores B, G, R as KeyPose
does; :func:`keypose_frame` swaps them back), ``uvd_L``, ``uvd_R`` (K, >=3) float keypoints
``[u, v, disparity, ...]`` in pixels of their image, ``visible_L``, ``visible_R`` (K,) 0/1, ``mask``
(H, W) uint8 object mask of the left image or None.
"""
from __future__ import annotations

import glob
import json
import os

import numpy as np

from kpdata import keypose
from schemas import clickhere as chs
from schemas import keypointnet, kp2d
from schemas.dataset import caffe_lmdb, lmdb, names
from schemas.keypose import bgr_to_rgb, decode_keypose
from schemas.tfrecord import read_records
from schemas.view import decode_view

__all__ = ["LocalFiles", "LOCAL", "CAFFE_RECORD", "SEQUENCES_RECORD", "info_file", "load_info", "split_shards",
           "iter_shard", "iter_records", "iter_views", "iter_instances", "decode_instance_record",
           "iter_keypointnet_pairs", "iter_kp2d_pairs", "iter_keypose_records", "keypose_frame", "sequence_frames",
           "is_sequence_tree", "read_sequence_frame"]

CAFFE_RECORD = chs.CAFFE_LAYOUT.name  # kpdata_info.json "record" of Click-Here's Caffe LMDB layout
SEQUENCES_RECORD = names.KEYPOSE_SEQUENCES  # kpdata_info.json "record" of render_stereo output (KeyPose folders)


class LocalFiles:
    """The local file system, as :func:`load_info` and :func:`iter_records` read it."""

    @staticmethod
    def exists(path: str) -> bool:
        return os.path.exists(path)

    @staticmethod
    def open(path: str):
        return open(path, "rb")


LOCAL = LocalFiles()


def info_file(output_dir: str, fs=LOCAL) -> str | None:
    """The file :func:`load_info` reads: ``kpdata_info.json``, else (a folder written before
    kpdata_info.json existed) a ``dataset_info.json`` in kpdata's own format (its ``splits`` an
    object, not TFDS's list); None when the folder has neither."""
    path = os.path.join(output_dir, names.KPDATA_INFO)
    if fs.exists(path):
        return path
    legacy = os.path.join(output_dir, names.DATASET_INFO)
    if fs.exists(legacy):
        try:
            with fs.open(legacy) as f:
                data = json.loads(f.read().decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            return legacy  # unreadable: the caller's parse names the file
        if isinstance(data, dict) and not isinstance(data.get("splits"), list):
            return legacy
    return None


def load_info(output_dir: str, fs=LOCAL) -> dict:
    """``output_dir``'s kpdata metadata (``kpdata_info.json``: name, config, seed, command,
    code_version, ``record``, ``splits`` {split: {format, num_examples, shards: [{file, examples,
    bytes}]}}, ``features`` (our schema), ...; see :func:`info_file`); FileNotFoundError naming
    the path when it has none."""
    path = info_file(output_dir, fs)
    if path is None:
        path = os.path.join(output_dir, names.KPDATA_INFO)
        raise FileNotFoundError(f"{path}: no {names.KPDATA_INFO}; is {output_dir} a kpdata dataset?")
    with fs.open(path) as f:
        return json.loads(f.read().decode("utf-8"))


def split_shards(output_dir: str, split: str | None = None, info: dict | None = None,
                 fs=LOCAL) -> list[tuple[str, str, str]]:
    """The shards of ``split`` (all splits when None, by split name), each as ``(split, path,
    format)`` in the order the metadata (:func:`load_info`) lists them; ``format`` is ``tfrecord`` (a TFRecord
    file), ``lmdb`` (an LMDB environment) or ``clickhere_lmdb`` (a Click-Here split folder of Caffe
    LMDBs). ``info``: the folder's metadata when the caller has it already."""
    info = info or load_info(output_dir, fs)
    return [(name, os.path.join(output_dir, shard["file"]), s.get("format", "tfrecord"))
            for name, s in sorted(info["splits"].items()) if split is None or name == split
            for shard in s["shards"]]


def iter_shard(path: str, fmt: str, fs=LOCAL):
    """Yield the serialized records of one shard of :func:`split_shards` (a ``tfrecord`` file, checksums
    checked, or an ``lmdb`` environment in key order)."""
    if fmt == "lmdb":
        yield from lmdb.values(path)
    elif fmt == "tfrecord":
        with fs.open(path) as f:
            yield from read_records(f, path)
    else:
        raise ValueError(f"{path}: shards of format {fmt!r} hold no serialized records")


def iter_records(output_dir: str, split: str | None = None, info: dict | None = None, fs=LOCAL):
    """Yield the serialized records of ``split`` (all splits when None, by split name), shard by
    shard in key order, as ``(split, bytes)``. ``info``: the folder's :func:`load_info` when the
    caller has it already."""
    for name, path, fmt in split_shards(output_dir, split, info, fs):
        for raw in iter_shard(path, fmt, fs):
            yield name, raw


# ----------------------------------------------------------------------------- decoded records


def iter_views(output_dir: str, split: str | None = None, fields=None):
    """Yield the ``view`` records of a render_shapenet dataset as dicts (:func:`schemas.view.decode_view`;
    only ``fields`` when given)."""
    for _, raw in iter_records(output_dir, split):
        yield decode_view(raw, fields)


def iter_instances(output_dir: str, split: str | None = None):
    """Yield the instances of a clickhere dataset of any layout as dicts of arrays (``key``,
    ``image`` (227, 227, 3) RGB, ``keypoint_pixel``, the maps, ``keypoint_class``,
    ``viewpoint_label``), in key order per split (compact: view order, then instance order).
    ValueError naming the folder when it is not a clickhere dataset."""
    info = load_info(output_dir)
    kind = info.get("record")
    if kind == chs.CLICKHERE_VIEW.name:
        for _, raw in iter_records(output_dir, split, info):
            yield from chs.expand(chs.decode_view(raw))
    elif kind == chs.CLICKHERE_INSTANCE.name:
        for _, raw in iter_records(output_dir, split, info):
            yield decode_instance_record(raw)
    elif kind == CAFFE_RECORD:
        for name in sorted(info["splits"]):
            if split is None or name == split:
                yield from caffe_lmdb.read_caffe_split(os.path.join(output_dir, name))
    else:
        raise ValueError(f"{output_dir}: not a clickhere dataset (record {kind!r})")


def decode_instance_record(raw: bytes, fields=None) -> dict:
    """A serialized ``clickhere_instance`` as the instance dict every Click-Here layout reads to:
    ``image/encoded`` named ``image`` (227, 227, 3) RGB, ``keypoint_class`` (C,) uint8 one-hot,
    maps (227, 227) (only ``fields`` when given, named as in the instance dict)."""
    if fields is not None:
        fields = ["image/encoded" if f == "image" else f for f in fields]
    rec = chs.decode_instance(raw, fields)
    if "image/encoded" in rec:
        rec["image"] = rec.pop("image/encoded")
    if "keypoint_class" in rec:
        rec["keypoint_class"] = rec["keypoint_class"].astype(np.uint8)
    return rec


def iter_keypointnet_pairs(output_dir: str, split: str | None = None, fields=None):
    """Yield the ``keypointnet_pair`` records as dicts (:func:`schemas.keypointnet.decode_pair`);
    a record without a ``key`` field (the core layout) gets ``record/<i:06d>``, ``i`` counting
    the records read."""
    for i, (_, raw) in enumerate(iter_records(output_dir, split)):
        rec = keypointnet.decode_pair(raw, fields)
        rec.setdefault("key", f"record/{i:06d}")
        yield rec


def iter_kp2d_pairs(output_dir: str, split: str | None = None, fields=None):
    """Yield the ``kp2d_pair`` records as dicts (:func:`schemas.kp2d.decode_pair`)."""
    for _, raw in iter_records(output_dir, split):
        yield kp2d.decode_pair(raw, fields)


def keypose_frame(key: str, raw: bytes) -> dict:
    """One serialized ``keypose`` record as a stereo frame (see the module docstring): the stored
    B, G, R images turned to R, G, B; ``mask`` is None (KeyPose's records are opaque and carry no
    mask)."""
    r = decode_keypose(raw)
    return {"key": key, "img_L": bgr_to_rgb(r["img_L"]), "img_R": bgr_to_rgb(r["img_R"]), "uvd_L": r["keys_uvd_L"],
            "uvd_R": r["keys_uvd_R"], "visible_L": r["visible_L"], "visible_R": r["visible_R"], "mask": None}


def iter_keypose_records(output_dir: str, split: str | None = None):
    """Yield the serialized ``keypose`` records of a gen_tfrecords output as ``(key, bytes)``,
    keyed ``<split>/<i:04d>`` (``i`` counting the records read); :func:`keypose_frame` decodes one."""
    for i, (name, raw) in enumerate(iter_records(output_dir, split)):
        yield f"{name}/{i:04d}", raw

# ----------------------------------------------------------------------------- KeyPose sequence folders


def sequence_frames(root: str) -> list[str]:
    """The left key-target files (``*_L.pbtxt``) of every KeyPose sequence folder under ``root``,
    sorted; one per frame."""
    return sorted(glob.glob(os.path.join(glob.escape(root), "**", "*" + keypose.SUFFIXES["L_pb"]), recursive=True))


def is_sequence_tree(root: str) -> bool:
    """True when ``root`` holds a KeyPose sequence folder (a ``*_L.pbtxt`` file at any depth)."""
    return bool(sequence_frames(root))


def read_sequence_frame(root: str, pb_l: str) -> dict:
    """The stereo frame of ``pb_l`` (one of :func:`sequence_frames`), keyed
    ``<folder relative to root>/<frame>``: key targets and images of both sides (a mono folder's
    left ones for the right), the ``_mask.png`` when there is one. InputError (naming the file)
    for a missing or unreadable file."""
    folder, frame = os.path.dirname(pb_l), os.path.basename(pb_l)[: -len(keypose.SUFFIXES["L_pb"])]
    stereo = keypose.is_stereo(folder)
    kt_l = keypose.read_key_targets(pb_l)
    kt_r = keypose.read_key_targets(keypose.frame_path(folder, frame, "R_pb")) if stereo else kt_l
    img_l = keypose.read_png(keypose.frame_path(folder, frame, "L"), "L image")
    img_r = keypose.read_png(keypose.frame_path(folder, frame, "R"), "R image") if stereo else img_l
    mask_path = keypose.frame_path(folder, frame, "mask")
    mask = keypose.read_png(mask_path, "mask") if os.path.exists(mask_path) else None
    return {"key": f"{os.path.relpath(folder, root)}/{frame}", "img_L": img_l, "img_R": img_r,
            "uvd_L": keypose.target_arrays(kt_l.kp_target).keys_uvd,
            "uvd_R": keypose.target_arrays(kt_r.kp_target).keys_uvd,
            "visible_L": [k.visible for k in kt_l.kp_target.keypoints],
            "visible_R": [k.visible for k in kt_r.kp_target.keypoints], "mask": mask}
