"""KeypointNet view pairs: object normalisation, pair cameras, the projection and pixel grid.

Follows KeypointNet's Blender renderer (``tools/render.py``, formats.md §1.5) and input parser
(``main.py``, §1.2-1.4). Pure library: numpy only.

Frames (DESIGN §4 and :mod:`kpdata.geometry`):

* **OBJ frame**: the mesh file's own coordinates, Y-up.
* **object frame** (``obj``): the OBJ frame centred at its bounding-box centre and scaled so its
  largest extent is 2 (``obj = (x_OBJ - center) * scale``), still Y-up. ``mv`` maps this frame,
  and stored keypoint ``xyz`` live in it.
* **world frame**: Z-up, the object placed by :func:`kpdata.geometry.world_T_obj_shapenet`, the
  ``to_blender`` turn of §1.3. Cameras are sampled here.
* **camera frames**: ``cam_T_obj`` in OpenCV (x right, y down, z forward), ``mv`` in OpenGL
  (x right, y up, looking down -z), converted with :func:`kpdata.geometry.cv_to_gl` only.

Cameras (§1.5): view 0's direction is uniform on the upper hemisphere (a normalised Gaussian
3-vector with ``z := |z|``); view 1's is independent, or view 0's moved by a random offset of
length ``U(0, 1) * perturb`` and renormalised (upper hemisphere). Each camera sits at
``distance * direction``, looks at the origin with world +Z up in the image, is optionally rolled
by ``U(-90, 90)`` degrees about its viewing axis, and then its *location* (not its orientation)
is jittered by ``U(-jitter, jitter)`` per axis, redrawn until ``z >= 0``.

Pixels: KeypointNet's NDC ``u = -f X / Z``, ``v = -f Y / Z`` (OpenGL camera coordinates, ``f =
projection[0, 0] = cot(fov / 2)``) meet its pixel grid at pixel centres
``x_ndc = (i + 0.5) / (W / 2) - 1``, ``y_ndc = -((j + 0.5) / (H / 2) - 1)`` (``main.py:meshgrid``).
In OpenCV pixels (centre of pixel (0, 0) at (0, 0)) that is the pinhole
``fx = f W / 2, fy = f H / 2, cx = (W - 1) / 2, cy = (H - 1) / 2`` (:func:`intrinsics`).
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np

from kpdata import geometry
from kpdata.camera import Intrinsics

DEFAULT_DISTANCE = 30.0  # render.py's d; main.py's depth bias is -30
DEFAULT_JITTER = 0.2  # render.py's shift
DEFAULT_FOV = 5.5  # degrees: the object fills ~70 % of the frame and never leaves it (README)
ROLL_RANGE_DEG = 90.0


# ---------------------------------------------------------------------------------- object


def normalization(bounds, scale: float = 1.0) -> tuple[np.ndarray, float]:
    """``(center (3,), s)`` mapping OBJ coordinates to the object frame ``(x - center) * s``:
    centred at the bounding-box centre, largest extent ``2 * scale``.

    bounds: (2, 3) min / max corner in the OBJ frame.
    """
    b = np.asarray(bounds, dtype=np.float64).reshape(2, 3)
    extent = float(np.max(b[1] - b[0]))
    if not (np.all(np.isfinite(b)) and extent > 0):
        raise ValueError(f"cannot normalise a model with bounds {b.tolist()} (zero or non-finite extent)")
    return (b[0] + b[1]) / 2.0, 2.0 * float(scale) / extent


def obj_T_model(center, s: float) -> np.ndarray:
    """(4, 4) similarity OBJ frame -> object frame: ``x * s - center * s``."""
    t = np.eye(4)
    t[:3, :3] *= s
    t[:3, 3] = -np.asarray(center, dtype=np.float64) * s
    return t


# ---------------------------------------------------------------------------------- cameras


def random_top_sphere(rng: np.random.Generator) -> np.ndarray:
    """(3,) unit vector uniform on the upper (z >= 0) hemisphere."""
    while True:
        v = rng.normal(size=3)
        n = np.linalg.norm(v)
        if n > 1e-12:
            v = v / n
            v[2] = abs(v[2])
            return v


def perturb_sphere(rng: np.random.Generator, loc, size: float) -> np.ndarray:
    """(3,) unit vector: ``loc`` (unit, (3,)) plus a random offset of length ``U(0, 1) * size``
    in a uniformly random direction, renormalised; redrawn until it is on the upper hemisphere."""
    loc = np.asarray(loc, dtype=np.float64)
    while True:
        d = rng.normal(size=3)
        d /= np.linalg.norm(d)
        v = loc + d * rng.random() * size
        n = np.linalg.norm(v)
        if n > 1e-12 and v[2] >= 0:
            return v / n


def jitter_location(rng: np.random.Generator, eye, shift: float) -> np.ndarray:
    """(3,) ``eye`` plus ``U(-shift, shift)`` per axis, redrawn until ``z >= 0``."""
    eye = np.asarray(eye, dtype=np.float64)
    while True:
        v = eye + rng.random(3) * 2 * shift - shift
        if v[2] >= 0:
            return v


def direction_to_viewpoint(direction, distance: float, roll_deg: float) -> geometry.Viewpoint:
    """The Render-for-CNN viewpoint of a camera at ``distance * direction`` (unit (3,), world)
    looking at the origin, rolled by ``roll_deg`` as Blender's ``roll_camera`` does (a rotation
    about the camera's local OpenGL z axis; that is ``tilt = -roll``)."""
    d = np.asarray(direction, dtype=np.float64)
    d = d / np.linalg.norm(d)
    az = math.degrees(math.atan2(d[1], d[0])) % 360.0
    el = math.degrees(math.asin(min(1.0, max(-1.0, d[2]))))
    return geometry.Viewpoint(az, el, 0.0 - float(roll_deg), float(distance))  # never -0.0


