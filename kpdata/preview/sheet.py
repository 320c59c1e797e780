"""Contact sheets of rendered views, for a human to check a dataset at a glance.

Pure library (numpy + OpenCV); ``pipelines/preview.py`` is the command-line entry point.

Conventions (DESIGN.md §4):

* Input images are RGB(A) -- ``(H, W, 4)`` uint8 RGBA with alpha = coverage (0 = background),
  ``(H, W, 3)`` uint8 RGB, or grayscale ``(H, W)`` / ``(H, W, 1)``.
* Output images are BGR ``(H, W, 3)`` uint8, ready for ``cv2.imwrite``.
* Pixels: OpenCV convention, u right, v down, the centre of pixel (0, 0) at (0.0, 0.0); pixel
  ``(i, j)`` covers ``[j - 0.5, j + 0.5] x [i - 0.5, i + 0.5]``. A keypoint is inside an
  ``H x W`` image iff ``-0.5 <= u <= W - 0.5`` and ``-0.5 <= v <= H - 0.5``.
* Scaling an image of width ``W`` to ``tile_width`` maps a coordinate ``u`` to
  ``(u + 0.5) * tile_width / W - 0.5`` (and ``v`` likewise with the rounded tile height), so pixel
  edges map to pixel edges.

Sheet layout (all sizes in output pixels)::

    +--------------------------------------------+
    | legend (LEGEND: marker styles)              |  legend_height (wraps if narrow)
    |  +------------+ GAP +------------+          |
    |  | image      |     | image      |          |  tile image: tile_width x round(H*tile_width/W)
    |  | caption    |     | caption    |          |  CAPTION_HEIGHT
    |  +------------+     +------------+          |
    |   GAP                                       |  row height = tallest tile in the row
    +--------------------------------------------+

``width = columns * tile_width + (columns + 1) * GAP`` and
``height = legend_height + sum(row heights) + (rows + 1) * GAP``.
"""

from __future__ import annotations

import math
import os
from typing import Any, Mapping, NamedTuple, Sequence

import cv2
import numpy as np

from kpdata.preview import labels

__all__ = [
    "crop_to_content",
    "BACKGROUND_COLOR",
    "CAPTION_HEIGHT",
    "CHECKER_COLORS",
    "GAP",
    "MASK_COLOR",
    "MIN_LABEL_TILE_WIDTH",
    "OCCLUDED_COLOR",
    "OUTSIDE_COLOR",
    "SheetLayout",
    "TileBox",
    "VISIBLE_COLOR",
    "caption_lines",
    "contact_sheet",
    "render_tile",
    "sheet_layout",
    "write_contact_sheet",
]

# Colours are BGR (OpenCV order).
VISIBLE_COLOR = (0, 200, 0)  # filled circle: keypoint visible
OCCLUDED_COLOR = (0, 0, 255)  # hollow circle: keypoint inside the image but occluded
OUTSIDE_COLOR = (255, 0, 255)  # hollow square at the tile edge: keypoint outside the image
MASK_COLOR = (255, 255, 0)  # 1 px mask outline (cyan)
BACKGROUND_COLOR = (48, 48, 48)  # sheet background and gaps
CAPTION_COLOR = (24, 24, 24)  # caption band
CHECKER_COLORS = (232, 200)  # light checkerboard behind transparent pixels (gray levels)
CHECKER_SIZE = 8  # checkerboard square, tile pixels

GAP = 8  # between tiles and around the grid, pixels
FONT = cv2.FONT_HERSHEY_SIMPLEX
CAPTION_SCALE = 0.4
CAPTION_LINE = 15  # caption line pitch, pixels
CAPTION_HEIGHT = 3 * CAPTION_LINE + 4  # key / viewpoint / keypoint count
LABEL_SCALE = 0.35
MIN_LABEL_TILE_WIDTH = 160  # below this tile width, keypoint names are not drawn
_TEXT_COLOR = (235, 235, 235)
_TEXT_DIM = (185, 185, 185)
_OUTLINE = (16, 16, 16)
_NUMBER_COLOR = (140, 255, 255)  # numbered keypoint labels (light yellow), names in the tile's legend
_LEGEND_TEXT = (150, 230, 230)
_SHIFT = 4  # sub-pixel bits for cv2 drawing
_ONE = 1 << _SHIFT


