"""Click-Here's per-instance keypoint maps and labels (formats.md §3.6, §3.7).

Every map is (S, S) for a crop of S x S pixels (S = 227) with one keypoint at integer pixel
``(x, y)`` (column, row; OpenCV convention). They are built in closed form, without filtering or
distance-transforming an image, and equal scipy's constructions bit for bit:

* ``keypoint_loc``: uint8, 255 at the keypoint, 0 elsewhere.
* ``gaussian_map``: float64, ``gaussian_filter(binary, sigma=23, mode='constant')`` divided by its
  maximum. The response of that separable filter to a single 1 is the outer product of scipy's
  1-D kernel (``exp(-x**2 / (2 sigma**2))`` normalised, radius ``int(4 sigma + 0.5)``) with itself,
  shifted to the keypoint: each output pixel is one product, so the closed form is exact.
* ``gaussian_map_uint8``: that map byte-scaled as ``scipy.misc.imsave`` does (what the LMDB holds).
* ``chessboard_map`` / ``manhattan_map``: int32 ``max(|dx|, |dy|)`` / ``|dx| + |dy|`` =
  ``distance_transform_cdt(1 - binary, 'chessboard' | 'taxicab')``.
* ``euclidean_map``: float64 ``sqrt(dx**2 + dy**2)`` = ``distance_transform_edt(1 - binary)``.
"""
from __future__ import annotations

import numpy as np

CROP_SIZE = 227
GAUSSIAN_SIGMA = 23.0


def in_crop(uv, width: int, height: int) -> np.ndarray:
    """(N,) bool: the keypoint belongs to a W x H crop, i.e. its nearest pixel
    ``floor(uv + 0.5)`` is one of the crop's: ``-0.5 <= u < W - 0.5`` and ``-0.5 <= v < H - 0.5``.
    The one rule: the pipeline keeps exactly these keypoints and ``validate`` accepts exactly these
    (a keypoint at u = -0.07 rounds to pixel 0 and is in). uv: (N, 2) float pixels in the crop."""
    uv = np.asarray(uv, dtype=np.float64).reshape(-1, 2)
    col, row = np.floor(uv[:, 0] + 0.5), np.floor(uv[:, 1] + 0.5)
    return (col >= 0) & (col <= width - 1) & (row >= 0) & (row <= height - 1)


def keypoint_pixel(uv, box_size, size: int = CROP_SIZE) -> np.ndarray:
    """Keypoint pixels in the resized crop: ``floor(size * uv / box_size)`` clamped to
    ``[0, size - 1]`` (Click-Here's mapping with the box's top-left at 0).

    uv: (N, 2) float pixels in the crop (OpenCV convention); box_size: (w, h) = Click-Here's
    ``bbox_size`` = ``(x2 - x1 + 1, y2 - y1 + 1)``, i.e. ``(W, H)`` for a W x H crop.
    Returns (N, 2) int64 (x, y).
    """
    uv = np.asarray(uv, dtype=np.float64).reshape(-1, 2)
    bw, bh = (max(float(box_size[0]), 1.0), max(float(box_size[1]), 1.0))
    px = np.floor(size * uv / np.array([bw, bh]))
    return np.clip(px, 0, size - 1).astype(np.int64)


def _check(xy, size):
    x, y = int(xy[0]), int(xy[1])
    if not (0 <= x < size and 0 <= y < size):
        raise ValueError(f"keypoint pixel {(x, y)} outside the {size}x{size} crop")
    return x, y


def keypoint_loc(xy, size: int = CROP_SIZE) -> np.ndarray:
    """(size, size) uint8: 255 at ``xy`` = (x, y), else 0."""
    x, y = _check(xy, size)
    m = np.zeros((size, size), np.uint8)
    m[y, x] = 255
    return m


def gaussian_kernel1d(sigma: float, truncate: float = 4.0) -> np.ndarray:
    """scipy.ndimage's 1-D Gaussian kernel (order 0): radius ``int(truncate * sigma + 0.5)``."""
    radius = int(truncate * float(sigma) + 0.5)
    x = np.arange(-radius, radius + 1)
    phi = np.exp(-0.5 / (float(sigma) * float(sigma)) * x ** 2)
    return phi / phi.sum()


