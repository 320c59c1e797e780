"""Stereo pairs as contact-sheet views: left | right side by side, keypoints of both images, and
for each keypoint a line from its left position to its right one, labelled with its disparity.

Rectified pairs have horizontal epipolar lines, so in a correct pair every line is horizontal and
the right keypoint sits ``d = fx * B / z`` pixels left of the left one. Pure library (numpy +
OpenCV); :mod:`schemas.dataset.previews` reads the frames and draws the sheets.
"""
from __future__ import annotations

import cv2
import numpy as np

LINE_COLORS = ((255, 200, 0), (0, 200, 255), (255, 80, 200), (120, 255, 80), (255, 140, 40), (80, 160, 255))
PAIR_GAP = 6  # pixels between the two images (in the cropped image's resolution)


def _draw_line_sample(img, x, y, r) -> None:
    cv2.line(img, (int(x - r - 3), int(y)), (int(x + r + 3), int(y)), LINE_COLORS[0][::-1], 2, cv2.LINE_AA)


# the marks of a stereo sheet beyond the markers (kpdata.preview.contact_sheet's ``legend``)
LEGEND = ((_draw_line_sample, "keypoint k<i> left -> right (horizontal if rectified); label k<i> d<disparity px>"),)


def pair_view(key: str, img_l, img_r, uvd_l, uvd_r, visible_l, visible_r, mask=None, margin: float = 0.35,
              min_size: int = 96) -> dict:
    """A view for :func:`kpdata.preview.contact_sheet`.

    Args:
      img_l, img_r: (H, W, 3|4) uint8 RGB(A) (alpha drawn over a checkerboard).
      uvd_l, uvd_r: (K, >=3) keypoints [u, v, disparity, ...] of each image, pixels.
      visible_l, visible_r: (K,) 0/1.
      mask: optional (H, W) object mask of the left image (its outline is drawn).
    Both images are cropped to one box around the left mask and the keypoints of both (grown by
    ``margin``), so the pair keeps its rectified geometry; keypoint names are ``k<i> d<disparity>``.
    """
    img_l, img_r = np.asarray(img_l), np.asarray(img_r)
    h, w = img_l.shape[:2]
    uvd_l = np.asarray(uvd_l, dtype=np.float64).reshape(len(visible_l), -1)
    uvd_r = np.asarray(uvd_r, dtype=np.float64).reshape(len(visible_r), -1)
    pts = np.concatenate([uvd_l[:, :2], uvd_r[:, :2]])
    if mask is not None:
        ys, xs = np.nonzero(np.asarray(mask) > 0)
        pts = np.concatenate([pts, np.stack([xs, ys], 1)[:: max(1, len(xs) // 2000)]])
    pts = pts[np.all(np.isfinite(pts), axis=1)]
    pts = pts[(pts[:, 0] >= 0) & (pts[:, 0] < w) & (pts[:, 1] >= 0) & (pts[:, 1] < h)]
    if len(pts):
        x0, y0 = pts.min(axis=0)
        x1, y1 = pts.max(axis=0)
        grow = margin * max(x1 - x0, y1 - y0, min_size)
        x0, y0 = int(max(0, np.floor(x0 - grow))), int(max(0, np.floor(y0 - grow)))
        x1, y1 = int(min(w, np.ceil(x1 + grow) + 1)), int(min(h, np.ceil(y1 + grow) + 1))
    else:
        x0, y0, x1, y1 = 0, 0, w, h
    cw, ch = x1 - x0, y1 - y0

    def rgba(img):
        img = img[y0:y1, x0:x1]
        if img.ndim == 2:
            img = np.repeat(img[..., None], 3, axis=2)
        if img.shape[2] == 3:
            img = np.concatenate([img, np.full(img.shape[:2] + (1,), 255, np.uint8)], axis=2)
        return img

    gap = np.zeros((ch, PAIR_GAP, 4), np.uint8)
    gap[..., 3] = 255
    pair = np.ascontiguousarray(np.concatenate([rgba(img_l), gap, rgba(img_r)], axis=1))
    off_r = cw + PAIR_GAP
    k = len(visible_l)
    uv = np.concatenate([uvd_l[:, :2] - [x0, y0], uvd_r[:, :2] - [x0 - off_r, y0]]).astype(np.float32)
    thick = max(1, round(pair.shape[1] / 400))
    for i in range(k):
        a, b = uv[i], uv[k + i]
        if np.all(np.isfinite([a, b])):
            color = LINE_COLORS[i % len(LINE_COLORS)] + (255,)
            cv2.line(pair, (round(a[0]), round(a[1])), (round(b[0]), round(b[1])), color, thick,
                     cv2.LINE_AA)
    disp = uvd_l[:, 2] if uvd_l.shape[1] > 2 else np.full(k, np.nan)
    names = [f"k{i} d{disp[i]:.1f}" for i in range(k)] + [f"k{i}" for i in range(k)]
    full_mask = None
    if mask is not None:
        full_mask = np.zeros(pair.shape[:2], np.uint8)
        full_mask[:, :cw] = (np.asarray(mask)[y0:y1, x0:x1] > 0) * 255
    dy = np.abs(uvd_l[:, 1] - uvd_r[:, 1])
    both = (np.asarray(visible_l) > 0) & (np.asarray(visible_r) > 0)
    dx = uvd_l[:, 0] - uvd_r[:, 0] - disp
    caption = (f"L|R {w}x{h}  max |v_L-v_R| {dy[both].max():.2f}  max |u_L-u_R-d| {np.abs(dx[both]).max():.2f}"
               if both.any() else f"L|R {w}x{h}  no keypoint visible in both")
    view = {"key": key, "image": pair, "keypoints/names": names, "keypoints/uv": uv,
            "keypoints/visible": np.concatenate([np.asarray(visible_l) > 0, np.asarray(visible_r) > 0]),
            "caption": caption}
    if full_mask is not None:
        view["mask"] = full_mask
    return view
