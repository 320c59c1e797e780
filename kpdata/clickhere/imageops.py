"""Image operations of Render for CNN's crop and overlay stages (formats.md §3.4, §3.5).

Boxes are ``(x0, y0, x1, y1)`` integer pixels, inclusive, 0-indexed (OpenCV convention); images
are (H, W, C) uint8 in RGB(A) order unless a function says BGR.
"""
from __future__ import annotations

import dataclasses
import os
from collections import OrderedDict

import cv2
import numpy as np

from kpdata.clickhere import keypoint_maps
from kpdata.errors import InputError
from kpdata.sources import photos

JPEG_QUALITY = 75          # MATLAB imwrite's default JPEG quality
BACKGROUND_RATIO = 0.8     # g_syn_cluttered_bkg_ratio: probability of a photo background
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".ppm")


def alpha_box(alpha) -> tuple[int, int, int, int] | None:
    """Tight inclusive box ``(x0, y0, x1, y1)`` of the non-zero pixels of ``alpha`` (H, W), or
    None when it is empty."""
    alpha = np.asarray(alpha)
    rows = np.flatnonzero(alpha.any(axis=1))
    if not len(rows):
        return None
    cols = np.flatnonzero(alpha.any(axis=0))
    return int(cols[0]), int(rows[0]), int(cols[-1]), int(rows[-1])


def truncated_box(box, truncation, width: int, height: int) -> tuple[int, int, int, int]:
    """Render for CNN's truncation crop box (``crop_images.m``).

    box: tight object box (x0, y0, x1, y1); truncation: (left, right, top, bottom) fractions of
    the box size ``w = x1 - x0``, ``h = y1 - y0``. New box ``(x0 + w l, y0 + h t, x1 + w r,
    y1 + h b)``, clamped to the image; if it is inverted, the tight box; then rounded.
    """
    x0, y0, x1, y1 = (float(v) for v in box)
    left, right, top, bottom = (float(v) for v in truncation)
    w, h = x1 - x0, y1 - y0
    nx0, nx1 = max(0.0, x0 + w * left), min(width - 1.0, x1 + w * right)
    ny0, ny1 = max(0.0, y0 + h * top), min(height - 1.0, y1 + h * bottom)
    if nx0 > nx1 or ny0 > ny1:
        nx0, ny0, nx1, ny1 = x0, y0, x1, y1
    out = [int(np.round(v)) for v in (nx0, ny0, nx1, ny1)]
    out[0], out[1] = min(max(out[0], 0), width - 1), min(max(out[1], 0), height - 1)
    out[2], out[3] = min(max(out[2], out[0]), width - 1), min(max(out[3], out[1]), height - 1)
    return tuple(out)


def crop(image, box) -> np.ndarray:
    x0, y0, x1, y1 = box
    return np.ascontiguousarray(np.asarray(image)[y0:y1 + 1, x0:x1 + 1])


def shift_keypoints(uv, visible, box) -> tuple[np.ndarray, np.ndarray]:
    """Keypoints in the crop: ``uv - (x0, y0)``; ``inside``: visible and whose pixel (rounded)
    lies in the crop. uv: (K, 2) float pixels; visible: (K,) bool."""
    x0, y0, x1, y1 = box
    uv = np.asarray(uv, dtype=np.float64).reshape(-1, 2) - [x0, y0]
    inside = np.asarray(visible, bool) & keypoint_maps.in_crop(uv, x1 - x0 + 1, y1 - y0 + 1)
    return uv.astype(np.float32), inside


def composite(rgba, background) -> np.ndarray:
    """``uint8(I * a + bg * (1 - a))`` with ``a = alpha / 255`` (``overlay_background.m``;
    MATLAB's uint8 rounds). rgba: (H, W, 4) uint8; background: (H, W, 3) uint8. Returns RGB."""
    rgba = np.asarray(rgba)
    a = rgba[..., 3:4].astype(np.float64) / 255.0
    out = rgba[..., :3].astype(np.float64) * a + np.asarray(background, np.float64) * (1.0 - a)
    return np.clip(np.floor(out + 0.5), 0, 255).astype(np.uint8)  # MATLAB rounds halves up


