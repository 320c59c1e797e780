"""pyrender's renderer, drawing one view's colour and its pixel-centred depth with one readback each.

pyrender's offscreen render draws into a 4x multisampled framebuffer and, after every draw,
resolves *and reads back* both its colour and its depth. Its depth resolve copies one sample,
which lies off the pixel centre (Mesa: (0.375, 0.125) of the pixel), so a view used to take two
complete renders: the colour pass (whose depth readback was thrown away) and a depth-only pass
with a shifted principal point.

:class:`ViewRenderer` keeps pyrender's shaders, scene handling and multisampled colour pass, and
changes where the passes draw and what is read back:

* the colour pass (``RenderFlags.RGBA``) draws into pyrender's multisampled framebuffer and
  reads nothing; :meth:`read_view` resolves the colour only (one blit) and reads it back: RGBA,
  alpha = coverage, exactly as pyrender resolves it;
* the depth pass (``RenderFlags.DEPTH_ONLY``) draws into a **single-sample** depth framebuffer
  of this renderer's own (24-bit depth, no colour). A single-sample framebuffer samples at the
  pixel centre (the OpenGL rule), so with the principal point at ``(cx + 0.5, cy + 0.5)`` its
  depth lies on OpenCV's integer pixel centres without any shifted camera, and rasterising one
  sample per pixel costs a quarter of the multisampled depth pass;
* both draws are queued before the first readback, so Mesa's rasteriser threads run them back to
  back, and each buffer is read once (``glReadPixels``: RGBA bytes, then depth floats).

Import this module only after the GL platform is chosen (:func:`renderers.pyrender_backend.select_platform`).
"""
from __future__ import annotations

import numpy as np
from OpenGL import GL
from pyrender.constants import RenderFlags
from pyrender.renderer import Renderer as _PyrenderRenderer


PARKED = 4  # framebuffer sizes kept besides the current one
_MAIN_FB = ("_main_fb", "_main_cb", "_main_db", "_main_fb_ms", "_main_cb_ms", "_main_db_ms", "_main_fb_dims")


