"""Pinhole intrinsics, projection and unprojection (OpenCV convention).

Pixels: u right, v down, the centre of pixel (0, 0) at (0.0, 0.0). Points are in the OpenCV
camera frame (x right, y down, z forward) after applying ``cam_T_obj`` (4, 4). Depth ``z`` is
the distance along the optical axis (z-depth), never the range to the camera centre.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from kpdata import geometry


@dataclasses.dataclass(frozen=True)
class Intrinsics:
    """Pinhole intrinsics of a ``width`` x ``height`` image, focal lengths and principal point in
    pixels (OpenCV convention)."""

    fx: float
    fy: float
    cx: float
    cy: float
    width: int
    height: int

    def __post_init__(self):
        if not (self.fx > 0 and self.fy > 0):
            raise ValueError(f"focal lengths must be > 0, got fx={self.fx} fy={self.fy}")
        if not (self.width > 0 and self.height > 0):
            raise ValueError(f"image size must be > 0, got {self.width}x{self.height}")

    @classmethod
    def centered(cls, width: int, height: int, focal: float, focal_y: float | None = None):
        """Principal point at the image centre: ``((width - 1) / 2, (height - 1) / 2)``."""
        return cls(float(focal), float(focal if focal_y is None else focal_y),
                   (width - 1) / 2.0, (height - 1) / 2.0, int(width), int(height))

    @classmethod
    def from_matrix(cls, k, width: int, height: int):
        k = np.asarray(k, dtype=np.float64).reshape(3, 3)
        return cls(float(k[0, 0]), float(k[1, 1]), float(k[0, 2]), float(k[1, 2]), int(width), int(height))

    @property
    def K(self) -> np.ndarray:
        """(3, 3) float64 camera matrix."""
        return np.array([[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]])

    def scaled(self, sx: float, sy: float | None = None) -> "Intrinsics":
        """Intrinsics of the image resized by ``sx`` (and ``sy``), keeping pixel centres aligned."""
        sy = sx if sy is None else sy
        return Intrinsics(self.fx * sx, self.fy * sy, (self.cx + 0.5) * sx - 0.5, (self.cy + 0.5) * sy - 0.5,
                          int(round(self.width * sx)), int(round(self.height * sy)))


def project(K, cam_T_obj, points_obj):
    """Project object-frame points into the image.

    Args:
      K: (3, 3) camera matrix.
      cam_T_obj: (4, 4) object -> OpenCV camera transform.
      points_obj: (N, 3) points in the object frame.
    Returns:
      uv: (N, 2) float64 pixels; z: (N,) float64 z-depth (<= 0 means behind the camera,
      where uv is not meaningful).
    """
    K = np.asarray(K, dtype=np.float64).reshape(3, 3)
    p_cam = geometry.transform_points(cam_T_obj, points_obj)
    z = p_cam[:, 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        xy = p_cam[:, :2] / z[:, None]
    uv = xy @ K[:2, :2].T + K[:2, 2]
    return uv, z


def unproject(K, uv, z):
    """Inverse of :func:`project` into the camera frame.

    Args:
      K: (3, 3); uv: (N, 2) pixels; z: (N,) z-depth.
    Returns:
      (N, 3) float64 points in the OpenCV camera frame.
    """
    K = np.asarray(K, dtype=np.float64).reshape(3, 3)
    uv = np.asarray(uv, dtype=np.float64).reshape(-1, 2)
    z = np.asarray(z, dtype=np.float64).reshape(-1)
    x = (uv[:, 0] - K[0, 2]) / K[0, 0]
    y = (uv[:, 1] - K[1, 2]) / K[1, 1]
    return np.stack([x * z, y * z, z], axis=1)


def depth_to_points(K, depth) -> np.ndarray:
    """(H, W) z-depth image -> (H, W, 3) camera-frame points (zeros where depth is 0)."""
    depth = np.asarray(depth, dtype=np.float64)
    h, w = depth.shape
    v, u = np.mgrid[0:h, 0:w]
    pts = unproject(K, np.stack([u.ravel(), v.ravel()], 1), depth.ravel())
    return pts.reshape(h, w, 3)


def z_depth_to_range(K, depth) -> np.ndarray:
    """(H, W) z-depth -> (H, W) range (distance to the camera centre), float32."""
    return np.linalg.norm(depth_to_points(K, depth), axis=-1).astype(np.float32)
