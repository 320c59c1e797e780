"""Datasets of records in shards (TFRecord files or LMDB environments): the shards kpdata_info.json
lists are present with their bytes and counts, framed, decoded and checked record by record by a
:class:`ShardedKind`; keys unique and sorted; no stray shard."""
from __future__ import annotations

import os

from kpdata.seeding import bucket
from schemas.dataset.names import LMDB_DATA
from schemas.dataset.validation.decode import decode_strict
from schemas.dataset.validation.files import check_temporaries, check_unexpected, dir_bytes, folder_entries
from schemas.dataset.validation.framing import sample_counts, walk_lmdb, walk_tfrecord
from schemas.dataset.validation.kinds import RecordKind, assigned_split
from schemas.dataset.validation.metadata import check_features_match, check_tfds
from schemas.dataset.validation.report import Check, Report

__all__ = ["ShardedKind", "validate_shards", "check_shards", "check_stray_shards"]


class ShardedKind(RecordKind):
    """Records of one ``schema`` in shards. Each record is checked by :meth:`decode` (fields and
    problems), :meth:`key_of` (None when the record has none), :meth:`key_problem` (format,
    split, shard) and :meth:`invariants` (values); ``shard_folders``: where stray shards are
    looked for."""

    schema = None
    shard_folders = ("",)

    def validate(self, root, stats, max_records, hpatches=None):
        validate_shards(root, self.report, self.info, self, max_records, self.shard_folders)
        return None

    def decode(self, data: bytes):
        return decode_strict(self.schema, data)

    def key_of(self, rec: dict) -> str | None:
        return rec.get("key")

    def key_problem(self, key: str, split: str, shard_index: int, num_shards: int, lmdb: bool, file: str) -> str | None:
        return None

    def invariants(self, rec: dict, split: str) -> list[str]:
        return []

    def placement_problem(self, key, what, group, splits, split, shard_index, num_shards, lmdb) -> str | None:
        """``key`` of ``group`` (a model, a photo: the work unit) in the split kpdata_info.json's
        ``split_assignment`` gives the group (``splits``: unused, the assignment is recorded) and,
        for TFRecords, in the shard the group's key hashes to (units are assigned to shards,
        DESIGN §7)."""
        want = assigned_split(self.info, group)
        if want is None:
            return f"{what} {group} is not in kpdata_info.json's split_assignment"
        if want != split:
            return f"{what} {group} belongs in split {want!r} (seed, --splits), found in {split!r}"
        if not lmdb and bucket(group, num_shards) != shard_index:
            return f"{what} {group} hashes to shard {bucket(group, num_shards)} of {num_shards}, found in shard {shard_index}"
        return None

    def finish(self) -> None:
        """Called after the last record."""

    def layout_files(self) -> tuple:
        """The files (relative paths) the layout writes beside its shards and the metadata."""
        return ()


def validate_shards(root: str, report: Report, info: dict, kind: ShardedKind, max_records: int | None,
                    shard_folders=("",)) -> None:
    """The shards, stray shards in ``shard_folders``, temporaries, kpdata_info.json's features = the
    schema's, TFDS's metadata where the shards are in its template."""
    check_shards(root, report, info, kind, max_records)
    stray = check_stray_shards(root, report, info, shard_folders)
    check_unexpected(root, report, shard_folders, report.listed | stray | set(kind.layout_files())
                     | {folder for folder in shard_folders if folder})
    check_temporaries(root, report)
    if kind.schema is not None:
        check_features_match(root, report, kind.schema)
        check_tfds(root, report, kind.schema, info)


