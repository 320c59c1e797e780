"""KeyPose's uvd geometry: cameras, targets, projections, and the resize of ``gen_tfrecords``
(formats.md §2.5).


Geometry (KeyPose ``utils.py``). A Target's ``transform`` is ``T = cam_T_world`` (4x4, row-major,
OpenCV camera frame: x right, y down, z forward); a keypoint is ``(u, v)`` pixels (OpenCV
convention), ``x = u / resx``, ``y = v / resy``, ``z`` its camera-Z depth in metres. With the
camera ``fx, fy, cx, cy, baseline B``::

    P = [[fx, 0, cx, 0], [0, fy, cy, 0], [0, 0, 0, fx*B], [0, 0, 1, 0]]   camera XYZ1 -> uvd(w)
    Q = [[1, 0, 0, -cx], [0, 1, 0, -cy], [0, 0, 0, fx], [0, 0, 1/B, 0]]   uvd1 -> camera XYZ(w)
    keys_uvd row = [u, v, d = fx*B/z, 1]     (d: disparity in pixels)
    to_uvd = P @ T;  to_world = inv(T) @ Q;  projections divide by the 4th component.

The right camera of a rectified pair is the left one moved by ``B`` along its x axis: its ``T`` is
the left ``T`` with ``t_x - B``, and ``u_R = u_L - fx*B/z``.
"""
from __future__ import annotations

import dataclasses
import re

import cv2
import numpy as np

from kpdata.keypose import proto as kpp


# --------------------------------------------------------------------------- cameras and targets


def camera_array(cam) -> np.ndarray:
    """(7,) float64: fx, fy, cx, cy, baseline, resx, resy."""
    return np.array([cam.fx, cam.fy, cam.cx, cam.cy, cam.baseline, cam.resx, cam.resy], dtype=np.float64)


def make_camera(fx, fy, cx, cy, baseline, resx, resy):
    cam = kpp.new("Camera")
    cam.fx, cam.fy, cam.cx, cam.cy, cam.baseline, cam.resx, cam.resy = (
        float(fx), float(fy), float(cx), float(cy), float(baseline), float(resx), float(resy))
    return cam


def p_matrix(cam) -> np.ndarray:
    """(4, 4) P: camera XYZ1 -> uvd(w)."""
    return np.array([[cam.fx, 0.0, cam.cx, 0.0], [0.0, cam.fy, cam.cy, 0.0],
                     [0.0, 0.0, 0.0, cam.fx * cam.baseline], [0.0, 0.0, 1.0, 0.0]], dtype=np.float64)


def q_matrix(cam) -> np.ndarray:
    """(4, 4) Q: uvd1 -> camera XYZ(w); needs a non-zero baseline."""
    if not cam.baseline:
        raise ValueError("Q needs a camera with a non-zero baseline")
    return np.array([[1.0, 0.0, 0.0, -cam.cx], [0.0, 1.0, 0.0, -cam.cy], [0.0, 0.0, 0.0, cam.fx],
                     [0.0, 0.0, 1.0 / cam.baseline, 0.0]], dtype=np.float64)


def transform_matrix(target) -> np.ndarray:
    """(4, 4) float64 cam_T_world of a Target."""
    return np.asarray(target.transform.element, dtype=np.float64).reshape(4, 4)


def project_h(mat, points4) -> np.ndarray:
    """(N, 4) homogeneous rows through ``mat`` (4, 4), divided by the 4th component."""
    p = np.asarray(points4, dtype=np.float64).reshape(-1, 4) @ np.asarray(mat, dtype=np.float64).T
    return p / p[:, 3:4]


@dataclasses.dataclass(frozen=True)
class TargetArrays:
    """A Target as arrays (KeyPose ``utils.get_contents_pb``).

    camera (7,); to_uvd (4, 4) = P T; to_world (4, 4) = inv(T) Q; keys_uvd (K, 4) rows
    [u, v, fx*B/z, 1]; visible (K,) float.
    """

    camera: np.ndarray
    to_uvd: np.ndarray
    to_world: np.ndarray
    keys_uvd: np.ndarray
    visible: np.ndarray


def target_arrays(target) -> TargetArrays:
    cam = target.camera
    t = transform_matrix(target)
    kps = list(target.keypoints)
    keys = np.array([[k.u, k.v, cam.fx * cam.baseline / k.z, 1.0] for k in kps], dtype=np.float64).reshape(-1, 4)
    vis = np.array([k.visible for k in kps], dtype=np.float64)
    return TargetArrays(camera_array(cam), p_matrix(cam) @ t, np.linalg.inv(t) @ q_matrix(cam), keys, vis)


def world_points(target) -> np.ndarray:
    """(K, 3) world points of a Target's keypoints: unproject (u, v, z) with its camera, then
    ``inv(T)`` (independent of Q and the baseline)."""
    cam = target.camera
    kps = list(target.keypoints)
    z = np.array([k.z for k in kps], dtype=np.float64)
    x = (np.array([k.u for k in kps]) - cam.cx) / cam.fx * z
    y = (np.array([k.v for k in kps]) - cam.cy) / cam.fy * z
    cam_pts = np.stack([x, y, z, np.ones_like(z)], axis=1)
    return (cam_pts @ np.linalg.inv(transform_matrix(target)).T)[:, :3]


