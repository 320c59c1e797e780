"""Read any dataset kpdata writes as dicts of numpy arrays, without TensorFlow (or Beam, or GL).

    from schemas.dataset import reader
    for rec in reader.read("out/views", split="train"):
        rec["image/encoded"]        # (H, W, 4) uint8 RGBA
        rec["keypoints/uv"]         # (K, 2) float32 pixels

:func:`read` opens a folder written by a kpdata pipeline (its metadata, ``kpdata_info.json``, read
through :func:`schemas.dataset.records.load_info`), whatever its storage (TFRecord shards, one LMDB
environment per split, Click-Here's Caffe LMDB folders) and yields one dict per record, decoded by
the record's schema declaration (the one the writer encoded with, ``schemas/*.py``): every field
by its declared name, numeric fields as numpy arrays in their *array shapes*
(:attr:`schemas.features.Tensor.array_shape`: ``keypoints/uv`` (K, 2), ``camera/K`` (3, 3)),
scalars as Python numbers, text as ``str`` (lists of ``str``), PNG fields decoded (``cv2.imdecode``)
to (H, W[, C]) uint8/uint16 arrays in the channel order the PNG holds.

What each record kind (the metadata's ``record``) yields:

====================== ==================================================================================
``view``               :data:`schemas.view.VIEW` fields; ``image/encoded`` (H, W, 4) RGBA, ``mask/encoded``
                       (H, W) uint8 0/255, ``depth/encoded`` (H, W) uint16 codes, plus ``depth`` (H, W)
                       float32 z-depth in the model's units (or metres) = codes * ``depth/scale``, 0 = no hit
``keypointnet_pair``   :data:`schemas.keypointnet.KEYPOINTNET_PAIR` (the six core fields only when the run
                       wrote no extras): ``img0``/``img1`` (H, W, 4) RGBA, ``mv*`` (4, 4), ``keypoints/uv0``
                       (K, 2)
``kp2d_pair``          :data:`schemas.kp2d.KP2D_PAIR`: ``image/encoded``, ``image_aug/encoded`` (H, W, 3) RGB,
                       ``homography`` and ``homography/pixels`` (3, 3)
``keypose``            :data:`schemas.keypose.KEYPOSE`: ``img_L``/``img_R`` (H, W, 3) uint8 in **B, G, R**
                       order, as KeyPose stores them (``schemas.keypose.bgr_to_rgb`` for display),
                       ``keys_uvd_L`` (K, 4), ``targets_keys_uvd_L`` (5, K, 4), ...
``clickhere_instance`` one Click-Here instance (``key``, ``view_key``, ``flipped``, ``image`` (227, 227, 3) RGB,
``caffe_datum``        ``keypoint_pixel`` (2,) int64 (x, y), ``keypoint_loc`` and ``gaussian_keypoint_map``
``clickhere_view``     (227, 227) uint8, the three distance maps (227, 227), ``keypoint_class`` (C,) uint8
                       one-hot, ``viewpoint_label`` (4,) int64); the compact layout (``clickhere_view``, one
                       record per view) is expanded to its instances (``schemas.clickhere.expand``, the
                       maps bit for bit those of the full layouts; their dtypes are the writer's: int32 /
                       float64 maps when expanded, float32 from an Example or a Datum); Click-Here's
                       Caffe LMDBs yield ``key`` and the Datum fields
``keypose_sequences``  render_stereo output (no records): one stereo frame per ``*_L.pbtxt``
                       (:func:`schemas.dataset.records.read_sequence_frame`; ``img_L``/``img_R`` RGB(A))
====================== ==================================================================================

Splits and shards: records come split by split (sorted by name), shard by shard in the order
the metadata lists them, each shard in its stored order (LMDB: key order), unless
``shuffle_shards``: then the shards are put in a seeded random order and read interleaved, one
record from each of ``cycle_length`` open shards in turn (as ``tf.data``'s interleave), so a
training stream mixes models without holding a shuffle buffer. :func:`shards` lists the shards,
for splitting them among data-loader workers (``shard=range(worker, n, workers)``).
"""
from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Iterable, Iterator

import numpy as np

from schemas import clickhere as chs
from schemas import keypointnet, kp2d
from schemas.dataset import caffe_lmdb, records
from schemas.keypose import decode_keypose
from schemas.view import decode_view

__all__ = ["Shard", "DECODERS", "record_kind", "shards", "read", "read_shard", "interleave"]


@dataclasses.dataclass(frozen=True)
class Shard:
    """One unit of storage of a dataset: a TFRecord file (``format`` ``tfrecord``), an LMDB
    environment (``lmdb``), a Click-Here split folder of Caffe LMDBs (``clickhere_lmdb``) or a KeyPose
    sequence folder (``keypose_sequence``); ``kind``: the record kind it holds."""

    split: str
    path: str
    format: str
    kind: str
    root: str  # the dataset folder


def _instances_of_view(raw: bytes, fields):
    return chs.expand(chs.decode_view(raw), fields)


# record kind -> fn(serialized record, fields or None) -> list of decoded dicts (a compact Click-Here
# view is several instances); every one parses with the kind's Schema declaration.
DECODERS: dict[str, Callable[[bytes, object], list[dict]]] = {
    "view": lambda raw, fields: [decode_view(raw, fields)],
    chs.CLICKHERE_INSTANCE.name: lambda raw, fields: [records.decode_instance_record(raw, fields)],
    chs.CLICKHERE_VIEW.name: _instances_of_view,
    keypointnet.KEYPOINTNET_PAIR.name: lambda raw, fields: [keypointnet.decode_pair(raw, fields)],
    kp2d.KP2D_PAIR.name: lambda raw, fields: [kp2d.decode_pair(raw, fields)],
    "keypose": lambda raw, fields: [decode_keypose(raw, fields)],
}
_SEQUENCE_FORMAT = "keypose_sequence"


