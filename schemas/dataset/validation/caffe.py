"""Click-Here's Caffe LMDB layout (``record: caffe_datum``, :data:`schemas.clickhere.CAFFE_LAYOUT`):
per split folder one LMDB per field with identical key sets, Datums of the declared shapes and
dtypes, ``keys.txt`` and ``views.jsonl`` (:mod:`schemas.dataset.caffe_lmdb`)."""
from __future__ import annotations

import json
import os

import numpy as np

from schemas import caffe
from schemas import clickhere as chs
from schemas.dataset import checks, lmdb
from schemas.dataset.caffe_lmdb import KEYS_FILE, VIEWS_FILE
from schemas.dataset.names import KPDATA_INFO, LMDB_DATA, TEMP_NAME
from schemas.dataset.validation.clickhere import dropped_views, flip_classes, instance_key_problem, num_classes
from schemas.dataset.validation.files import check_temporaries, check_unexpected, dir_bytes, read_lines
from schemas.dataset.validation.kinds import RecordKind
from schemas.dataset.validation.report import Check

__all__ = ["CaffeKind", "decode_datums"]

LAYOUT = chs.CAFFE_LAYOUT


class CaffeKind(RecordKind):
    record = LAYOUT.name

    def __init__(self, info, report):
        super().__init__(info, report)
        self.seen: dict = {}  # key -> the split folder it was first seen in
        self.n_checked = self.n_total = 0

    def title(self):
        return f"clickhere {self.record}"

    def validate(self, root, stats, max_records, hpatches=None):
        """Every listed split folder (:func:`_check_split`), no unlisted one, no temporaries."""
        report, info = self.report, self.info
        files_c, rec_c, key_c, inv_c = (report.check(n) for n in ("files", "records", "keys", "invariants"))
        listed = set()
        for split, s in sorted(info["splits"].items()):
            for shard in s.get("shards", []):
                listed.add(os.path.normpath(shard["file"]))
                self._check_split(root, split, s, shard, max_records)
        report.listed = listed
        n_fields = len(LAYOUT.fields)
        files_c.note(f"{len(listed)} split folder(s) x {n_fields} LMDBs, {self.n_total} instances")
        rec_c.note(f"{self.n_checked} of {self.n_total} instances' Datums decoded")
        key_c.note(f"{len(self.seen)} keys, identical sets across the {n_fields} LMDBs")
        inv_c.note(f"{self.n_checked} instances")
        # Stray LMDB split folders: directories in root that look like a split layout but are unlisted.
        first = LAYOUT.fields[0].lmdb
        for name in sorted(os.listdir(root)):
            p = os.path.join(root, name)
            if os.path.isdir(p) and not TEMP_NAME.search(name) and name not in listed and \
                    os.path.isdir(os.path.join(p, first)):
                files_c.defect(name, "a split folder of LMDBs kpdata_info.json does not list (stray)")
        check_unexpected(root, report, [""] + sorted(listed), set(listed) | {
            os.path.join(split, f) for split in listed for f in (KEYS_FILE, VIEWS_FILE, *(x.lmdb for x in LAYOUT.fields))}
            | {name for name in os.listdir(root) if os.path.isdir(os.path.join(root, name, first))})
        check_temporaries(root, report)
        return dropped_views(stats)

    def _check_split(self, root, split, s, shard, max_records) -> None:
        """One split folder: its bytes, the LMDBs' key sets, counts, keys.txt, views.jsonl, the keys,
        and the first ``max_records`` instances decoded and checked."""
        files_c, rec_c, key_c, inv_c = (self.report.check(n) for n in ("files", "records", "keys", "invariants"))
        rel = shard["file"]
        d = os.path.join(root, rel)
        if not os.path.isdir(d):
            files_c.defect(rel, "listed in kpdata_info.json but missing")
            return
        size = dir_bytes(d)
        if size != int(shard["bytes"]):
            files_c.defect(rel, f"{size} bytes, kpdata_info.json lists {shard['bytes']}")
        n_classes = num_classes(self.config)
        flip_class = flip_classes(self.config)
        envs, keysets = {}, {}
        try:
            for field in LAYOUT.fields:
                p = os.path.join(d, field.lmdb)
                frel = f"{rel}/{field.lmdb}"
                if not os.path.isfile(os.path.join(p, LMDB_DATA)):
                    files_c.defect(frel, "missing")
                    continue
                try:
                    envs[field.name] = lmdb.open_read(p)
                except lmdb.Error as e:
                    files_c.defect(frel, f"not a readable LMDB ({e})")
                    continue
                with envs[field.name].begin() as txn:
                    keysets[field.name] = [bytes(k) for k in txn.cursor().iternext(values=False)]
            ref = _compare_key_sets(keysets, rel, key_c)
            keys = [k.decode("utf-8", errors="replace") for k in ref]
            self.n_total += len(keys)
            if len(keys) != int(shard["examples"]):
                files_c.defect(rel, f"{len(keys)} instances, kpdata_info.json lists {shard['examples']}")
            if s.get("num_instances") is not None and s["num_instances"] != len(keys):
                files_c.defect(KPDATA_INFO, f"split {split!r}: num_instances {s['num_instances']}, "
                                             f"the LMDBs hold {len(keys)}")
            lines = read_lines(os.path.join(d, KEYS_FILE), files_c, f"{rel}/{KEYS_FILE}")
            if lines is not None and lines != sorted(keys):
                files_c.defect(f"{rel}/{KEYS_FILE}", f"is not the sorted key set of the LMDBs ({len(lines)} lines, "
                                                     f"{len(keys)} keys)")
            _check_views_jsonl(d, rel, set(keys), files_c)
            flips = set(self.config.get("flip_splits") or [])
            for key in keys:
                if key in self.seen:
                    key_c.defect(rel, f"duplicate key (also in {self.seen[key]})", key)
                self.seen.setdefault(key, rel)
                p = instance_key_problem(key, split, self.info, flips, 0, 1, True)
                if p:
                    key_c.defect(rel, p, key)
            full = len(ref) if max_records is None else min(len(ref), max_records)
            if len(envs) == len(LAYOUT.fields):
                txns = {f: e.begin() for f, e in envs.items()}
                for kb in ref[:full]:
                    key = kb.decode("utf-8", errors="replace")
                    self.n_checked += 1
                    inst, problems = decode_datums({f: txns[f].get(kb) for f in txns}, n_classes)
                    for p in problems:
                        rec_c.defect(rel, p, key)
                    if not problems:
                        inst["key"] = key
                        try:
                            problems = checks.check_clickhere_instance(inst, n_classes, flip_class)
                        except Exception as e:  # noqa: BLE001 - a record odd enough to break a check is a defect
                            problems = [f"checking the record failed: {type(e).__name__}: {e}"]
                        for p in problems:
                            inv_c.defect(rel, p, key)
                for t in txns.values():
                    t.abort()
        finally:
            for e in envs.values():
                e.close()