def make_target(cam_T_world, camera, xyz_world, visible):
    """A Target for a camera (keypose.Camera) at ``cam_T_world`` (4, 4) seeing world keypoints
    ``xyz_world`` (K, 3) metres; ``visible`` (K,) bool/float. u, v are the pinhole projection,
    x = u/resx, y = v/resy, z the camera-Z depth."""
    t = np.asarray(cam_T_world, dtype=np.float64).reshape(4, 4)
    pts = np.asarray(xyz_world, dtype=np.float64).reshape(-1, 3) @ t[:3, :3].T + t[:3, 3]
    target = kpp.new("Target")
    target.transform.element.extend(t.ravel().tolist())
    target.camera.CopyFrom(camera)
    for p, vis in zip(pts, np.asarray(visible).reshape(-1)):
        kp = target.keypoints.add()
        kp.u = camera.fx * p[0] / p[2] + camera.cx
        kp.v = camera.fy * p[1] / p[2] + camera.cy
        kp.x, kp.y, kp.z, kp.visible = kp.u / camera.resx, kp.v / camera.resy, p[2], float(vis)
    return target


# --------------------------------------------------------------------------- resize (gen_tfrecords §2.5)

_SIZE_RE = re.compile(r"^(\d+)x(\d+)_fl(\d+(?:\.\d+)?)$")


@dataclasses.dataclass(frozen=True)
class ImageSize:
    """``WxH_flF``: the output image size and focal length (pixels) of gen_tfrecords."""

    width: int
    height: int
    focal: float

    @classmethod
    def parse(cls, text: str) -> ImageSize:
        m = _SIZE_RE.match(text.strip())
        if not m or int(m.group(1)) <= 0 or int(m.group(2)) <= 0 or float(m.group(3)) <= 0:
            raise ValueError(f"expected an image size WxH_flF, e.g. 756x424_fl400, got {text!r}")
        return cls(int(m.group(1)), int(m.group(2)), float(m.group(3)))

    def __str__(self):
        f = int(self.focal) if float(self.focal).is_integer() else self.focal
        return f"{self.width}x{self.height}_fl{f}"

    def data_params(self, num_kp: int, baseline: float):
        """The ideal camera of the resized set: fx = fy = F, cx = W/2, cy = H/2 (as KeyPose)."""
        dp = kpp.new("DataParams")
        dp.resx, dp.resy, dp.num_kp = self.width, self.height, int(num_kp)
        dp.camera.CopyFrom(make_camera(self.focal, self.focal, self.width / 2, self.height / 2, baseline,
                                       self.width, self.height))
        return dp


@dataclasses.dataclass(frozen=True)
class ResizePlan:
    """KeyPose's ``resize_image``: crop ``cropx``/``cropy`` pixels from each side, then scale by
    ``1/scale`` to ``width`` x ``height``; ``scale = fx_orig / F``."""

    scale: float
    cropx: int
    cropy: int
    width: int
    height: int


def resize_plan(cam_orig, size: ImageSize) -> ResizePlan:
    """The crop and scale for images taken with ``cam_orig`` (the folder's data_params camera)."""
    resx, resy = int(cam_orig.resx), int(cam_orig.resy)
    scale = float(cam_orig.fx) / size.focal
    crop_y, crop_x = resy - size.height * scale, resx - size.width * scale
    cropy = round(crop_y * 0.5) if crop_y > 1.5 else 0
    cropx = round(crop_x * 0.5) if crop_x > 1.5 else 0
    return ResizePlan(scale, cropx, cropy, size.width, size.height)


def resize_target(target, plan: ResizePlan) -> None:
    """Update a Target in place for the resized image: camera fx, fy /= scale,
    cx = (cx - cropx)/scale, cy likewise, resx/resy; keypoints u, v likewise, x = u/W, y = v/H,
    visible = 0 when off the image (u < 0 or u >= W, v < 0 or v >= H)."""
    c = target.camera
    c.fx /= plan.scale
    c.fy /= plan.scale
    c.cx = (c.cx - plan.cropx) / plan.scale
    c.cy = (c.cy - plan.cropy) / plan.scale
    c.resx, c.resy = plan.width, plan.height
    for kp in target.keypoints:
        kp.u = (kp.u - plan.cropx) / plan.scale
        kp.v = (kp.v - plan.cropy) / plan.scale
        kp.x, kp.y = kp.u / plan.width, kp.v / plan.height
        if kp.u < 0 or kp.u >= plan.width or kp.v < 0 or kp.v >= plan.height:
            kp.visible = 0.0


def resize_key_targets(kt, plan: ResizePlan) -> None:
    """:func:`resize_target` on the kp_target and every proj_target."""
    resize_target(kt.kp_target, plan)
    for t in kt.proj_targets:
        resize_target(t, plan)


def resize_image(image, plan: ResizePlan, interpolation: int = cv2.INTER_LINEAR) -> np.ndarray:
    """Resample ``image`` (H, W[, C]) uint8 to (plan.height, plan.width[, C]) uint8.

    The output pixel (u', v') samples the input at ``(u' * scale + cropx, v' * scale + cropy)``:
    exactly the camera update of :func:`resize_target` (OpenCV pixel centres), so keypoints and
    pixels stay registered. A Gaussian pre-filter (sigma ``sqrt(scale^2 - 1) / 2``) avoids aliasing
    when shrinking. (KeyPose's own resize aligns pixel edges instead and differs by up to ~0.6 px.)
    """
    img = np.asarray(image)
    if plan.scale > 1.0 and interpolation != cv2.INTER_NEAREST:
        sigma = 0.5 * float(np.sqrt(plan.scale ** 2 - 1.0))
        img = cv2.GaussianBlur(img, (0, 0), sigmaX=sigma, sigmaY=sigma, borderType=cv2.BORDER_REPLICATE)
    m = np.array([[plan.scale, 0.0, plan.cropx], [0.0, plan.scale, plan.cropy]], dtype=np.float64)
    out = cv2.warpAffine(img, m, (plan.width, plan.height), flags=interpolation | cv2.WARP_INVERSE_MAP,
                         borderMode=cv2.BORDER_REPLICATE)
    if out.ndim == 2 and img.ndim == 3:
        out = out[..., None]
    return out