class ViewRenderer(_PyrenderRenderer):
    """A pyrender renderer whose passes are read back by :meth:`read_view` (see the module doc).

    Use through an ``OffscreenRenderer`` whose ``_renderer`` is one of these (see
    :func:`adopt`): ``render(scene, RGBA)`` then ``render(scene, DEPTH_ONLY)`` (both return
    None), then ``read_view(znear, zfar)``."""

    def __init__(self, viewport_width, viewport_height, point_size=1.0):
        super().__init__(viewport_width, viewport_height, point_size)
        self._depth_fb = self._depth_rb = None
        self._depth_fb_dims = (None, None)
        self._parked: dict = {}  # (w, h) -> the framebuffers of that size, kept for the next pass of it

    def _configure_main_framebuffer(self):
        """pyrender deletes and reallocates its framebuffers whenever the viewport's size changes;
        passes that alternate between a few sizes (``--clickhere_render box``: a window, a depth
        window, 227x227) keep the framebuffers of the last :data:`PARKED` sizes instead."""
        dims = (self.viewport_width, self.viewport_height)
        if self._main_fb is not None and self._main_fb_dims != dims:
            self._parked[self._main_fb_dims] = (tuple(getattr(self, a) for a in _MAIN_FB),
                                                (self._depth_fb, self._depth_rb, self._depth_fb_dims))
            self._restore_framebuffers(self._parked.pop(dims, None))
            while len(self._parked) > PARKED:
                self._delete_parked(self._parked.pop(next(iter(self._parked))))
        super()._configure_main_framebuffer()

    def _restore_framebuffers(self, parked):
        main, depth = parked if parked is not None else ((None,) * (len(_MAIN_FB) - 1) + ((None, None),),
                                                        (None, None, (None, None)))
        for a, v in zip(_MAIN_FB, main):
            setattr(self, a, v)
        self._depth_fb, self._depth_rb, self._depth_fb_dims = depth

    def _delete_parked(self, parked):
        current = (tuple(getattr(self, a) for a in _MAIN_FB), (self._depth_fb, self._depth_rb, self._depth_fb_dims))
        self._restore_framebuffers(parked)
        self._delete_main_framebuffer()
        self._delete_depth_framebuffer()
        self._restore_framebuffers(current)

    def _configure_forward_pass_viewport(self, flags):
        super()._configure_forward_pass_viewport(flags)  # viewport, depth test; binds the MSAA framebuffer
        if flags & RenderFlags.DEPTH_ONLY:
            self._configure_depth_framebuffer()
            GL.glBindFramebuffer(GL.GL_DRAW_FRAMEBUFFER, self._depth_fb)

    def _configure_depth_framebuffer(self):
        dims = (self.viewport_width, self.viewport_height)
        if self._depth_fb is not None and self._depth_fb_dims != dims:
            self._delete_depth_framebuffer()
        if self._depth_fb is None:
            self._depth_rb = GL.glGenRenderbuffers(1)
            GL.glBindRenderbuffer(GL.GL_RENDERBUFFER, self._depth_rb)
            GL.glRenderbufferStorage(GL.GL_RENDERBUFFER, GL.GL_DEPTH_COMPONENT24, *dims)
            self._depth_fb = GL.glGenFramebuffers(1)
            # Bound for drawing and reading: glDrawBuffer / glReadBuffer set the state of the
            # framebuffers bound, and must not touch pyrender's.
            GL.glBindFramebuffer(GL.GL_FRAMEBUFFER, self._depth_fb)
            GL.glFramebufferRenderbuffer(GL.GL_FRAMEBUFFER, GL.GL_DEPTH_ATTACHMENT, GL.GL_RENDERBUFFER,
                                         self._depth_rb)
            GL.glDrawBuffer(GL.GL_NONE)
            GL.glReadBuffer(GL.GL_NONE)
            status = GL.glCheckFramebufferStatus(GL.GL_FRAMEBUFFER)
            if status != GL.GL_FRAMEBUFFER_COMPLETE:
                raise RuntimeError(f"the depth framebuffer is incomplete (status 0x{int(status):x})")
            self._depth_fb_dims = dims

    def _delete_depth_framebuffer(self):
        if self._depth_fb is not None:
            GL.glDeleteFramebuffers(1, [self._depth_fb])
            GL.glDeleteRenderbuffers(1, [self._depth_rb])
        self._depth_fb = self._depth_rb = None
        self._depth_fb_dims = (None, None)

    def _read_main_framebuffer(self, scene, flags):
        """Called by pyrender after each offscreen pass: the colour pass is resolved now (queued
        behind its draw), nothing is read until :meth:`read_view`."""
        if not flags & RenderFlags.DEPTH_ONLY:
            w, h = self._main_fb_dims
            GL.glBindFramebuffer(GL.GL_READ_FRAMEBUFFER, self._main_fb_ms)
            GL.glBindFramebuffer(GL.GL_DRAW_FRAMEBUFFER, self._main_fb)
            GL.glBlitFramebuffer(0, 0, w, h, 0, 0, w, h, GL.GL_COLOR_BUFFER_BIT, GL.GL_LINEAR)
        return None

    def read_view(self, znear: float, zfar: float) -> tuple[np.ndarray, np.ndarray]:
        """The last colour and depth passes: rgba (H, W, 4) uint8 (the multisample resolve, alpha =
        coverage) and depth (H, W) float32 z-depth at the pixel centres (0 = no hit), both in image
        row order (top row first), as pyrender linearises them."""
        w, h = self._main_fb_dims
        GL.glBindFramebuffer(GL.GL_READ_FRAMEBUFFER, self._main_fb)
        rgba = np.frombuffer(GL.glReadPixels(0, 0, w, h, GL.GL_RGBA, GL.GL_UNSIGNED_BYTE), np.uint8)
        rgba = np.ascontiguousarray(rgba.reshape(h, w, 4)[::-1])
        GL.glBindFramebuffer(GL.GL_READ_FRAMEBUFFER, self._depth_fb)
        buf = np.frombuffer(GL.glReadPixels(0, 0, w, h, GL.GL_DEPTH_COMPONENT, GL.GL_FLOAT), np.float32)
        GL.glBindFramebuffer(GL.GL_READ_FRAMEBUFFER, 0)
        return rgba, _linear_depth(np.ascontiguousarray(buf.reshape(h, w)[::-1]), znear, zfar)

    def read_color(self) -> np.ndarray:
        """The last colour pass alone: (H, W, 4) uint8 RGBA, alpha = coverage, top row first."""
        w, h = self._main_fb_dims
        GL.glBindFramebuffer(GL.GL_READ_FRAMEBUFFER, self._main_fb)
        rgba = np.frombuffer(GL.glReadPixels(0, 0, w, h, GL.GL_RGBA, GL.GL_UNSIGNED_BYTE), np.uint8)
        GL.glBindFramebuffer(GL.GL_READ_FRAMEBUFFER, 0)
        return np.ascontiguousarray(rgba.reshape(h, w, 4)[::-1])

    def read_depth(self, znear: float, zfar: float) -> np.ndarray:
        """The last depth pass alone (no colour pass drawn before it): (H, W) float32 z-depth at
        the pixel centres, 0 = no hit, top row first."""
        w, h = self._main_fb_dims
        GL.glBindFramebuffer(GL.GL_READ_FRAMEBUFFER, self._depth_fb)
        buf = np.frombuffer(GL.glReadPixels(0, 0, w, h, GL.GL_DEPTH_COMPONENT, GL.GL_FLOAT), np.float32)
        GL.glBindFramebuffer(GL.GL_READ_FRAMEBUFFER, 0)
        return _linear_depth(np.ascontiguousarray(buf.reshape(h, w)[::-1]), znear, zfar)

    def delete(self):
        while self._parked:
            self._delete_parked(self._parked.pop(next(iter(self._parked))))
        self._delete_depth_framebuffer()
        super().delete()


def _linear_depth(d: np.ndarray, znear: float, zfar: float) -> np.ndarray:
    """Depth-buffer values (H, W) float32 in [0, 1] -> z-depth, 0 where 1.0 (no hit): pyrender's
    linearisation, in the same float32 arithmetic."""
    hit = d != 1.0
    d = 2.0 * d - 1.0
    d[hit] = (2.0 * znear * zfar) / (zfar + znear - d[hit] * (zfar - znear))
    d[~hit] = 0.0
    return d.astype(np.float32, copy=False)


def adopt(offscreen) -> ViewRenderer:
    """Swap a fresh ``pyrender.OffscreenRenderer``'s renderer for a :class:`ViewRenderer` (its GL
    context current); returns it."""
    old = offscreen._renderer  # noqa: SLF001 - pyrender has no hook to choose the renderer class
    old.delete()
    new = ViewRenderer(offscreen.viewport_width, offscreen.viewport_height, offscreen.point_size)
    offscreen._renderer = new  # noqa: SLF001
    return new
