"""Validating a dataset folder: the metadata, then the checks of its record kind (looked up by
kpdata_info.json's ``record``), an HPatches folder, the dead letters."""
from __future__ import annotations

import json
import os

from schemas.dataset.names import JOURNAL_DIR, KPDATA_INFO
from schemas.dataset.validation.caffe import CaffeKind
from schemas.dataset.validation.clickhere import ClickHereInstanceKind, ClickHereViewKind
from schemas.dataset.validation.deadletters import check_errors
from schemas.dataset.validation.files import check_temporaries
from schemas.dataset.validation.hpatches import looks_like_hpatches, validate_hpatches
from schemas.dataset.validation.keypointnet import KeypointNetKind
from schemas.dataset.validation.keypose import KeyPoseKind
from schemas.dataset.validation.kinds import check_split_assignment, registry
from schemas.dataset.validation.kp2d import KP2DKind
from schemas.dataset.validation.metadata import check_metadata
from schemas.dataset.validation.report import Report, UsageError
from schemas.dataset.validation.sequences import SequencesKind
from schemas.dataset.validation.view import ViewKind

__all__ = ["KINDS", "validate"]

KINDS = registry(ViewKind, ClickHereViewKind, ClickHereInstanceKind, CaffeKind, KeypointNetKind, KeyPoseKind,
                 SequencesKind, KP2DKind)


def validate(root: str, max_records: int | None = None, hpatches: str | None = None) -> Report:
    """Check the dataset in ``root`` (a kpdata output folder, or an HPatches-layout folder); the
    first ``max_records`` records per split in full (None: all); ``hpatches``: also this
    HPatches-layout folder. Only reads. Raises UsageError when ``root`` is not a folder, not a
    kpdata dataset, or of a record kind no validator knows."""
    if not os.path.isdir(root):
        raise UsageError(f"{root}: no such folder")
    report = Report(root)
    if not os.path.isfile(os.path.join(root, KPDATA_INFO)):
        if os.path.isdir(os.path.join(root, JOURNAL_DIR)):  # a run started, never finished
            report.kind = "unfinished run"
            report.check("metadata").defect(KPDATA_INFO, f"missing: the run writing this folder did not finish "
                                            f"(its journal {JOURNAL_DIR}/ is here); rerun the same command to finish it")
            check_temporaries(root, report)
            return report
        if looks_like_hpatches(root):
            report.kind = "HPatches layout"
            validate_hpatches(root, report, max_records, label=".")
            return report
        raise UsageError(f"{root}: no {KPDATA_INFO}; not a kpdata dataset (or an HPatches-layout folder)")
    peeked = KINDS.get(_peek_record(root))
    info, stats = check_metadata(root, report, needs_features=peeked is None or peeked.has_features,
                                 counts_records=peeked is None or peeked.counts_records)
    if info is None:
        report.kind = "unreadable kpdata_info.json"
        return report
    record = info.get("record")
    if record not in KINDS:
        raise UsageError(f"{root}: {KPDATA_INFO} has record {record!r} (layout {info.get('layout')!r}), not a kind "
                         f"this validator knows")
    check_split_assignment(info, report)
    kind = KINDS[record](info, report)
    report.kind = kind.title()
    dropped = kind.validate(root, stats, max_records, hpatches)
    if hpatches and not kind.exports_hpatches:
        validate_hpatches(hpatches, report, max_records, label=hpatches)
    check_errors(root, report, stats, dropped)
    return report


def _peek_record(root: str):
    """kpdata_info.json's record name, before the metadata check (None when unreadable)."""
    try:
        with open(os.path.join(root, KPDATA_INFO), encoding="utf-8") as f:
            return json.load(f).get("record")
    except (OSError, ValueError, AttributeError):
        return None
