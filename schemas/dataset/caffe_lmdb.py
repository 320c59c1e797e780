"""Click-Here's Caffe LMDB layout on disk: writing and reading one split folder (formats.md §3.8).

One split folder holds one LMDB per field (``<field>_lmdb``, :data:`schemas.clickhere.CAFFE_LAYOUT`),
all with the same sorted key set and Caffe ``Datum`` values, plus ``keys.txt`` (the sorted keys)
and ``views.jsonl`` (one line per rendered view: where its instances came from).
"""
from __future__ import annotations

import json
import os
import shutil
import struct

from schemas import clickhere as chs
from schemas.dataset import lmdb, names

__all__ = ["KEYS_FILE", "VIEWS_FILE", "view_summary", "pack_view", "unpack_view", "write_caffe_lmdbs",
           "read_caffe_split"]

KEYS_FILE = "keys.txt"
VIEWS_FILE = "views.jsonl"


def view_summary(rec: dict) -> dict:
    """One line of views.jsonl: where a view's instances came from."""
    return {"key": rec["key"], "viewpoint": [round(float(v), 6) for v in rec["viewpoint"]],
            "crop_box": [int(v) for v in rec["render/crop_box"]],
            "truncation": [round(float(v), 6) for v in rec["render/truncation"]],
            "environment_energy": round(float(rec["render/environment_energy"]), 6),
            "lights": [[round(float(v), 6) for v in row] for row in rec["render/lights"]],
            "background": rec["render/background"], "keypoints": list(rec["keypoints/names"]),
            "instances": list(rec["instances/key"]) + list(rec["instances/flip_key"])}


def pack_view(raw: bytes) -> bytes:
    """A compact view record -> what :func:`write_caffe_lmdbs` stores of it, expanded: a uint32
    (little endian) header length, the JSON header ``{"view": views.jsonl line, "instances": [[key,
    [Datum length per field of CAFFE_FIELDS]], ...]}``, then the Datums, instance by instance, field by
    field. Packing is the costly part (maps, Datums): it runs where the view is made, in parallel."""
    rec = chs.decode_view(raw)
    index, blobs = [], []
    for inst in chs.expand(rec):
        datums = chs.caffe_datums(inst)
        index.append([inst["key"], [len(datums[f]) for f in chs.CAFFE_FIELDS]])
        blobs.extend(datums[f] for f in chs.CAFFE_FIELDS)
    header = json.dumps({"view": view_summary(rec), "instances": index}, sort_keys=True).encode("utf-8")
    return struct.pack("<I", len(header)) + header + b"".join(blobs)


def unpack_view(data: bytes) -> tuple[dict, list[tuple[str, dict[str, bytes]]]]:
    """(views.jsonl line, [(instance key, {field: Datum bytes})]) of a :func:`pack_view` result."""
    (n,) = struct.unpack_from("<I", data)
    header = json.loads(data[4:4 + n].decode("utf-8"))
    offset, instances = 4 + n, []
    for key, lengths in header["instances"]:
        datums = {}
        for field, length in zip(chs.CAFFE_FIELDS, lengths):
            datums[field] = data[offset:offset + length]
            offset += length
        instances.append((key, datums))
    if offset != len(data):
        raise ValueError(f"a packed view holds {len(data) - offset} bytes beyond its instances")
    return header["view"], instances


def write_caffe_lmdbs(split_dir: str, views) -> dict:
    """Views packed by :func:`pack_view` [(view key, bytes)], in key order, into Click-Here's LMDBs
    under ``split_dir`` (``<field>_lmdb`` each, the same keys in every one), ``keys.txt`` and
    ``views.jsonl``, streaming: memory holds one transaction. Written aside and renamed. Returns
    {"file", "examples", "bytes"}."""
    tmp = names.tmp_name(split_dir)
    os.makedirs(tmp)
    envs = {f: lmdb.open_write(os.path.join(tmp, chs.lmdb_name(f))) for f in chs.CAFFE_FIELDS}
    n_keys, previous = 0, None
    try:
        with open(os.path.join(tmp, VIEWS_FILE), "w", encoding="utf-8") as views_file:
            txns = {f: e.begin(write=True) for f, e in envs.items()}
            for n, (key, packed) in enumerate(views):
                if previous is not None and key <= previous:
                    raise ValueError(f"{split_dir}: views not in key order ({previous!r} before {key!r})")
                previous = key
                summary, instances = unpack_view(packed)
                views_file.write(json.dumps(summary, sort_keys=True) + "\n")
                for inst_key, datums in instances:
                    k = inst_key.encode("ascii")
                    for field, datum in datums.items():
                        if not txns[field].put(k, datum, overwrite=False):
                            raise ValueError(f"duplicate instance key {inst_key!r} in {split_dir}")
                    n_keys += 1
                if n % 20 == 19:  # commit every ~100-200 instances, as Click-Here commits every 100
                    for f, txn in list(txns.items()):
                        txn.commit()
                        txns[f] = envs[f].begin(write=True)
            for t in txns.values():
                t.commit()
        for e in envs.values():
            e.sync(True)
        with open(os.path.join(tmp, KEYS_FILE), "w", encoding="ascii") as f, envs["image"].begin() as txn:
            for k in txn.cursor().iternext(keys=True, values=False):  # LMDB's order: the sorted keys
                f.write(bytes(k).decode("ascii") + "\n")
    except BaseException:
        for e in envs.values():
            e.close()
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    for e in envs.values():
        e.close()
    if os.path.exists(split_dir):
        shutil.rmtree(split_dir)
    os.replace(tmp, split_dir)
    size = sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(split_dir) for f in fs)
    return {"file": os.path.basename(split_dir), "examples": n_keys, "bytes": size}


def read_caffe_split(split_dir: str, fields=None):
    """Instances of one split of the Caffe LMDB layout, in key order, decoded from the Datums;
    ``fields``: read only the LMDBs of these (``keypoint_pixel`` comes from ``keypoint_loc``)."""
    want = [f for f in chs.CAFFE_FIELDS
            if fields is None or f in fields or (f == "keypoint_loc" and "keypoint_pixel" in fields)]
    envs = {f: lmdb.open_read(os.path.join(split_dir, chs.lmdb_name(f))) for f in want}
    try:
        txns = {f: e.begin() for f, e in envs.items()}
        first = want[0] if want else "image"
        if first not in txns:  # only the key asked for
            txns[first] = envs.setdefault(first, lmdb.open_read(os.path.join(split_dir, chs.lmdb_name(first)))).begin()
        for key, _ in txns[first].cursor():
            yield {"key": key.decode("ascii"), **chs.instance_from_datums({f: txns[f].get(key) for f in want})}
    finally:
        for e in envs.values():
            e.close()
