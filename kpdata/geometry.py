"""Rotations, rigid transforms and the Render-for-CNN viewpoint convention.

Coordinate systems used in this module (DESIGN §4):

* **object frame**: the mesh file's own coordinates. ShapeNet OBJ files are Y-up.
* **world frame**: Z-up. An object is placed in the world with :func:`world_T_obj_shapenet`,
  the turn Blender's OBJ importer applies, ``(x, y, z) -> (x, -z, y)``.
* **OpenCV camera frame**: x right, y down, z forward (the optical axis). Every stored camera
  pose is ``cam_T_obj``: 4x4, maps homogeneous object points into this frame.
* **OpenGL camera frame** (pyrender, KeypointNet ``mv``): x right, y up, looking down -z.
  Convert with :func:`cv_to_gl` / :func:`gl_to_cv` only; never flip axes by hand elsewhere.

Angles are radians unless a name ends in ``_deg``. User-facing viewpoints are degrees.
"""
from __future__ import annotations

import dataclasses

import numpy as np

# Diagonal flip between the OpenCV (x right, y down, z forward) and OpenGL
# (x right, y up, z backward) camera frames. It is its own inverse.
_CV_GL_FLIP = np.diag([1.0, -1.0, -1.0, 1.0])


def _as_matrix(m, shape, name):
    m = np.asarray(m, dtype=np.float64)
    if m.shape != shape:
        raise ValueError(f"expected {name} of shape {shape}, got {m.shape}")
    return m


def rot_x(angle: float) -> np.ndarray:
    """(3, 3) rotation about +x by ``angle`` radians (right-handed)."""
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])


def rot_y(angle: float) -> np.ndarray:
    """(3, 3) rotation about +y by ``angle`` radians (right-handed)."""
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def rot_z(angle: float) -> np.ndarray:
    """(3, 3) rotation about +z by ``angle`` radians (right-handed)."""
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def axis_angle_to_matrix(axis, angle: float) -> np.ndarray:
    """(3, 3) rotation by ``angle`` radians about ``axis`` (3,), Rodrigues' formula."""
    axis = np.asarray(axis, dtype=np.float64)
    n = np.linalg.norm(axis)
    if n == 0:
        raise ValueError("rotation axis has zero length")
    x, y, z = axis / n
    k = np.array([[0.0, -z, y], [z, 0.0, -x], [-y, x, 0.0]])
    return np.eye(3) + np.sin(angle) * k + (1.0 - np.cos(angle)) * (k @ k)


def make_transform(rotation=None, translation=None) -> np.ndarray:
    """(4, 4) rigid transform from a (3, 3) rotation and a (3,) translation."""
    t = np.eye(4)
    if rotation is not None:
        t[:3, :3] = _as_matrix(rotation, (3, 3), "rotation")
    if translation is not None:
        t[:3, 3] = _as_matrix(translation, (3,), "translation")
    return t


def invert_transform(t) -> np.ndarray:
    """Inverse of a (4, 4) rigid transform, using the rotation's transpose."""
    t = _as_matrix(t, (4, 4), "transform")
    r = t[:3, :3]
    out = np.eye(4)
    out[:3, :3] = r.T
    out[:3, 3] = -r.T @ t[:3, 3]
    return out


def transform_points(t, points) -> np.ndarray:
    """Apply a (4, 4) transform to (N, 3) points; returns (N, 3) float64."""
    t = _as_matrix(t, (4, 4), "transform")
    p = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    return p @ t[:3, :3].T + t[:3, 3]


def cv_to_gl(cam_T_obj_cv) -> np.ndarray:
    """OpenCV-frame pose (4, 4) -> OpenGL-frame pose (4, 4) of the same camera.

    Works for ``cam_T_x`` (a model-view matrix). For a camera-to-world pose
    ``x_T_cam`` use :func:`cv_pose_to_gl_pose`.
    """
    return _CV_GL_FLIP @ _as_matrix(cam_T_obj_cv, (4, 4), "pose")


def gl_to_cv(cam_T_obj_gl) -> np.ndarray:
    """OpenGL-frame ``cam_T_x`` (4, 4) -> OpenCV-frame ``cam_T_x`` (4, 4)."""
    return _CV_GL_FLIP @ _as_matrix(cam_T_obj_gl, (4, 4), "pose")


def cv_pose_to_gl_pose(x_T_cam_cv) -> np.ndarray:
    """Camera-to-world pose in the OpenCV camera frame -> the same in the OpenGL frame
    (what pyrender's ``scene.add(camera, pose=...)`` expects)."""
    return _as_matrix(x_T_cam_cv, (4, 4), "pose") @ _CV_GL_FLIP


