"""Photo folders: listing, reading (any size, greyscale or colour, JPEG or PNG) and resizing.
The built-in procedural demo photos are in :mod:`kpdata.demo.photos`.

Images come back as ``(H, W, 3) uint8`` RGB. A file that is not a whole JPEG or PNG image raises
:class:`kpdata.errors.InputError` naming it and why (:func:`check_image_bytes`): unreadable, empty,
not an image, truncated (OpenCV would decode a truncated JPEG with its missing part flat grey), or
not decodable. Files are read as bytes, so any file name works (OpenCV's own ``imread`` crashes
on some names that are not UTF-8); :func:`printable` gives such a name as UTF-8 text.
"""
from __future__ import annotations

import os

import cv2
import numpy as np

from kpdata.errors import InputError, printable

__all__ = ["IMAGE_EXTENSIONS", "list_images", "check_image_bytes", "decode_image", "decode_unchanged", "read_bytes",
           "read_image", "resize", "printable"]

JPEG_MAGIC, PNG_MAGIC = b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n"

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



def check_image_bytes(data: bytes, path: str = "") -> str:
    """The kind (``"jpeg"``, ``"png"``, ``"bmp"``, ``"pnm"``) of a whole image file's bytes; InputError
    naming why otherwise: ``empty_image`` (0 bytes), ``not_an_image`` (no such signature) or
    ``truncated_image`` (a JPEG without its end-of-image marker, a PNG without its IEND chunk)."""
    where = printable(path)
    if not data:
        raise InputError("empty_image", "empty file (0 bytes)", where)
    if data.startswith(JPEG_MAGIC):
        if b"\xff\xd9" not in data[-1024:]:
            raise InputError("truncated_image", f"truncated JPEG: no end-of-image marker ({len(data)} bytes)", where)
        return "jpeg"
    if data.startswith(PNG_MAGIC):
        if b"IEND" not in data[-64:]:
            raise InputError("truncated_image", f"truncated PNG: no IEND chunk ({len(data)} bytes)", where)
        return "png"
    if data[:2] == b"BM" or (data[:1] == b"P" and data[1:2] in b"123456" and len(data) > 2):
        return "bmp" if data[:2] == b"BM" else "pnm"  # Render for CNN's other background formats
    raise InputError("not_an_image", f"not a JPEG, PNG, BMP or PNM file (starts with {data[:8]!r})", where)


def read_bytes(path: str) -> bytes:
    """A file's bytes; InputError naming the system's reason (permissions, ...) when unreadable."""
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        raise InputError("unreadable_image", f"cannot read: {e.strerror}", printable(path)) from None


def decode_unchanged(data: bytes, path: str = "") -> tuple[np.ndarray, list[str]]:
    """Encoded JPEG/PNG bytes (checked by :func:`check_image_bytes`) -> (image, notes) with the
    image's own channels: (H, W) uint8 grey or (H, W, 3) uint8 RGB. Converted and said so in
    ``notes``: 16-bit scaled to 8-bit (value / 257, rounded), alpha dropped. No EXIF rotation."""
    check_image_bytes(data, path)
    img = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
    if img is None or img.size == 0:
        raise InputError("unreadable_image", f"not a decodable JPEG/PNG image ({len(data)} bytes)", printable(path))
    notes = []
    if img.dtype == np.uint16:
        img = ((img.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)
        notes.append("16-bit scaled to 8-bit")
    elif img.dtype != np.uint8:
        raise InputError("unsupported_image", f"pixel type {img.dtype} (expected 8 or 16 bit)", printable(path))
    if img.ndim == 3 and img.shape[2] in (2, 4):
        img = img[..., :-1]
        notes.append("alpha dropped")
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[..., 0]
    if img.ndim == 3:
        img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    return img, notes


def decode_image(data: bytes, path: str = "") -> np.ndarray:
    """Encoded JPEG/PNG bytes -> (H, W, 3) uint8 RGB. Greyscale is replicated to three channels,
    alpha is dropped, 16-bit is scaled to 8-bit (the high byte), EXIF orientation is applied
    (OpenCV's ``IMREAD_COLOR``). Raises InputError when the bytes are not a whole decodable image
    (:func:`check_image_bytes`)."""
    check_image_bytes(data, path)
    path = printable(path)
    try:
        bgr = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    except cv2.error as e:
        raise InputError("unreadable_image", f"OpenCV cannot decode it ({e.msg.strip()})", path) from None
    if bgr is None or bgr.size == 0:
        raise InputError("unreadable_image", f"not a decodable JPEG/PNG image ({len(data)} bytes)", path)
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def read_image(path: str) -> np.ndarray:
    """Read a photo -> (H, W, 3) uint8 RGB (see :func:`decode_image`)."""
    return decode_image(read_bytes(path), path)


def resize(image: np.ndarray, size_wh: tuple[int, int]) -> np.ndarray:
    """Resize to exactly ``size_wh`` = (W, H), ignoring the aspect ratio as KP2D does: area
    averaging when shrinking, bilinear when enlarging."""
    w, h = size_wh
    if image.shape[1] == w and image.shape[0] == h:
        return image.copy()
    shrink = w * h < image.shape[0] * image.shape[1]
    return cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
