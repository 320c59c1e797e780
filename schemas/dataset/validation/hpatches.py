"""An HPatches-layout folder (:mod:`kpdata.kp2d.hpatches`): ``v_``/``i_`` sequences of
``1.ppm`` .. ``6.ppm`` and ``H_1_2`` .. ``H_1_6``."""
from __future__ import annotations

import os
import re

import cv2
import numpy as np

from kpdata.kp2d.hpatches import NUM_IMAGES
from schemas.dataset import checks
from schemas.dataset.validation.files import check_temporaries_in
from schemas.dataset.validation.report import Report

__all__ = ["SEQUENCE_NAME", "looks_like_hpatches", "validate_hpatches"]

SEQUENCE_NAME = re.compile(r"^[iv]_")


def looks_like_hpatches(root: str) -> bool:
    """A folder holding at least one ``i_`` / ``v_`` sequence with a ``1.ppm``."""
    try:
        names = os.listdir(root)
    except OSError:
        return False
    return any(SEQUENCE_NAME.match(n) and os.path.isfile(os.path.join(root, n, "1.ppm")) for n in names)


def validate_hpatches(hp_root: str, report: Report, max_records: int | None, expect: int | None = None,
                      label: str | None = None) -> None:
    """An HPatches-layout folder: each ``v_``/``i_`` sequence has 1..6.ppm (readable, one size)
    and H_1_2..H_1_6 (finite, invertible 3x3); ``i_`` homographies are the identity; in ``v_``
    sequences image k is image 1 warped by H_1_k. ``expect``: the number of sequences the run
    exported; ``label``: how defects name the folder (default ``hp_root``); the first
    ``max_records`` sequences have their images read."""
    c = report.check("hpatches")
    label = label or hp_root
    if not os.path.isdir(hp_root):
        c.defect(label, "not a folder")
        return
    seqs = sorted(n for n in os.listdir(hp_root) if os.path.isdir(os.path.join(hp_root, n)) and not n.startswith("."))
    full = len(seqs) if max_records is None else min(len(seqs), max_records)
    for i, name in enumerate(seqs):
        rel = f"{label}/{name}"
        if not SEQUENCE_NAME.match(name):
            c.defect(rel, "a folder that is not an i_ or v_ sequence")
            continue
        d = os.path.join(hp_root, name)
        hs = {}
        for k in range(2, NUM_IMAGES + 1):
            p = os.path.join(d, f"H_1_{k}")
            try:
                h = np.loadtxt(p, dtype=np.float64)
                if h.shape != (3, 3) or not np.all(np.isfinite(h)) or abs(np.linalg.det(h)) < 1e-12:
                    raise ValueError(f"shape {h.shape}, det {np.linalg.det(h) if h.shape == (3, 3) else '-'}")
                hs[k] = h
            except (OSError, ValueError) as e:
                c.defect(f"{rel}/H_1_{k}", f"not a finite invertible 3x3 matrix ({e})")
        for k in range(1, NUM_IMAGES + 1):
            if not os.path.isfile(os.path.join(d, f"{k}.ppm")):
                c.defect(f"{rel}/{k}.ppm", "missing")
        if name.startswith("i_"):
            for k, h in hs.items():
                if not np.allclose(h / h[2, 2], np.eye(3), atol=1e-9):
                    c.defect(f"{rel}/H_1_{k}", "an illumination sequence's homography must be the identity")
        if i >= full:
            continue
        imgs = {}
        for k in range(1, NUM_IMAGES + 1):
            p = os.path.join(d, f"{k}.ppm")
            if os.path.isfile(p):
                img = cv2.imread(p, cv2.IMREAD_COLOR)
                if img is None:
                    c.defect(f"{rel}/{k}.ppm", "does not decode")
                else:
                    imgs[k] = img
        if name.startswith("v_") and 1 in imgs:
            for k, h in hs.items():
                if k in imgs:
                    p = checks.check_hpatches_warp(imgs[1], imgs[k], h)
                    if p:
                        c.defect(f"{rel}/H_1_{k}", p.replace("image k", f"{k}.ppm").replace("image 1", "1.ppm"))
    if expect is not None and len(seqs) != expect:
        c.defect(label, f"{len(seqs)} sequences, stats.json counts {expect} exported")
    check_temporaries_in(hp_root, c, label)
    c.note(f"{label}: {len(seqs)} sequences, {full} checked in full")
