"""The built-in demo photos: procedural scenes with corners, edges, blobs and texture, so detectors
find keypoints. Sizes, formats and colour modes vary on purpose (greyscale JPEG and PNG, a
portrait image, a large one, one in a sub-folder that only --recursive finds)."""
from __future__ import annotations

import os

import cv2
import numpy as np

from kpdata.demo import cache

__all__ = ["DEMO_PHOTOS_DIR_NAME", "demo_photo_dir", "demo_photos"]

DEMO_PHOTOS_DIR_NAME = "demo_photos-v1"


_DEMO_SPECS = (  # name, (W, H), grey
    ("demo_00.jpg", (640, 480), False),
    ("demo_01.png", (480, 360), False),
    ("demo_02.jpg", (800, 600), True),
    ("demo_03.png", (1024, 512), False),
    ("demo_04.jpg", (300, 400), False),
    ("demo_05.png", (320, 240), True),
    ("more/demo_06.jpg", (512, 384), False),
)


def _scene(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    """A BGR uint8 procedural 'photo'."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    c0, c1 = rng.uniform(40, 215, 3), rng.uniform(40, 215, 3)
    t = (np.cos(rng.uniform(0, 2 * np.pi)) * xx / w + np.sin(rng.uniform(0, 2 * np.pi)) * yy / h)
    t = (t - t.min()) / max(float(np.ptp(t)), 1e-6)
    img = (c0 * (1 - t[..., None]) + c1 * t[..., None]).astype(np.uint8)
    s = min(w, h)
    for _ in range(int(rng.integers(25, 40))):
        color = tuple(int(v) for v in rng.integers(0, 256, 3))
        kind = rng.integers(5)
        cx, cy = int(rng.integers(0, w)), int(rng.integers(0, h))
        if kind == 0:
            pts = (np.array([cx, cy]) + rng.normal(0, s * 0.12, (int(rng.integers(3, 7)), 2))).astype(np.int32)
            cv2.fillPoly(img, [pts], color, cv2.LINE_AA)
        elif kind == 1:
            axes = (int(rng.integers(s // 40, s // 6)), int(rng.integers(s // 40, s // 6)))
            cv2.ellipse(img, (cx, cy), axes, float(rng.uniform(0, 180)), 0, 360, color, -1, cv2.LINE_AA)
        elif kind == 2:
            q = (int(rng.integers(0, w)), int(rng.integers(0, h)))
            cv2.line(img, (cx, cy), q, color, int(rng.integers(1, 6)), cv2.LINE_AA)
        elif kind == 3:
            n, cell = int(rng.integers(3, 7)), int(rng.integers(s // 60 + 3, s // 25 + 5))
            c2 = tuple(255 - v for v in color)
            for i in range(n):
                for j in range(n):
                    p0 = (cx + i * cell, cy + j * cell)
                    cv2.rectangle(img, p0, (p0[0] + cell - 1, p0[1] + cell - 1), color if (i + j) % 2 else c2, -1)
        else:
            text = "".join(chr(int(c)) for c in rng.integers(65, 91, int(rng.integers(3, 8))))
            cv2.putText(img, text, (cx, cy), cv2.FONT_HERSHEY_SIMPLEX, float(rng.uniform(0.6, 2.0)) * s / 480,
                        color, int(rng.integers(1, 4)), cv2.LINE_AA)
    img = cv2.GaussianBlur(img, (3, 3), 0.7)
    noise = rng.normal(0, 4.0, img.shape)
    return np.clip(img.astype(np.float64) + noise, 0, 255).astype(np.uint8)


def demo_photos() -> dict[str, bytes]:
    """{relative path: encoded bytes} of the demo photos (deterministic)."""
    out = {}
    for i, (name, (w, h), grey) in enumerate(_DEMO_SPECS):
        img = _scene(np.random.default_rng(1000 + i), w, h)
        if grey:
            img = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
        ext = os.path.splitext(name)[1]
        params = [cv2.IMWRITE_JPEG_QUALITY, 92] if ext == ".jpg" else [cv2.IMWRITE_PNG_COMPRESSION, 3]
        ok, buf = cv2.imencode(ext, img, params)
        if not ok:
            raise RuntimeError(f"could not encode demo photo {name}")
        out[name] = buf.tobytes()
    return out


def demo_photo_dir(cache_dir: str | None = None) -> str:
    """A folder of the demo photos, generated on first use in ``<cache>/demo_photos-v1``
    (``cache_dir`` or ``$KPDATA_CACHE`` or ``~/.cache/kpdata``); a folder whose files differ from
    what this code generates is replaced. Written to a temporary sibling, then renamed."""
    return cache.materialize(cache_dir, DEMO_PHOTOS_DIR_NAME, demo_photos())