# ShapeNet OBJ (Y-up) -> Z-up world, as Blender's OBJ import: (x, y, z) -> (x, -z, y).
_WORLD_T_OBJ_SHAPENET = np.array(
    [[1.0, 0.0, 0.0, 0.0], [0.0, 0.0, -1.0, 0.0], [0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0]]
)


def world_T_obj_shapenet() -> np.ndarray:
    """(4, 4) placement of a Y-up ShapeNet model in the Z-up world: (x, y, z) -> (x, -z, y)."""
    return _WORLD_T_OBJ_SHAPENET.copy()


def look_at_cv(eye, target=(0.0, 0.0, 0.0), up=(0.0, 0.0, 1.0)) -> np.ndarray:
    """``cam_T_world`` (4, 4, OpenCV camera frame) for a camera at ``eye`` (3,) looking at
    ``target`` (3,) with ``up`` (3,) pointing up in the image.

    If the viewing direction is parallel to ``up`` (a camera straight above or below), the
    world +y axis is used as the up hint instead, so the pose stays defined.
    """
    eye = np.asarray(eye, dtype=np.float64)
    forward = np.asarray(target, dtype=np.float64) - eye
    dist = np.linalg.norm(forward)
    if dist == 0:
        raise ValueError("camera eye coincides with the look-at target")
    forward /= dist
    up = np.asarray(up, dtype=np.float64)
    right = np.cross(forward, up)
    if np.linalg.norm(right) < 1e-9:
        right = np.cross(forward, np.array([0.0, 1.0, 0.0]))
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    r = np.stack([right, down, forward])  # rows: camera axes in world coordinates
    return make_transform(r, -r @ eye)


@dataclasses.dataclass(frozen=True)
class Viewpoint:
    """A Render-for-CNN / Click-Here viewpoint: degrees and model units.

    The camera sits at ``distance * (cos el cos az, cos el sin az, sin el)`` in the Z-up world,
    looks at the origin with world +Z up, then rolls about its optical axis by ``tilt``.
    """

    azimuth: float
    elevation: float
    tilt: float
    distance: float

    def as_array(self) -> np.ndarray:
        return np.array([self.azimuth, self.elevation, self.tilt, self.distance], dtype=np.float64)


def camera_center(azimuth_deg: float, elevation_deg: float, distance: float) -> np.ndarray:
    """(3,) camera centre in the Z-up world for a Render-for-CNN viewpoint."""
    az, el = np.deg2rad(azimuth_deg), np.deg2rad(elevation_deg)
    return distance * np.array([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)])


def viewpoint_to_cam_T_world(vp: Viewpoint) -> np.ndarray:
    """``cam_T_world`` (4, 4, OpenCV camera frame) of a Render-for-CNN viewpoint.

    Tilt convention (fixed by conformance with Render for CNN's reference render): a positive
    tilt rolls the image content counter-clockwise as seen in the image, i.e. the camera turns
    by ``-tilt`` about its forward axis.
    """
    if not vp.distance > 0:
        raise ValueError(f"viewpoint distance must be > 0, got {vp.distance}")
    eye = camera_center(vp.azimuth, vp.elevation, vp.distance)
    cam_T_world = look_at_cv(eye)
    roll = make_transform(rot_z(-np.deg2rad(vp.tilt)))
    return roll @ cam_T_world


def viewpoint_to_cam_T_obj(vp: Viewpoint, world_T_obj=None) -> np.ndarray:
    """``cam_T_obj`` (4, 4, OpenCV) for a viewpoint; ``world_T_obj`` defaults to the ShapeNet
    Y-up -> Z-up turn (:func:`world_T_obj_shapenet`)."""
    if world_T_obj is None:
        world_T_obj = _WORLD_T_OBJ_SHAPENET
    return viewpoint_to_cam_T_world(vp) @ _as_matrix(world_T_obj, (4, 4), "world_T_obj")


def cam_T_world_to_viewpoint(cam_T_world) -> Viewpoint:
    """Recover the viewpoint of a camera that looks at the world origin (inverse of
    :func:`viewpoint_to_cam_T_world`, away from the poles where azimuth is undefined)."""
    t = _as_matrix(cam_T_world, (4, 4), "cam_T_world")
    eye = invert_transform(t)[:3, 3]
    distance = float(np.linalg.norm(eye))
    elevation = float(np.degrees(np.arcsin(np.clip(eye[2] / distance, -1.0, 1.0))))
    azimuth = float(np.degrees(np.arctan2(eye[1], eye[0])) % 360.0)
    untilted = look_at_cv(eye)
    roll = t[:3, :3] @ untilted[:3, :3].T  # = rot_z(-tilt)
    tilt = float(-np.degrees(np.arctan2(roll[1, 0], roll[0, 0])))
    return Viewpoint(azimuth, elevation, tilt, distance)
