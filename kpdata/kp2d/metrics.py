"""Detector / descriptor metrics of KP2D's HPatches evaluation (formats §4.4; KP2D
``evaluation/{detector,descriptor}_evaluation.py``, adapted there from rpautrat/SuperPoint).

Any detector fits: it gives, per image, :class:`Detections` -- keypoints ``(N, 2)`` pixels
``(x, y)`` (OpenCV convention), scores ``(N,)`` (higher = better) and descriptors ``(N, D)``
(float for L2 matching, uint8 for Hamming). ``H`` is the pixel homography mapping image 1 to
image 2; ``shape`` is ``(W, H)`` of an image.

Definitions (thresholds are KP2D's defaults):

* **Repeatability** (``distance_thresh = 3``): keep the image-1 points that ``H`` maps inside
  image 2 (``0 <= x < W``, ``0 <= y < H``) and the image-2 points that ``H^-1`` maps inside image 1;
  keep each set's ``top_k`` by score; with ``d`` the distances between the warped image-1 points
  and the image-2 points, ``count1`` = image-1 points whose nearest image-2 point is within 3 px,
  ``count2`` likewise the other way; ``rep = (count1 + count2) / (N1 + N2)``.
* **Localisation error**: the mean of those nearest distances over the correct points of both
  directions, ``(le1 + le2) / (count1 + count2)`` pixels.
* **Homography correctness C1 / C3 / C5**: keep the points that warp inside the other image,
  ``top_k`` each; brute-force matching with cross-check; fewer than 4 matches -> 0;
  ``cv2.findHomography(RANSAC, 3 px, maxIters=5000)``, ``None`` -> 0; warp the corners
  ``(0, 0), (0, H-1), (W-1, 0), (W-1, H-1)`` of image 1 with the estimate and with ``H``; the
  pair scores 1 at threshold ``e`` when the mean corner distance is ``<= e``.
* **Matching score**: ``top_k`` by score with no visibility filter; brute-force nearest
  neighbour (no cross-check) image 1 -> 2: a match is correct when the matched image-2 point,
  mapped back by ``H^-1``, lies within ``< 3`` px of the image-1 point, and it counts when that
  mapped point lies in ``[0, W-1] x [0, H-1]``; ``score1 = correct / counted``; the same from
  image 2 -> 1 with ``H``; ``MS = (score1 + score2) / 2``.

Where KP2D's code is undefined, here it is defined: a pair with no points after filtering has
repeatability NaN (KP2D: -1, which it then averages in) and one with no correct point has
localisation error NaN (KP2D divides by zero); :func:`summarize` averages over the pairs where a
value is defined and reports how many were not. Top-k ties are broken by index (stable sort).
"""
from __future__ import annotations

import dataclasses
import math

import cv2
import numpy as np

__all__ = [
    "METRIC_NAMES",
    "Detections",
    "evaluate_pair",
    "homography_correctness",
    "matching_score",
    "repeatability",
    "summarize",
    "top_k",
    "warp_points",
]

METRIC_NAMES = ("repeatability", "localization_error", "c1", "c3", "c5", "matching_score")


@dataclasses.dataclass(frozen=True)
class Detections:
    """One image's detections: keypoints (N, 2) float64 pixels (x, y); scores (N,) float64;
    descriptors (N, D) float32 or uint8 (binary)."""

    keypoints: np.ndarray
    scores: np.ndarray
    descriptors: np.ndarray

    def __post_init__(self):
        kp = np.asarray(self.keypoints, dtype=np.float64).reshape(-1, 2) if np.size(self.keypoints) else \
            np.zeros((0, 2))
        sc = np.asarray(self.scores, dtype=np.float64).reshape(-1)
        desc = np.asarray(self.descriptors)
        if desc.ndim != 2 and desc.size == 0:
            desc = desc.reshape(0, 0)
        if desc.ndim != 2:
            raise ValueError(f"expected (N, D) descriptors, got {desc.shape}")
        if desc.dtype != np.uint8:
            desc = desc.astype(np.float32)
        if not (len(kp) == len(sc) == len(desc)):
            raise ValueError(f"detections disagree on N: {len(kp)} keypoints, {len(sc)} scores, "
                             f"{len(desc)} descriptors")
        if not np.all(np.isfinite(kp)) or not np.all(np.isfinite(sc)):
            raise ValueError("detections: non-finite keypoints or scores")
        object.__setattr__(self, "keypoints", kp)
        object.__setattr__(self, "scores", sc)
        object.__setattr__(self, "descriptors", desc)

    def __len__(self) -> int:
        return len(self.keypoints)

    def subset(self, index) -> Detections:
        return Detections(self.keypoints[index], self.scores[index], self.descriptors[index])

    def above(self, conf_threshold: float) -> Detections:
        """Only the detections with score > ``conf_threshold`` (KP2D: 0.0)."""
        return self.subset(self.scores > conf_threshold)


