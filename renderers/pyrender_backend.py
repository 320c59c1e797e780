"""The pyrender backend: headless OpenGL through Mesa EGL, OSMesa as the fallback.

The GL platform is chosen before PyOpenGL is first imported: ``PYOPENGL_PLATFORM`` when the user
set it, else ``egl`` when libEGL loads, else ``osmesa`` when libOSMesa loads. With neither, the
error names the Debian packages to install.

Pixel convention: OpenGL puts pixel centres at half-integers, OpenCV at integers, so the
principal point handed to pyrender is ``(cx + 0.5, cy + 0.5)``.

Threads: Mesa's software rasteriser (llvmpipe) starts one thread per core in every process
(``LP_NUM_THREADS`` overrides it); with the DirectRunner's ``multi_processing`` workers the driver
shares the cores out among them (:func:`pipelines.runners.share_rasterizer_threads`).

Colour and depth: pyrender draws colour into a 4x multisampled framebuffer, resolved by averaging
the samples (so alpha is coverage, centred on the pixel). A multisample depth resolve would copy
one sample, which lies off the pixel centre (Mesa: (0.375, 0.125) of the pixel), so depth comes
from a depth-only pass into a single-sample framebuffer, whose one sample is the pixel centre
(:mod:`renderers.gl_view`: both draws queued, each buffer read back once). On a platform without
framebuffer objects (OSMesa) the depth pass draws into the default framebuffer instead, its
principal point moved by the offset of the sample it keeps.
"""
from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import functools
import math
import os
import sys
import threading

import numpy as np

from kpdata import geometry
from kpdata.mesh import LoadedMesh
from renderers.base import Renderer, RenderRequest

INSTALL_HINT = ("install Mesa's EGL (Debian/Ubuntu: apt-get install libegl1 libgl1-mesa-dri) "
                "or OSMesa (apt-get install libosmesa6)")


class RendererUnavailable(RuntimeError):
    """No headless OpenGL stack could be used."""


def _loadable(*names: str) -> bool:
    for n in names:
        try:
            ctypes.CDLL(n)
            return True
        except OSError:
            continue
    return False


def select_platform() -> str:
    """The PyOpenGL platform to use; sets ``PYOPENGL_PLATFORM`` if it was not set."""
    chosen = os.environ.get("PYOPENGL_PLATFORM")
    if chosen:
        return chosen
    if _loadable("libEGL.so.1", "libEGL.so"):
        chosen = "egl"
    elif _loadable("libOSMesa.so.8", "libOSMesa.so.6", "libOSMesa.so"):
        chosen = "osmesa"
    else:
        raise RendererUnavailable(f"no headless OpenGL library found (neither libEGL nor libOSMesa): {INSTALL_HINT}")
    os.environ["PYOPENGL_PLATFORM"] = chosen
    return chosen


def _directional_pose(direction) -> np.ndarray:
    """(4, 4) pose in the OpenCV camera frame of a pyrender light node shining along ``direction``
    (3,) (a pyrender directional light shines along its node's -z axis); read-only, computed once
    per direction (the same lights light every view)."""
    d = np.asarray(direction, dtype=np.float64)
    return _directional_pose_of(d.tobytes())  # the bytes tell -0.0 from 0.0


@functools.lru_cache(maxsize=64)
def _directional_pose_of(direction: bytes) -> np.ndarray:
    d = np.frombuffer(direction, dtype=np.float64)
    z_cv = -d / np.linalg.norm(d)
    up = np.array([0.0, -1.0, 0.0]) if abs(z_cv[1]) < 0.99 else np.array([1.0, 0.0, 0.0])
    x_cv = np.cross(up, z_cv)
    x_cv /= np.linalg.norm(x_cv)
    rot_cv = np.stack([x_cv, np.cross(z_cv, x_cv), z_cv], axis=1)  # light axes in camera frame
    pose = geometry.make_transform(rot_cv)
    pose.setflags(write=False)
    return pose


# pyrender's diffuse term of a directional light is ``(1 - F) * (1 - 0.04) * albedo / pi * n.l``
# (F ~ 0.04, the dielectric Fresnel reflectance at normal incidence); its ambient term is
# ``albedo * ambient``. This factor makes the two commensurate.
_DIFFUSE_GAIN = math.pi / (0.96 * 0.96)


