"""Photo folders: listing, reading (any size, greyscale or colour, JPEG or PNG) and resizing.
The built-in procedural demo photos are in :mod:`kpdata.demo.photos`.

Images come back as ``(H, W, 3) uint8`` RGB. A file that cannot be decoded raises
:class:`kpdata.errors.InputError` naming it.
"""
from __future__ import annotations

import os

import cv2
import numpy as np

from kpdata.errors import InputError

__all__ = ["IMAGE_EXTENSIONS", "list_images", "decode_image", "read_image", "resize"]

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")  # case-insensitive


def list_images(root: str, recursive: bool = False) -> list[str]:
    """Relative paths (``/``-separated, sorted) of the JPEG and PNG files in ``root``; with
    ``recursive`` also in its sub-folders (hidden folders skipped)."""
    if not os.path.isdir(root):
        raise InputError("missing_folder", f"not a folder: {root}", root)
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".")) if recursive else []
        rel = os.path.relpath(dirpath, root)
        for f in filenames:
            if f.lower().endswith(IMAGE_EXTENSIONS) and not f.startswith("."):
                out.append(f if rel == "." else "/".join([*rel.split(os.sep), f]))
    return sorted(out)


def decode_image(data: bytes, path: str = "") -> np.ndarray:
    """Encoded JPEG/PNG bytes -> (H, W, 3) uint8 RGB. Greyscale is replicated to three channels,
    alpha is dropped, 16-bit is scaled to 8-bit, EXIF orientation is applied (OpenCV's
    ``IMREAD_COLOR``). Raises InputError when the bytes are not a decodable image."""
    if not data:
        raise InputError("unreadable_image", "empty file", path)
    try:
        bgr = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    except cv2.error as e:
        raise InputError("unreadable_image", f"OpenCV cannot decode it ({e.msg.strip()})", path) from None
    if bgr is None or bgr.size == 0:
        raise InputError("unreadable_image", f"not a decodable JPEG/PNG image ({len(data)} bytes)", path)
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def read_image(path: str) -> np.ndarray:
    """Read a photo -> (H, W, 3) uint8 RGB (see :func:`decode_image`)."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise InputError("unreadable_image", f"cannot read: {e.strerror}", path) from None
    return decode_image(data, path)


def resize(image: np.ndarray, size_wh: tuple[int, int]) -> np.ndarray:
    """Resize to exactly ``size_wh`` = (W, H), ignoring the aspect ratio as KP2D does: area
    averaging when shrinking, bilinear when enlarging."""
    w, h = size_wh
    if image.shape[1] == w and image.shape[0] == h:
        return image.copy()
    shrink = w * h < image.shape[0] * image.shape[1]
    return cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
