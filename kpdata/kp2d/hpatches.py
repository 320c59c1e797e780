"""The HPatches sequences layout: writing, reading, and loading evaluation pairs as KP2D does.

Layout (HPatches ``hpatches-sequences-release``; formats §4.3)::

    DIR/
      v_<name>/   viewpoint sequence: 1.ppm (reference) ... 6.ppm, H_1_2 ... H_1_6
      i_<name>/   illumination sequence: same files, every H_1_k the identity

``H_1_k`` is a 3x3 ASCII matrix (``np.loadtxt``): the **pixel** homography mapping a point of
image 1 to the same scene point in image k (OpenCV pixel convention). Images are binary PPM (P6).
"""
from __future__ import annotations

import dataclasses
import os
import re
import shutil
import tempfile

import cv2
import numpy as np

from kpdata.kp2d import augment

from kpdata.sources import photos
from kpdata.kp2d import homography as hg
from kpdata.errors import InputError

__all__ = ["NUM_IMAGES", "Sequence", "export_photo", "load_pair", "read_layout", "sequence_name", "write_sequence"]

NUM_IMAGES = 6


def sequence_name(kind: str, name: str) -> str:
    """``v_<name>`` / ``i_<name>`` with ``name`` reduced to letters, digits and ``_``."""
    if kind not in ("v", "i"):
        raise ValueError(f"sequence kind must be 'v' or 'i', got {kind!r}")
    clean = re.sub(r"[^A-Za-z0-9]+", "_", name).strip("_") or "image"
    return f"{kind}_{clean}"


def _format_h(h: np.ndarray) -> str:
    return "".join(" ".join(f"{v:.12g}" for v in row) + "\n" for row in np.asarray(h, dtype=np.float64))


def write_sequence(root: str, seq_name: str, images, homographies) -> str:
    """Write one sequence folder ``root/seq_name`` atomically (a temporary sibling, then a rename;
    an existing folder of that name is replaced).

    images: 6 (H, W, 3) uint8 RGB arrays, image 1 first (sizes may differ);
    homographies: 5 (3, 3) pixel homographies, image 1 -> image k for k = 2..6.
    Returns the folder's path.
    """
    if len(images) != NUM_IMAGES or len(homographies) != NUM_IMAGES - 1:
        raise ValueError(f"a sequence needs {NUM_IMAGES} images and {NUM_IMAGES - 1} homographies, "
                         f"got {len(images)} and {len(homographies)}")
    os.makedirs(root, exist_ok=True)
    target = os.path.join(root, seq_name)
    tmp = tempfile.mkdtemp(prefix=f".{seq_name}.tmp-", dir=root)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes it 0700; the published folder is an ordinary one
    try:
        for k, img in enumerate(images, start=1):
            img = np.asarray(img)
            if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
                raise ValueError(f"{seq_name}/{k}.ppm: expected (H, W, 3) uint8 RGB, got {img.shape} {img.dtype}")
            path = os.path.join(tmp, f"{k}.ppm")
            if not cv2.imwrite(path, cv2.cvtColor(img, cv2.COLOR_RGB2BGR)):
                raise OSError(f"could not write {path}")
        for k, h in enumerate(homographies, start=2):
            h = np.asarray(h, dtype=np.float64)
            if h.shape != (3, 3) or not np.all(np.isfinite(h)):
                raise ValueError(f"{seq_name}/H_1_{k}: expected a finite 3x3 matrix, got {h.shape}")
            with open(os.path.join(tmp, f"H_1_{k}"), "w", encoding="ascii") as f:
                f.write(_format_h(h / h[2, 2]))
        if os.path.isdir(target):
            shutil.rmtree(target)
        os.rename(tmp, target)
        return target
    finally:
        if os.path.isdir(tmp):
            shutil.rmtree(tmp, ignore_errors=True)


