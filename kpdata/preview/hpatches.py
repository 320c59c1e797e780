"""Preview sheet of an HPatches-layout folder (``gen_homography_pairs --hpatches_out``,
:mod:`kpdata.kp2d.hpatches`): one row per sequence, its six images side by side; on image 1 the border
of each image k = 2..6 mapped back by ``inv(H_1_k)`` (one colour per k, numbered; image k framed in
the same colour), so a wrong homography shows as an outline whose content is not what image k shows.
Illumination sequences (``i_``) have identity homographies: every outline is the image border.

Input images are RGB uint8; the sheet is BGR uint8 for ``cv2.imwrite``.
"""
from __future__ import annotations

import os

import cv2
import numpy as np

from kpdata.preview.pairs import caption, pair_sheet, with_legend

__all__ = ["COLORS", "LEGEND", "sequence_row", "write_sequence_sheet"]

_THUMB_H = 130
_GAP = 4
_BG = (48, 48, 48)
COLORS = {2: (0, 255, 0), 3: (0, 255, 255), 4: (255, 0, 255), 5: (255, 255, 0), 6: (0, 128, 255)}  # BGR per k
LEGEND = [((0, 255, 0), "line", "on image 1: the border of image k (k = 2..6, one colour each, numbered) mapped back "
                                "by inv(H_1_k); image k is framed in its colour"),
          (None, None, "its content inside outline k must be what image k shows; v_ = viewpoint sequence, "
                       "i_ = illumination sequence (H = identity: every outline is image 1's border)")]


def _scaled(rgb: np.ndarray, height: int) -> tuple[np.ndarray, float]:
    bgr = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2BGR)
    s = height / bgr.shape[0]
    return cv2.resize(bgr, (max(1, round(bgr.shape[1] * s)), height), interpolation=cv2.INTER_AREA), s


def _label(img: np.ndarray, label: str) -> np.ndarray:
    cap = np.full((16, img.shape[1], 3), 24, np.uint8)
    cv2.putText(cap, label, (3, 12), cv2.FONT_HERSHEY_SIMPLEX, 0.38, (200, 200, 200), 1, cv2.LINE_AA)
    return np.vstack([img, cap])


def sequence_row(name: str, images: list, homographies: list) -> np.ndarray:
    """One sequence: ``images`` (6 RGB uint8 arrays, any sizes), ``homographies`` (5 (3, 3) pixel
    homographies ``H_1_2`` ... ``H_1_6``, image 1 -> image k) -> a BGR row: image 1 with the outlines
    of images 2..6 mapped into it, then images 2..6 framed in their outline's colour, over the name."""
    ref, s = _scaled(images[0], _THUMB_H)
    for k, (im, h) in enumerate(zip(images[1:], homographies), 2):
        hk, wk = im.shape[:2]
        border = np.array([[0, 0], [wk - 1, 0], [wk - 1, hk - 1], [0, hk - 1]], np.float64)
        back = cv2.perspectiveTransform(border[None], np.linalg.inv(np.asarray(h, np.float64)))[0]
        pts = ((back + 0.5) * s - 0.5)
        cv2.polylines(ref, [np.round(pts * 16).astype(np.int32)], True, COLORS[k], 1, cv2.LINE_AA, shift=4)
        x, y = (int(np.clip(v, 2, lim - 10)) for v, lim in zip(pts[0], (ref.shape[1], ref.shape[0])))
        cv2.putText(ref, str(k), (x + 2, y + 11), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 3, cv2.LINE_AA)
        cv2.putText(ref, str(k), (x + 2, y + 11), cv2.FONT_HERSHEY_SIMPLEX, 0.4, COLORS[k], 1, cv2.LINE_AA)
    thumbs = [_label(ref, "1 (reference)")]
    for k, im in enumerate(images[1:], 2):
        t, _ = _scaled(im, _THUMB_H)
        cv2.rectangle(t, (0, 0), (t.shape[1] - 1, t.shape[0] - 1), COLORS[k], 2)
        thumbs.append(_label(t, f"{k}"))
    parts = []
    for t in thumbs:
        parts += [t, np.full((t.shape[0], _GAP, 3), _BG, np.uint8)]
    row = np.hstack(parts[:-1])
    return np.vstack([row, caption(name, row.shape[1])])


def write_sequence_sheet(path: str, rows: list[np.ndarray]) -> str:
    """The rows of :func:`sequence_row`, one per line, under :data:`LEGEND`, written to ``path``."""
    sheet = with_legend(pair_sheet(rows, columns=1), LEGEND)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    if not cv2.imwrite(path, sheet):
        raise OSError(f"could not write {path}")
    return path