def record_kind(dataset_dir: str) -> str:
    """The record kind of a dataset folder: its metadata's ``record`` (``view`` when it
    names none), or :data:`schemas.dataset.records.SEQUENCES_RECORD` for a tree of KeyPose sequence
    folders without one. FileNotFoundError naming the folder for anything else."""
    try:
        info = records.load_info(dataset_dir)
    except FileNotFoundError:
        if records.is_sequence_tree(dataset_dir):
            return records.SEQUENCES_RECORD
        raise
    return info.get("record") or "view"


def shards(dataset_dir: str, split: str | None = None) -> list[Shard]:
    """The shards of ``split`` (all splits when None), split by split (sorted by name), each split's
    in the order the metadata lists them. KeyPose sequences: one shard per sequence folder
    (split ``""``). ValueError naming the folder for an unknown split or a kind :func:`read` cannot
    decode."""
    kind = record_kind(dataset_dir)
    if kind == records.SEQUENCES_RECORD:
        if split is not None:
            raise ValueError(f"{dataset_dir}: KeyPose sequence folders have no splits (asked for {split!r})")
        folders = sorted({os.path.dirname(p) for p in records.sequence_frames(dataset_dir)})
        return [Shard("", f, _SEQUENCE_FORMAT, kind, dataset_dir) for f in folders]
    if kind not in DECODERS and kind != records.CAFFE_RECORD:
        raise ValueError(f"{dataset_dir}: no reader for record kind {kind!r} "
                         f"(known: {sorted([*DECODERS, records.CAFFE_RECORD, records.SEQUENCES_RECORD])})")
    info = records.load_info(dataset_dir)
    if split is not None and split not in info.get("splits", {}):
        raise ValueError(f"{dataset_dir}: no split {split!r} (splits: {sorted(info.get('splits', {}))})")
    return [Shard(name, path, fmt, kind, dataset_dir) for name, path, fmt in records.split_shards(dataset_dir, split, info)]


def _select(rec: dict, fields) -> dict:
    return rec if fields is None else {k: v for k, v in rec.items() if k in fields}


def read_shard(shard: Shard, fields: Iterable[str] | None = None) -> Iterator[dict]:
    """Yield the decoded records of one shard (see the module docstring), in stored order;
    ``fields``: only these (cheaper: PNGs and maps not asked for are not decoded)."""
    fields = None if fields is None else set(fields)
    if shard.format == _SEQUENCE_FORMAT:
        for pb_l in records.sequence_frames(shard.path):
            if os.path.dirname(pb_l) == shard.path:
                frame = records.read_sequence_frame(shard.root, pb_l)
                for side in ("visible_L", "visible_R"):
                    frame[side] = np.asarray(frame[side], np.int64)
                yield _select(frame, fields)
    elif shard.format == "clickhere_lmdb":
        for inst in caffe_lmdb.read_caffe_split(shard.path, fields):
            yield _select(inst, fields)
    else:
        decode = DECODERS[shard.kind]
        for raw in records.iter_shard(shard.path, shard.format):
            for rec in decode(raw, fields):
                yield _select(rec, fields)


def interleave(iterators: list[Iterator], cycle_length: int) -> Iterator:
    """Items of ``iterators`` taken one at a time from each of up to ``cycle_length`` open ones in
    turn; an exhausted one is replaced by the next unopened one in its slot (``tf.data``'s
    ``interleave`` with ``block_length=1``)."""
    pending = list(iterators)[::-1]
    slots = [pending.pop() for _ in range(min(max(1, cycle_length), len(pending)))]
    while slots:
        i = 0
        while i < len(slots):
            try:
                yield next(slots[i])
                i += 1
            except StopIteration:
                if pending:
                    slots[i] = pending.pop()
                else:
                    del slots[i]


def read(dataset_dir: str, split: str | None = None, shard: int | Iterable[int] | None = None, *,
         shuffle_shards: bool = False, seed: int = 0, cycle_length: int = 8,
         fields: Iterable[str] | None = None) -> Iterator[dict]:
    """Yield the records of the dataset folder ``dataset_dir`` as dicts of numpy arrays (module
    docstring: the fields of each record kind, their shapes and channel orders).

    ``split``: one split (default: all, by name). ``shard``: an index (or indices) into
    :func:`shards` ``(dataset_dir, split)``: only those shards. ``shuffle_shards``: the shards in a
    random order drawn from ``seed``, read interleaved ``cycle_length`` at a time (records inside a
    shard keep their order; a compact Click-Here view's instances stay together). ``fields``: only
    these fields of each record. Errors name the folder or file: FileNotFoundError (no dataset),
    ValueError (an unknown split, shard index or record kind), ``schemas.tfrecord.CorruptRecordError``
    (a damaged shard), ``schemas.features.SchemaError`` (a record that does not match its schema)."""
    chosen = shards(dataset_dir, split)
    if shard is not None:
        idx = [shard] if isinstance(shard, (int, np.integer)) else list(shard)
        bad = [i for i in idx if not 0 <= int(i) < len(chosen)]
        if bad:
            raise ValueError(f"{dataset_dir}: no shard {bad} (split {split!r} has {len(chosen)} shards)")
        chosen = [chosen[int(i)] for i in idx]
    if shuffle_shards:
        order = np.random.default_rng(seed).permutation(len(chosen))
        yield from interleave([read_shard(chosen[i], fields) for i in order], cycle_length)
    else:
        for s in chosen:
            yield from read_shard(s, fields)
