"""Click-Here CNN's synthetic-image chain after rendering (formats.md §3.4 - §3.7), as pure functions.

A rendered RGBA view with its keypoints becomes a *view sample*: the truncation crop of the
render, composited over a background and JPEG-encoded, with the keypoints left visible in the
crop. Each of those keypoints becomes one *instance* (and, in flipped splits, a mirrored ``_r``
copy); :mod:`schemas.clickhere` turns instances into Click-Here's arrays.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from kpdata import camera
from kpdata.clickhere import imageops

from kpdata.clickhere import keypoint_maps
from kpdata.errors import InputError
from kpdata.clickhere.kde import R4CNN_CLASSES, R4CNN_SYNSETS
from kpdata.keypoints import CLICKHERE_KEYPOINTS


@dataclasses.dataclass(frozen=True)
class KeypointClassTable:
    """The keypoint classes of the one-hot: ``<class>_<keypoint name>`` strings in order.

    The default is Click-Here's 34: bus 12, car 12, motorbike 10, by synset then KEYPOINT_TYPES.
    """

    names: tuple[str, ...]

    @classmethod
    def clickhere34(cls) -> KeypointClassTable:
        return cls(tuple(f"{R4CNN_SYNSETS[s]}_{n}" for s in sorted(CLICKHERE_KEYPOINTS) for n in CLICKHERE_KEYPOINTS[s]))

    @classmethod
    def from_file(cls, path: str) -> KeypointClassTable:
        """One ``<class>_<name>`` per line (e.g. ``car_left_front_wheel``); blank and ``#`` lines
        are skipped."""
        try:
            with open(path, encoding="utf-8") as f:
                names = tuple(s for s in (ln.strip() for ln in f) if s and not s.startswith("#"))
        except (OSError, UnicodeDecodeError) as e:
            raise InputError("bad_class_table", f"cannot read keypoint class table: {e}", path) from None
        if not names:
            raise InputError("bad_class_table", "keypoint class table is empty", path)
        if len(set(names)) != len(names):
            raise InputError("bad_class_table", "keypoint class table repeats a name", path)
        return cls(names)

    def __len__(self):
        return len(self.names)

    def index(self, obj_class: str, keypoint: str) -> int | None:
        try:
            return self.names.index(f"{obj_class}_{keypoint}")
        except ValueError:
            return None


def object_class_index(obj_class: str) -> int:
    """Index in R4CNN's 12-class list (bus 4, car 5, motorbike 8)."""
    return R4CNN_CLASSES.index(obj_class)


def view_stem(synset: str, model_id: str, index: int, angles: tuple[int, int, int], distance: float) -> str:
    """Render for CNN's image stem ``<synset>_<md5>_a%03d_e%03d_t%03d_d%03d`` with the view index
    added after the md5 (``v%06d``), so two views of a model never share a stem. ``angles``: the
    label angles (:func:`keypoint_maps.label_angles`)."""
    a, e, t = angles
    return f"{synset}_{model_id}_v{index:06d}_a{a:03d}_e{e:03d}_t{t:03d}_d{int(np.round(distance)):03d}"


def instance_key(prefix: int, stem: str, obj_class: int, kp_class: int, flipped: bool) -> str:
    """Click-Here's key ``<8-digit random>_<stem>_obj0_objc<cls>_kp<kp>[_r]`` (``get_job_key``).
    ``kp_class`` is the keypoint class of the *unflipped* instance also for an ``_r`` copy: the
    key keeps the original class and only appends ``_r`` (the copy's one-hot class is the
    left/right-swapped one; formats.md §3.7)."""
    return f"{prefix:08d}_{stem}_obj0_objc{obj_class}_kp{kp_class}{'_r' if flipped else ''}"


def random_prefix(rng: np.random.Generator) -> int:
    """The 8-digit random key prefix (the shuffle: Caffe reads an LMDB in key order)."""
    return int(rng.integers(0, 10 ** 8))


@dataclasses.dataclass
class ViewSample:
    """A cropped, composited view.

    jpeg: the JPEG bytes (RGB, crop size); box: crop box in the render (x0, y0, x1, y1);
    uv: (N, 2) float32 keypoints in the crop (only those kept); names: (N,) their names;
    background: where the background came from; skipped: background photos rejected.
    """

    jpeg: bytes
    width: int
    height: int
    box: tuple
    uv: np.ndarray
    names: tuple
    background: str
    skipped: list


