"""Contact sheet of homography pairs: each tile shows the original image with the patch that the
warped image shows outlined (green, corner 0 marked), and the warped image beside it.

Input images are RGB uint8 (H, W, 3); the sheet is BGR uint8 for ``cv2.imwrite``.
"""
from __future__ import annotations

import math
import os

import cv2
import numpy as np

from kpdata.kp2d import homography
__all__ = ["pair_sheet", "pair_tile", "write_pair_sheet"]

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
    cap = np.full((_CAPTION, pair.shape[1], 3), 24, np.uint8)
    cv2.putText(cap, key[-60:], (4, 13), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (235, 235, 235), 1, cv2.LINE_AA)
    return np.vstack([pair, cap])


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


def write_pair_sheet(path: str, pairs: list[dict]) -> str:
    """``pairs``: dicts with ``key``, ``image``, ``image_aug`` (RGB uint8), ``homography`` (3, 3)
    normalised. Writes the sheet to ``path`` and returns it."""
    sheet = pair_sheet([pair_tile(p["image"], p["image_aug"], p["homography"], p["key"]) for p in pairs])
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    if not cv2.imwrite(path, sheet):
        raise OSError(f"could not write {path}")
    return path