def _hemisphere_lights(pr, obj_T_cam, light) -> tuple[list, np.ndarray]:
    """A hemisphere light as ``intensity/2`` ambient plus a directional light of ``+intensity/2``
    along ``direction`` and one of ``-intensity/2`` against it:
    ``(1 + c) / 2 = 1/2 + max(c, 0)/2 - max(-c, 0)/2`` for ``c = n . (-direction)``. Returns the
    two lights [(pyrender light, pose)] and the ambient RGB to add."""
    color = np.asarray(light.color, dtype=np.float64)
    half = 0.5 * light.intensity
    d = np.asarray(light.direction, dtype=np.float64)
    return [(pr.DirectionalLight(color=color, intensity=sign * half * _DIFFUSE_GAIN),
             obj_T_cam @ _directional_pose(direction)) for direction, sign in ((d, 1.0), (-d, -1.0))], half * color


@dataclasses.dataclass
class _Setup:
    """A request's camera (a pyrender camera at GL pose ``cam_pose``), lights [(pyrender light,
    pose)], ambient RGB and depth range, in the model's frame."""

    camera: object
    cam_pose: np.ndarray
    lights: list
    ambient: np.ndarray
    znear: float
    zfar: float


def _make_diffuse(mesh) -> None:
    """Makes every material of ``mesh`` a rough dielectric. pyrender turns an OBJ/MTL material into
    a *fully metallic* one (its default ``metallicFactor`` is 1), which has no diffuse term: lamps
    would only add a dull specular sheen. Blender's Lambert shading, which the lighting of every
    layout is modelled on, is a diffuse surface."""
    for prim in mesh.primitives:
        m = prim.material
        if m is not None and hasattr(m, "metallicFactor"):
            m.metallicFactor, m.roughnessFactor = 0.0, 1.0