def compose_view(rgba, uv, visible, names, truncation, picker: imageops.BackgroundPicker,
                 rng: np.random.Generator, jpeg_quality: int = imageops.JPEG_QUALITY) -> ViewSample | None:
    """Crop (§3.4) and overlay (§3.5) one render. Returns None when the object is not in the
    image or no visible keypoint is left in the crop (Click-Here drops such images).

    rgba: (H, W, 4) uint8 render; uv: (K, 2) pixels; visible: (K,) bool; names: (K,);
    truncation: (left, right, top, bottom), or None for the tight box.
    """
    rgba = np.asarray(rgba)
    h, w = rgba.shape[:2]
    tight = imageops.alpha_box(rgba[..., 3])
    if tight is None:
        return None
    box = tight if truncation is None else imageops.truncated_box(tight, truncation, w, h)
    kuv, inside = imageops.shift_keypoints(uv, visible, box)
    if not inside.any():
        return None
    patch = imageops.crop(rgba, box)
    bg = picker.pick(patch.shape[1], patch.shape[0], rng)
    rgb = imageops.composite(patch, bg.image)
    return ViewSample(imageops.encode_jpeg(rgb, jpeg_quality), patch.shape[1], patch.shape[0], tuple(box),
                      kuv[inside], tuple(n for n, k in zip(names, inside) if k), bg.source, bg.skipped)


def window_intrinsics(intr: camera.Intrinsics, x0: int, y0: int, width: int, height: int) -> camera.Intrinsics:
    """The intrinsics of the ``width`` x ``height`` window of the render whose top-left pixel is
    ``(x0, y0)``: the same pixel grid (``cx - x0``, ``cy - y0``), so rendering the window draws
    exactly the render's pixels there."""
    return camera.Intrinsics(intr.fx, intr.fy, intr.cx - x0, intr.cy - y0, int(width), int(height))


def box_intrinsics(intr: camera.Intrinsics, box, size: int = keypoint_maps.CROP_SIZE) -> camera.Intrinsics:
    """The intrinsics that render the inclusive ``box`` (x0, y0, x1, y1) of the render directly at
    ``size`` x ``size``: the crop (``cx - x0``, ``cy - y0``, ``W = x1 - x0 + 1``, ``H = y1 - y0 + 1``)
    scaled by ``size / W`` and ``size / H`` with pixel centres aligned as an image resize aligns
    them (:meth:`kpdata.camera.Intrinsics.scaled`: ``fx' = fx size / W``,
    ``cx' = (cx - x0 + 0.5) size / W - 0.5``; same for y)."""
    x0, y0, x1, y1 = (int(v) for v in box)
    w, h = x1 - x0 + 1, y1 - y0 + 1
    sx, sy = size / w, size / h
    crop = window_intrinsics(intr, x0, y0, w, h)
    return camera.Intrinsics(crop.fx * sx, crop.fy * sy, (crop.cx + 0.5) * sx - 0.5, (crop.cy + 0.5) * sy - 0.5,
                             int(size), int(size))


def compose_box(rgba, box, kuv, inside, names, picker: imageops.BackgroundPicker, rng: np.random.Generator,
                jpeg_quality: int = imageops.JPEG_QUALITY) -> ViewSample:
    """The overlay (§3.5) of a box rendered directly at S x S (``--clickhere_render box``), for
    the keypoints :func:`imageops.shift_keypoints` kept (``kuv`` (K, 2) in the W x H crop,
    ``inside`` (K,) bool, at least one True).

    rgba: (S, S, 4) uint8 render of ``box`` (:func:`box_intrinsics`). The background is drawn
    exactly as :func:`compose_view` draws it, at the box's size W x H (the same photo, crop corner
    or gray level from the same ``rng``), resized to S x S as the expansion resizes a crop
    (:func:`imageops.resize`), composited and JPEG-encoded at S x S. The sample's ``width`` and
    ``height`` stay W and H, the frame of ``uv``."""
    x0, y0, x1, y1 = box
    w, h = x1 - x0 + 1, y1 - y0 + 1
    rgba = np.asarray(rgba)
    bg = picker.pick(w, h, rng)
    rgb = imageops.composite(rgba, imageops.resize(bg.image, rgba.shape[0]))
    return ViewSample(imageops.encode_jpeg(rgb, jpeg_quality), w, h, tuple(box), kuv[inside],
                      tuple(n for n, k in zip(names, inside) if k), bg.source, bg.skipped)


def crop_pixels(uv, width: int, height: int, size: int = keypoint_maps.CROP_SIZE) -> np.ndarray:
    """(N, 2) int64 keypoint pixels in the size x size resized crop: ``floor(size * uv / (W, H))``
    clamped to ``size - 1`` (§3.7: Click-Here divides by the box size ``x2 - x1 + 1``,
    ``y2 - y1 + 1``, i.e. the crop's width and height W, H, not W - 1, H - 1).

    uv: (N, 2) float pixels in the W x H crop (OpenCV convention, top-left pixel at 0)."""
    return keypoint_maps.keypoint_pixel(uv, (width, height), size)
