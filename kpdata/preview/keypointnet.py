"""Preview sheets of KeypointNet view pairs: the two views side by side, the relative rotation
written under them.

Pure library (numpy + OpenCV). Each view is drawn by :func:`kpdata.preview.render_tile` (image over
a checkerboard, mask outline, keypoints and a caption with the key, viewpoint and keypoint count);
the band under a pair reads ``R01 <angle> deg about (x, y, z)``: the rotation from camera 0's
OpenGL frame to camera 1's (``(mv1 @ mvi0)[:3, :3]``), with its axis in camera 0's frame.
Output images are BGR uint8.
"""
from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence

import cv2
import numpy as np

from kpdata import keypointnet
from kpdata.preview import labels
from kpdata.preview.sheet import BACKGROUND_COLOR, GAP, render_tile

BAND_HEIGHT = 22
_FONT = cv2.FONT_HERSHEY_SIMPLEX
_SCALE = 0.45
_TEXT = (235, 235, 235)
_BAND = (24, 24, 24)
HEADER = ("pairs: view 0 | view 1 (cropped to the object); green dot = visible keypoint, red ring = occluded, "
          "magenta square = outside the image, cyan = mask outline, yellow numbers = keypoints of a crowded view "
          "(names listed under it); R01 = rotation camera 0 -> camera 1 (axis in camera 0, OpenGL frame)")


def rotation_caption(mv0, mv1) -> str:
    """``R01 37.2 deg about (0.12, -0.98, 0.15)``."""
    angle, axis = keypointnet.rotation_angle_axis(keypointnet.relative_rotation(mv0, mv1))
    return f"R01 {angle:.1f} deg about ({axis[0]:.2f}, {axis[1]:.2f}, {axis[2]:.2f})"


def _put(img, text, org, scale=_SCALE):
    cv2.putText(img, text.encode("ascii", "replace").decode("ascii"), org, _FONT, scale, _TEXT, 1, cv2.LINE_AA)


def pair_tile(pair: Mapping, tile_width: int = 256) -> np.ndarray:
    """One pair: ``(th + CAPTION_HEIGHT + BAND_HEIGHT, 2 * tile_width + GAP, 3)`` uint8 BGR.

    pair: ``view0``, ``view1`` (mappings as :func:`kpdata.preview.render_tile` takes them) and
    ``mv0``, ``mv1`` ((4, 4) or (16,) row-major model-view matrices).
    """
    t0 = render_tile(pair["view0"], tile_width)
    t1 = render_tile(pair["view1"], tile_width)
    h = max(t0.shape[0], t1.shape[0])
    out = np.empty((h + BAND_HEIGHT, 2 * tile_width + GAP, 3), np.uint8)
    out[:] = BACKGROUND_COLOR
    out[:t0.shape[0], :tile_width] = t0
    out[:t1.shape[0], tile_width + GAP:] = t1
    out[h:] = _BAND
    _put(out, rotation_caption(pair["mv0"], pair["mv1"]), (4, h + BAND_HEIGHT - 7))
    return out


def pair_sheet(pairs: Sequence[Mapping], columns: int | None = None, tile_width: int = 256) -> np.ndarray:
    """A grid of :func:`pair_tile` under the :data:`HEADER` legend (wrapped); ``columns`` defaults to
    ``ceil(sqrt(n / 2))`` pairs per row."""
    pairs = list(pairs)
    if not pairs:
        img = np.empty((48, 200, 3), np.uint8)
        img[:] = BACKGROUND_COLOR
        _put(img, "no pairs", (60, 30))
        return img
    tiles = [pair_tile(p, tile_width) for p in pairs]
    cols = max(1, min(len(tiles), columns or math.ceil(math.sqrt(len(tiles) / 2))))
    rows = math.ceil(len(tiles) / cols)
    tw = tiles[0].shape[1]
    width = cols * tw + (cols + 1) * GAP
    lines = labels.wrap_key(HEADER, width - 2 * GAP, _SCALE, " ")  # the whole header, over several lines
    header = 8 + 20 * len(lines)
    row_h = [max(t.shape[0] for t in tiles[r * cols:(r + 1) * cols]) for r in range(rows)]
    sheet = np.empty((header + sum(row_h) + (rows + 1) * GAP, width, 3), np.uint8)
    sheet[:] = BACKGROUND_COLOR
    for i, line in enumerate(lines):
        _put(sheet, line, (GAP, 17 + 20 * i))
    y = header + GAP
    for r in range(rows):
        for c, t in enumerate(tiles[r * cols:(r + 1) * cols]):
            x = GAP + c * (tw + GAP)
            sheet[y:y + t.shape[0], x:x + t.shape[1]] = t
        y += row_h[r] + GAP
    return sheet


def write_pair_sheet(path: str | os.PathLike, pairs: Sequence[Mapping], **kw) -> str:
    """Write :func:`pair_sheet` to ``path`` (PNG); returns the path."""
    path = os.fspath(path)
    if not cv2.imwrite(path, pair_sheet(pairs, **kw)):
        raise OSError(f"could not write the pair preview to {path!r}")
    return path