def encode_jpeg(rgb, quality: int = JPEG_QUALITY) -> bytes:
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(np.asarray(rgb), cv2.COLOR_RGB2BGR),
                           [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return buf.tobytes()


def decode_jpeg(data: bytes) -> np.ndarray:
    """JPEG bytes -> (H, W, 3) uint8 RGB."""
    bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if bgr is None:
        raise ValueError(f"corrupt JPEG ({len(data)} bytes)")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def resize(rgb, size: int) -> np.ndarray:
    """Resize to size x size, aspect not kept (Click-Here's ``imresize``): OpenCV's area
    interpolation when shrinking, bilinear when enlarging."""
    rgb = np.asarray(rgb)
    h, w = rgb.shape[:2]
    interp = cv2.INTER_AREA if (w > size and h > size) else cv2.INTER_LINEAR
    return cv2.resize(rgb, (size, size), interpolation=interp)


def list_backgrounds(folder: str) -> list[str]:
    """Photo file names of a background folder: its ``filelist.txt`` (one name per line) when
    present, else every image file in it, sorted. InputError when the folder has none."""
    if not os.path.isdir(folder):
        raise InputError("missing_backgrounds", "background folder does not exist", folder)
    listing = os.path.join(folder, "filelist.txt")
    if os.path.isfile(listing):
        with open(listing, encoding="utf-8") as f:
            names = [ln.strip() for ln in f if ln.strip()]
    else:
        names = sorted(n for n in os.listdir(folder) if n.lower().endswith(IMAGE_EXTENSIONS))
    if not names:
        raise InputError("missing_backgrounds", "no background photos (no filelist.txt and no image files)", folder)
    return names


@dataclasses.dataclass
class BackgroundResult:
    """The background of one image: (H, W, 3) uint8 RGB; ``source`` = the photo's file name and
    crop corner (``name@x,y``) or ``gray:<level>``; ``skipped``: photos rejected on the way
    (grayscale, too small or unreadable)."""

    image: np.ndarray
    source: str
    skipped: list


class BackgroundPicker:
    """Render for CNN's background choice (``overlay_background.m``): with probability
    ``ratio`` a random photo from ``folder`` (it must be colour and at least the crop's size;
    rejected ones are skipped and reported, up to ``max_tries`` draws), uniformly cropped to the
    crop's size; otherwise, or with no folder, one uniform random gray level ``rand() * 255``.
    Decoded photos are kept in a small LRU cache."""

    def __init__(self, folder: str = "", ratio: float = BACKGROUND_RATIO, max_tries: int = 20, cache: int = 32):
        self.folder, self.ratio, self.max_tries = folder, float(ratio), int(max_tries)
        self.names = list_backgrounds(folder) if folder else []
        self._cache: OrderedDict = OrderedDict()
        self._cache_size = cache
        self._reported: set = set()
        self._news: list = []

    def _load(self, name: str):
        """The photo (H, W, 3) uint8 RGB or (H, W) grey, or the InputError saying why it cannot
        be used (read as bytes: any file name; truncated and non-image files refused; 16-bit
        scaled to 8-bit and reported by :meth:`reports`)."""
        if name in self._cache:
            self._cache.move_to_end(name)
            return self._cache[name]
        path = os.path.join(self.folder, name)
        try:
            img, notes = photos.decode_unchanged(photos.read_bytes(path), path)
            if notes:
                self._report(name, "converted", "used after conversion: " + ", ".join(notes))
        except InputError as e:
            img = e
        self._cache[name] = img
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return img

    def _report(self, name: str, kind: str, message: str) -> None:
        if name not in self._reported:
            self._reported.add(name)
            self._news.append((name, kind, message, photos.printable(os.path.join(self.folder, name))))

    def reports(self) -> list[tuple[str, str, str, str]]:
        """What happened to photos since the last call, once per photo and picker: ``(name, kind,
        message, path)`` with ``kind`` the InputError kind of a rejected photo (``truncated_image``,
        ``empty_image``, ``not_an_image``, ``unreadable_image``), ``greyscale``, ``too_small``, or
        ``converted`` for a photo used after a conversion (16-bit to 8-bit, alpha dropped)."""
        news, self._news = self._news, []
        return news

    def pick(self, width: int, height: int, rng: np.random.Generator) -> BackgroundResult:
        skipped = []
        use_photo = rng.random() <= self.ratio  # R4CNN: rand() > ratio -> gray
        if use_photo and self.names:
            for _ in range(self.max_tries):
                name = self.names[int(rng.integers(len(self.names)))]
                img = self._load(name)
                if isinstance(img, InputError):
                    skipped.append((name, "unreadable"))
                    self._report(name, img.error, img.message)
                elif img.ndim != 3:
                    skipped.append((name, "not colour"))
                    self._report(name, "greyscale", "greyscale photo: Render for CNN uses colour photos only")
                elif img.shape[0] < height or img.shape[1] < width:
                    why = f"{img.shape[1]}x{img.shape[0]} smaller than {width}x{height}"
                    skipped.append((name, why))
                    self._report(name, "too_small", f"photo is {why} (the crop)")
                else:
                    y = int(rng.integers(img.shape[0] - height + 1))
                    x = int(rng.integers(img.shape[1] - width + 1))
                    return BackgroundResult(np.ascontiguousarray(img[y:y + height, x:x + width]),
                                            f"{photos.printable(name)}@{x},{y}", skipped)
        level = rng.random() * 255.0
        gray = np.full((height, width, 3), level)
        return BackgroundResult(np.clip(np.round(gray), 0, 255).astype(np.uint8), f"gray:{level:.3f}", skipped)
