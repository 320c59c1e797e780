"""Depth images as OpenEXR: one float32 channel ``D``, metres (KeyPose's ``_Dt.exr`` / ``_Do.exr``).

The layout follows the one third-party reader of KeyPose's data (formats.md §2.2: a single
float32 channel named ``D`` in metres). Depth is z-depth (DESIGN §4), 0 where nothing was hit.
Files are ZIP-compressed scanline images; the same array gives the same bytes.
"""
from __future__ import annotations

import os

import numpy as np

from kpdata.errors import InputError

CHANNEL = "D"


def write_depth_exr(path: str, depth) -> None:
    """Write ``depth`` (H, W) float32 metres to ``path`` (written to a temporary name, then renamed)."""
    import OpenEXR

    d = np.asarray(depth)
    if d.ndim != 2 or d.dtype.kind != "f":
        raise ValueError(f"expected (H, W) float32 depth, got {d.shape} {d.dtype}")
    d = np.ascontiguousarray(d, dtype=np.float32)
    header = {"compression": OpenEXR.ZIP_COMPRESSION, "type": OpenEXR.scanlineimage}
    tmp = f"{path}.incomplete-{os.getpid()}"
    with OpenEXR.File(header, {CHANNEL: d}) as f:
        f.write(tmp)
    os.replace(tmp, path)


def read_depth_exr(path: str) -> np.ndarray:
    """(H, W) float32 depth in metres from a one-channel (``D``) EXR.

    Raises InputError naming the file: ``missing_file``, ``corrupt_exr`` (not an EXR, truncated,
    undecodable), ``bad_exr`` (no ``D`` channel, not float32, non-finite or negative values).
    """
    import OpenEXR

    if not os.path.isfile(path):
        raise InputError("missing_file", "depth EXR does not exist", path)
    try:
        with OpenEXR.File(path) as f:
            channels = f.channels()
            names = sorted(channels)
            if CHANNEL not in channels:
                raise InputError("bad_exr", f"no channel {CHANNEL!r} (channels: {', '.join(names) or 'none'})", path)
            pixels = np.array(channels[CHANNEL].pixels)
    except InputError:
        raise
    except Exception as e:  # noqa: BLE001 - OpenEXR reports corrupt files with various exceptions
        raise InputError("corrupt_exr", f"cannot decode EXR: {type(e).__name__}: {e}", path) from None
    if pixels.ndim != 2 or pixels.dtype != np.float32:
        raise InputError("bad_exr", f"channel {CHANNEL!r}: expected (H, W) float32, got {pixels.shape} {pixels.dtype}",
                         path)
    if not np.all(np.isfinite(pixels)) or np.any(pixels < 0):
        raise InputError("bad_exr", "depth has non-finite or negative values", path)
    return pixels
