"""Record kinds: how to check a dataset folder of one record type, found by the ``record`` name
its kpdata_info.json gives.

A :class:`RecordKind` subclass names its ``record``, titles the report and checks the folder
(:meth:`RecordKind.validate`); the
kinds of records kept in shards derive from :class:`schemas.dataset.validation.shards.ShardedKind`.
:func:`registry` gathers the kinds into the table the validator looks records up in.
"""
from __future__ import annotations

import abc

from schemas.dataset.validation.report import Report

__all__ = ["RecordKind", "registry", "formats", "config_splits"]


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
