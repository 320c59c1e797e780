"""KeyPose sequence folders (``render_stereo``): ``<object>/<sequence>/`` with ``data_params.pbtxt``,
``scene.json`` and each frame's images, depths and KeyTargets; ``objects/<object>.obj``."""
from __future__ import annotations

import math
import os

import cv2
import numpy as np

from kpdata import keypose
from kpdata.errors import InputError
from kpdata.keypose import exr
from schemas.dataset import checks
from schemas.dataset.names import KPDATA_INFO, KEYPOSE_SEQUENCES, OBJECTS_DIR, SCENE_JSON, STATS
from schemas.dataset.validation.files import check_temporaries, read_json
from schemas.dataset.validation.kinds import RecordKind

__all__ = ["SequencesKind", "check_frame"]

class SequencesKind(RecordKind):
    """The folder tree of stereo sequences kpdata_info.json lists (no shards, no schema)."""

    record = KEYPOSE_SEQUENCES
    has_features = False
    counts_records = False

    def title(self):
        return "KeyPose sequence folders"

    def validate(self, root, stats, max_records, hpatches=None):
        """Every listed sequence folder with its frames' files, data_params and KeyTargets that
        parse and agree, keypoints the projection of scene.json's world keypoints, the right camera
        the left one moved by the baseline, masks binary, depths finite with the mask inside
        Do > 0; the objects' CAD files."""
        report, info = self.report, self.info
        c, inv_c = report.check("sequences"), report.check("invariants")
        cfg = info.get("config") or {}
        seqs = info.get("sequences")
        if not isinstance(seqs, list):
            report.check("metadata").defect(KPDATA_INFO, "has no 'sequences' list")
            return None
        cnt = (stats or {}).get("counts") or {}
        if cnt.get("sequences_written") not in (None, len(seqs)):
            report.check("metadata").defect(STATS, f"sequences_written {cnt['sequences_written']}, "
                                                   f"kpdata_info.json lists {len(seqs)}")
        frames_total = sum(int(s.get("frames", 0)) for s in seqs)
        if cnt.get("frames_written") not in (None, frames_total):
            report.check("metadata").defect(STATS, f"frames_written {cnt['frames_written']}, the sequences have {frames_total}")
        size = tuple(cfg.get("image_size") or ())
        per_seq = None if max_records is None else max(1, math.ceil(max_records / max(1, len(seqs))))
        n_frames = n_checked = 0
        objects = set()
        for s in seqs:
            key = s.get("key", "?")
            d = os.path.join(root, *key.split("/"))
            objects.add(s.get("object"))
            if not os.path.isdir(d):
                c.defect(key, "listed in kpdata_info.json but missing")
                continue
            try:
                dp = keypose.read_data_params(os.path.join(d, keypose.DATA_PARAMS))
            except InputError as e:
                c.defect(f"{key}/{keypose.DATA_PARAMS}", e.message)
                continue
            if dp.num_kp != s.get("num_kp") or (size and (dp.resx, dp.resy) != size):
                c.defect(f"{key}/{keypose.DATA_PARAMS}", f"num_kp {dp.num_kp}, {dp.resx}x{dp.resy}; kpdata_info.json "
                                                         f"says {s.get('num_kp')} keypoints, --image_size {size}")
            scene = read_json(os.path.join(d, SCENE_JSON), c, f"{key}/{SCENE_JSON}") or {}
            kp_world = np.asarray(scene.get("keypoints_world", []), dtype=np.float64).reshape(-1, 3)
            frames = keypose.list_frames(d)
            n_frames += len(frames)
            if frames != [f"{i:06d}" for i in range(int(s.get("frames", 0)))]:
                c.defect(key, f"frames {frames[:3]}... are not 000000..{int(s.get('frames', 0)) - 1:06d} as listed")
            for fi, fid in enumerate(frames):
                for kind_ in keypose.SUFFIXES:
                    if not os.path.isfile(keypose.frame_path(d, fid, kind_)):
                        c.defect(f"{key}/{fid}{keypose.SUFFIXES[kind_]}", "missing")
                if per_seq is not None and fi >= per_seq:
                    continue
                n_checked += 1
                try:
                    problems = check_frame(d, fid, dp, kp_world)
                except Exception as e:  # noqa: BLE001 - a frame odd enough to break a check is a defect
                    problems = [f"checking the frame failed: {type(e).__name__}: {e}"]
                for p in problems:
                    inv_c.defect(f"{key}/{fid}", p)
        for obj in sorted(o for o in objects if o):
            path = os.path.join(root, OBJECTS_DIR, f"{obj}.obj")
            if not os.path.isfile(path):
                c.defect(f"{OBJECTS_DIR}/{obj}.obj", "missing (the KeyPose CAD file of a listed sequence)")
                continue
            try:
                cad = keypose.read_keypose_obj(path)
                nk = {s.get("num_kp") for s in seqs if s.get("object") == obj}
                if len(cad.keypoints) not in nk:
                    c.defect(f"{OBJECTS_DIR}/{obj}.obj", f"{len(cad.keypoints)} keypoints, its sequences have {sorted(nk)}")
            except InputError as e:
                c.defect(f"{OBJECTS_DIR}/{obj}.obj", e.message)
        check_temporaries(root, report)
        c.note(f"{len(seqs)} sequence(s), {n_frames} frames, {len(objects)} object file(s)")
        inv_c.note(f"{n_checked} frames checked in full")
        return None


