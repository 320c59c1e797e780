"""KP2D's homography sampler, its normalised coordinate convention, and OpenCV warping.

Coordinate systems (formats §4.2; KP2D ``utils/image.py:meshgrid(normalized=True)``):

* **Pixels** (OpenCV, DESIGN §4): ``x`` right, ``y`` down, the centre of pixel (0, 0) at (0, 0),
  the centre of the last pixel at ``(W - 1, H - 1)``.
* **Normalised** (KP2D, PyTorch ``grid_sample(..., align_corners=True)``): ``xn = 2 x / (W - 1) - 1``,
  ``yn = 2 y / (H - 1) - 1``, so the centres of the corner pixels sit at -1 and +1.
  :func:`normalize_matrix` is this map as a 3x3 matrix ``N``.

A normalised homography ``Hn`` and its pixel twin ``Hp`` describe the same map:
``Hp = N^-1 Hn N`` (:func:`to_pixels`) and ``Hn = N Hp N^-1`` (:func:`to_normalized`), both scaled
so that ``H[2, 2] = 1``.

**Direction.** KP2D's ``H`` (``data['homography']``) maps a point of the warped image
(``image_aug``, KP2D's "source") to the point of the original image (``image``, the "target") that
it shows: ``image_aug(p) = image(H p)``. :func:`warp_image` makes ``image_aug`` from ``image``
exactly so (bilinear, zeros outside, as ``grid_sample`` does). The *patch* is the quadrilateral
``H [corners]`` in the original image that the warped image shows; the sampler keeps it inside
the image.
"""
from __future__ import annotations

import dataclasses
import math

import cv2
import numpy as np

__all__ = [
    "KP2D_PARAMS",
    "HomographyParams",
    "apply",
    "normalize_matrix",
    "patch_corners",
    "sample_homographies",
    "sample_homography",
    "to_normalized",
    "to_pixels",
    "warp_image",
]

# The unit square's corners in KP2D's order: (-1,-1), (-1,1), (1,-1), (1,1).
CORNERS = np.array([[-1.0, -1.0], [-1.0, 1.0], [1.0, -1.0], [1.0, 1.0]])


@dataclasses.dataclass(frozen=True)
class HomographyParams:
    """The sampler's constants (KP2D ``sample_homography`` arguments).

    Defaults are what KP2D's training uses (``ha_augment_sample``: patch ratio 0.7, scaling
    amplitude 0.2, max angle pi/4; the sampler's own defaults for the rest). Angles in radians.
    """

    patch_ratio: float = 0.7
    perspective_amplitude: float = 0.4
    scaling_amplitude: float = 0.2
    max_angle: float = math.pi / 4
    n_scales: int = 100
    n_angles: int = 100
    perspective: bool = True
    scaling: bool = True
    translation: bool = True
    rotation: bool = True

    def __post_init__(self):
        if not 0.0 < self.patch_ratio <= 1.0:
            raise ValueError(f"patch_ratio must be in (0, 1], got {self.patch_ratio}")
        if self.perspective_amplitude < 0 or self.scaling_amplitude < 0 or self.max_angle < 0:
            raise ValueError("amplitudes and max_angle must be >= 0")
        if self.n_scales < 1 or self.n_angles < 1:
            raise ValueError("n_scales and n_angles must be >= 1")
        # Largest corner excursion from the centre in x: patch_ratio + perspective/2, times the
        # largest scale. Beyond 1 the patch can leave the image before translation.
        reach = (self.patch_ratio + self.perspective_amplitude / 2) * (1 + self.scaling_amplitude / 2)
        if reach > 1.0 + 1e-12:
            raise ValueError(f"patch_ratio {self.patch_ratio}, perspective_amplitude {self.perspective_amplitude} "
                             f"and scaling_amplitude {self.scaling_amplitude} let the patch reach {reach:.3f} > 1 "
                             "(outside the image)")


KP2D_PARAMS = HomographyParams()
_CHUNK = 4096