def export_photo(photo: np.ndarray, root: str, name: str, rng: np.random.Generator, size_wh: tuple[int, int],
                 params: hg.HomographyParams = hg.KP2D_PARAMS) -> tuple[str, str]:
    """Write the two sequences of one photo into ``root``; returns their folder names.

    photo: (H, W, 3) uint8 RGB, any size; it is resized to ``size_wh`` = (W, H) to make image 1.
    ``v_<name>``: images 2..6 are image 1 warped by five homographies of KP2D's sampler (each
    shows a patch inside image 1, so no image has empty borders), ``H_1_k`` the inverse of the
    pixel homography: ``image_k(p) = image_1(Hp p)`` puts the point ``q`` of image 1 at
    ``Hp^-1 q`` in image k. ``i_<name>``: images 2..6 are illumination changes of image 1
    (:func:`kpdata.kp2d.augment.illumination_change`, strength 0.2, 0.4, ..., 1.0), ``H_1_k`` the
    identity.
    """
    img1 = photos.resize(photo, size_wh)
    h, w = img1.shape[:2]
    hn = hg.sample_homographies(rng, NUM_IMAGES - 1, (h, w), params)
    warped = [hg.warp_image(img1, m) for m in hn]
    h_1k = [np.linalg.inv(hg.to_pixels(m, w, h)) for m in hn]
    v_name = sequence_name("v", name)
    write_sequence(root, v_name, [img1, *warped], h_1k)
    lit = [augment.illumination_change(img1, rng, k / (NUM_IMAGES - 1)) for k in range(1, NUM_IMAGES)]
    i_name = sequence_name("i", name)
    write_sequence(root, i_name, [img1, *lit], [np.eye(3)] * (NUM_IMAGES - 1))
    return v_name, i_name


@dataclasses.dataclass(frozen=True)
class Sequence:
    """One sequence folder: ``images[k - 1]`` is ``k.ppm``; ``homographies[k - 2]`` is ``H_1_k``."""

    name: str
    path: str
    images: tuple
    homographies: tuple  # (3, 3) float64 arrays

    @property
    def kind(self) -> str:
        return self.name[0]


def read_layout(root: str, kind: str = "all") -> list[Sequence]:
    """The sequences of an HPatches-layout folder, sorted by name. ``kind``: ``all``, ``i`` or
    ``v`` (by the first letter of the folder name, as KP2D's ``PatchesDataset`` filters).

    Raises InputError naming the file when a sequence lacks an image or a homography, or a
    homography is not a finite 3x3 matrix."""
    if kind not in ("all", "i", "v"):
        raise ValueError(f"kind must be all, i or v, got {kind!r}")
    if not os.path.isdir(root):
        raise InputError("missing_folder", f"not a folder: {root}", root)
    out = []
    for name in sorted(os.listdir(root)):
        path = os.path.join(root, name)
        if name.startswith(".") or not os.path.isdir(path):
            continue
        if kind != "all" and name[0] != kind:
            continue
        images = tuple(os.path.join(path, f"{k}.ppm") for k in range(1, NUM_IMAGES + 1))
        for p in images:
            if not os.path.isfile(p):
                raise InputError("missing_image", "sequence image missing", p)
        hs = []
        for k in range(2, NUM_IMAGES + 1):
            hp = os.path.join(path, f"H_1_{k}")
            try:
                h = np.loadtxt(hp, dtype=np.float64)
            except (OSError, ValueError) as e:
                raise InputError("bad_homography", f"cannot read a 3x3 matrix ({e})", hp) from None
            if h.shape != (3, 3) or not np.all(np.isfinite(h)):
                raise InputError("bad_homography", f"expected a finite 3x3 matrix, got shape {h.shape}", hp)
            hs.append(h)
        out.append(Sequence(name, path, images, tuple(hs)))
    return out


def _scale_matrix(sx: float, sy: float) -> np.ndarray:
    return np.diag([sx, sy, 1.0])


def load_pair(seq: Sequence, k: int, output_size: tuple[int, int] | None = None):
    """Images 1 and ``k`` (RGB uint8) and ``H_1_k``, resized as KP2D's ``PatchesDataset`` does.

    output_size: (W, H) or None (original sizes). With a size, both images are resized with
    ``cv2.resize`` (bilinear) and ``H' = diag(s_k) H diag(1 / s_1)``, ``s = new / original size``
    per axis. Returns ``(image1, image_k, H')``.
    """
    if not 2 <= k <= NUM_IMAGES:
        raise ValueError(f"k must be in 2..{NUM_IMAGES}, got {k}")
    imgs = []
    for p in (seq.images[0], seq.images[k - 1]):
        bgr = cv2.imread(p, cv2.IMREAD_COLOR)
        if bgr is None:
            raise InputError("unreadable_image", "cannot decode the image", p)
        imgs.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    h = seq.homographies[k - 2].copy()
    if output_size is not None:
        w, hh = output_size
        s1 = (w / imgs[0].shape[1], hh / imgs[0].shape[0])
        sk = (w / imgs[1].shape[1], hh / imgs[1].shape[0])
        h = _scale_matrix(*sk) @ h @ _scale_matrix(1 / s1[0], 1 / s1[1])
        imgs = [cv2.resize(im, (w, hh)) for im in imgs]
    return imgs[0], imgs[1], h
