"""``--clickhere_render box``: render the Click-Here crop directly at 227x227.

The default (``full``, Render for CNN's chain) renders the whole 960x540 image, takes the tight
box of its alpha, truncates it, crops, composites and stores the crop at its own size W x H; the
expansion resizes it to 227x227. Here the crop and the resize become a change of intrinsics
(:func:`kpdata.clickhere.compose.box_intrinsics`), and only small windows of the full image are
rendered at its own resolution (:func:`kpdata.clickhere.compose.window_intrinsics`: the same pixel
grid, so the same pixels):

1. the **tight box**: the mesh's vertices projected bound the silhouette; the window they bound
   is rendered unlit (:meth:`renderers.base.Renderer.coverage`: the same multisampled coverage as
   the full render, a fraction of its shading cost) and its alpha box is the full render's
   (``bench/perf.py clickhere`` counts the views where it is not);
2. the truncation (the same draw from the same ``rng``) gives the crop box;
3. **visibility**: the keypoints are projected with the full render's intrinsics (the same
   ``uv``) and depth-tested against a single-sample depth pass of the window around those
   inside the box, the full render's depth at those pixels;
4. the box rendered at 227x227, composited over the same background (drawn at W x H, resized),
   JPEG-encoded at 227x227 (:func:`kpdata.clickhere.compose.compose_box`).

The keypoints, their pixels ``floor(227 (uv - (x0, y0)) / (W, H))`` and so every keypoint map
are the default path's whenever the box and the visibility are; the image differs by
anti-aliasing (4 samples per output pixel instead of the area average of about
(W / 227) x (H / 227) pixels of 4 samples each) and by where the JPEG is encoded.
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np

from kpdata import camera
from kpdata.clickhere import compose, imageops
from kpdata.keypoints import Keypoints3D, label_keypoints
from renderers import RenderRequest

MODES = ("full", "box")
PAD = 32  # window sizes are multiples of this


@dataclasses.dataclass
class BoxView:
    """A view rendered in box mode: ``tight`` the alpha box of the full render (x0, y0, x1, y1),
    None when the object covers no pixel; ``passes`` the GL passes it took (for the bench)."""

    tight: tuple | None
    passes: int = 0


def _window(request: RenderRequest, x0: int, y0: int, x1: int, y1: int) -> RenderRequest:
    """The window [x0, x1] x [y0, y1] of the full render, its size rounded up to a multiple of
    :data:`PAD` (the renderer keeps the framebuffers of a few sizes; slice the result to
    ``[:y1 - y0 + 1, :x1 - x0 + 1]``)."""
    w, h = (-(-(x1 - x0 + 1) // PAD) * PAD), (-(-(y1 - y0 + 1) // PAD) * PAD)
    return dataclasses.replace(request, intrinsics=compose.window_intrinsics(request.intrinsics, x0, y0, w, h))


def tight_box(renderer, handle, request: RenderRequest, vertices) -> BoxView:
    """The alpha box of the full render of ``request`` (:func:`imageops.alpha_box`).

    vertices: (N, 3) float64 object-frame vertices of the rendered faces. Their projection bounds
    every covered sample, so the window ``floor(min uv) - 1 .. ceil(max uv) + 1`` (clipped to the
    image) holds every pixel the full render covers; one coverage pass of that window at the full
    render's resolution (:meth:`renderers.base.Renderer.coverage`: unlit, the same samples) gives
    its alpha box. With a vertex behind the camera the window is the whole image."""
    intr, view = request.intrinsics, BoxView(None)
    uv, z = camera.project(intr.K, request.pose, vertices)
    if len(z) == 0:
        return view
    if not (np.all(z > 0) and np.all(np.isfinite(uv))):
        c0, r0, c1, r1 = 0, 0, intr.width - 1, intr.height - 1
    else:
        lo, hi = uv.min(axis=0), uv.max(axis=0)
        c0, r0 = max(0, math.floor(lo[0]) - 1), max(0, math.floor(lo[1]) - 1)
        c1, r1 = min(intr.width - 1, math.ceil(hi[0]) + 1), min(intr.height - 1, math.ceil(hi[1]) + 1)
    if c0 > c1 or r0 > r1:
        return view
    alpha = renderer.coverage(handle, _window(request, c0, r0, c1, r1))[:r1 - r0 + 1, :c1 - c0 + 1]
    box = imageops.alpha_box(alpha)
    view.passes = 1
    if box is not None:
        view.tight = (box[0] + c0, box[1] + r0, box[2] + c0, box[3] + r0)
    return view


def keypoint_labels(renderer, handle, request: RenderRequest, keypoints: Keypoints3D, box, rel_tolerance: float):
    """The full render's keypoint labels (:func:`kpdata.keypoints.label_keypoints`) for the
    keypoints whose pixel lies in ``box``: ``uv`` of every keypoint as the full render projects
    it; ``visible`` from a depth-only pass of the window around those in the box (the full
    render's depth there; keypoints outside the box are not visible). Returns (labels, passes)."""
    intr = request.intrinsics
    x0, y0, x1, y1 = box
    uv, z = camera.project(intr.K, request.pose, keypoints.xyz)
    depth = np.zeros((intr.height, intr.width), np.float32)
    passes = 0
    if len(z):
        ok = (z > 0) & np.all(np.isfinite(uv), axis=1)
        px = np.floor(np.where(ok[:, None], uv, -1.0) + 0.5)
        near = ok & (px[:, 0] >= x0) & (px[:, 0] <= x1) & (px[:, 1] >= y0) & (px[:, 1] <= y1)
        if near.any():
            (a0, b0), (a1, b1) = px[near].min(axis=0).astype(int), px[near].max(axis=0).astype(int)
            window = renderer.render_depth(handle, _window(request, a0, b0, a1, b1))
            depth[b0:b1 + 1, a0:a1 + 1] = window[:b1 - b0 + 1, :a1 - a0 + 1]
            passes = 1
    return label_keypoints(intr.K, request.pose, keypoints.xyz, depth, rel_tolerance), passes


def render_view(renderer, handle, request: RenderRequest, keypoints: Keypoints3D, rel_tolerance: float, vertices,
                truncation, names, picker, rng, jpeg_quality: int, size: int):
    """One Click-Here view in box mode. ``truncation``: a callable drawing the truncation (or
    None for the tight box) from the view's rng, called once the object is found, as the default
    path draws it after its render. Returns (BoxView, sample or None, truncation): the sample is
    None when the object is not in the image (``BoxView.tight`` None) or no visible keypoint is in
    the crop (the default path drops such views)."""
    view = tight_box(renderer, handle, request, vertices)
    if view.tight is None:
        return view, None, None
    drawn = truncation()
    intr = request.intrinsics
    box = view.tight if drawn is None else imageops.truncated_box(view.tight, drawn, intr.width, intr.height)
    labels, passes = keypoint_labels(renderer, handle, request, keypoints, box, rel_tolerance)
    view.passes += passes
    kuv, inside = imageops.shift_keypoints(labels.uv, labels.visible, box)
    if not inside.any():
        return view, None, drawn
    rgba = renderer.render_color(handle, dataclasses.replace(request, intrinsics=compose.box_intrinsics(intr, box, size)))
    view.passes += 1
    return view, compose.compose_box(rgba, box, kuv, inside, names, picker, rng, jpeg_quality), drawn