def warp_points(points, h) -> np.ndarray:
    """(N, 2) pixel points through the 3x3 homography ``h`` -> (N, 2)."""
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    if len(pts) == 0:
        return pts.copy()
    q = pts @ np.asarray(h, dtype=np.float64)[:, :2].T + np.asarray(h, dtype=np.float64)[:, 2]
    return q[:, :2] / q[:, 2:3]


def _inside(points: np.ndarray, shape_wh, closed: bool) -> np.ndarray:
    w, h = shape_wh
    x, y = points[:, 0], points[:, 1]
    if closed:
        return (x >= 0) & (x <= w - 1) & (y >= 0) & (y <= h - 1)
    return (x >= 0) & (x < w) & (y >= 0) & (y < h)


def top_k(det: Detections, k: int) -> Detections:
    """The ``k`` highest-scoring detections (all of them when fewer), best first."""
    order = np.argsort(-det.scores, kind="stable")[:k]
    return det.subset(order)


def _shared(det: Detections, h, shape_other) -> Detections:
    """Detections whose points ``h`` maps inside the other image (half-open bounds)."""
    return det.subset(_inside(warp_points(det.keypoints, h), shape_other, closed=False))


@dataclasses.dataclass(frozen=True)
class Repeatability:
    n1: int
    n2: int
    repeatability: float
    localization_error: float


def repeatability(det1: Detections, det2: Detections, h, shape1, shape2=None, k: int = 300,
                  distance_thresh: float = 3.0) -> Repeatability:
    """Repeatability and localisation error of one pair (module docstring)."""
    shape2 = shape1 if shape2 is None else shape2
    h = np.asarray(h, dtype=np.float64)
    d1 = top_k(_shared(det1, h, shape2), k)
    d2 = top_k(_shared(det2, np.linalg.inv(h), shape1), k)
    p1 = warp_points(d1.keypoints, h)  # image-1 points in image 2
    p2 = d2.keypoints
    n1, n2 = len(p1), len(p2)
    count1 = count2 = 0
    le1 = le2 = 0.0
    if n1 and n2:
        dist = np.linalg.norm(p1[:, None, :] - p2[None, :, :], axis=2)
        min1, min2 = dist.min(axis=1), dist.min(axis=0)
        ok1, ok2 = min1 <= distance_thresh, min2 <= distance_thresh
        count1, count2 = int(ok1.sum()), int(ok2.sum())
        le1, le2 = float(min1[ok1].sum()), float(min2[ok2].sum())
    rep = (count1 + count2) / (n1 + n2) if n1 + n2 else math.nan
    loc = (le1 + le2) / (count1 + count2) if count1 + count2 else math.nan
    return Repeatability(n1, n2, rep, loc)


def _norm_for(desc: np.ndarray, norm):
    if norm is not None:
        return norm
    return cv2.NORM_HAMMING if desc.dtype == np.uint8 else cv2.NORM_L2


def _match(desc_q: np.ndarray, desc_t: np.ndarray, norm, cross_check: bool) -> np.ndarray:
    """(M, 2) index pairs (query, train) of brute-force nearest-neighbour matches."""
    if len(desc_q) == 0 or len(desc_t) == 0:
        return np.zeros((0, 2), dtype=np.int64)
    matches = cv2.BFMatcher(norm, crossCheck=cross_check).match(desc_q, desc_t)
    return np.array([[m.queryIdx, m.trainIdx] for m in matches], dtype=np.int64).reshape(-1, 2)