def sample_homographies(rng: np.random.Generator, n: int, shape_hw: tuple[int, int],
                        params: HomographyParams = KP2D_PARAMS) -> np.ndarray:
    """``n`` homographies drawn by KP2D's sampler (formats §4.2), vectorised.

    shape_hw: (H, W) of the image, for the aspect ratio ``hw = H / W``.
    Returns (n, 3, 3) float64 normalised homographies (``H[2, 2] = 1``) mapping warped-image
    coordinates to original-image coordinates (module docstring).

    The steps and constants are KP2D's: corners at ``patch_ratio`` (y times hw); perspective
    offsets ``N(0, amp/2)`` clipped to ``±amp/2`` (y: times hw); one of ``[1, s_1..s_99]`` with
    ``s ~ N(1, scaling/2)`` clipped to ``1 ± scaling/2``, about the centroid; a translation
    ``U(-t_min, t_max)`` per axis keeping the patch inside ``[-1, 1] x [-hw, hw]``; one of the
    angles ``[0] + linspace(-max_angle, max_angle, n_angles)`` about the centroid among those
    whose corners stay in ``[-1, 1) x [-hw, hw)``; y divided by hw; DLT with ``H[2, 2] = 1``.
    Only the order of the random draws differs from KP2D's (it used the global NumPy RNG).
    """
    h, w = shape_hw
    p = params
    hw = float(h) / float(w)
    pts2 = np.broadcast_to(CORNERS * p.patch_ratio * [1.0, hw], (n, 4, 2)).copy()

    if p.perspective:
        a = p.perspective_amplitude / 2
        px = np.clip(rng.normal(0.0, a, (n, 2)), -a, a)
        py = np.clip(rng.normal(0.0, hw * a, (n, 2)), -hw * a, hw * a)
        pts2[:, 0, 0] -= px[:, 1]
        pts2[:, 0, 1] -= py[:, 1]
        pts2[:, 1, 0] -= px[:, 0]
        pts2[:, 1, 1] += py[:, 1]
        pts2[:, 2, 0] += px[:, 1]
        pts2[:, 2, 1] -= py[:, 0]
        pts2[:, 3, 0] += px[:, 0]
        pts2[:, 3, 1] += py[:, 0]

    if p.scaling:
        a = p.scaling_amplitude / 2
        scales = np.clip(rng.normal(1.0, a, (n, p.n_scales)), 1 - a, 1 + a)
        candidates = np.concatenate([np.ones((n, 1)), scales], axis=1)
        # KP2D draws the index from range(n_scales): scale 1 or one of the first n_scales - 1.
        idx = rng.integers(0, p.n_scales, n)
        s = candidates[np.arange(n), idx]
        center = pts2.mean(axis=1, keepdims=True)
        pts2 = (pts2 - center) * s[:, None, None] + center

    if p.translation:
        t_min = np.min(pts2 - [-1.0, -hw], axis=1)  # (n, 2)
        t_max = np.min(np.array([1.0, hw]) - pts2, axis=1)
        t = rng.uniform(-t_min, t_max)
        pts2 = pts2 + t[:, None, :]

    if p.rotation:
        angles = np.concatenate([[0.0], np.linspace(-p.max_angle, p.max_angle, p.n_angles)])
        c, s = np.cos(angles), np.sin(angles)
        rot = np.stack([np.stack([c, -s], -1), np.stack([s, c], -1)], axis=-2)  # (A, 2, 2)
        pick = rng.random(n)
        out = np.empty_like(pts2)
        for lo in range(0, n, _CHUNK):  # (chunk, A, 4, 2) at a time keeps memory small
            out[lo:lo + _CHUNK] = _rotate_inside(pts2[lo:lo + _CHUNK], rot, hw, pick[lo:lo + _CHUNK])
        pts2 = out

    pts2 = pts2 / [1.0, hw]
    return _dlt(np.broadcast_to(CORNERS, pts2.shape), pts2)


def _rotate_inside(pts2: np.ndarray, rot: np.ndarray, hw: float, u: np.ndarray) -> np.ndarray:
    """Rotate each (4, 2) patch about its centroid by one of the angles of ``rot`` (A, 2, 2) that
    keep its corners in ``[-1, 1) x [-hw, hw)``: the ``floor(u * count)``-th valid one."""
    m = pts2.shape[0]
    center = pts2.mean(axis=1, keepdims=True)  # (m, 1, 2)
    # row vectors times the matrix, as KP2D does: (m, A, 4, 2)
    rotated = np.matmul((pts2 - center)[:, None], rot) + center[:, None]
    valid = np.all((rotated >= [-1.0, -hw]) & (rotated < [1.0, hw]), axis=(2, 3))  # (m, A)
    valid[:, 0] |= ~valid.any(axis=1)  # angle 0 is inside up to rounding; never leave none
    counts = valid.sum(axis=1)
    pick = np.minimum(np.floor(u * counts).astype(np.int64), counts - 1)
    order = np.cumsum(valid, axis=1) - 1
    chosen = np.argmax(valid & (order == pick[:, None]), axis=1)
    return rotated[np.arange(m), chosen]


