"""The renderer interface: a frozen request in, a dict of arrays out.

The scene is data (a :class:`~kpdata.mesh.LoadedMesh` placed in the world by ``cam_T_obj``,
lights, intrinsics); a backend turns it into images. A backend is created once per worker and
reused; :meth:`Renderer.prepare` uploads one model, which is then rendered from many views.
"""
from __future__ import annotations

import abc
import dataclasses

import numpy as np

from kpdata import camera
from kpdata.keypoints import Keypoints3D, label_keypoints
from kpdata.mesh import LoadedMesh

LIGHT_KINDS = ("directional", "point", "hemisphere")


@dataclasses.dataclass(frozen=True)
class Light:
    """A light in the OpenCV camera frame of the view.

    kind: ``directional`` (shines along ``direction``), ``point`` (at ``position``), or
    ``hemisphere`` (a sky light shining along ``direction``, as Blender's HEMI lamp: a surface
    with normal ``n`` gets ``intensity * (1 + n . (-direction)) / 2`` of its diffuse colour, full
    when it faces the sky, none when it faces the ground; diffuse only, no highlights);
    color: linear RGB in [0, 1]; intensity: W/m^2 for directional, candela for point lights,
    the fraction of the diffuse colour at full exposure for hemisphere lights.
    """

    kind: str
    color: tuple[float, float, float] = (1.0, 1.0, 1.0)
    intensity: float = 1.0
    direction: tuple[float, float, float] = (0.0, 0.0, 1.0)
    position: tuple[float, float, float] = (0.0, 0.0, 0.0)

    def __post_init__(self):
        if self.kind not in LIGHT_KINDS:
            raise ValueError(f"unknown light kind {self.kind!r} (expected one of {', '.join(LIGHT_KINDS)})")


# A neutral studio setup: a head light plus a key light from the upper left of the image.
DEFAULT_LIGHTS = (
    Light("directional", intensity=2.0, direction=(0.0, 0.0, 1.0)),
    Light("directional", intensity=1.5, direction=(0.5, 0.8, 0.6)),
)


@dataclasses.dataclass(frozen=True)
class RenderRequest:
    """One view. ``cam_T_obj``: (4, 4) OpenCV pose as a nested tuple; ``ambient``: RGB."""

    intrinsics: camera.Intrinsics
    cam_T_obj: tuple
    lights: tuple[Light, ...] = DEFAULT_LIGHTS
    ambient: tuple[float, float, float] = (0.3, 0.3, 0.3)

    @property
    def pose(self) -> np.ndarray:
        return np.asarray(self.cam_T_obj, dtype=np.float64).reshape(4, 4)


class Renderer(abc.ABC):
    """A rendering backend. Subclasses implement :meth:`prepare` and :meth:`_render`."""

    @abc.abstractmethod
    def prepare(self, mesh: LoadedMesh):
        """Upload a model; returns a handle for :meth:`render`."""

    @abc.abstractmethod
    def _render(self, handle, request: RenderRequest) -> tuple[np.ndarray, np.ndarray]:
        """Returns rgba (H, W, 4) uint8 (alpha = coverage) and depth (H, W) float32 z-depth."""

    def render_color(self, handle, request: RenderRequest) -> np.ndarray:
        """Colour only: (H, W, 4) uint8 RGBA, the same values as :meth:`render`'s ``rgba``."""
        return self._render(handle, request)[0]

    def coverage(self, handle, request: RenderRequest) -> np.ndarray:
        """(H, W) uint8, non-zero exactly where :meth:`render`'s alpha is (the pixels the model
        covers); backends may shade more cheaply than :meth:`render_color`."""
        return self.render_color(handle, request)[..., 3]

    def render_depth(self, handle, request: RenderRequest) -> np.ndarray:
        """Depth only: (H, W) float32 z-depth at the pixel centres, 0 = no hit, the same values as
        :meth:`render`'s ``depth`` (backends with a cheaper depth-only pass override this)."""
        return self._render(handle, request)[1]

    def release(self, handle) -> None:
        """Free a prepared model."""

    def close(self) -> None:
        """Free the backend (called from DoFn.teardown)."""

    def render_many(self, handle, requests, keypoints: Keypoints3D | None = None, rel_tolerance: float = 0.01):
        """:meth:`render` of each of ``requests`` in order, yielded one by one; a backend may draw the
        next view while the caller handles one (the results are the same)."""
        for request in requests:
            yield self.render(handle, request, keypoints, rel_tolerance)

    def render(self, handle, request: RenderRequest, keypoints: Keypoints3D | None = None,
               rel_tolerance: float = 0.01) -> dict:
        """Render one view.

        Returns a dict: ``rgba`` (H, W, 4) uint8; ``depth`` (H, W) float32 z-depth, 0 = no hit;
        ``mask`` (H, W) bool (depth > 0); and for the keypoints (K of them) ``uv`` (K, 2) float32
        pixels, ``z`` (K,) float32, ``visible`` (K,) bool (inside the image and passing a depth
        test against ``depth`` with relative tolerance ``rel_tolerance``).
        """
        return self._labelled(request, *self._render(handle, request), keypoints, rel_tolerance)

    @staticmethod
    def _labelled(request: RenderRequest, rgba, depth, keypoints, rel_tolerance) -> dict:
        """:meth:`render`'s dict from a view's rgba and depth."""
        kp = keypoints if keypoints is not None else Keypoints3D.empty()
        labels = label_keypoints(request.intrinsics.K, request.pose, kp.xyz, depth, rel_tolerance)
        return {"rgba": rgba, "depth": depth, "mask": depth > 0,
                "uv": labels.uv, "z": labels.z, "visible": labels.visible}
