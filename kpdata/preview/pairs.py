"""Contact sheet of homography pairs: each tile shows the original image with the patch that the
warped image shows outlined (green, corner 0 marked red), and the warped image beside it; a legend
above the grid says what each mark is.

Input images are RGB uint8 (H, W, 3); the sheet is BGR uint8 for ``cv2.imwrite``.
"""
from __future__ import annotations

import math
import os

import cv2
import numpy as np

from kpdata.kp2d import homography
from kpdata.preview import labels

__all__ = ["LEGEND", "caption", "pair_sheet", "pair_tile", "with_legend", "write_pair_sheet"]

_GAP = 8
_CAPTION = 18
_BG = (48, 48, 48)


def pair_tile(image: np.ndarray, image_aug: np.ndarray, h_norm, key: str, tile_height: int = 180) -> np.ndarray:
    """One BGR tile: [image with the patch outline | image_aug] over a caption with ``key``."""
    h, w = image.shape[:2]
    left = cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2BGR)
    right = cv2.cvtColor(np.ascontiguousarray(image_aug), cv2.COLOR_RGB2BGR)
    corners = homography.patch_corners(h_norm)
    px = (corners + 1.0) / 2.0 * [w - 1, h - 1]  # normalised -> pixels
    quad = np.round(px[[0, 1, 3, 2]] * 16).astype(np.int32)  # around the quadrilateral
    cv2.polylines(left, [quad], True, (0, 255, 0), 2, cv2.LINE_AA, shift=4)
    cv2.circle(left, tuple(int(v) for v in np.round(px[0])), 4, (0, 0, 255), -1, cv2.LINE_AA)
    pair = np.hstack([left, np.full((h, 4, 3), _BG, np.uint8), right])
    scale = tile_height / h
    pair = cv2.resize(pair, (max(1, round(pair.shape[1] * scale)), tile_height), interpolation=cv2.INTER_AREA)
    return np.vstack([pair, caption(key, pair.shape[1])])


def caption(text: str, width: int) -> np.ndarray:
    """A caption band ``width`` wide holding ``text`` whole, wrapped at ``/`` over as many lines as it needs."""
    lines = labels.wrap_key(text.encode("ascii", "replace").decode("ascii"), width - 8, 0.4)
    cap = np.full((_CAPTION * len(lines), width, 3), 24, np.uint8)
    for i, line in enumerate(lines):
        cv2.putText(cap, line, (4, 13 + _CAPTION * i), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (235, 235, 235), 1, cv2.LINE_AA)
    return cap


def pair_sheet(tiles: list[np.ndarray], columns: int | None = None) -> np.ndarray:
    """Tiles (BGR, any sizes) in a grid with gaps."""
    if not tiles:
        return np.full((2 * _GAP, 2 * _GAP, 3), _BG, np.uint8)
    columns = columns or max(1, min(len(tiles), math.ceil(math.sqrt(len(tiles) / 2))))
    rows = [tiles[i:i + columns] for i in range(0, len(tiles), columns)]
    tw = max(t.shape[1] for t in tiles)
    width = columns * tw + (columns + 1) * _GAP
    out_rows = [np.full((_GAP, width, 3), _BG, np.uint8)]
    for row in rows:
        th = max(t.shape[0] for t in row)
        band = np.full((th, width, 3), _BG, np.uint8)
        for j, t in enumerate(row):
            x = _GAP + j * (tw + _GAP)
            band[:t.shape[0], x:x + t.shape[1]] = t
        out_rows += [band, np.full((_GAP, width, 3), _BG, np.uint8)]
    return np.vstack(out_rows)


LEGEND = (
    [((0, 255, 0), "line", "left: the photo (KP2D 'image'); green outline: the patch the warped image shows"),
     ((0, 0, 255), "dot", "red dot: the patch corner that becomes the warped image's top-left pixel"),
     (None, None, "right: the warped photo (KP2D 'image_aug' = image(H p)); caption: the pair's key")])


def with_legend(sheet: np.ndarray, items) -> np.ndarray:
    """``sheet`` under a legend band: one line per item ``(BGR colour, 'line' | 'dot' | None, text)``,
    its mark drawn before the text (the text shrunk to fit the sheet's width)."""
    width = sheet.shape[1]
    band = np.full((_GAP + 18 * len(items), width, 3), _BG, np.uint8)
    for i, (color, mark, text) in enumerate(items):
        y = _GAP + 18 * i + 9
        if mark == "line":
            cv2.line(band, (_GAP, y), (_GAP + 16, y), color, 2, cv2.LINE_AA)
        elif mark == "dot":
            cv2.circle(band, (_GAP + 8, y), 4, color, -1, cv2.LINE_AA)
        scale = 0.42
        while scale > 0.25 and cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)[0][0] > width - 3 * _GAP - 16:
            scale -= 0.02
        cv2.putText(band, text, (2 * _GAP + 16, y + 5), cv2.FONT_HERSHEY_SIMPLEX, scale, (235, 235, 235), 1, cv2.LINE_AA)
    return np.vstack([band, sheet])


def write_pair_sheet(path: str, pairs: list[dict]) -> str:
    """``pairs``: dicts with ``key``, ``image``, ``image_aug`` (RGB uint8), ``homography`` (3, 3)
    normalised. Writes the sheet, under its :data:`LEGEND`, to ``path`` and returns it."""
    sheet = with_legend(pair_sheet([pair_tile(p["image"], p["image_aug"], p["homography"], p["key"]) for p in pairs]),
                        LEGEND)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    if not cv2.imwrite(path, sheet):
        raise OSError(f"could not write {path}")
    return path