def sample_homography(rng: np.random.Generator, shape_hw: tuple[int, int],
                      params: HomographyParams = KP2D_PARAMS) -> np.ndarray:
    """One homography (3, 3) float64: ``sample_homographies(rng, 1, shape_hw, params)[0]``."""
    return sample_homographies(rng, 1, shape_hw, params)[0]


def _dlt(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """(n, 4, 2) -> (n, 4, 2) point pairs -> (n, 3, 3) exact homographies with ``H[2, 2] = 1``."""
    n = src.shape[0]
    a = np.zeros((n, 8, 8))
    b = np.zeros((n, 8))
    x, y = src[..., 0], src[..., 1]
    u, v = dst[..., 0], dst[..., 1]
    a[:, 0::2, 0], a[:, 0::2, 1], a[:, 0::2, 2] = x, y, 1.0
    a[:, 0::2, 6], a[:, 0::2, 7] = -x * u, -y * u
    a[:, 1::2, 3], a[:, 1::2, 4], a[:, 1::2, 5] = x, y, 1.0
    a[:, 1::2, 6], a[:, 1::2, 7] = -x * v, -y * v
    b[:, 0::2], b[:, 1::2] = u, v
    h = np.linalg.solve(a, b[..., None])[..., 0]
    return np.concatenate([h, np.ones((n, 1))], axis=1).reshape(n, 3, 3)


def normalize_matrix(width: int, height: int) -> np.ndarray:
    """3x3 ``N`` taking pixel coordinates to KP2D's normalised ones (align_corners=True)."""
    if width < 2 or height < 2:
        raise ValueError(f"normalised coordinates need an image of at least 2x2 pixels, got {width}x{height}")
    return np.array([[2.0 / (width - 1), 0.0, -1.0], [0.0, 2.0 / (height - 1), -1.0], [0.0, 0.0, 1.0]])


def _unit(h: np.ndarray) -> np.ndarray:
    return h / h[..., 2:3, 2:3]


def to_pixels(h_norm, width: int, height: int) -> np.ndarray:
    """Normalised (.., 3, 3) homography -> the same map in pixels (``H[2, 2] = 1``)."""
    n = normalize_matrix(width, height)
    return _unit(np.linalg.inv(n) @ np.asarray(h_norm, dtype=np.float64) @ n)


def to_normalized(h_pix, width: int, height: int) -> np.ndarray:
    """Pixel (.., 3, 3) homography -> the same map in normalised coordinates (``H[2, 2] = 1``)."""
    n = normalize_matrix(width, height)
    return _unit(n @ np.asarray(h_pix, dtype=np.float64) @ np.linalg.inv(n))


def apply(h, points) -> np.ndarray:
    """Map (N, 2) points through the 3x3 homography ``h`` -> (N, 2) float64."""
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    q = pts @ np.asarray(h, dtype=np.float64)[:, :2].T + np.asarray(h, dtype=np.float64)[:, 2]
    return q[:, :2] / q[:, 2:3]


def patch_corners(h_norm) -> np.ndarray:
    """(4, 2) normalised corners of the patch of the original image that the warped image shows
    (the image of the unit square's corners under ``h_norm``), KP2D's corner order."""
    return apply(h_norm, CORNERS)


def warp_image(image: np.ndarray, h_norm, border_value=0) -> np.ndarray:
    """The warped image ``out(p) = image(H p)`` for KP2D's normalised ``H`` (same size as
    ``image``), bilinear, ``border_value`` outside, as KP2D's ``grid_sample(align_corners=True)``.

    image: (H, W) or (H, W, C) array (uint8 or float32).
    """
    height, width = image.shape[:2]
    hp = to_pixels(h_norm, width, height)
    return cv2.warpPerspective(image, hp, (width, height), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                               borderMode=cv2.BORDER_CONSTANT, borderValue=border_value)