@dataclasses.dataclass(frozen=True)
class PairView:
    """One camera of a pair.

    viewpoint: the look-at camera before the location jitter (azimuth, elevation, tilt = -roll
      in degrees, distance); eye: (3,) world position after the jitter;
    cam_T_obj: (4, 4) object frame -> OpenCV camera; mv: (4, 4) object frame -> OpenGL camera
      (KeypointNet's model-view matrix); mvi: its inverse.
    """

    viewpoint: geometry.Viewpoint
    roll_deg: float
    eye: np.ndarray
    cam_T_obj: np.ndarray
    mv: np.ndarray
    mvi: np.ndarray


def make_view(direction, distance: float, roll_deg: float, eye) -> PairView:
    """The camera looking at the origin from ``distance * direction`` (rolled by ``roll_deg``),
    then moved to ``eye`` (3,) with its orientation kept (render.py's location jitter)."""
    vp = direction_to_viewpoint(direction, distance, roll_deg)
    cam_T_world = geometry.viewpoint_to_cam_T_world(vp)
    world_T_cam = geometry.invert_transform(cam_T_world)
    world_T_cam[:3, 3] = np.asarray(eye, dtype=np.float64)
    cam_T_obj = geometry.invert_transform(world_T_cam) @ geometry.world_T_obj_shapenet()
    mv = geometry.cv_to_gl(cam_T_obj)
    return PairView(vp, float(roll_deg), np.asarray(eye, dtype=np.float64), cam_T_obj, mv,
                    geometry.invert_transform(mv))


def sample_pair(rng: np.random.Generator, distance: float = DEFAULT_DISTANCE, perturb: float = 0.0,
                roll: bool = False, jitter: float = DEFAULT_JITTER) -> tuple[PairView, PairView]:
    """Two cameras as render.py draws them (module docstring), from ``rng`` in a fixed order:
    view 0 direction, roll, jitter; view 1 direction, roll, jitter."""
    if not distance > 0:
        raise ValueError(f"distance must be > 0, got {distance}")
    if perturb < 0 or jitter < 0:
        raise ValueError(f"perturb and jitter must be >= 0, got {perturb}, {jitter}")
    views = []
    loc = None
    for i in range(2):
        if i == 0 or perturb <= 0:
            loc = random_top_sphere(rng)
        else:
            loc = perturb_sphere(rng, loc, perturb)
        r = float(rng.uniform(-ROLL_RANGE_DEG, ROLL_RANGE_DEG)) if roll else 0.0
        eye = jitter_location(rng, loc * distance, jitter) if jitter > 0 else loc * distance
        views.append(make_view(loc, distance, r, eye))
    return views[0], views[1]


