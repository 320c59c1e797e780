"""Keypoint annotations and per-view keypoint labels.

Annotation formats read (both give 3D points in the model's OBJ frame):

* Click-Here / ShapeNet-keypoints: one ``keypoints.json`` per model, ``{name: [x, y, z]}``, in a
  folder laid out like ShapeNet (``<dir>/<synset>/<model_id>/keypoints.json``) or in the model's
  own folder.
* KeypointNet dataset: one JSON per category, a list of
  ``{class_id, model_id, keypoints: [{xyz, semantic_id, ...}]}``; ``semantic_id`` names the
  keypoint (its decimal string), the order is by ``semantic_id``.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os

import numpy as np

from kpdata import camera
from kpdata.errors import InputError

# Click-Here keypoint types per synset, in the order of its KEYPOINT_TYPES (formats.md §3.6).
CLICKHERE_KEYPOINTS: dict[str, tuple[str, ...]] = {
    "02924116": ("body_back_left_lower", "body_back_left_upper", "body_back_right_lower",
                 "body_back_right_upper", "body_front_left_upper", "body_front_right_upper",
                 "body_front_left_lower", "body_front_right_lower", "left_back_wheel",
                 "left_front_wheel", "right_back_wheel", "right_front_wheel"),
    "02958343": ("left_front_wheel", "left_back_wheel", "right_front_wheel", "right_back_wheel",
                 "upper_left_windshield", "upper_right_windshield", "upper_left_rearwindow",
                 "upper_right_rearwindow", "left_front_light", "right_front_light",
                 "left_back_trunk", "right_back_trunk"),
    "03790512": ("back_seat", "front_seat", "head_center", "headlight_center", "left_back_wheel",
                 "left_front_wheel", "left_handle_center", "right_back_wheel", "right_front_wheel",
                 "right_handle_center"),
}

KEYPOINTS_JSON = "keypoints.json"


@dataclasses.dataclass(frozen=True)
class Keypoints3D:
    """Named 3D keypoints of one model: ``names`` (K,), ``xyz`` (K, 3) float64, OBJ frame."""

    names: tuple[str, ...]
    xyz: np.ndarray

    def __post_init__(self):
        xyz = np.asarray(self.xyz, dtype=np.float64).reshape(-1, 3)
        object.__setattr__(self, "xyz", xyz)
        if len(self.names) != len(xyz):
            raise ValueError(f"{len(self.names)} keypoint names for {len(xyz)} points")
        if len(set(self.names)) != len(self.names):
            raise ValueError(f"duplicate keypoint names in {self.names}")

    @classmethod
    def empty(cls) -> "Keypoints3D":
        return cls((), np.zeros((0, 3)))

    def __len__(self):
        return len(self.names)


def _check_point(value, path, what):
    if (not isinstance(value, (list, tuple)) or len(value) != 3
            or not all(isinstance(c, (int, float)) and math.isfinite(c) for c in value)):
        raise InputError("bad_keypoints", f"{what}: expected 3 finite numbers, got {value!r}", path)
    return [float(c) for c in value]


def _read_json(path):
    try:
        with open(path, "rb") as f:
            return json.loads(f.read().decode("utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise InputError("bad_keypoints", f"cannot read JSON: {e}", path) from None


def read_clickhere_json(path: str, synset: str = "") -> Keypoints3D:
    """Read one Click-Here ``keypoints.json`` (``{name: [x, y, z]}``). Names are ordered as in
    :data:`CLICKHERE_KEYPOINTS` for the synset when known, else alphabetically."""
    data = _read_json(path)
    if not isinstance(data, dict):
        raise InputError("bad_keypoints", f"expected a JSON object {{name: [x, y, z]}}, got {type(data).__name__}", path)
    order = CLICKHERE_KEYPOINTS.get(synset, ())
    rank = {n: i for i, n in enumerate(order)}
    names = sorted(data, key=lambda n: (rank.get(n, len(rank)), n))
    xyz = [_check_point(data[n], path, f"keypoint {n!r}") for n in names]
    return Keypoints3D(tuple(names), np.array(xyz).reshape(-1, 3))


def read_keypointnet_json(path: str) -> dict[tuple[str, str], Keypoints3D]:
    """Read a KeypointNet-dataset annotation file: {(synset, model_id): Keypoints3D}; InputError
    on the first malformed entry (:func:`read_keypointnet_entries` keeps the good ones)."""
    out, problems = read_keypointnet_entries(path)
    if problems:
        raise problems[0]
    return out


def read_keypointnet_entries(path: str) -> tuple[dict[tuple[str, str], Keypoints3D], list[InputError]]:
    """A KeypointNet-dataset annotation file as ({(synset, model_id): Keypoints3D} of its good
    entries, one InputError per malformed entry). Each error's ``key`` names the entry
    (``<class_id>/<model_id>`` when it has them, else ``<file>[<index>]``). A file that is not a
    JSON list raises InputError."""
    data = _read_json(path)
    if not isinstance(data, list):
        raise InputError("bad_keypoints", "expected a JSON list of {class_id, model_id, keypoints}", path)
    out, problems = {}, []
    for i, entry in enumerate(data):
        label = f"{os.path.basename(path)}[{i}]"
        if isinstance(entry, dict) and isinstance(entry.get("class_id"), str) and isinstance(entry.get("model_id"), str):
            label = f"{entry['class_id']}/{entry['model_id']}"
        try:
            try:
                synset, model_id, kps = str(entry["class_id"]), str(entry["model_id"]), entry["keypoints"]
                pairs = sorted((int(k["semantic_id"]), _check_point(k["xyz"], path, f"entry {i} ({model_id})"))
                               for k in kps)
            except (KeyError, TypeError, ValueError) as e:
                raise InputError("bad_keypoints", f"entry {i}: malformed KeypointNet annotation ({e!r})", path) from None
            ids = [p[0] for p in pairs]
            if len(set(ids)) != len(ids):
                raise InputError("bad_keypoints", f"entry {i} ({model_id}): repeated semantic_id", path)
            if (synset, model_id) in out:
                raise InputError("bad_keypoints", f"entry {i}: a second annotation of {synset}/{model_id} (the first "
                                 "is used)", path)
        except InputError as e:
            e.key = label
            problems.append(e)
            continue
        out[(synset, model_id)] = Keypoints3D(tuple(str(s) for s in ids), np.array([p[1] for p in pairs]).reshape(-1, 3))
    return out, problems


class KeypointSource:
    """Where a run finds keypoints: a Click-Here folder, a KeypointNet file or folder of files,
    and always the model folder's own ``keypoints.json`` when present.

    ``lookup(model)`` returns the model's :class:`Keypoints3D` (empty when unannotated).
    """

    def __init__(self, path: str | None = None):
        self.path = path or ""
        self._keypointnet: dict[tuple[str, str], Keypoints3D] = {}
        self._clickhere_dir = ""
        self.problems: list[InputError] = []  # malformed KeypointNet entries (``key`` names each); the rest are used
        if not path:
            return
        if os.path.isfile(path):
            self._keypointnet, self.problems = read_keypointnet_entries(path)
        elif os.path.isdir(path):
            files = sorted(f for f in os.listdir(path) if f.endswith(".json"))
            for f in files:
                found, problems = read_keypointnet_entries(os.path.join(path, f))
                self._keypointnet.update(found)
                self.problems += problems
            if not files:
                self._clickhere_dir = path
        else:
            raise InputError("missing_keypoints", "keypoint annotation path does not exist", path)

    @property
    def annotated(self) -> set[tuple[str, str]]:
        """(synset, model_id) of every model a KeypointNet annotation file gives keypoints."""
        return set(self._keypointnet)

    def has(self, synset: str, model_id: str, model_dir: str = "") -> bool:
        """Whether :meth:`lookup` finds keypoints for the model (a file's entry, or a keypoints
        file that exists; its contents are read, and checked, only by ``lookup``)."""
        if (synset, model_id) in self._keypointnet:
            return True
        return any(os.path.isfile(c) for c in self._candidates(synset, model_id, model_dir))

    def _candidates(self, synset: str, model_id: str, model_dir: str) -> list[str]:
        candidates = []
        if self._clickhere_dir:
            candidates += [os.path.join(self._clickhere_dir, synset, model_id, KEYPOINTS_JSON),
                           os.path.join(self._clickhere_dir, model_id, KEYPOINTS_JSON)]
        if model_dir:
            candidates.append(os.path.join(model_dir, KEYPOINTS_JSON))
        return candidates

    def lookup(self, synset: str, model_id: str, model_dir: str = "") -> Keypoints3D:
        found = self._keypointnet.get((synset, model_id))
        if found is not None:
            return found
        for c in self._candidates(synset, model_id, model_dir):
            if os.path.isfile(c):
                return read_clickhere_json(c, synset)
        return Keypoints3D.empty()


@dataclasses.dataclass(frozen=True)
class KeypointLabels:
    """Per-view keypoint labels.

    uv: (K, 2) float32 pixels (OpenCV convention); z: (K,) float32 z-depth;
    visible: (K,) bool, inside the image and not occluded.
    """

    uv: np.ndarray
    z: np.ndarray
    visible: np.ndarray


def label_keypoints(K, cam_T_obj, xyz_obj, depth, rel_tolerance: float = 0.01,
                    abs_tolerance: float = 0.0) -> KeypointLabels:
    """Project keypoints and decide visibility by a depth test against the rendered depth.

    A keypoint is visible when its projection rounds to a pixel inside the image, it is in front
    of the camera, and the surface seen at that pixel is the keypoint's own:
    ``|z - depth| <= rel_tolerance * z + abs_tolerance``. Keypoints are points of the surface, so
    a nearer depth means something occludes the keypoint, and a farther one means the keypoint
    sits on a silhouette edge that the pixel centre missed (the pixel shows what lies behind).

    Args:
      K: (3, 3); cam_T_obj: (4, 4) OpenCV; xyz_obj: (K, 3) object frame;
      depth: (H, W) float32 z-depth, 0 where nothing was hit.
    """
    depth = np.asarray(depth)
    h, w = depth.shape
    uv, z = camera.project(K, cam_T_obj, xyz_obj)
    visible = np.zeros(len(z), dtype=bool)
    if len(z):
        ok = (z > 0) & np.all(np.isfinite(uv), axis=1)
        col = np.full(len(z), -1, dtype=np.int64)
        row = np.full(len(z), -1, dtype=np.int64)
        col[ok] = np.floor(uv[ok, 0] + 0.5).astype(np.int64)
        row[ok] = np.floor(uv[ok, 1] + 0.5).astype(np.int64)
        inside = ok & (col >= 0) & (col < w) & (row >= 0) & (row < h)
        d = np.zeros(len(z))
        d[inside] = depth[row[inside], col[inside]]
        visible = inside & (d > 0) & (np.abs(z - d) <= rel_tolerance * z + abs_tolerance)
    return KeypointLabels(uv.astype(np.float32), z.astype(np.float32), visible)