class TileBox(NamedTuple):
    """Where one view's tile sits in the sheet (pixels, top-left origin).

    The image part is ``sheet[y:y + image_height, x:x + width]``; the caption band is the
    ``CAPTION_HEIGHT`` rows right below it.
    """

    x: int
    y: int
    width: int
    image_height: int

    @property
    def height(self) -> int:
        return self.image_height + CAPTION_HEIGHT


class SheetLayout(NamedTuple):
    """Geometry of a contact sheet: output size, grid and one ``TileBox`` per view (input order)."""

    width: int
    height: int
    columns: int
    rows: int
    legend_height: int
    tiles: tuple[TileBox, ...]


# --------------------------------------------------------------------------- input parsing


def _key(view: Mapping, index: int) -> str:
    key = view.get("key")
    return f"<view {index}>" if key is None else str(key)


def _image_rgb_alpha(image: Any, key: str) -> tuple[np.ndarray, np.ndarray]:
    """Returns ``rgb (H, W, 3) float32 in [0, 1]`` (RGB order) and ``alpha (H, W) float32``."""
    a = np.asarray(image)
    if a.ndim == 2:
        a = a[..., None]
    if a.ndim != 3 or a.shape[2] not in (1, 2, 3, 4) or a.shape[0] == 0 or a.shape[1] == 0:
        raise ValueError(
            f"{key}: expected image (H, W, 4) RGBA, (H, W, 3) RGB or (H, W) gray uint8, "
            f"got {a.shape} {a.dtype}"
        )
    if a.dtype == np.uint8:
        f = a.astype(np.float32) / 255.0
    elif a.dtype == np.bool_:
        f = a.astype(np.float32)
    elif np.issubdtype(a.dtype, np.floating):
        f = np.clip(np.nan_to_num(a.astype(np.float32)), 0.0, 1.0)
    elif np.issubdtype(a.dtype, np.integer):
        f = np.clip(a.astype(np.float32) / float(np.iinfo(a.dtype).max), 0.0, 1.0)
    else:
        raise ValueError(f"{key}: expected image uint8, got {a.shape} {a.dtype}")
    c = f.shape[2]
    if c == 1:
        return np.repeat(f, 3, axis=2), np.ones(f.shape[:2], np.float32)
    if c == 2:  # gray + alpha
        return np.repeat(f[..., :1], 3, axis=2), f[..., 1]
    if c == 3:
        return f, np.ones(f.shape[:2], np.float32)
    return f[..., :3], f[..., 3]


def _image_size(view: Mapping, key: str) -> tuple[int, int]:
    if "image" not in view:
        raise ValueError(f"{key}: view has no 'image'")
    shape = np.shape(view["image"])
    if len(shape) not in (2, 3) or shape[0] == 0 or shape[1] == 0:
        raise ValueError(f"{key}: expected image (H, W[, C]), got shape {tuple(shape)}")
    return int(shape[0]), int(shape[1])