def _compare_key_sets(keysets: dict, rel: str, key_c: Check) -> list[bytes]:
    """The first LMDB's keys; every other LMDB's key set differing from them is a defect."""
    ref_field = next(iter(keysets), None)
    ref = keysets.get(ref_field, [])
    for field, keys in keysets.items():
        if keys != ref:
            a, b = set(ref), set(keys)
            only_ref, only_f = sorted(a - b)[:2], sorted(b - a)[:2]
            key_c.defect(f"{rel}/{LAYOUT[field].lmdb}",
                         f"key set differs from {LAYOUT[ref_field].lmdb}'s ({len(keys)} vs {len(ref)} keys; "
                         f"only in {ref_field}: {[k.decode(errors='replace') for k in only_ref]}, only here: "
                         f"{[k.decode(errors='replace') for k in only_f]})")
    return ref


def decode_datums(raw: dict, n_classes: int | None) -> tuple[dict, list[str]]:
    """{field: Datum bytes or None} of one key -> (the instance's arrays, problems). Each field's
    Datum must parse and have its declared shape and dtype (C = ``n_classes`` where known);
    ``keypoint_loc`` must hold exactly one 255. Values are kept as stored (``viewpoint_label``
    float32), arranged as the instance's arrays, plus ``keypoint_pixel`` (x, y) int64."""
    arrs, problems = {}, []
    for field in LAYOUT.fields:
        data = raw.get(field.name)
        if data is None:
            problems.append(f"{field.lmdb}: no value")
            continue
        try:
            a = caffe.datum_to_array(bytes(data))
        except Exception as e:  # noqa: BLE001 - protobuf DecodeError, reshape ValueError
            problems.append(f"{field.lmdb}: not a Caffe Datum of its stated shape ({type(e).__name__}: {e})")
            continue
        p = field.problem(a, n_classes)
        if p:
            problems.append(f"{field.lmdb}: {p}")
            continue
        arrs[field.name] = field.unpack(a)
    if problems:
        return {}, problems
    hits = chs.keypoint_hits(arrs["keypoint_loc"])
    if len(hits) != 1:
        return {}, [f"keypoint_loc has {len(hits)} pixels at 255, expected exactly 1"]
    arrs["keypoint_pixel"] = hits[0][::-1].astype(np.int64)
    return arrs, []


def _check_views_jsonl(d: str, rel: str, keys: set, c: Check) -> None:
    """views.jsonl: one view summary per line whose instances are the LMDBs' keys."""
    lines = read_lines(os.path.join(d, VIEWS_FILE), c, f"{rel}/{VIEWS_FILE}")
    if lines is None:
        return
    listed = set()
    for i, line in enumerate(lines, 1):
        try:
            obj = json.loads(line)
            listed.update(obj["instances"])
        except (json.JSONDecodeError, KeyError, TypeError) as e:
            c.defect(f"{rel}/{VIEWS_FILE}", f"line {i} is not a view summary ({e})")
    if listed and listed != keys:
        c.defect(f"{rel}/{VIEWS_FILE}", f"its instances ({len(listed)}) are not the LMDBs' keys ({len(keys)})")
