"""Renderers: the interface (:mod:`renderers.base`), the pyrender backend
(:mod:`renderers.pyrender_backend`, OpenGL through EGL or OSMesa), the fake backend
(:mod:`renderers.fake`, analytic renders of a bounding box or sphere, numpy only) and Render for
CNN's lights as render lights (:mod:`renderers.lighting`).

Exports: :data:`BACKENDS`, :func:`create_renderer`, :class:`FakeRenderer`, :data:`DEFAULT_LIGHTS`,
:class:`Light`, :class:`Renderer`, :class:`RenderRequest`. Importing this package loads no OpenGL
module; only ``create_renderer(..., backend="pyrender")`` does.
"""
from renderers.base import DEFAULT_LIGHTS, Light, Renderer, RenderRequest
from renderers.fake import FakeRenderer

__all__ = ["BACKENDS", "DEFAULT_LIGHTS", "FakeRenderer", "Light", "Renderer", "RenderRequest", "create_renderer"]

BACKENDS = ("pyrender", "fake")


def create_renderer(width: int = 960, height: int = 540, backend: str = "pyrender") -> Renderer:
    """A ``width`` x ``height`` renderer of the named backend: ``pyrender`` (EGL or OSMesa; its
    module, and with it OpenGL, is imported only here) or ``fake`` (:class:`FakeRenderer`, the
    bounding box of each model, no OpenGL)."""
    if backend == "pyrender":
        from renderers.pyrender_backend import PyrenderRenderer  # noqa: PLC0415
        return PyrenderRenderer(width, height)
    if backend == "fake":
        return FakeRenderer(width, height)
    raise ValueError(f"unknown renderer backend {backend!r} (expected one of {', '.join(BACKENDS)})")