class PyrenderRenderer(Renderer):
    """Offscreen pyrender renderer. Create once per worker; call :meth:`close` when done."""

    def __init__(self, width: int = 960, height: int = 540):
        if "tensorflow" in sys.modules:
            raise RendererUnavailable(
                "TensorFlow is loaded in this process: its bundled LLVM clashes with Mesa's software "
                "rasterizer and the first draw call would crash. Render in a process that does not "
                "import TensorFlow (kpdata's pipelines never do).")
        self.platform = select_platform()
        try:
            import pyrender  # noqa: PLC0415 - the GL platform must be chosen first
            self._pyrender = pyrender
            self._lock = threading.Lock()
            self._sample_position = None
            self._renderer = pyrender.OffscreenRenderer(int(width), int(height))
            self._view = None  # renderers.gl_view.ViewRenderer where framebuffers are supported
            if self._renderer._platform.supports_framebuffers():
                from renderers import gl_view  # noqa: PLC0415 - imports pyrender's GL modules
                self._renderer._platform.make_current()
                self._view = gl_view.adopt(self._renderer)
            self._uncurrent()
        except Exception as e:  # noqa: BLE001 - GL context creation fails in many library-specific ways
            raise RendererUnavailable(
                f"cannot create an offscreen OpenGL context with PYOPENGL_PLATFORM={self.platform}: "
                f"{type(e).__name__}: {e}. {INSTALL_HINT}") from e

    def _uncurrent(self):
        # Beam may call setup, process and teardown from different threads; an EGL context can
        # be current in one thread only, so release it after every use.
        # (pyrender's own EGL make_uncurrent is a no-op, hence the direct call.)
        platform = self._renderer._platform
        if self.platform == "egl":
            from OpenGL import EGL  # noqa: PLC0415
            EGL.eglMakeCurrent(platform._egl_display, EGL.EGL_NO_SURFACE, EGL.EGL_NO_SURFACE, EGL.EGL_NO_CONTEXT)
        else:
            platform.make_uncurrent()

    @contextlib.contextmanager
    def _gl(self):
        """This renderer's GL context, current in this thread for the block."""
        with self._lock:
            self._renderer._platform.make_current()
            try:
                yield
            finally:
                self._uncurrent()

    def _depth_sample_position(self) -> tuple[float, float]:
        """Position (x right, y up, in [0, 1)) inside a pixel of the multisample the depth resolve
        copies (sample 0), queried from GL once."""
        if self._sample_position is None:
            from OpenGL import GL  # noqa: PLC0415
            self._renderer._platform.make_current()
            fb = getattr(self._renderer._renderer, "_main_fb_ms", None)
            if not fb:
                self._sample_position = (0.5, 0.5)  # no multisampling: samples are centred
            else:
                GL.glBindFramebuffer(GL.GL_FRAMEBUFFER, fb)
                pos = (GL.GLfloat * 2)()
                GL.glGetMultisamplefv(GL.GL_SAMPLE_POSITION, 0, pos)
                GL.glBindFramebuffer(GL.GL_FRAMEBUFFER, 0)
                self._sample_position = (float(pos[0]), float(pos[1]))
        return self._sample_position

    def prepare(self, mesh: LoadedMesh):
        pr = self._pyrender
        scene = pr.Scene(bg_color=np.zeros(4), ambient_light=np.zeros(3))
        # One node whose primitives are the model's parts in file order: pyrender draws nodes in an
        # order that ties (a Python set) for parts sharing a pose, which made coplanar faces render
        # differently from run to run; primitives of one mesh are drawn in list order.
        parts = mesh.parts()
        if parts:
            pr_mesh = pr.Mesh.from_trimesh(parts, smooth=False)
            _make_diffuse(pr_mesh)
            scene.add(pr_mesh)
        return {"scene": scene, "radius": mesh.radius}

    def release(self, handle) -> None:
        handle["scene"].clear()

    def _setup(self, handle, request: RenderRequest) -> _Setup:
        """The camera and lights of ``request`` (see :class:`_Setup`)."""
        pr = self._pyrender
        intr = request.intrinsics
        cam_T_obj = request.pose
        obj_T_cam = geometry.invert_transform(cam_T_obj)
        # Near/far planes hugging the model keep the depth buffer's precision where it matters.
        dist = float(np.linalg.norm(cam_T_obj[:3, 3]))
        radius = max(handle["radius"], 1e-6)
        znear = max(dist - 1.5 * radius, 1e-3 * max(dist, radius))
        zfar = dist + 1.5 * radius
        cam = pr.IntrinsicsCamera(intr.fx, intr.fy, intr.cx + 0.5, intr.cy + 0.5, znear=znear, zfar=zfar)
        ambient = np.asarray(request.ambient, dtype=np.float64)
        lights = []
        for light in request.lights:
            if light.kind == "directional":
                lights.append((pr.DirectionalLight(color=light.color, intensity=light.intensity),
                               obj_T_cam @ _directional_pose(light.direction)))
            elif light.kind == "hemisphere":
                pair, extra = _hemisphere_lights(pr, obj_T_cam, light)
                lights += pair
                ambient = ambient + extra
            else:
                lights.append((pr.PointLight(color=light.color, intensity=light.intensity),
                               obj_T_cam @ geometry.make_transform(translation=light.position)))
        return _Setup(cam, geometry.cv_pose_to_gl_pose(obj_T_cam), lights, ambient, znear, zfar)

    def _planned(self, handle, request: RenderRequest):
        """(setup, view) of ``request``, computed without GL: its :class:`_Setup` and, where this
        renderer draws views itself, the :class:`renderers.gl_view.View` of its camera and lights
        (else None)."""
        setup = self._setup(handle, request)
        if self._view is None:
            return setup, None
        from renderers import gl_view  # noqa: PLC0415 - imported once the GL platform is chosen
        intr = request.intrinsics
        return setup, gl_view.view(setup.camera, setup.cam_pose, setup.lights, intr.width, intr.height)

    @contextlib.contextmanager
    def _posed(self, handle, request: RenderRequest, planned=None):
        """For the block, in the GL context: (view, setup) of ``request`` (``planned``: its
        :meth:`_planned`, computed now if not given); sets the viewport's size. ``view`` is the
        :class:`renderers.gl_view.View` the ViewRenderer draws from (the scene keeps its meshes
        only), or None: then the camera and lights are nodes of the scene (removed after)."""
        scene, intr = handle["scene"], request.intrinsics
        setup, view = planned if planned is not None else self._planned(handle, request)
        if (self._renderer.viewport_width, self._renderer.viewport_height) != (intr.width, intr.height):
            self._renderer.viewport_width, self._renderer.viewport_height = intr.width, intr.height
        if self._view is not None:  # drawn directly (ViewRenderer.draw), not through the OffscreenRenderer
            self._view.viewport_width, self._view.viewport_height = intr.width, intr.height
        scene.ambient_light = setup.ambient
        if view is not None and not self._view.can_draw(scene, view):
            view = None
        nodes = []
        if view is None:
            nodes = [scene.add(setup.camera, pose=setup.cam_pose)]
            nodes += [scene.add(light, pose=pose) for light, pose in setup.lights]
        try:
            yield view, setup
        finally:
            for n in nodes:
                scene.remove_node(n)

    def _render(self, handle, request: RenderRequest):
        pr, scene, intr = self._pyrender, handle["scene"], request.intrinsics
        with self._gl(), self._posed(handle, request) as (view, setup):
            if self._view is not None:
                self._draw_view(scene, view)
                rgba, depth = self._view.read_view(setup.znear, setup.zfar)
            else:
                rgba, _ = self._renderer.render(scene, flags=pr.RenderFlags.RGBA)
                sx, sy = self._depth_sample_position()
                setup.camera.cx, setup.camera.cy = intr.cx + sx, intr.cy + 1.0 - sy
                depth = self._renderer.render(scene, flags=pr.RenderFlags.DEPTH_ONLY)
        return np.ascontiguousarray(rgba, dtype=np.uint8), np.ascontiguousarray(depth, dtype=np.float32)

    def render_many(self, handle, requests, keypoints=None, rel_tolerance: float = 0.01):
        """:meth:`render` of each request, in order. Each view's passes are queued, then the
        previous view is handed to the caller while Mesa's rasteriser threads draw this one (its
        labels and whatever the caller does with it overlap the rasterisation), then this view is
        read back. The GL context is released while the caller holds a view."""
        if self._view is None:
            yield from super().render_many(handle, requests, keypoints, rel_tolerance)
            return
        from renderers import gl_view  # noqa: PLC0415 - imported once the GL platform is chosen
        pending, requests = None, iter(requests)
        request = next(requests, None)
        planned = self._planned(handle, request) if request is not None else None
        while request is not None:
            with self._gl(), self._posed(handle, request, planned) as (view, setup):
                self._draw_view(handle["scene"], view)
            if pending is not None:
                yield self._labelled(pending[0], pending[1], gl_view.linear_depth(pending[2], *pending[3]),
                                     keypoints, rel_tolerance)
            # The next view's camera and lights while this one is rasterised: its passes are then
            # queued as soon as this one is read back.
            following = next(requests, None)
            following_planned = self._planned(handle, following) if following is not None else None
            with self._gl():
                rgba, raw = self._view.read_raw()
            pending = (request, rgba, raw, (setup.znear, setup.zfar))
            request, planned = following, following_planned
        if pending is not None:
            yield self._labelled(pending[0], pending[1], gl_view.linear_depth(pending[2], *pending[3]),
                                 keypoints, rel_tolerance)

    def _draw_view(self, scene, view) -> None:
        """A view's two passes, queued: the multisampled colour pass, then the pixel-centred depth."""
        self._view.draw(scene, self._pyrender.RenderFlags.RGBA, view)
        self._view.draw(scene, self._pyrender.RenderFlags.DEPTH_ONLY, view)

    def _one_pass(self, handle, request: RenderRequest, flags, read):
        with self._gl(), self._posed(handle, request) as (view, setup):
            self._view.draw(handle["scene"], flags, view)
            return read(setup.znear, setup.zfar)

    def render_color(self, handle, request: RenderRequest) -> np.ndarray:
        """The colour pass of :meth:`render` alone: (H, W, 4) uint8 RGBA."""
        if self._view is None:
            return super().render_color(handle, request)
        return self._one_pass(handle, request, self._pyrender.RenderFlags.RGBA, lambda n, f: self._view.read_color())

    def coverage(self, handle, request: RenderRequest) -> np.ndarray:
        """The alpha of a colour pass with pyrender's ``FLAT`` shading (base colour, no lights: a
        fraction of the lit pass's cost). The rasterised samples, and so the pixels with non-zero
        alpha, are the lit pass's: the same geometry, camera and multisampling; the alpha of a
        covered sample is the material's in both."""
        if self._view is None:
            return super().coverage(handle, request)
        flags = self._pyrender.RenderFlags.RGBA | self._pyrender.RenderFlags.FLAT
        return self._one_pass(handle, request, flags, lambda n, f: self._view.read_color())[..., 3]

    def render_depth(self, handle, request: RenderRequest) -> np.ndarray:
        """The depth pass of :meth:`render` alone (no colour pass): (H, W) float32 z-depth."""
        if self._view is None:
            return super().render_depth(handle, request)
        return self._one_pass(handle, request, self._pyrender.RenderFlags.DEPTH_ONLY, self._view.read_depth)

    def close(self) -> None:
        """Free this renderer's GL objects and context. The EGL display is shared by every
        context in the process, so it is left initialised (pyrender's own ``delete`` terminates
        it, which breaks any other renderer alive in the process)."""
        if getattr(self, "_renderer", None) is None:
            return
        with self._lock:
            offscreen, self._renderer = self._renderer, None
            platform = offscreen._platform
            platform.make_current()
            offscreen._renderer.delete()
            if self.platform == "egl":
                from OpenGL import EGL  # noqa: PLC0415
                EGL.eglMakeCurrent(platform._egl_display, EGL.EGL_NO_SURFACE, EGL.EGL_NO_SURFACE, EGL.EGL_NO_CONTEXT)
                EGL.eglDestroyContext(platform._egl_display, platform._egl_context)
            else:
                platform.delete_context()
