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

import numpy as np
from scipy import ndimage

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


def resize_image(image, plan: ResizePlan) -> np.ndarray:
    """KeyPose's image resize: ``image`` (H, W[, C]) uint8 -> (plan.height, plan.width[, C]) uint8,
    the values KeyPose's ``gen_tfrecords`` computes (formats.md §2.5 step 4).

    KeyPose crops ``cropy`` rows and ``cropx`` columns from each side and calls scikit-image's
    ``resize(image, (H, W), mode='constant')`` with its other defaults; this is that call written
    with scipy: the uint8 values as floats in [0, 1] (``/ 255``); when shrinking, a Gaussian
    anti-aliasing filter of sigma ``max(0, (factor - 1) / 2)`` per axis (factor = input / output
    size; 0 on the channel axis) with zero padding (``grid-constant``, cval 0: the outermost
    pixels darken slightly, as KeyPose's do); linear interpolation (order 1) by
    ``scipy.ndimage.zoom(..., grid_mode=True)``, i.e. pixel *edges* aligned: output pixel u'
    samples the crop at ``(u' + 0.5) * factor - 0.5``, so a point at crop coordinate x lands at
    ``(x + 0.5) / factor - 0.5`` where KeyPose's camera update puts it at ``x / scale`` (about
    0.2 px apart for 1280x720 at fx 675.6 -> 756x424_fl400, as in KeyPose's own records); the result
    clipped to the input's range (widened to 0 by the zero padding) and cast to float32 as
    KeyPose does. KeyPose then feeds that float32 [0, 1] array to a ``tf.uint8`` placeholder, which
    truncates it to 0/1 (a latent bug, formats.md §2.5); we store the proper uint8 instead,
    ``rint(255 * x)`` in float32 (scikit-image's ``img_as_ubyte``).
    """
    img = np.asarray(image)
    h, w = img.shape[:2]
    crop = img[plan.cropy:h - plan.cropy, plan.cropx:w - plan.cropx]
    x = crop.astype(np.float64) / 255.0
    out_shape = (plan.height, plan.width) + x.shape[2:]
    factors = np.divide(x.shape, out_shape)
    if any(o < i for o, i in zip(out_shape, x.shape)):
        x = ndimage.gaussian_filter(x, np.maximum(0.0, (factors - 1.0) / 2.0), mode="grid-constant", cval=0.0)
    zoom = 1.0 / factors[:2]  # per channel (the channel axis maps onto itself: same values, half the time)
    planes = [x] if x.ndim == 2 else [x[..., c] for c in range(x.shape[2])]
    out = np.stack([ndimage.zoom(p, zoom, order=1, mode="grid-constant", cval=0.0, grid_mode=True) for p in planes],
                   axis=-1)
    out = out[..., 0] if x.ndim == 2 else out
    lo, hi = crop.min() / 255.0, crop.max() / 255.0
    if not lo <= 0.0 <= hi and out.min() <= 0.0 <= out.max():  # the zero padding widens the range
        lo, hi = min(lo, 0.0), max(hi, 0.0)
    out = np.clip(out, lo, hi).astype(np.float32)
    return np.clip(np.rint(np.multiply(out, 255, dtype=np.float32)), 0, 255).astype(np.uint8)
