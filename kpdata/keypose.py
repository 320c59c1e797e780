"""KeyPose data: sequence folders, text protos, the uvd geometry, the resize of gen_tfrecords, and
KeyPose ``.obj`` files with keypoint groups (formats.md §2).

Folder layout of one sequence (``<object>/texture_<t>_pose_<p>/``), per frame ``NNNNNN``::

    NNNNNN_L.png  NNNNNN_R.png      rectified stereo pair (L = the reference); R may be absent (mono)
    NNNNNN_L.pbtxt NNNNNN_R.pbtxt   keypose.KeyTargets: kp_target (+ up to N proj_targets)
    NNNNNN_mask.png NNNNNN_border.png  object mask / border in the left image (grayscale, 0 or 255)
    NNNNNN_Do.exr NNNNNN_Dt.exr     z-depth of the left camera (metres, channel D): opaque object /
                                    transparent object (the scene behind it)
    data_params.pbtxt               keypose.DataParams: resx, resy, num_kp, camera

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
import glob
import os
import re

import cv2
import numpy as np

from kpdata import keypose_proto as kpp
from kpdata.errors import InputError

DATA_PARAMS = "data_params.pbtxt"
MAX_TARGET_FRAMES = 5  # proj_targets kept per Example (KeyPose utils.MAX_TARGET_FRAMES)
SUFFIXES = {"L": "_L.png", "R": "_R.png", "L_pb": "_L.pbtxt", "R_pb": "_R.pbtxt", "mask": "_mask.png",
            "border": "_border.png", "Dt": "_Dt.exr", "Do": "_Do.exr"}
_FRAME_RE = re.compile(r"^(\d+)_L\.(png|pbtxt)$")


# --------------------------------------------------------------------------- folders and files


def frame_path(folder: str, frame: str, kind: str) -> str:
    """Path of one of a frame's files; ``kind`` in :data:`SUFFIXES` (``L``, ``R_pb``, ``Do``...)."""
    return os.path.join(folder, frame + SUFFIXES[kind])


def list_frames(folder: str) -> list[str]:
    """The frame ids (``000001``...) of a sequence folder, sorted: every id with an ``_L.png`` or an
    ``_L.pbtxt`` (a frame missing one of them is reported when it is read)."""
    if not os.path.isdir(folder):
        raise InputError("missing_dir", "sequence folder does not exist", folder)
    ids = {m.group(1) for m in map(_FRAME_RE.match, os.listdir(folder)) if m}
    return sorted(ids)


def is_stereo(folder: str) -> bool:
    """True when the folder holds any right image or right pbtxt (else: mono, L is used for R)."""
    return bool(glob.glob(os.path.join(glob.escape(folder), "*_R.png"))
                or glob.glob(os.path.join(glob.escape(folder), "*_R.pbtxt")))


def read_key_targets(path: str):
    """A ``NNNNNN_L/R.pbtxt`` file -> keypose.KeyTargets (InputError on a missing or bad file)."""
    kt = kpp.read_text(path, "KeyTargets")
    if not kt.HasField("kp_target"):
        raise InputError("bad_pbtxt", "KeyTargets has no kp_target", path)
    for i, t in enumerate([kt.kp_target, *kt.proj_targets]):
        what = "kp_target" if i == 0 else f"proj_targets[{i - 1}]"
        if len(t.transform.element) != 16:
            raise InputError("bad_pbtxt", f"{what}: transform has {len(t.transform.element)} elements, expected 16",
                             path)
        c = t.camera
        if not (c.fx > 0 and c.fy > 0 and c.resx > 0 and c.resy > 0):
            raise InputError("bad_pbtxt", f"{what}: camera needs fx, fy, resx, resy > 0", path)
        if any(not kp.z > 0 for kp in t.keypoints):
            raise InputError("bad_pbtxt", f"{what}: a keypoint has depth z <= 0", path)
    return kt