def check_shards(root: str, report: Report, info: dict, kind: ShardedKind, max_records: int | None) -> None:
    """Every listed shard: present, its bytes and example count as listed, framing / CRCs,
    records decoded and checked (the first ``max_records`` per split in full), keys unique and
    sorted within a shard. Records the listed shards in ``report.listed``."""
    files_c = report.check("files")
    has_tfrecords = any(s.get("format", "tfrecord") == "tfrecord" for s in info.get("splits", {}).values())
    frame_c = report.check("framing") if has_tfrecords else Check("framing")
    rec_c, key_c, inv_c = report.check("records"), report.check("keys"), report.check("invariants")
    seen: dict[str, str] = {}
    totals = {"shards": 0, "records": 0, "checked": 0, "bytes": 0}
    listed = set()
    for split, s in sorted(info.get("splits", {}).items()):
        shards = s.get("shards", [])
        fmt = s.get("format", "tfrecord")
        full = sample_counts([int(d["examples"]) for d in shards], max_records)
        for index, (shard, k_full) in enumerate(zip(shards, full)):
            rel = shard["file"]
            listed.add(os.path.normpath(rel))
            path = os.path.join(root, rel)
            totals["shards"] += 1
            if fmt == "lmdb":
                if not os.path.isdir(path) or not os.path.isfile(os.path.join(path, LMDB_DATA)):
                    files_c.defect(rel, f"listed in kpdata_info.json but missing (no LMDB {LMDB_DATA})")
                    continue
                size = dir_bytes(path)
            else:
                if not os.path.isfile(path):
                    files_c.defect(rel, "listed in kpdata_info.json but missing")
                    continue
                size = os.path.getsize(path)
            totals["bytes"] += size
            if size != int(shard["bytes"]):
                files_c.defect(rel, f"{size} bytes, kpdata_info.json lists {shard['bytes']}")
            records = walk_lmdb(path, k_full, files_c, rel) if fmt == "lmdb" else walk_tfrecord(path, k_full, frame_c, rel)
            n = 0
            prev = None
            for i, data in records:
                n += 1
                if not data:
                    continue
                lmdb_key = None
                if isinstance(data, tuple):
                    lmdb_key, data = data
                totals["checked"] += 1
                prev = _check_record(kind, data, lmdb_key, i, rel, split, index, len(shards), fmt == "lmdb", seen,
                                     prev, (rec_c, key_c, inv_c))
            totals["records"] += n
            if n != int(shard["examples"]):
                files_c.defect(rel, f"{n} records, kpdata_info.json lists {shard['examples']}")
    kind.finish()
    files_c.note(f"{totals['shards']} shard(s), {totals['records']} records, {totals['bytes'] / 1e6:,.1f} MB")
    frame_c.note("length and data CRCs" + ("" if max_records is None else " (data CRCs of the checked records)"))
    rec_c.note(f"{totals['checked']} of {totals['records']} records decoded with {kind.schema.name if kind.schema else '?'}")
    key_c.note(f"{len(seen)} keys" if seen else "records carry no key")
    inv_c.note(f"{totals['checked']} records")
    report.listed = listed


def _check_record(kind, data, lmdb_key, i, rel, split, index, num_shards, is_lmdb, seen, prev, checks):
    """Decode and check one record; returns the key the next record must follow."""
    rec_c, key_c, inv_c = checks
    rec, problems = kind.decode(data)
    key = kind.key_of(rec) if rec else None
    if key is None:
        key = lmdb_key
    label = key or f"record {i}"
    for p in problems:
        rec_c.defect(rel, p, label)
    if lmdb_key is not None and key is not None and lmdb_key != key:
        key_c.defect(rel, f"LMDB key {lmdb_key!r} differs from the record's key field", label)
    if key is not None:
        if key in seen:
            key_c.defect(rel, f"duplicate key (also in {seen[key]})", key)
        seen.setdefault(key, rel)
        if prev is not None and key <= prev and lmdb_key is None:
            key_c.defect(rel, f"not sorted: follows {prev!r}", key)
        prev = key
        p = kind.key_problem(key, split, index, num_shards, is_lmdb, rel)
        if p:
            key_c.defect(rel, p, key)
    if not problems:
        try:
            for p in kind.invariants(rec, split):
                inv_c.defect(rel, p, label)
        except Exception as e:  # noqa: BLE001 - a record odd enough to break a check is a defect
            inv_c.defect(rel, f"checking the record failed: {type(e).__name__}: {e}", label)
    return prev


def check_stray_shards(root: str, report: Report, info: dict, folders=("",)) -> set:
    """Shard-like entries (``*.tfrecord*``, ``*.lmdb``) in the shard folders that kpdata_info.json
    does not list; returns them (relative paths)."""
    c = report.check("files")
    stray: set = set()
    for _, name, rel in folder_entries(root, folders):
        if (".tfrecord" in name or name.endswith(".lmdb")) and rel not in report.listed:
            c.defect(rel, "a shard file kpdata_info.json does not list (stray)")
            stray.add(rel)
    return stray
