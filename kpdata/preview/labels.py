"""Keypoint labels that stay readable on busy tiles, and captions that wrap instead of cutting.

:func:`plan_labels` places one label per keypoint marker without overlapping another label or
marker: eight positions around the marker, then the same eight farther out with a leader line
back to the marker. When some name finds no free place (a 12-keypoint bus seen from the side),
or more than a quarter of the names (at least two) need a leader line, the tile switches to
*numbered* labels: each marker gets its 1-based index in the record's keypoint
list (short, so it fits), and the names go to a numbered legend under the tile
(:func:`legend_lines`), e.g. ``1 body_front_left_upper   2 body_front_right_upper``.

:func:`wrap_key` breaks a record key over lines at its ``/`` (a segment longer than a line is broken
where the line ends), so model ids are shown whole.

Coordinates are tile pixels (x right, y down); boxes are ``(x0, y0, x1, y1)``.
"""
from __future__ import annotations

from typing import NamedTuple

import cv2

__all__ = ["Label", "LabelPlan", "FONT", "plan_labels", "legend_lines", "wrap_key", "text_size"]

FONT = cv2.FONT_HERSHEY_SIMPLEX
_RINGS = (1.0, 2.6, 4.2)  # label distances from the marker, in units of (radius + 3); beyond the first: a leader line


class Label(NamedTuple):
    text: str
    org: tuple[int, int]  # baseline-left of the text
    box: tuple[int, int, int, int]
    leader: tuple[float, float] | None  # the marker centre to draw a line to, when the label is away from it


class LabelPlan(NamedTuple):
    labels: list[Label]
    numbered: bool  # True: labels are indices, the names go to the legend


def text_size(text: str, scale: float) -> tuple[int, int, int]:
    """(width, height, baseline) of ``text`` in :data:`FONT` at ``scale``, thickness 1."""
    (w, h), base = cv2.getTextSize(text, FONT, scale, 1)
    return w, h, base


def _overlap(box, taken) -> int:
    return sum(max(0, min(box[2], t[2]) - max(box[0], t[0])) * max(0, min(box[3], t[3]) - max(box[1], t[1]))
               for t in taken)


def _candidates(x, y, r, w, h):
    for ring in _RINGS:
        d = (r + 3) * ring
        yield ring > 1, [
            (x + d, y - h / 2), (x - d - w, y - h / 2),  # right, left
            (x + d, y - d - h + 2), (x + d, y + d - 2),  # above right, below right
            (x - d - w, y - d - h + 2), (x - d - w, y + d - 2),  # above left, below left
            (x - w / 2, y - d - h), (x - w / 2, y + d),  # above, below
        ]


def _place(text, x, y, r, tw, th, taken, scale, strict):
    """A Label for ``text`` near (x, y) on a free spot (None when ``strict`` and there is none, or
    the tile is too small); otherwise the spot overlapping ``taken`` least. Appends its box to ``taken``."""
    w, h, base = text_size(text, scale)
    w, h = w + 2, h + base + 2  # 1 px outline each side
    if w > tw or h > th:
        return None
    best = None
    for far, spots in _candidates(x, y, r, w, h):
        for cx, cy in spots:
            cx, cy = int(round(min(max(cx, 0), tw - w))), int(round(min(max(cy, 0), th - h)))
            box = (cx, cy, cx + w, cy + h)
            ov = _overlap(box, taken)
            if best is None or ov < best[0]:
                best = (ov, box, far)
            if ov == 0:
                break
        if best[0] == 0:
            break
    if best[0] and strict:
        return None
    taken.append(best[1])
    box = best[1]
    return Label(text, (box[0] + 1, box[3] - base - 1), box, (x, y) if best[2] else None)


def plan_labels(points, r: int, tw: int, th: int, scale: float) -> LabelPlan:
    """Labels of ``points`` [(x, y, name, index)] (markers of radius ``r`` on a ``tw x th`` tile):
    every name on a free spot (at most a quarter of them, or one, away with a leader line), or else
    every marker numbered ``index + 1`` (see the module docstring)."""
    markers = [(int(x - r - 1), int(y - r - 1), int(x + r + 2), int(y + r + 2)) for x, y, _, _ in points]
    taken = list(markers)
    labels = []
    for x, y, name, _ in points:
        lab = _place(name, x, y, r, tw, th, taken, scale, strict=True)
        if lab is None:
            break
        labels.append(lab)
    else:
        if sum(lab.leader is not None for lab in labels) <= max(1, len(labels) // 4):
            return LabelPlan(labels, False)
    taken = list(markers)
    labels = [lab for x, y, _, i in points if (lab := _place(str(i + 1), x, y, r, tw, th, taken, scale, False))]
    return LabelPlan(labels, True)


def legend_lines(entries, width: int, scale: float, gap: int = 10) -> list[str]:
    """``entries`` [(index, name)] as ``"<index + 1> <name>"`` items packed into lines of at most
    ``width`` pixels (an item wider than a line gets a line of its own, wrapped by :func:`wrap_key`)."""
    lines, cur = [], ""
    space = max(1, round(gap / max(1, text_size(" ", scale)[0])))
    for i, name in entries:
        item = f"{i + 1} {name}"
        cand = item if not cur else cur + " " * space + item
        if text_size(cand, scale)[0] <= width:
            cur = cand
            continue
        if cur:
            lines.append(cur)
        if text_size(item, scale)[0] <= width:
            cur = item
        else:
            lines += wrap_key(item, width, scale, "_ ")
            cur = ""
    if cur:
        lines.append(cur)
    return lines


def wrap_key(key: str, width: int, scale: float, breaks: str = "/") -> list[str]:
    """``key`` over as many lines of at most ``width`` pixels as it needs, broken after a character
    of ``breaks`` where possible, else where the line is full; nothing is left out."""
    lines, cur = [], ""
    tokens, tok = [], ""
    for ch in key:
        tok += ch
        if ch in breaks:
            tokens.append(tok)
            tok = ""
    if tok:
        tokens.append(tok)
    for t in tokens:
        if text_size(cur + t, scale)[0] <= width:
            cur += t
            continue
        if cur:
            lines.append(cur)
            cur = ""
        for ch in t:  # a token longer than a line: break it where the line is full
            if cur and text_size(cur + ch, scale)[0] > width:
                lines.append(cur)
                cur = ""
            cur += ch
    if cur or not lines:
        lines.append(cur)
    return lines