def read_data_params(path: str):
    """``data_params.pbtxt`` -> keypose.DataParams (checked: resx, resy, num_kp, camera.fx)."""
    dp = kpp.read_text(path, "DataParams")
    if not (dp.resx > 0 and dp.resy > 0 and dp.camera.fx > 0):
        raise InputError("bad_pbtxt", "DataParams needs resx, resy > 0 and camera.fx > 0", path)
    return dp


def read_tfset(path: str):
    return kpp.read_text(path, "TfSet")


def write_text(path: str, msg) -> None:
    """Write a message in text format (temporary name, then rename)."""
    tmp = f"{path}.incomplete-{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(kpp.to_text(msg))
    os.replace(tmp, path)


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


# --------------------------------------------------------------------------- images


def read_png(path: str, what: str) -> np.ndarray:
    """An 8-bit PNG as RGB(A) (H, W, 3|4) or gray (H, W) uint8; InputError when missing/corrupt."""
    if not os.path.isfile(path):
        raise InputError("missing_image", f"{what} does not exist", path)
    img = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    if img is None:
        raise InputError("corrupt_image", f"{what} cannot be decoded", path)
    if img.dtype == np.uint16:
        img = (img.astype(np.float64) / 257.0).round().astype(np.uint8)
    if img.ndim == 3 and img.shape[2] == 3:
        img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    elif img.ndim == 3 and img.shape[2] == 4:
        img = cv2.cvtColor(img, cv2.COLOR_BGRA2RGBA)
    return img


def write_png(path: str, image) -> None:
    """RGB(A) or gray uint8 -> PNG (deterministic bytes)."""
    img = np.asarray(image)
    if img.ndim == 3 and img.shape[2] == 3:
        img = cv2.cvtColor(img, cv2.COLOR_RGB2BGR)
    elif img.ndim == 3 and img.shape[2] == 4:
        img = cv2.cvtColor(img, cv2.COLOR_RGBA2BGRA)
    ok, buf = cv2.imencode(".png", img, [cv2.IMWRITE_PNG_COMPRESSION, 3])
    if not ok:
        raise RuntimeError(f"PNG encoding failed for {path}")
    with open(path, "wb") as f:
        f.write(buf.tobytes())


def border_from_mask(mask, width: int = 2) -> np.ndarray:
    """(H, W) uint8 0/255: pixels within ``width`` of the mask's boundary (dilation minus erosion)."""
    m = (np.asarray(mask) > 0).astype(np.uint8)
    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * width + 1, 2 * width + 1))
    return ((cv2.dilate(m, k) - cv2.erode(m, k)) * 255).astype(np.uint8)


# --------------------------------------------------------------------------- KeyPose .obj files


@dataclasses.dataclass(frozen=True)
class KeyPoseObj:
    """A KeyPose CAD file: ``vertices`` (V, 3) and ``faces`` (F, 3) of the ``o mesh`` group (metres),
    ``keypoints`` (K, 3): the mean of each ``o kp.NNN`` group's vertices, in NNN order."""

    vertices: np.ndarray
    faces: np.ndarray
    keypoints: np.ndarray
    names: tuple