def relative_rotation(mv0, mv1) -> np.ndarray:
    """(3, 3) rotation taking camera 0's OpenGL frame to camera 1's: ``(mv1 @ mvi0)[:3, :3]``.
    KeypointNet's ground truth ``matmul(mvi[0], mv[1])`` on its transposed matrices is this
    matrix's transpose."""
    mv0 = np.asarray(mv0, dtype=np.float64).reshape(4, 4)
    mv1 = np.asarray(mv1, dtype=np.float64).reshape(4, 4)
    return (mv1 @ np.linalg.inv(mv0))[:3, :3]


def rotation_angle_axis(r) -> tuple[float, np.ndarray]:
    """(angle in degrees, unit axis (3,)) of a (3, 3) rotation."""
    r = np.asarray(r, dtype=np.float64)
    angle = math.acos(min(1.0, max(-1.0, (np.trace(r) - 1.0) / 2.0)))
    axis = np.array([r[2, 1] - r[1, 2], r[0, 2] - r[2, 0], r[1, 0] - r[0, 1]])
    n = np.linalg.norm(axis)
    if n < 1e-9:  # 0 or 180 degrees: the axis is the eigenvector of eigenvalue 1
        w, v = np.linalg.eigh((r + r.T) / 2.0)
        axis = v[:, int(np.argmax(w))]
        n = np.linalg.norm(axis)
    return math.degrees(angle), axis / n


# ---------------------------------------------------------------------------------- projection


def focal_ndc(fov_deg: float) -> float:
    """KeypointNet's NDC focal ``f = projection[0, 0] = cot(fov / 2)``."""
    if not 0 < fov_deg < 180:
        raise ValueError(f"fov must be in (0, 180) degrees, got {fov_deg}")
    return 1.0 / math.tan(math.radians(fov_deg) / 2.0)


def projection_matrix(fov_deg: float, near: float, far: float) -> np.ndarray:
    """(4, 4) OpenGL perspective matrix, ``p00 = p11 = cot(fov / 2)`` (square images).
    KeypointNet reads only ``p[0, 0]`` and ``p[1, 1]``."""
    if not 0 < near < far:
        raise ValueError(f"need 0 < near < far, got {near}, {far}")
    f = focal_ndc(fov_deg)
    return np.array([[f, 0.0, 0.0, 0.0], [0.0, f, 0.0, 0.0],
                     [0.0, 0.0, (far + near) / (near - far), 2.0 * far * near / (near - far)],
                     [0.0, 0.0, -1.0, 0.0]])


def format_projection(p) -> str:
    """``projection.txt``: 4 lines of 4 numbers separated by single spaces (``main.py`` splits
    each stripped line on ``" "``)."""
    p = np.asarray(p, dtype=np.float64).reshape(4, 4)
    return "".join(" ".join(repr(float(x)) for x in row) + "\n" for row in p)


def parse_projection(text: str) -> np.ndarray:
    """Read ``projection.txt`` as ``main.py`` does: (4, 4)."""
    return np.array([[float(y) for y in line.strip().split(" ")] for line in text.splitlines() if line.strip()])


def intrinsics(fov_deg: float, width: int, height: int) -> Intrinsics:
    """OpenCV intrinsics of KeypointNet's camera and pixel grid (module docstring)."""
    f = focal_ndc(fov_deg)
    return Intrinsics(f * width / 2.0, f * height / 2.0, (width - 1) / 2.0, (height - 1) / 2.0, int(width), int(height))


# ---------------------------------------------------------------------------------- images


def silhouette_rgba(rgba, depth) -> np.ndarray:
    """KeypointNet's image: alpha = 255 exactly where the render's ``depth`` (H, W) is non-zero,
    0 elsewhere; colour un-premultiplied by the render's coverage inside the silhouette and
    black outside it.

    rgba: (H, W, 4) uint8, colour composited over a black, alpha-0 background (alpha = coverage).
    """
    rgba = np.asarray(rgba)
    mask = np.asarray(depth) > 0
    cov = rgba[..., 3:4].astype(np.float32)
    rgb = rgba[..., :3].astype(np.float32)
    with np.errstate(divide="ignore", invalid="ignore"):
        straight = np.where(cov > 0, rgb * 255.0 / np.maximum(cov, 1.0), 0.0)
    out = np.zeros(rgba.shape, dtype=np.uint8)
    out[..., :3] = np.where(mask[..., None], np.clip(np.round(straight), 0, 255), 0).astype(np.uint8)
    out[..., 3] = np.where(mask, 255, 0).astype(np.uint8)
    return out
