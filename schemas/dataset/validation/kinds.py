"""Record kinds: how to check a dataset folder of one record type, found by the ``record`` name
its kpdata_info.json gives.

A :class:`RecordKind` subclass names its ``record``, titles the report and checks the folder
(:meth:`RecordKind.validate`); the
kinds of records kept in shards derive from :class:`schemas.dataset.validation.shards.ShardedKind`.
:func:`registry` gathers the kinds into the table the validator looks records up in.
"""
from __future__ import annotations

import abc

from kpdata import seeding
from schemas.dataset.names import KPDATA_INFO

from schemas.dataset.validation.report import Report

__all__ = ["RecordKind", "registry", "formats", "config_splits", "assigned_split", "check_split_assignment"]


class RecordKind(abc.ABC):
    """How to check a dataset folder of one record type.

    ``record``: the record name in kpdata_info.json (the registry key); ``has_features``: the
    folder's kpdata_info.json describes its schema (``features``);
    ``counts_records``: stats.json's records_written counts the listed examples;
    ``exports_hpatches``: the kind checks the HPatches folder its run exported itself."""

    record: str = ""
    has_features = True
    counts_records = True
    exports_hpatches = False

    def __init__(self, info: dict, report: Report):
        self.info, self.report = info, report
        self.config = info.get("config") or {}

    def title(self) -> str:
        """What the report says the folder is."""
        return self.record

    @abc.abstractmethod
    def validate(self, root: str, stats: dict | None, max_records: int | None, hpatches: str | None = None):
        """Check the folder ``root`` into the report (metadata is already checked); returns the
        number of dropped views the dead-letter check expects (None: the kind drops none)."""


def registry(*kinds: type[RecordKind]) -> dict[str, type[RecordKind]]:
    """{record name: kind}; a record name claimed twice is an error."""
    out: dict[str, type[RecordKind]] = {}
    for k in kinds:
        if not k.record or k.record in out:
            raise ValueError(f"{k.__name__}: record name {k.record!r} is empty or already taken")
        out[k.record] = k
    return out


def formats(info: dict) -> str:
    """The storage formats of the splits, e.g. ``tfrecord`` or ``lmdb/tfrecord``."""
    return "/".join(sorted({s.get("format", "?") for s in info.get("splits", {}).values()
                            if isinstance(s, dict)})) or "no splits"


def config_splits(cfg: dict) -> list[tuple]:
    """The ``--splits`` of a configuration as [(name, fraction)] (default: all in train)."""
    return [tuple(s) for s in cfg.get("splits") or [["train", 1.0]]]


def assigned_split(info: dict, group: str) -> str | None:
    """The split kpdata_info.json's ``split_assignment`` gives ``group`` (a model, a photo); None
    when it lists none."""
    return ((info.get("split_assignment") or {}).get("groups") or {}).get(group)


def check_split_assignment(info: dict, report: Report) -> None:
    """kpdata_info.json's ``split_assignment`` (when the pipeline splits) is the seeded
    assignment of its groups (:func:`kpdata.seeding.assign_splits` with the run's seed and
    ``--splits``; not strict: a run with too few groups for its default splits filled what it
    could): recomputed here, so a hand-edited or stale assignment is a defect."""
    sa = info.get("split_assignment")
    if sa is None:
        return
    c = report.check("metadata")
    groups = sa.get("groups") if isinstance(sa, dict) else None
    if not isinstance(groups, dict):
        c.defect(KPDATA_INFO, "split_assignment has no groups object")
        return
    cfg = info.get("config") or {}
    splits = config_splits(cfg.get("render") or cfg)
    try:
        want = seeding.assign_splits(int(info.get("seed", 0)), splits, list(groups), sa.get("by", "model"), strict=False)
    except seeding.SplitError as e:
        c.defect(KPDATA_INFO, f"split_assignment: {e}")
        return
    wrong = sorted(g for g in groups if groups[g] != want[g])
    if wrong:
        c.defect(KPDATA_INFO, f"split_assignment: {len(wrong)} of {len(groups)} {sa.get('by', 'model')}s are not where "
                              f"the seed and --splits put them (e.g. {wrong[0]!r}: {groups[wrong[0]]!r}, "
                              f"expected {want[wrong[0]]!r})")
    else:
        c.note(f"split_assignment of {len(groups)} {sa.get('by', 'model')}s recomputed")