def read_keypose_obj(path: str) -> KeyPoseObj:
    """Read a KeyPose ``.obj``: ``o mesh`` then ``v`` lines, then ``o kp.000``, ``o kp.001``... each a
    small cube whose vertex mean is the keypoint. ``f`` lines of the mesh group are kept (1-based,
    ``a/b/c`` forms allowed); a file whose mesh has none gets the convex hull of its vertices, so
    vertex-only CAD files still render."""
    if not os.path.isfile(path):
        raise InputError("missing_mesh", "KeyPose .obj does not exist", path)
    groups: dict[str, list] = {}
    order: list[str] = []
    verts: list = []
    faces: list = []
    current = "mesh"
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            for lineno, line in enumerate(f, 1):
                parts = line.split()
                if not parts or parts[0].startswith("#"):
                    continue
                if parts[0] in ("o", "g") and len(parts) > 1:
                    current = parts[1]
                    if current not in groups:
                        groups[current] = []
                        order.append(current)
                elif parts[0] == "v":
                    xyz = [float(p) for p in parts[1:4]]
                    if len(xyz) != 3:
                        raise ValueError(f"line {lineno}: vertex needs 3 coordinates")
                    verts.append(xyz)
                    groups.setdefault(current, []).append(len(verts) - 1)
                    if current not in order:
                        order.append(current)
                elif parts[0] == "f" and not current.startswith("kp."):
                    idx = [int(p.split("/")[0]) for p in parts[1:]]
                    idx = [i - 1 if i > 0 else len(verts) + i for i in idx]
                    for j in range(1, len(idx) - 1):
                        faces.append([idx[0], idx[j], idx[j + 1]])
    except (OSError, ValueError) as e:
        raise InputError("corrupt_mesh", f"cannot parse KeyPose .obj: {e}", path) from None
    verts_a = np.asarray(verts, dtype=np.float64).reshape(-1, 3)
    if not np.all(np.isfinite(verts_a)):
        raise InputError("nonfinite_vertices", "NaN or infinite vertex coordinates", path)
    kp_names = sorted((g for g in order if g.startswith("kp.")),
                      key=lambda g: (int(g[3:]) if g[3:].isdigit() else 1 << 30, g))
    if not kp_names:
        raise InputError("no_keypoints", "no 'o kp.NNN' keypoint groups", path)
    kps = np.array([verts_a[groups[g]].mean(axis=0) for g in kp_names if groups[g]]).reshape(-1, 3)
    if len(kps) != len(kp_names):
        raise InputError("no_keypoints", "a keypoint group has no vertices", path)
    mesh_idx = sorted(i for g in order if not g.startswith("kp.") for i in groups[g])
    if not mesh_idx:
        raise InputError("empty_mesh", "no mesh vertices before the keypoint groups", path)
    faces_a = np.asarray(faces, dtype=np.int64).reshape(-1, 3)
    if len(faces_a) and (faces_a.min() < 0 or faces_a.max() >= len(verts_a)):
        raise InputError("corrupt_mesh", "a face refers to a vertex that does not exist", path)
    if len(faces_a) == 0:
        import trimesh
        try:
            hull = trimesh.Trimesh(verts_a[mesh_idx], process=False).convex_hull
        except Exception as e:  # noqa: BLE001 - qhull fails on degenerate point sets
            raise InputError("empty_mesh", f"mesh vertices span no volume ({type(e).__name__})", path) from None
        return KeyPoseObj(np.asarray(hull.vertices), np.asarray(hull.faces), kps, tuple(kp_names))
    return KeyPoseObj(verts_a, faces_a, kps, tuple(kp_names))


def keypose_obj_text(vertices, faces, keypoints, cube: float = 0.002) -> str:
    """A KeyPose-style ``.obj``: ``o mesh`` with ``v`` and ``f`` lines (metres), then one
    ``o kp.NNN`` cube of side ``cube`` centred on each keypoint."""
    lines = ["o mesh"]
    lines += [f"v {x:.6f} {y:.6f} {z:.6f}" for x, y, z in np.asarray(vertices).reshape(-1, 3)]
    lines += [f"f {a + 1} {b + 1} {c + 1}" for a, b, c in np.asarray(faces).reshape(-1, 3)]
    h = cube / 2
    corners = np.array([[sx, sy, sz] for sx in (-h, h) for sy in (-h, h) for sz in (-h, h)])
    for i, k in enumerate(np.asarray(keypoints).reshape(-1, 3)):
        lines.append(f"o kp.{i:03d}")
        lines += [f"v {x:.6f} {y:.6f} {z:.6f}" for x, y, z in corners + k]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- one frame, converted


@dataclasses.dataclass
class ConvertedFrame:
    """A frame after gen_tfrecords' resize: RGBA uint8 images (alpha = mask where a mask exists,
    else 255) and the updated KeyTargets of both sides (mono: R = L)."""

    img_l: np.ndarray
    img_r: np.ndarray
    targets_l: object
    targets_r: object