def _keypoints(view: Mapping, key: str) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Returns ``names`` (K), ``uv (K, 2) float64`` and ``visible (K,) bool``.

    ``keypoints/uv`` may also be flat ``(2K,)``, as stored in a tf.train.Example.
    """
    uv_in = view.get("keypoints/uv")
    names_in = view.get("keypoints/names")
    vis_in = view.get("keypoints/visible")
    if uv_in is None:
        if names_in is not None and len(names_in) > 0:
            raise ValueError(f"{key}: has {len(names_in)} keypoint names but no 'keypoints/uv'")
        return [], np.zeros((0, 2)), np.zeros((0,), bool)
    uv_arr = np.asarray(uv_in)
    uv = uv_arr.astype(np.float64)
    if uv.ndim == 1 and uv.size % 2 == 0:
        uv = uv.reshape(-1, 2)
    if uv.ndim != 2 or uv.shape[1] != 2:
        raise ValueError(
            f"{key}: expected (K, 2) float32 keypoints/uv, got {uv_arr.shape} {uv_arr.dtype}"
        )
    k = uv.shape[0]
    if names_in is None:
        names = [str(i) for i in range(k)]
    else:
        names = [n.decode() if isinstance(n, bytes) else str(n) for n in names_in]
    if len(names) != k:
        raise ValueError(f"{key}: {len(names)} keypoint names for {k} keypoints/uv")
    if vis_in is None:
        raise ValueError(f"{key}: has keypoints/uv but no 'keypoints/visible'")
    vis_arr = np.asarray(vis_in)
    if vis_arr.shape != (k,):
        raise ValueError(
            f"{key}: expected ({k},) keypoints/visible, got {vis_arr.shape} {vis_arr.dtype}"
        )
    return names, uv, vis_arr.astype(bool)


def _viewpoint_text(view: Mapping, key: str) -> str:
    if view.get("caption") is not None:  # a record type without a viewpoint supplies its own line
        return str(view["caption"])
    vp = view.get("viewpoint")
    if vp is None:
        return "viewpoint n/a"
    v = np.asarray(vp, dtype=np.float64).reshape(-1)
    if v.shape != (4,):
        raise ValueError(
            f"{key}: expected viewpoint (4,) (azimuth, elevation, tilt, distance), got {v.shape}"
        )
    return f"az {v[0]:.1f} el {v[1]:.1f} tilt {v[2]:.1f} d {v[3]:.2f}"


# --------------------------------------------------------------------------- text helpers


def _ascii(text: str) -> str:
    # Hershey fonts draw ASCII only.
    return text.encode("ascii", "replace").decode("ascii")


def _text_width(text: str, scale: float) -> int:
    (w, _), _ = cv2.getTextSize(text, FONT, scale, 1)
    return w


def _fit_right(text: str, max_width: int, scale: float) -> str:
    """``text``, or its head followed by ``...``, whichever fits in ``max_width`` pixels."""
    text = _ascii(text)
    if _text_width(text, scale) <= max_width:
        return text
    for i in range(len(text) - 1, -1, -1):
        cand = text[:i] + "..."
        if _text_width(cand, scale) <= max_width:
            return cand
    return ""


_OUTLINE_OFFSETS = tuple((dx, dy) for dx in (-1, 0, 1) for dy in (-1, 0, 1) if dx or dy)


def _put_text(img, text, org, scale, color=_TEXT_COLOR, outline=_OUTLINE) -> None:
    """Text with a dark outline, legible on any background. ``org`` = baseline-left (x, y)."""
    if not text:
        return
    if outline is not None:
        # Offset copies rather than a thicker stroke: some OpenCV builds change the glyph
        # advance with the thickness, which would misalign a thick outline and the text.
        x, y = org
        for dx, dy in _OUTLINE_OFFSETS:
            cv2.putText(img, text, (x + dx, y + dy), FONT, scale, outline, 1, cv2.LINE_AA)
    cv2.putText(img, text, org, FONT, scale, color, 1, cv2.LINE_AA)


# --------------------------------------------------------------------------- markers


def _marker_radius(tile_width: int) -> int:
    return int(np.clip(round(tile_width / 64), 2, 5))


def _fixed(x: float, y: float) -> tuple[int, int]:
    return int(round(x * _ONE)), int(round(y * _ONE))


def _draw_visible(img, x, y, r) -> None:
    cv2.circle(img, _fixed(x, y), (r + 1) * _ONE, _OUTLINE, -1, cv2.LINE_AA, _SHIFT)
    cv2.circle(img, _fixed(x, y), r * _ONE, VISIBLE_COLOR, -1, cv2.LINE_AA, _SHIFT)


def _draw_occluded(img, x, y, r) -> None:
    cv2.circle(img, _fixed(x, y), r * _ONE, _OUTLINE, 4, cv2.LINE_AA, _SHIFT)
    cv2.circle(img, _fixed(x, y), r * _ONE, OCCLUDED_COLOR, 2, cv2.LINE_AA, _SHIFT)


def _draw_outside(img, x, y, r) -> None:
    p0, p1 = _fixed(x - r, y - r), _fixed(x + r, y + r)
    cv2.rectangle(img, p0, p1, _OUTLINE, 4, cv2.LINE_AA, _SHIFT)
    cv2.rectangle(img, p0, p1, OUTSIDE_COLOR, 2, cv2.LINE_AA, _SHIFT)


def _draw_mask_sample(img, x, y, r) -> None:
    cv2.rectangle(img, (int(x - r), int(y - r)), (int(x + r), int(y + r)), MASK_COLOR, 1)


def _draw_number_sample(img, x, y, r) -> None:
    _put_text(img, "7", (int(x - 4), int(y + 5)), CAPTION_SCALE, _NUMBER_COLOR)


_LEGEND_ITEMS = (
    (_draw_visible, "visible"),
    (_draw_occluded, "occluded"),
    (_draw_outside, "outside image (at edge)"),
    (_draw_mask_sample, "mask outline"),
    (_draw_number_sample, "keypoint number: crowded tile, names listed under it"),
)
_LEGEND_LINE = 20
_LEGEND_MARKER_R = 5
_LEGEND_ITEM_SPACING = 18


def _legend_item_width(label: str) -> int:
    return 2 * _LEGEND_MARKER_R + 6 + _text_width(label, CAPTION_SCALE)


def _legend_lines(width: int, items=_LEGEND_ITEMS) -> list[list[tuple[Any, str]]]:
    """Greedy word-wrap of the legend ``items`` into lines that fit ``width`` (minus margins)."""
    avail = max(1, width - 2 * GAP)
    lines: list[list[tuple[Any, str]]] = [[]]
    used = 0
    for item in items:
        w = _legend_item_width(item[1])
        need = w if not lines[-1] else used + _LEGEND_ITEM_SPACING + w
        if lines[-1] and need > avail:
            lines.append([item])
            used = w
        else:
            lines[-1].append(item)
            used = need
    return lines


def _legend_height(width: int, items=_LEGEND_ITEMS) -> int:
    return GAP + _LEGEND_LINE * len(_legend_lines(width, items))


def _draw_legend(sheet: np.ndarray, items=_LEGEND_ITEMS) -> None:
    width = sheet.shape[1]
    r = _LEGEND_MARKER_R
    for li, line in enumerate(_legend_lines(width, items)):
        cy = GAP + li * _LEGEND_LINE + _LEGEND_LINE // 2
        x = GAP
        for draw, label in line:
            draw(sheet, x + r, cy, r)
            text = _fit_right(label, max(0, width - GAP - (x + 2 * r + 6)), CAPTION_SCALE)
            _put_text(sheet, text, (x + 2 * r + 6, cy + 4), CAPTION_SCALE, outline=None)
            x += _legend_item_width(label) + _LEGEND_ITEM_SPACING


# --------------------------------------------------------------------------- tiles


def _tile_height(h: int, w: int, tile_width: int) -> int:
    return max(1, int(round(h * tile_width / w)))


def _checkerboard(h: int, w: int) -> np.ndarray:
    """``(h, w, 3) float32`` in [0, 1], squares of ``CHECKER_SIZE`` px anchored at the top left."""
    yy = (np.arange(h) // CHECKER_SIZE)[:, None]
    xx = (np.arange(w) // CHECKER_SIZE)[None, :]
    light, dark = (c / 255.0 for c in CHECKER_COLORS)
    board = np.where((yy + xx) % 2 == 0, light, dark).astype(np.float32)
    return np.repeat(board[..., None], 3, axis=2)


def _resize(a: np.ndarray, w: int, h: int) -> np.ndarray:
    downscale = w < a.shape[1] or h < a.shape[0]
    interp = cv2.INTER_AREA if downscale else cv2.INTER_LINEAR
    out = cv2.resize(a, (w, h), interpolation=interp)
    if out.ndim == 2 and a.ndim == 3:
        out = out[..., None]
    return out


def _composite(rgb: np.ndarray, alpha: np.ndarray, tw: int, th: int) -> np.ndarray:
    """Scales premultiplied RGBA to ``(th, tw)`` and composites it over the checkerboard (BGR uint8)."""
    rgba_pm = np.concatenate([rgb * alpha[..., None], alpha[..., None]], axis=2)
    small = _resize(rgba_pm, tw, th)
    a = np.clip(small[..., 3:4], 0.0, 1.0)
    out = np.clip(small[..., :3], 0.0, 1.0) + (1.0 - a) * _checkerboard(th, tw)
    bgr = out[..., ::-1]
    return np.ascontiguousarray(np.clip(np.round(bgr * 255.0), 0, 255).astype(np.uint8))


def _mask_outline(img: np.ndarray, mask: Any, hw: tuple[int, int], key: str) -> None:
    m = np.asarray(mask)
    if m.ndim == 3 and m.shape[2] == 1:
        m = m[..., 0]
    if m.shape != hw:
        raise ValueError(f"{key}: expected mask {hw} uint8 (image size), got {m.shape} {m.dtype}")
    th, tw = img.shape[:2]
    binary = (m > 0).astype(np.uint8)
    if th < hw[0] or tw < hw[1]:  # shrinking: keep tile pixels at least half covered
        area = cv2.resize(binary.astype(np.float32), (tw, th), interpolation=cv2.INTER_AREA)
        tile_mask = (area >= 0.5).astype(np.uint8)
    elif (th, tw) != hw:  # enlarging: each tile pixel takes the source pixel its centre is in
        tile_mask = cv2.resize(binary, (tw, th), interpolation=cv2.INTER_NEAREST_EXACT)
    else:
        tile_mask = binary
    contours, _ = cv2.findContours(tile_mask, cv2.RETR_LIST, cv2.CHAIN_APPROX_NONE)
    cv2.drawContours(img, contours, -1, MASK_COLOR, 1, cv2.LINE_8)


def _keypoint_counts(uv: np.ndarray, hw: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """``finite (K,) bool`` (uv is finite) and ``inside (K,) bool`` (uv inside the image)."""
    h, w = hw
    finite = np.isfinite(uv).all(axis=1)
    inside = finite.copy()
    inside[finite] = (
        (uv[finite, 0] >= -0.5)
        & (uv[finite, 0] <= w - 0.5)
        & (uv[finite, 1] >= -0.5)
        & (uv[finite, 1] <= h - 0.5)
    )
    return finite, inside


def caption_lines(view: Mapping, tile_width: int = 320, index: int = 0) -> list[str]:
    """The caption lines of ``view``'s tile, fitted to ``tile_width`` pixels (three for a key that fits one line).

    1. the key, whole, wrapped over more lines after a ``/`` or ``_`` when too long (model ids are never cut);
    2. ``az 120.0 el 40.0 tilt 3.0 d 2.50`` (degrees, degrees, degrees, distance) or
       ``viewpoint n/a``;
    3. ``kp 7/10 visible``, plus ``, 2 outside`` for keypoints outside the image and ``, 1 nan``
       for keypoints without finite uv (not drawn).
    """
    key = _key(view, index)
    hw = _image_size(view, key)
    _, uv, visible = _keypoints(view, key)
    finite, inside = _keypoint_counts(uv, hw)
    n_vis = int(np.count_nonzero(visible))
    kp = f"kp {n_vis}/{len(visible)} visible"
    n_out = int(np.count_nonzero(finite & ~inside))
    n_nan = int(np.count_nonzero(~finite))
    if n_out:
        kp += f", {n_out} outside"
    if n_nan:
        kp += f", {n_nan} nan"
    avail = tile_width - 8
    return [
        *labels.wrap_key(_ascii(key), avail, CAPTION_SCALE, "/_"),
        _fit_right(_viewpoint_text(view, key), avail, CAPTION_SCALE),
        _fit_right(kp, avail, CAPTION_SCALE),
    ]


def _tile_points(view: Mapping, key: str, tw: int, th: int) -> tuple[list, np.ndarray, np.ndarray, np.ndarray]:
    """The markers of ``view`` on a ``tw x th`` tile: ([(x, y, name, index)] in drawing order:
    occluded and outside first, so visible ones end up on top), visible, finite, inside."""
    h, w = _image_size(view, key)
    names, uv, visible = _keypoints(view, key)
    finite, inside = _keypoint_counts(uv, (h, w))
    m = _marker_radius(tw) + 1  # keeps clamped markers fully inside the tile
    sx, sy = tw / w, th / h
    points = []
    for i in sorted(range(len(names)), key=lambda i: bool(visible[i] and inside[i])):
        if not finite[i]:
            continue
        x, y = (uv[i, 0] + 0.5) * sx - 0.5, (uv[i, 1] + 0.5) * sy - 0.5
        if not inside[i]:
            x, y = min(max(x, m), max(m, tw - 1 - m)), min(max(y, m), max(m, th - 1 - m))
        points.append((x, y, _ascii(names[i]), i))
    return points, visible, finite, inside


def _tile_text(view: Mapping, tile_width: int, index: int) -> tuple[labels.LabelPlan | None, list]:
    """The keypoint label plan of ``view``'s tile (None below MIN_LABEL_TILE_WIDTH) and its caption
    band lines [(text, color)]: the key (wrapped), viewpoint, keypoint count, then the numbered
    legend of the names when the labels are numbered."""
    key = _key(view, index)
    h, w = _image_size(view, key)
    tw, th = int(tile_width), _tile_height(h, w, tile_width)
    cap = caption_lines(view, tw, index)
    lines = [(t, _TEXT_COLOR) for t in cap[:-2]] + [(t, _TEXT_DIM) for t in cap[-2:]]
    if tw < MIN_LABEL_TILE_WIDTH:
        return None, lines
    points, _, _, _ = _tile_points(view, key, tw, th)
    plan = labels.plan_labels(points, _marker_radius(tw), tw, th, LABEL_SCALE)
    if plan.numbered:
        entries = sorted((i, name) for _, _, name, i in points)
        lines += [(t, _LEGEND_TEXT) for t in labels.legend_lines(entries, tw - 8, CAPTION_SCALE)]
    return plan, lines


def _caption_height(n_lines: int) -> int:
    return n_lines * CAPTION_LINE + 4


def render_tile(view: Mapping, tile_width: int = 320, index: int = 0) -> np.ndarray:
    """One view's tile: ``(th + CAPTION_HEIGHT, tile_width, 3)`` uint8 BGR.

    ``th = round(H * tile_width / W)``. The image is composited over a light checkerboard,
    the mask outlined in ``MASK_COLOR``, keypoints drawn at
    ``((u + 0.5) * tile_width / W - 0.5, (v + 0.5) * th / H - 0.5)``:
    visible = filled ``VISIBLE_COLOR`` circle, occluded = hollow ``OCCLUDED_COLOR`` circle,
    outside the image = hollow ``OUTSIDE_COLOR`` square clamped to the tile edge. See
    ``contact_sheet`` for the view mapping.
    """
    if tile_width < 16:
        raise ValueError(f"tile_width must be >= 16 pixels, got {tile_width}")
    key = _key(view, index)
    h, w = _image_size(view, key)
    rgb, alpha = _image_rgb_alpha(view["image"], key)
    tw, th = int(tile_width), _tile_height(h, w, tile_width)

    img = _composite(rgb, alpha, tw, th)
    if view.get("mask") is not None:
        _mask_outline(img, view["mask"], (h, w), key)

    points, visible, _, inside = _tile_points(view, key, tw, th)
    r = _marker_radius(tw)
    plan, lines = _tile_text(view, tw, index)
    for lab in plan.labels if plan else ():  # leader lines under the markers
        if lab.leader is not None:
            bx = min(max(lab.leader[0], lab.box[0]), lab.box[2])
            by = min(max(lab.leader[1], lab.box[1]), lab.box[3])
            cv2.line(img, _fixed(*lab.leader), _fixed(bx, by), _OUTLINE, 3, cv2.LINE_AA, _SHIFT)
            cv2.line(img, _fixed(*lab.leader), _fixed(bx, by), _TEXT_COLOR, 1, cv2.LINE_AA, _SHIFT)
    for x, y, _, i in points:
        if not inside[i]:
            _draw_outside(img, x, y, r)
        elif visible[i]:
            _draw_visible(img, x, y, r)
        else:
            _draw_occluded(img, x, y, r)
    for lab in plan.labels if plan else ():
        _put_text(img, lab.text, lab.org, LABEL_SCALE, _NUMBER_COLOR if plan.numbered else _TEXT_COLOR)

    caption = np.empty((_caption_height(len(lines)), tw, 3), np.uint8)
    caption[:] = CAPTION_COLOR
    for li, (line, color) in enumerate(lines):
        _put_text(caption, line, (4, 2 + CAPTION_LINE * (li + 1) - 4), CAPTION_SCALE, color, None)
    return np.concatenate([img, caption], axis=0)


# --------------------------------------------------------------------------- sheet


def sheet_layout(
    views: Sequence[Mapping], columns: int | None = None, tile_width: int = 320, legend: Sequence = ()
) -> SheetLayout:
    """Geometry of ``contact_sheet(views, columns, tile_width)`` without drawing anything.

    ``columns`` defaults to ``ceil(sqrt(n))`` and is capped at ``n``. Reads only image shapes.
    For ``n = 0`` returns the size of the "no views" image and no tiles.
    """
    views = list(views)
    tile_width = int(tile_width)
    if tile_width < 16:
        raise ValueError(f"tile_width must be >= 16 pixels, got {tile_width}")
    n = len(views)
    if columns is not None and int(columns) < 1:
        raise ValueError(f"columns must be >= 1, got {columns}")
    if n == 0:
        return SheetLayout(_EMPTY_SIZE[1], _EMPTY_SIZE[0], 0, 0, 0, ())
    cols = math.ceil(math.sqrt(n)) if columns is None else min(int(columns), n)
    rows = math.ceil(n / cols)
    width = cols * tile_width + (cols + 1) * GAP
    legend_h = _legend_height(width, _LEGEND_ITEMS + tuple(legend))
    ths = [_tile_height(*_image_size(v, _key(v, i)), tile_width) for i, v in enumerate(views)]
    caps = [_caption_height(len(_tile_text(v, tile_width, i)[1])) for i, v in enumerate(views)]
    tiles = []
    y = legend_h + GAP
    for row in range(rows):
        row_ths = ths[row * cols : (row + 1) * cols]
        for c, th in enumerate(row_ths):
            tiles.append(TileBox(GAP + c * (tile_width + GAP), y, tile_width, th))
        y += max(t + c for t, c in zip(row_ths, caps[row * cols : (row + 1) * cols])) + GAP
    return SheetLayout(width, y, cols, rows, legend_h, tuple(tiles))


_EMPTY_SIZE = (48, 200)  # (height, width) of the "no views" image


def _empty_sheet() -> np.ndarray:
    img = np.empty((*_EMPTY_SIZE, 3), np.uint8)
    img[:] = BACKGROUND_COLOR
    (w, h), _ = cv2.getTextSize("no views", FONT, 0.6, 1)
    org = ((_EMPTY_SIZE[1] - w) // 2, (_EMPTY_SIZE[0] + h) // 2)
    _put_text(img, "no views", org, 0.6, outline=None)
    return img


def contact_sheet(
    views: Sequence[Mapping], columns: int | None = None, tile_width: int = 320, legend: Sequence = ()
) -> np.ndarray:
    """Draws a grid of views with their masks, keypoints and captions.

    Args:
      views: mappings, one per view, with
        ``key``: str, e.g. ``02958343/1a2b.../v000017``;
        ``image``: ``(H, W, 4)`` uint8 RGBA (alpha = coverage, 0 = background), or ``(H, W, 3)``
          uint8 RGB, or ``(H, W)`` / ``(H, W, 1)`` uint8 gray; sizes may differ between views;
        ``mask`` (optional): ``(H, W)`` uint8, 0 or 255 (any non-zero counts);
        ``keypoints/names``: list of K str; ``keypoints/uv``: ``(K, 2)`` (or flat ``(2K,)``)
          float32 pixels, OpenCV convention (u right, v down, centre of pixel (0, 0) at
          (0.0, 0.0)); ``keypoints/visible``: ``(K,)`` int or bool. K may be 0; the three keys
          may be absent when there are no keypoints;
        ``viewpoint`` (optional): 4 floats (azimuth, elevation, tilt in degrees, distance);
        ``caption`` (optional): a string shown instead of the viewpoint line.
      columns: grid columns; default ``ceil(sqrt(n))``; capped at ``n``.
      legend: more legend items ``(draw(img, x, y, r), label)`` for marks the views carry in their
        images (e.g. stereo disparity lines), after the marker styles.
      tile_width: width in pixels each image is scaled to (aspect kept); >= 16. Keypoint names
        are drawn only when ``tile_width >= MIN_LABEL_TILE_WIDTH``: beside their markers where each
        finds a free place (with a leader line when away from it), else as numbers with a numbered
        legend of the names under the tile (:mod:`kpdata.preview.labels`).

    Returns:
      ``(height, width, 3)`` uint8 BGR image (``cv2.imwrite`` ready) whose geometry is
      ``sheet_layout(views, columns, tile_width)``: a legend line at the top, then tiles in
      row-major order, each row as tall as its tallest tile. For ``n = 0``, a small image saying
      "no views".

    Raises:
      ValueError: a view with a malformed image, mask, keypoints or viewpoint (message names the
        view's key), or bad ``columns`` / ``tile_width``.
    """
    views = list(views)
    layout = sheet_layout(views, columns, tile_width, legend)
    if not views:
        return _empty_sheet()
    sheet = np.empty((layout.height, layout.width, 3), np.uint8)
    sheet[:] = BACKGROUND_COLOR
    _draw_legend(sheet, _LEGEND_ITEMS + tuple(legend))
    for i, (view, box) in enumerate(zip(views, layout.tiles)):
        tile = render_tile(view, box.width, index=i)
        sheet[box.y : box.y + tile.shape[0], box.x : box.x + box.width] = tile
    return sheet


def write_contact_sheet(path: str | os.PathLike, views: Sequence[Mapping], **kw) -> str:
    """Writes ``contact_sheet(views, **kw)`` to ``path`` (PNG; the format follows the extension,
    as for ``cv2.imwrite``) and returns ``path`` as str.

    Raises:
      IOError: the image could not be written (missing directory, no permission, unknown
        extension...); the message names the path.
    """
    path = os.fspath(path)
    sheet = contact_sheet(views, **kw)
    try:
        ok = cv2.imwrite(path, sheet)
    except cv2.error as e:
        raise IOError(f"could not write contact sheet to {path!r}: {e}") from e
    if not ok:
        raise IOError(
            f"could not write contact sheet to {path!r} (does the directory exist, is it "
            f"writable, is the extension an image format?)"
        )
    return path


def crop_to_content(view: Mapping, margin: float = 0.2, min_size: int = 64) -> dict:
    """A copy of ``view`` cropped to the box around its mask (or alpha) and its in-image
    keypoints, grown by ``margin`` of the box size on each side, so small objects in large renders
    fill their tile. ``keypoints/uv`` is shifted into the crop; keypoints outside the image stay
    outside it. Views without any content are returned unchanged."""
    image = np.asarray(view["image"])
    h, w = image.shape[:2]
    mask = view.get("mask")
    occupied = (np.asarray(mask) > 0) if mask is not None else (
        image[..., 3] > 0 if image.ndim == 3 and image.shape[2] == 4 else np.zeros((h, w), bool))
    ys, xs = np.nonzero(occupied)
    uv = np.asarray(view.get("keypoints/uv", np.zeros((0, 2))), dtype=np.float64).reshape(-1, 2)
    inside = np.all(np.isfinite(uv), axis=1) & (uv[:, 0] >= -0.5) & (uv[:, 0] <= w - 0.5) & \
        (uv[:, 1] >= -0.5) & (uv[:, 1] <= h - 0.5)
    xs = np.concatenate([xs, uv[inside, 0]])
    ys = np.concatenate([ys, uv[inside, 1]])
    if xs.size == 0:
        return dict(view)
    x0, x1, y0, y1 = xs.min(), xs.max(), ys.min(), ys.max()
    grow = margin * max(x1 - x0, y1 - y0, min_size / (1 + 2 * margin))
    x0, y0 = int(max(0, np.floor(x0 - grow))), int(max(0, np.floor(y0 - grow)))
    x1, y1 = int(min(w, np.ceil(x1 + grow) + 1)), int(min(h, np.ceil(y1 + grow) + 1))
    out = dict(view)
    out["image"] = image[y0:y1, x0:x1]
    if mask is not None:
        out["mask"] = np.asarray(mask)[y0:y1, x0:x1]
    if len(uv):
        out["keypoints/uv"] = (uv - [x0, y0]).astype(np.float32)
    return out