def _shifted(kernel: np.ndarray, centre: int, size: int) -> np.ndarray:
    """Row of ``size`` values: the kernel centred at ``centre``, zero outside (mode='constant')."""
    r = len(kernel) // 2
    out = np.zeros(size)
    lo, hi = max(0, centre - r), min(size, centre + r + 1)
    out[lo:hi] = kernel[lo - centre + r:hi - centre + r]
    return out


def gaussian_map(xy, size: int = CROP_SIZE, sigma: float = GAUSSIAN_SIGMA) -> np.ndarray:
    """(size, size) float64 Gaussian keypoint map, max 1 (see the module docstring)."""
    x, y = _check(xy, size)
    k = gaussian_kernel1d(sigma)
    g = np.outer(_shifted(k, y, size), _shifted(k, x, size))
    return g / g.max()


def bytescale(data) -> np.ndarray:
    """scipy.misc.bytescale (what ``imsave`` applied): ``(data - min) * 255 / (max - min)``,
    clipped to [0, 255], ``+ 0.5`` and truncated to uint8."""
    data = np.asarray(data, dtype=np.float64)
    cmin, cmax = data.min(), data.max()
    scale = 255.0 / ((cmax - cmin) or 1.0)
    return (((data - cmin) * scale).clip(0, 255) + 0.5).astype(np.uint8)


def gaussian_map_uint8(xy, size: int = CROP_SIZE, sigma: float = GAUSSIAN_SIGMA) -> np.ndarray:
    """(size, size) uint8: the Gaussian map as Click-Here stores it (byte-scaled)."""
    return bytescale(gaussian_map(xy, size, sigma))


def _deltas(xy, size):
    x, y = _check(xy, size)
    idx = np.arange(size, dtype=np.int32)
    return np.abs(idx - y)[:, None], np.abs(idx - x)[None, :]


def chessboard_map(xy, size: int = CROP_SIZE) -> np.ndarray:
    """(size, size) int32 Chebyshev distance in pixels to ``xy`` (the CH-CNN keypoint map)."""
    dy, dx = _deltas(xy, size)
    return np.maximum(dy, dx).astype(np.int32)


def manhattan_map(xy, size: int = CROP_SIZE) -> np.ndarray:
    """(size, size) int32 taxicab distance to ``xy``."""
    dy, dx = _deltas(xy, size)
    return (dy + dx).astype(np.int32)


def euclidean_map(xy, size: int = CROP_SIZE) -> np.ndarray:
    """(size, size) float64 Euclidean distance to ``xy``."""
    dy, dx = _deltas(xy, size)
    return np.sqrt(dy.astype(np.float64) ** 2 + dx.astype(np.float64) ** 2)


def one_hot(index: int, n: int) -> np.ndarray:
    """(n,) uint8 with 1 at ``index``."""
    if not 0 <= index < n:
        raise ValueError(f"class index {index} outside [0, {n})")
    v = np.zeros(n, np.uint8)
    v[index] = 1
    return v


def view2label(deg: float, cls: int) -> int:
    """Click-Here's angle label: ``int(deg) % 360 + 360 * cls`` (deg already rounded)."""
    return int(deg) % 360 + 360 * int(cls)


def viewpoint_label(obj_class: int, az: int, el: int, tilt: int) -> np.ndarray:
    """(4,) int64 ``[cls, az + 360 cls, el + 360 cls, tilt + 360 cls]`` (angles mod 360)."""
    return np.array([obj_class, view2label(az, obj_class), view2label(el, obj_class),
                     view2label(tilt, obj_class)], dtype=np.int64)


def label_angles(azimuth: float, elevation: float, tilt: float) -> tuple[int, int, int]:
    """The integer label angles of a rendered viewpoint, as Click-Here parses them from Render for
    CNN's file name: ``round(az)``, ``round(el)``, ``round((-tilt) mod 360)`` (the tilt is negated
    "to match pascal3d"), each taken mod 360 here."""
    return (int(np.round(azimuth)) % 360, int(np.round(elevation)) % 360,
            int(np.round(np.mod(-tilt, 360.0))) % 360)


def flip_angles(az: int, el: int, tilt: int) -> tuple[int, int, int]:
    """Angles of the left-right flipped image: az -> (360 - az) mod 360, tilt -> (-tilt) mod 360."""
    return (360 - az) % 360, el % 360, (-tilt) % 360


def swap_left_right(name: str) -> str:
    """``left`` <-> ``right`` in a keypoint name (the flipped copy's class)."""
    return name.replace("left", "\0").replace("right", "left").replace("\0", "right")