def check_frame(d: str, fid: str, dp, kp_world) -> list[str]:
    """One frame ``fid`` of the sequence folder ``d``: its pbtxt, images and depths against
    ``dp`` (keypose.DataParams) and ``kp_world`` ((K, 3) float64 world keypoints, scene.json)."""
    out = []
    kts = {}
    for side in ("L", "R"):
        try:
            kts[side] = keypose.read_key_targets(keypose.frame_path(d, fid, side + "_pb"))
        except InputError as e:
            out.append(f"{side}.pbtxt: {e.message}")
    imgs = {}
    for kind_ in ("L", "R", "mask", "border"):
        p = keypose.frame_path(d, fid, kind_)
        if os.path.isfile(p):
            img = cv2.imread(p, cv2.IMREAD_UNCHANGED)
            if img is None:
                out.append(f"{kind_}: PNG does not decode")
                continue
            if img.shape[:2] != (dp.resy, dp.resx):
                out.append(f"{kind_}: {img.shape[1]}x{img.shape[0]}, data_params says {dp.resx}x{dp.resy}")
            imgs[kind_] = img
    for kind_ in ("mask", "border"):
        if kind_ in imgs:
            out += checks.check_binary(imgs[kind_], kind_, (0, 255))
    for kind_ in ("Do", "Dt"):
        if not os.path.isfile(keypose.frame_path(d, fid, kind_)):
            continue
        try:
            depth = exr.read_depth_exr(keypose.frame_path(d, fid, kind_))
        except InputError as e:
            out.append(f"{kind_}: {e.message}")
            continue
        if depth.shape != (dp.resy, dp.resx) or not np.all(np.isfinite(depth)) or depth.min() < 0:
            out.append(f"{kind_}: depth {depth.shape} must be {dp.resy}x{dp.resx}, finite, >= 0")
        elif kind_ == "Do" and "mask" in imgs and np.any((imgs["mask"] > 0) & ~(depth > 0)):
            out.append("mask covers pixels where Do has no hit")
    if len(kts) < 2:
        return out
    cam = dp.camera
    for side, kt in kts.items():
        targets = [kt.kp_target, *kt.proj_targets]
        if any(len(t.keypoints) != dp.num_kp for t in targets):
            out.append(f"{side}.pbtxt: keypoint counts {[len(t.keypoints) for t in targets]}, num_kp {dp.num_kp}")
            return out
        if list(kt.proj_targets[:1]) and list(kt.proj_targets[0].transform.element) != list(kt.kp_target.transform.element):
            out.append(f"{side}.pbtxt: proj_targets[0] is not the frame itself")
        for ti, t in enumerate(targets):
            what = f"{side}.pbtxt {'kp_target' if ti == 0 else f'proj_targets[{ti - 1}]'}"
            tm = keypose.transform_matrix(t)
            uvz = np.array([[k.u, k.v, k.z, k.x, k.y, k.visible] for k in t.keypoints], dtype=np.float64)
            if len(kp_world) == len(uvz) and len(uvz):
                pc = kp_world @ tm[:3, :3].T + tm[:3, 3]
                uv = np.stack([t.camera.fx * pc[:, 0] / pc[:, 2] + t.camera.cx,
                               t.camera.fy * pc[:, 1] / pc[:, 2] + t.camera.cy], axis=1)
                err = np.abs(uv - uvz[:, :2]).max()
                if err > 0.01 + 1e-6 * np.abs(uv).max():
                    out.append(f"{what}: u, v are not scene.json's world keypoints projected ({err:.3g} px off)")
                if np.abs(pc[:, 2] - uvz[:, 2]).max() > 1e-5 * np.abs(pc[:, 2]).max() + 1e-6:
                    out.append(f"{what}: z is not the keypoints' camera depth")
            if np.abs(uvz[:, 3] * t.camera.resx - uvz[:, 0]).max(initial=0) > 1e-3 or \
                    np.abs(uvz[:, 4] * t.camera.resy - uvz[:, 1]).max(initial=0) > 1e-3:
                out.append(f"{what}: x, y are not u / resx, v / resy")
            on = (uvz[:, 2] > 0) & (uvz[:, 0] >= 0) & (uvz[:, 0] < t.camera.resx) & (uvz[:, 1] >= 0) & \
                (uvz[:, 1] < t.camera.resy)
            if np.any((uvz[:, 5] == 1) & ~on):
                out.append(f"{what}: a visible keypoint is off the image")
    tl, tr = keypose.transform_matrix(kts["L"].kp_target), keypose.transform_matrix(kts["R"].kp_target)
    want = tl.copy()
    want[0, 3] -= cam.baseline
    if np.abs(tr - want).max() > 1e-5:
        out.append("R.pbtxt: transform is not the left camera's moved by the baseline along x")
    kl = np.array([[k.u, k.v, k.z] for k in kts["L"].kp_target.keypoints])
    kr = np.array([[k.u, k.v, k.z] for k in kts["R"].kp_target.keypoints])
    if len(kl) and (np.abs(kl[:, 1] - kr[:, 1]).max() > 0.01 or
                    np.abs(kl[:, 0] - kr[:, 0] - cam.fx * cam.baseline / kl[:, 2]).max() > 0.01):
        out.append("L/R keypoints are not a rectified pair (v_L = v_R, u_L - u_R = fx B / z)")
    return out
