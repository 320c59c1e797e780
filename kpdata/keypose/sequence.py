"""KeyPose sequence folders: frame files, the text protos they hold, PNG I/O, and one frame read,
checked and resized the way KeyPose's ``gen_tfrecords`` does (formats.md §2).

Folder layout of one sequence (``<object>/texture_<t>_pose_<p>/``), per frame ``NNNNNN``::

    NNNNNN_L.png  NNNNNN_R.png      rectified stereo pair (L = the reference); R may be absent (mono)
    NNNNNN_L.pbtxt NNNNNN_R.pbtxt   keypose.KeyTargets: kp_target (+ up to N proj_targets)
    NNNNNN_mask.png NNNNNN_border.png  object mask / border in the left image (grayscale, 0 or 255)
    NNNNNN_Do.exr NNNNNN_Dt.exr     z-depth of the left camera (metres, channel D): opaque object /
                                    transparent object (the scene behind it)
    data_params.pbtxt               keypose.DataParams: resx, resy, num_kp, camera
"""
from __future__ import annotations

import dataclasses
import glob
import os
import re

import cv2
import numpy as np

from kpdata.errors import InputError
from kpdata.keypose import exr
from kpdata.keypose import proto as kpp
from kpdata.keypose.uvd import ResizePlan, resize_image, resize_key_targets

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
        for j, kp in enumerate(t.keypoints):
            if not np.all(np.isfinite([kp.u, kp.v, kp.x, kp.y, kp.z, kp.visible])):
                raise InputError("bad_pbtxt", f"{what}: keypoint {j} has a NaN or infinite value", path)
        if not np.all(np.isfinite(list(t.transform.element))):
            raise InputError("bad_pbtxt", f"{what}: transform has a NaN or infinite element", path)
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


def read_frame_image(path: str, what: str) -> np.ndarray:
    """A frame image exactly as KeyPose's ``utils.read_image`` reads it: ``cv2.imread`` with its
    default flags, i.e. (H, W, 3) uint8 in **B, G, R** order, alpha dropped, gray expanded to three
    channels, 16 bit shifted to 8 (formats.md §2.5). InputError when missing or corrupt."""
    if not os.path.isfile(path):
        raise InputError("missing_image", f"{what} does not exist", path)
    img = cv2.imread(path, cv2.IMREAD_COLOR)
    if img is None:
        raise InputError("corrupt_image", f"{what} cannot be decoded", path)
    return img


def border_from_mask(mask, width: int = 2) -> np.ndarray:
    """(H, W) uint8 0/255: pixels within ``width`` of the mask's boundary (dilation minus erosion)."""
    m = (np.asarray(mask) > 0).astype(np.uint8)
    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * width + 1, 2 * width + 1))
    return ((cv2.dilate(m, k) - cv2.erode(m, k)) * 255).astype(np.uint8)


# --------------------------------------------------------------------------- one frame, converted


@dataclasses.dataclass
class ConvertedFrame:
    """A frame after gen_tfrecords' resize: (H, W, 3) uint8 images in **B, G, R** order (the
    ``cv2.imread`` arrays KeyPose's own converter PNG-encodes as they are; no alpha, so KeyPose's
    ``decode_png(..., 4)`` makes them fully opaque) and the updated KeyTargets of both sides
    (mono: R = L)."""

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


def load_frame(folder: str, frame: str, stereo: bool, num_kp: int, resx: int, resy: int,
               plan: ResizePlan) -> ConvertedFrame:
    """Read, check and resize one frame. Every data problem raises InputError naming the file:
    a missing image or pbtxt, a pbtxt that does not parse, a keypoint count other than
    ``num_kp``, an image whose size is not ``resx`` x ``resy``, a corrupt mask or depth EXR."""
    pb_l = frame_path(folder, frame, "L_pb")
    pb_r = frame_path(folder, frame, "R_pb") if stereo else pb_l
    kt_l = read_key_targets(pb_l)
    _check_kp_count(kt_l, num_kp, pb_l)
    kt_r = read_key_targets(pb_r) if stereo else read_key_targets(pb_l)
    _check_kp_count(kt_r, num_kp, pb_r)
    images = []
    for side in ("L", "R") if stereo else ("L",):
        path = frame_path(folder, frame, side)
        img = read_frame_image(path, f"{side} image")
        if img.shape[:2] != (resy, resx):
            raise InputError("bad_image_size", f"image is {img.shape[1]}x{img.shape[0]}, data_params.pbtxt says "
                             f"{resx}x{resy}", path)
        images.append(img)
    mask_path = frame_path(folder, frame, "mask")
    if os.path.exists(mask_path):  # checked, not stored: KeyPose's records carry no mask
        mask = read_png(mask_path, "mask")
        if mask.shape[:2] != (resy, resx):
            raise InputError("bad_image_size", f"mask is {mask.shape[1]}x{mask.shape[0]}, expected {resx}x{resy}",
                             mask_path)
    for kind in ("Do", "Dt"):
        path = frame_path(folder, frame, kind)
        if os.path.exists(path):
            depth = exr.read_depth_exr(path)
            if depth.shape != (resy, resx):
                raise InputError("bad_exr", f"depth is {depth.shape[1]}x{depth.shape[0]}, expected {resx}x{resy}", path)
    resized = [resize_image(img, plan) for img in images]
    resize_key_targets(kt_l, plan)
    resize_key_targets(kt_r, plan)
    return ConvertedFrame(resized[0], resized[-1], kt_l, kt_r)
