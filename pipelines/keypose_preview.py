"""Contact sheets of KeyPose data: left/right pairs with keypoints and disparity lines.

Two sources: a gen_tfrecords output (the ``keypose`` records), and a folder tree of KeyPose
sequences (``*_L.png`` + ``*_L.pbtxt``, as render_stereo writes or KeyPose ships).
"""
from __future__ import annotations

import glob
import os

import numpy as np

from kpdata import keypose
from kpdata.errors import InputError
from kpdata.preview import write_contact_sheet
from kpdata.preview.stereo import pair_view
from pipelines import dataset
from schemas.keypose import decode_keypose

PREVIEW_FILE = "preview.png"
SEQUENCES_RECORD = "keypose_sequences"  # dataset_info.json "record" of render_stereo output
SCAN_LIMIT = 512


def _spread(items: list, n: int) -> list:
    if len(items) <= n:
        return list(items)
    idx = np.linspace(0, len(items) - 1, n).round().astype(int)
    return [items[i] for i in idx]


def records_views(output_dir: str, n: int) -> list[dict]:
    raws = []
    for i, (split, raw) in enumerate(dataset.iter_records(output_dir)):
        if i >= SCAN_LIMIT:
            break
        raws.append((f"{split}/{i:04d}", raw))
    views = []
    for key, raw in _spread(raws, n):
        r = decode_keypose(raw)
        mask = r["img_L"][..., 3] if r["img_L"][..., 3].min() < 255 else None
        views.append(pair_view(key, r["img_L"], r["img_R"], r["keys_uvd_L"], r["keys_uvd_R"], r["visible_L"],
                               r["visible_R"], mask))
    return views


def _uvd(target) -> np.ndarray:
    return keypose.target_arrays(target).keys_uvd


def folder_views(root: str, n: int) -> list[dict]:
    pbs = sorted(glob.glob(os.path.join(glob.escape(root), "**", "*_L.pbtxt"), recursive=True))
    views = []
    for pb_l in _spread(pbs, n):
        folder, frame = os.path.dirname(pb_l), os.path.basename(pb_l)[: -len("_L.pbtxt")]
        stereo = keypose.is_stereo(folder)
        try:
            kt_l = keypose.read_key_targets(pb_l)
            kt_r = keypose.read_key_targets(keypose.frame_path(folder, frame, "R_pb")) if stereo else kt_l
            img_l = keypose.read_png(keypose.frame_path(folder, frame, "L"), "L image")
            img_r = keypose.read_png(keypose.frame_path(folder, frame, "R"), "R image") if stereo else img_l
        except InputError:
            continue  # the converter reports bad frames; the preview shows the good ones
        mask_path = keypose.frame_path(folder, frame, "mask")
        mask = keypose.read_png(mask_path, "mask") if os.path.exists(mask_path) else None
        key = f"{os.path.relpath(folder, root)}/{frame}"
        views.append(pair_view(key, img_l, img_r, _uvd(kt_l.kp_target), _uvd(kt_r.kp_target),
                               [k.visible for k in kt_l.kp_target.keypoints],
                               [k.visible for k in kt_r.kp_target.keypoints], mask))
    return views


def _record_type(path: str) -> str | None:
    try:
        return dataset.load_info(path).get("record")
    except FileNotFoundError:
        return None


def is_sequence_tree(root: str) -> bool:
    return bool(glob.glob(os.path.join(glob.escape(root), "**", "*_L.pbtxt"), recursive=True))


def write_records_preview(output_dir: str, n: int, path: str | None = None) -> str:
    return write_contact_sheet(path or os.path.join(output_dir, PREVIEW_FILE), records_views(output_dir, n),
                               columns=2, tile_width=480)


def write_folder_preview(root: str, n: int, path: str | None = None) -> str:
    return write_contact_sheet(path or os.path.join(root, PREVIEW_FILE), folder_views(root, n), columns=2,
                               tile_width=480)


def write_if_keypose(path: str, n: int, output: str | None = None) -> str | None:
    """The sheet of gen_tfrecords output or of KeyPose sequence folders (render_stereo output, or
    any tree of them); None for other folders."""
    record = _record_type(path)
    if record == "keypose":
        return write_records_preview(path, n, output)
    if record in (None, SEQUENCES_RECORD) and is_sequence_tree(path):
        return write_folder_preview(path, n, output)
    return None