def homography_correctness(det1: Detections, det2: Detections, h, shape1, shape2=None, k: int = 300,
                           thresholds=(1.0, 3.0, 5.0), norm=None, ransac_thresh: float = 3.0,
                           max_iters: int = 5000) -> tuple[tuple[float, ...], float]:
    """Per-threshold correctness (1.0 or 0.0) of the homography estimated from cross-checked
    matches, and the mean corner distance in pixels (inf when no homography was found)."""
    shape2 = shape1 if shape2 is None else shape2
    h = np.asarray(h, dtype=np.float64)
    d1 = top_k(_shared(det1, h, shape2), k)
    d2 = top_k(_shared(det2, np.linalg.inv(h), shape1), k)
    zero = tuple(0.0 for _ in thresholds), math.inf
    if len(d1) == 0 or len(d2) == 0:
        return zero
    m = _match(d1.descriptors, d2.descriptors, _norm_for(d1.descriptors, norm), cross_check=True)
    if len(m) < 4:
        return zero
    est, _ = cv2.findHomography(d1.keypoints[m[:, 0]], d2.keypoints[m[:, 1]], cv2.RANSAC, ransac_thresh,
                                maxIters=max_iters)
    if est is None:
        return zero
    w, hh = shape1
    corners = np.array([[0, 0], [0, hh - 1], [w - 1, 0], [w - 1, hh - 1]], dtype=np.float64)
    dist = float(np.mean(np.linalg.norm(warp_points(corners, est) - warp_points(corners, h), axis=1)))
    if not math.isfinite(dist):
        return zero
    return tuple(float(dist <= t) for t in thresholds), dist


def matching_score(det1: Detections, det2: Detections, h, shape1, shape2=None, k: int = 300,
                   distance_thresh: float = 3.0, norm=None) -> float:
    """Matching score of one pair (module docstring)."""
    shape2 = shape1 if shape2 is None else shape2
    h = np.asarray(h, dtype=np.float64)
    d1, d2 = top_k(det1, k), top_k(det2, k)
    nrm = _norm_for(d1.descriptors, norm)

    def one_way(dq: Detections, dt: Detections, h_back, shape_q) -> float:
        m = _match(dq.descriptors, dt.descriptors, nrm, cross_check=False)
        if len(m) == 0:
            return 0.0
        back = warp_points(dt.keypoints[m[:, 1]], h_back)  # matched points in the query image
        vis = _inside(back, shape_q, closed=True)
        correct = np.linalg.norm(back - dq.keypoints[m[:, 0]], axis=1) < distance_thresh
        return float(np.sum(correct & vis)) / max(float(np.sum(vis)), 1.0)

    return (one_way(d1, d2, np.linalg.inv(h), shape1) + one_way(d2, d1, h, shape2)) / 2


def evaluate_pair(det1: Detections, det2: Detections, h, shape1, shape2=None, k: int = 300,
                  norm=None) -> dict:
    """All six metrics of one pair: {repeatability, localization_error, c1, c3, c5,
    matching_score, n1, n2, corner_error}."""
    rep = repeatability(det1, det2, h, shape1, shape2, k)
    (c1, c3, c5), corner = homography_correctness(det1, det2, h, shape1, shape2, k, norm=norm)
    ms = matching_score(det1, det2, h, shape1, shape2, k, norm=norm)
    return {"repeatability": rep.repeatability, "localization_error": rep.localization_error,
            "c1": c1, "c3": c3, "c5": c5, "matching_score": ms, "n1": rep.n1, "n2": rep.n2,
            "corner_error": corner}


def summarize(results: list[dict]) -> dict:
    """Means over pairs of each metric (NaN entries skipped), plus ``pairs`` and
    ``undefined_<metric>`` counts."""
    out: dict = {"pairs": len(results)}
    for name in METRIC_NAMES:
        vals = np.array([r[name] for r in results], dtype=np.float64)
        ok = np.isfinite(vals)
        out[name] = float(vals[ok].mean()) if ok.any() else math.nan
        out[f"undefined_{name}"] = int((~ok).sum())
    return out
