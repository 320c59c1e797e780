"""Renderers: the interface (:mod:`renderers.base`) and the pyrender backend."""
from renderers.base import DEFAULT_LIGHTS, Light, Renderer, RenderRequest

__all__ = ["DEFAULT_LIGHTS", "Light", "Renderer", "RenderRequest", "create_renderer"]


def create_renderer(width: int = 960, height: int = 540, backend: str = "pyrender") -> Renderer:
    """The default backend (pyrender, EGL or OSMesa). Imported lazily: OpenGL loads only here."""
    if backend != "pyrender":
        raise ValueError(f"unknown renderer backend {backend!r} (expected 'pyrender')")
    from renderers.pyrender_backend import PyrenderRenderer  # noqa: PLC0415
    return PyrenderRenderer(width, height)