def _check_kp_count(kt, num_kp: int, path: str) -> None:
    for i, t in enumerate([kt.kp_target, *kt.proj_targets]):
        if len(t.keypoints) != num_kp:
            what = "kp_target" if i == 0 else f"proj_targets[{i - 1}]"
            raise InputError("keypoint_count", f"{what} has {len(t.keypoints)} keypoints, data_params.pbtxt says "
                             f"num_kp = {num_kp}", path)


def _rgba(img: np.ndarray, path: str) -> np.ndarray:
    if img.ndim == 2:
        img = cv2.cvtColor(img, cv2.COLOR_GRAY2RGB)
    if img.ndim != 3 or img.shape[2] not in (3, 4):
        raise InputError("corrupt_image", f"expected an RGB(A) or gray image, got shape {img.shape}", path)
    if img.shape[2] == 3:
        img = np.concatenate([img, np.full(img.shape[:2] + (1,), 255, np.uint8)], axis=2)
    return img


def load_frame(folder: str, frame: str, stereo: bool, num_kp: int, resx: int, resy: int,
               plan: ResizePlan) -> ConvertedFrame:
    """Read, check and resize one frame. Every data problem raises InputError naming the file:
    a missing image or pbtxt, a pbtxt that does not parse, a keypoint count other than
    ``num_kp``, an image whose size is not ``resx`` x ``resy``, a corrupt mask or depth EXR."""
    from kpdata import exr

    pb_l = frame_path(folder, frame, "L_pb")
    pb_r = frame_path(folder, frame, "R_pb") if stereo else pb_l
    kt_l = read_key_targets(pb_l)
    _check_kp_count(kt_l, num_kp, pb_l)
    kt_r = read_key_targets(pb_r) if stereo else read_key_targets(pb_l)
    _check_kp_count(kt_r, num_kp, pb_r)
    images = []
    for side in ("L", "R") if stereo else ("L",):
        path = frame_path(folder, frame, side)
        img = _rgba(read_png(path, f"{side} image"), path)
        if img.shape[:2] != (resy, resx):
            raise InputError("bad_image_size", f"image is {img.shape[1]}x{img.shape[0]}, data_params.pbtxt says "
                             f"{resx}x{resy}", path)
        images.append(img)
    mask_path = frame_path(folder, frame, "mask")
    if os.path.exists(mask_path):
        mask = read_png(mask_path, "mask")
        if mask.ndim == 3:
            mask = mask[..., 0]
        if mask.shape != (resy, resx):
            raise InputError("bad_image_size", f"mask is {mask.shape[1]}x{mask.shape[0]}, expected {resx}x{resy}",
                             mask_path)
        images[0] = images[0].copy()
        images[0][..., 3] = np.where(mask > 127, 255, 0).astype(np.uint8)
    for kind in ("Do", "Dt"):
        path = frame_path(folder, frame, kind)
        if os.path.exists(path):
            depth = exr.read_depth_exr(path)
            if depth.shape != (resy, resx):
                raise InputError("bad_exr", f"depth is {depth.shape[1]}x{depth.shape[0]}, expected {resx}x{resy}", path)
    resized = []
    for img in images:
        rgb = resize_image(img[..., :3], plan)
        if img[..., 3].min() < 255:
            a = resize_image(np.ascontiguousarray(img[..., 3]), plan)
            alpha = np.where(a.reshape(rgb.shape[:2]) >= 128, 255, 0).astype(np.uint8)
        else:
            alpha = np.full(rgb.shape[:2], 255, np.uint8)
        resized.append(np.concatenate([rgb, alpha[..., None]], axis=2))
    resize_key_targets(kt_l, plan)
    resize_key_targets(kt_r, plan)
    return ConvertedFrame(resized[0], resized[-1], kt_l, kt_r)
