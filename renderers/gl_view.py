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
* the depth pass is drawn by this module, not by pyrender's forward pass: pyrender's own depth
  program (the same shader source, so the same arithmetic), each primitive indexed over its
  distinct positions (a flat-shaded mesh repeats each corner once per face, so far fewer
  vertices to transform) and drawn as pyrender draws it, one draw per primitive in order (Mesa
  chooses its clipping path per draw, which decides the last bit of the window coordinates:
  merging the draws moved a pixel whose centre falls exactly on a vertex), without pyrender's
  per-pass Python (materials, lights, uniforms looked up by name); back faces are culled as
  pyrender culls them in a depth pass (always);
* the colour pass is resolved only after the depth pass is queued: Mesa's rasteriser threads
  rasterise the colour pass while this thread transforms and bins the depth pass; then each
  buffer is read once (``glReadPixels``: RGBA bytes, then depth floats);
* pyrender looks every uniform up by name on every draw (about 60 ``glGetUniformLocation`` calls
  a view); the programs here keep each location once found (:class:`_LocatedProgram`), and
  :meth:`ViewRenderer.draw` runs a pass without ``OffscreenRenderer.render``'s two EGL
  make-current calls (the caller holds the context current);
* the camera and the lights are not scene nodes: pyrender adds a node by decomposing its pose
  into a quaternion, updates a networkx graph and searches it for every pose it reads (camera
  and lights, new nodes every view: most of a pass's Python). :func:`view` computes the values
  pyrender's shaders receive, from the same poses through the same decomposition (so the same
  bits), and the colour pass (pyrender's programs, materials and draw calls) binds them; the
  lights are bound in the order given (pyrender's order is that of a Python set, which decides
  the last bit of a sum of three or more lights).

Import this module only after the GL platform is chosen (:func:`renderers.pyrender_backend.select_platform`).
"""
from __future__ import annotations

import ctypes
import dataclasses
import math

import numpy as np
from OpenGL import GL
from pyrender.constants import GLTF, ProgramFlags, RenderFlags, TexFlags
from pyrender.light import DirectionalLight, PointLight
from pyrender.material import MetallicRoughnessMaterial
from pyrender.node import Node
from pyrender.renderer import Renderer as _PyrenderRenderer
from pyrender.shader_program import ShaderProgram


PARKED = 4  # framebuffer sizes kept besides the current one
_MAIN_FB = ("_main_fb", "_main_cb", "_main_db", "_main_fb_ms", "_main_cb_ms", "_main_db_ms", "_main_fb_dims")


class ViewRenderer(_PyrenderRenderer):
    """A pyrender renderer whose passes are read back by :meth:`read_view` (see the module doc).

    Installed as an ``OffscreenRenderer``'s ``_renderer`` (:func:`adopt`), its GL context current:
    ``draw(scene, RGBA, view)`` then ``draw(scene, DEPTH_ONLY, view)``, then ``read_view(znear,
    zfar)`` (or ``read_raw()``)."""

    def __init__(self, viewport_width, viewport_height, point_size=1.0):
        super().__init__(viewport_width, viewport_height, point_size)
        self._depth_fb = self._depth_rb = None
        self._depth_fb_dims = (None, None)
        self._parked: dict = {}  # (w, h) -> the framebuffers of that size, kept for the next pass of it
        self._depth_meshes: dict = {}  # pyrender Mesh -> _DepthMesh (its distinct positions, indexed)
        self._depth_program = None
        self._read_buffers: dict = {}  # GL format -> the array glReadPixels writes into
        self._color_draws: dict = {}  # (pyrender Mesh, flags) -> [_ColorDraw or None per primitive]
        self._context_meshes = None  # the scene's meshes when the context was last updated (see _update_context)
        self._max_n_lights: dict = {}  # int(flags) -> pyrender's light limits (_compute_max_n_lights)

    def draw(self, scene, flags, view: "View | None" = None) -> None:
        """One offscreen pass of ``scene`` (``RenderFlags.RGBA``, ``DEPTH_ONLY`` or ``RGBA | FLAT``)
        at ``viewport_width`` x ``viewport_height``, this renderer's GL context current; read it
        back with :meth:`read_view`, :meth:`read_color` or :meth:`read_depth`. With ``view``
        (:func:`view`; see :meth:`can_draw`) the scene holds the meshes only; without it, pyrender's
        pass with the scene's camera and light nodes."""
        flags |= RenderFlags.OFFSCREEN
        if view is None:
            self.render(scene, flags)
            return
        self._update_context(scene, flags)
        if flags & RenderFlags.DEPTH_ONLY:
            self._depth_pass(scene, flags, self._depth_pass_meshes(scene), view.V, view.P)
        else:
            self._color_pass(scene, flags, view)

    def can_draw(self, scene, view: "View") -> bool:
        """Whether :meth:`draw` can draw ``scene`` from ``view``: at most pyrender's number of lights
        of each kind (pyrender would keep the nearest ones) and meshes of triangles without
        instances (the depth pass)."""
        limits = self._compute_max_n_lights(RenderFlags.NONE)
        return (len(view.directional) <= limits[0] and len(view.point) <= limits[2]
                and self._depth_pass_meshes(scene) is not None)

    def _compute_max_n_lights(self, flags):
        """pyrender's limits on the lights of each kind for ``flags``: they depend on the flags and
        the context's number of texture units only, so GL is asked once per flags (pyrender asks
        on every pass, and :meth:`can_draw` on every view)."""
        limits = self._max_n_lights.get(int(flags))
        if limits is None:
            limits = self._max_n_lights[int(flags)] = tuple(super()._compute_max_n_lights(flags))
        return list(limits)

    def _get_primitive_program(self, primitive, flags, program_flags):
        return _located(super()._get_primitive_program(primitive, flags, program_flags))

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
        """Called by pyrender after each offscreen pass: nothing is resolved or read until
        :meth:`read_view` / :meth:`read_color` (a resolve waits for the pass to be rasterised)."""
        return None

    def _resolve_color(self):
        """The multisampled colour pass averaged into the single-sample colour buffer (alpha =
        coverage, as pyrender resolves it); waits for the pass to be rasterised."""
        w, h = self._main_fb_dims
        GL.glBindFramebuffer(GL.GL_READ_FRAMEBUFFER, self._main_fb_ms)
        GL.glBindFramebuffer(GL.GL_DRAW_FRAMEBUFFER, self._main_fb)
        GL.glBlitFramebuffer(0, 0, w, h, 0, 0, w, h, GL.GL_COLOR_BUFFER_BIT, GL.GL_LINEAR)

    def read_raw(self) -> tuple[np.ndarray, np.ndarray]:
        """The last colour and depth passes as read back: rgba (H, W, 4) uint8 as :meth:`read_view`
        gives it, and the depth buffer (H, W) float32 in [0, 1] (1 = no hit), top row first:
        :func:`linear_depth` makes it :meth:`read_view`'s depth."""
        rgba = self.read_color()
        return rgba, self._read_depth_buffer()

    def read_view(self, znear: float, zfar: float) -> tuple[np.ndarray, np.ndarray]:
        """The last colour and depth passes: rgba (H, W, 4) uint8 (the multisample resolve, alpha =
        coverage) and depth (H, W) float32 z-depth at the pixel centres (0 = no hit), both in image
        row order (top row first), as pyrender linearises them."""
        rgba = self.read_color()
        return rgba, self.read_depth(znear, zfar)

    def read_color(self) -> np.ndarray:
        """The last colour pass: (H, W, 4) uint8 RGBA, alpha = coverage, top row first."""
        self._resolve_color()
        return self._read(self._main_fb, GL.GL_RGBA, GL.GL_UNSIGNED_BYTE)

    def read_depth(self, znear: float, zfar: float) -> np.ndarray:
        """The last depth pass: (H, W) float32 z-depth at the pixel centres, 0 = no hit, top row
        first."""
        return linear_depth(self._read_depth_buffer(), znear, zfar)

    def _read_depth_buffer(self) -> np.ndarray:
        """The depth framebuffer: (H, W) float32 in [0, 1] (1 = no hit), top row first."""
        return self._read(self._depth_fb, GL.GL_DEPTH_COMPONENT, GL.GL_FLOAT)

    def _read(self, framebuffer, fmt, kind) -> np.ndarray:
        """A buffer of ``framebuffer`` read back (``GL_RGBA`` bytes: (H, W, 4) uint8;
        ``GL_DEPTH_COMPONENT`` floats: (H, W) float32), top row first, a new array. GL writes
        into an array kept for the next read (no array allocated and zeroed, no bytes copy)."""
        w, h = self._main_fb_dims
        shape, dtype = ((h, w, 4), np.uint8) if fmt == GL.GL_RGBA else ((h, w), np.float32)
        buf = self._read_buffers.get(fmt)
        if buf is None or buf.shape != shape:
            buf = self._read_buffers[fmt] = np.empty(shape, dtype)
        GL.glBindFramebuffer(GL.GL_READ_FRAMEBUFFER, framebuffer)
        GL.glReadPixels(0, 0, w, h, fmt, kind, buf.ctypes.data)
        GL.glBindFramebuffer(GL.GL_READ_FRAMEBUFFER, 0)
        return buf[::-1].copy()

    def _forward_pass(self, scene, flags, seg_node_map=None):
        if flags & RenderFlags.DEPTH_ONLY and flags & RenderFlags.OFFSCREEN:
            meshes = self._depth_pass_meshes(scene)
            if meshes is not None:
                return self._depth_pass(scene, flags, meshes, *self._get_camera_matrices(scene))
        return super()._forward_pass(scene, flags, seg_node_map)

    def _update_context(self, scene, flags):
        """pyrender's context update (meshes and textures uploaded or freed), skipped while the scene
        holds the same meshes and no light (a light may need a shadow map): a pass of a view then
        updates nothing, and pyrender's update walks every material's textures. (The materials of a
        mesh in the context are not changed: :class:`renderers.pyrender_backend.PyrenderRenderer`
        sets them before a mesh is first drawn.)"""
        meshes = scene.meshes
        if scene.light_nodes or meshes != self._context_meshes:
            super()._update_context(scene, flags)
            self._context_meshes = None if scene.light_nodes else meshes
            for key in [k for k in self._color_draws if k[0] not in meshes]:
                del self._color_draws[key]

    def _color_pass(self, scene, flags, view: "View"):
        """pyrender's forward colour pass (``RGBA``, or ``RGBA | FLAT``) with the camera and lights of
        ``view`` instead of the scene's nodes: the same programs, uniforms, materials, textures, GL
        state and draw calls, in the same order of meshes and primitives. What a primitive binds is
        found once (:class:`_ColorDraw`); state and uniforms already set in the pass are not set
        again (the values at each draw are pyrender's)."""
        self._configure_forward_pass_viewport(flags)
        GL.glClearColor(*scene.bg_color)
        GL.glClear(GL.GL_COLOR_BUFFER_BIT | GL.GL_DEPTH_BUFFER_BIT)
        GL.glEnable(GL.GL_MULTISAMPLE)
        program, bound, state = None, set(), _PassState()
        for node in _sorted_mesh_nodes(scene, view.cam_pos):
            mesh = node.mesh
            if not mesh.is_visible:
                continue
            pose = scene.get_pose(node)
            key = (mesh, int(flags))
            if key not in self._color_draws:
                self._color_draws[key] = [_ColorDraw.of(self, p, flags) for p in mesh.primitives]
            for primitive, draw in zip(mesh.primitives, self._color_draws[key]):
                used = draw.program if draw is not None else \
                    self._get_primitive_program(primitive, flags, ProgramFlags.USE_MATERIAL)
                if used is not program:
                    program = used
                    program._bind()
                if program not in bound:  # a program keeps its uniforms: once a pass is enough
                    bound.add(program)
                    program.set_uniform("V", view.V)
                    program.set_uniform("P", view.P)
                    program.set_uniform("cam_pos", view.cam_pos)
                    if not flags & RenderFlags.FLAT:
                        self._bind_view_lights(program, scene, view)
                if draw is not None:
                    draw.draw(program, pose, state)
                else:
                    state.forget()
                    self._bind_and_draw_primitive(primitive=primitive, pose=pose, program=program, flags=flags)
                    self._reset_active_textures()
        GL.glBindVertexArray(0)
        if program is not None:
            program._unbind()
        GL.glFlush()

    def _bind_view_lights(self, program, scene, view: "View"):
        """The lighting uniforms pyrender's ``_bind_lighting`` sets, from ``view``."""
        program.set_uniform("ambient_light", scene.ambient_light)
        program.set_uniform("n_directional_lights", len(view.directional))
        program.set_uniform("n_spot_lights", 0)
        program.set_uniform("n_point_lights", len(view.point))
        for kind, lights, vector in (("directional", view.directional, "direction"),
                                     ("point", view.point, "position")):
            for i, (value, color, intensity) in enumerate(lights):
                b = f"{kind}_lights[{i}]."
                program.set_uniform(b + vector, value)
                program.set_uniform(b + "color", color)
                program.set_uniform(b + "intensity", intensity)

    def _depth_pass_meshes(self, scene):
        """[(pose, _DepthMesh)] of the scene's visible meshes, or None where this module cannot draw
        them as pyrender would (instanced primitives, points, lines, strips: pyrender draws those)."""
        in_scene = scene.meshes  # a new set each time pyrender is asked
        for mesh in [m for m in self._depth_meshes if m not in in_scene]:
            self._depth_meshes.pop(mesh).delete()
        out = []
        for node in scene.mesh_nodes:
            mesh = node.mesh
            if not mesh.is_visible:
                continue
            if mesh not in self._depth_meshes:
                if any(p.mode != GLTF.TRIANGLES or p.poses is not None for p in mesh.primitives):
                    return None
                self._depth_meshes[mesh] = _DepthMesh(mesh)
            out.append((scene.get_pose(node), self._depth_meshes[mesh]))
        return out

    def _depth_pass(self, scene, flags, meshes, V, P):
        """pyrender's depth-only forward pass (view matrix ``V``, projection ``P``), drawn from the
        meshes' indexed distinct positions (see the module doc) into the single-sample depth
        framebuffer."""
        self._configure_forward_pass_viewport(flags)
        GL.glClearColor(*scene.bg_color)
        GL.glClear(GL.GL_COLOR_BUFFER_BIT | GL.GL_DEPTH_BUFFER_BIT)
        GL.glEnable(GL.GL_MULTISAMPLE)
        if meshes:
            program = self._depth_shader()
            program._bind()
            program.set_uniform("V", V)
            program.set_uniform("P", P)
            GL.glEnable(GL.GL_CULL_FACE)
            GL.glCullFace(GL.GL_BACK)
            GL.glEnable(GL.GL_BLEND)
            GL.glBlendFunc(GL.GL_ONE, GL.GL_ZERO)
            GL.glPolygonMode(GL.GL_FRONT_AND_BACK, GL.GL_FILL)
            GL.glDisable(GL.GL_PROGRAM_POINT_SIZE)
            for pose, depth_mesh in meshes:
                program.set_uniform("M", pose)
                depth_mesh.draw()
            program._unbind()
        GL.glFlush()
        return None

    def _depth_shader(self):
        """pyrender's depth-only program (``mesh_depth.vert`` / ``.frag``) for a vertex array with
        positions only: attribute 0 the position, the instance matrix (``inst_m``) at 1-4."""
        if self._depth_program is None:
            n = self._compute_max_n_lights(RenderFlags.DEPTH_ONLY)
            self._depth_program = self._program_cache.get_program(
                vertex_shader="mesh_depth.vert", fragment_shader="mesh_depth.frag",
                defines={"INST_M_LOC": _INST_M_LOC, "MAX_DIRECTIONAL_LIGHTS": n[0], "MAX_SPOT_LIGHTS": n[1],
                         "MAX_POINT_LIGHTS": n[2]})
            if not self._depth_program._in_context():
                self._depth_program._add_to_context()
            _located(self._depth_program)
        return self._depth_program

    def delete(self):
        while self._parked:
            self._delete_parked(self._parked.pop(next(iter(self._parked))))
        self._delete_depth_framebuffer()
        for depth_mesh in self._depth_meshes.values():
            depth_mesh.delete()
        self._depth_meshes.clear()
        self._depth_program = None  # deleted with pyrender's program cache
        self._color_draws.clear()
        self._context_meshes = None
        super().delete()


@dataclasses.dataclass(frozen=True)
class View:
    """A view's camera and lights as pyrender's shaders receive them (:func:`view`): ``V`` (4, 4)
    world -> camera, ``P`` (4, 4) projection, ``cam_pos`` (3,); ``directional``: ((direction (3,),
    color (3,) float32, intensity), ...), ``point``: ((position (3,), color, intensity), ...)."""

    V: np.ndarray
    P: np.ndarray
    cam_pos: np.ndarray
    directional: tuple
    point: tuple


def node_pose(pose) -> np.ndarray:
    """The pose pyrender reads back for a node added with ``pose`` (4, 4): decomposed into
    translation, quaternion and scale, recomposed, times the identity of its path to the world;
    within a few ulps of ``pose``, and these bits are the ones its shaders get.

    pyrender's ``Node._m_from_tqs(_t_from_m, _q_from_m, _s_from_m)`` (with trimesh's
    ``quaternion_from_matrix`` / ``quaternion_matrix``) in the same floating-point operations, in
    the same order: the column norms as numpy sums them, the rotation's eigen-decomposition by
    the same LAPACK call, the quaternion's squared norm and the three matrix products by the same
    numpy calls; the rest in Python floats (IEEE doubles, like numpy's element-wise operations)
    instead of some forty numpy calls on (3,)- and (4, 4)-arrays: a quarter of the time, three
    poses a view."""
    m = np.asanyarray(pose)
    if m.dtype != np.float64 or m.shape != (4, 4):
        return np.dot(Node._m_from_tqs(Node._t_from_m(m), Node._q_from_m(m), Node._s_from_m(m)), _EYE4)
    (u00, u01, u02, t0), (u10, u11, u12, t1), (u20, u21, u22, t2) = m[:3].tolist()
    s0 = math.sqrt((u00 * u00 + u10 * u10) + u20 * u20)  # np.linalg.norm(m[:3, :3].T, axis=1)
    s1 = math.sqrt((u01 * u01 + u11 * u11) + u21 * u21)
    s2 = math.sqrt((u02 * u02 + u12 * u12) + u22 * u22)
    r00, r01, r02 = u00 / s0, u01 / s1, u02 / s2
    r10, r11, r12 = u10 / s0, u11 / s1, u12 / s2
    r20, r21, r22 = u20 / s0, u21 / s1, u22 / s2
    k = np.array([[(r00 - r11 - r22) / 3.0, 0.0, 0.0, 0.0],  # quaternion_from_matrix's K / 3
                  [(r01 + r10) / 3.0, (r11 - r00 - r22) / 3.0, 0.0, 0.0],
                  [(r02 + r20) / 3.0, (r12 + r21) / 3.0, (r22 - r00 - r11) / 3.0, 0.0],
                  [(r21 - r12) / 3.0, (r02 - r20) / 3.0, (r10 - r01) / 3.0, (r00 + r11 + r22) / 3.0]])
    w, v = np.linalg.eigh(k)
    q = v[[3, 0, 1, 2], int(np.argmax(w))].reshape(1, 4)  # w, x, y, z
    if q[0, 0] < 0.0:
        np.negative(q, q)
    n = float(np.dot(q * q, _ONES4)[0])  # trimesh's diagonal_dot
    if n < _QUATERNION_EPS:
        rot = _EYE4
    else:
        qw, qx, qy, qz = (q[0] * math.sqrt(2.0 / n)).tolist()
        rot = np.array([[1.0 - qy * qy - qz * qz, qy * qx - qw * qz, qz * qx + qw * qy, 0.0],
                        [qy * qx + qw * qz, 1.0 - qx * qx - qz * qz, qz * qy - qw * qx, 0.0],
                        [qz * qx - qw * qy, qz * qy + qw * qx, 1.0 - qx * qx - qy * qy, 0.0],
                        [0.0, 0.0, 0.0, 1.0]])
    scale = np.array([[s0, 0.0, 0.0, 0.0], [0.0, s1, 0.0, 0.0], [0.0, 0.0, s2, 0.0], [0.0, 0.0, 0.0, 1.0]])
    move = np.array([[1.0, 0.0, 0.0, t0], [0.0, 1.0, 0.0, t1], [0.0, 0.0, 1.0, t2], [0.0, 0.0, 0.0, 1.0]])
    return np.dot(move.dot(rot.dot(scale)), _EYE4)


_EYE4 = np.eye(4)
_EYE4.setflags(write=False)
_ONES4 = [1.0, 1.0, 1.0, 1.0]
_QUATERNION_EPS = np.finfo(float).eps * 4.0  # trimesh.transformations._EPS


def view(camera, cam_pose, lights, width: int, height: int) -> View:
    """The :class:`View` of a pyrender ``camera`` at GL pose ``cam_pose`` (4, 4) and ``lights``
    [(pyrender DirectionalLight or PointLight, pose (4, 4))], in order, for a viewport of
    ``width`` x ``height``."""
    cam = node_pose(cam_pose)
    directional, point = [], []
    for light, pose in lights:
        p = node_pose(pose)
        if isinstance(light, DirectionalLight):
            directional.append((-p[:3, 2], light.color, light.intensity))
        elif isinstance(light, PointLight):
            point.append((p[:3, 3], light.color, light.intensity))
        else:
            raise ValueError(f"unsupported light {type(light).__name__}")
    return View(np.linalg.inv(cam), camera.get_projection_matrix(width=width, height=height), cam[:3, 3],
                tuple(directional), tuple(point))


def _sorted_mesh_nodes(scene, cam_loc):
    """pyrender's drawing order of the scene's mesh nodes (``Renderer._sorted_mesh_nodes``) for a
    camera at ``cam_loc``: opaque meshes, then transparent ones, each farthest first."""
    solid, transparent = [], []
    for node in scene.mesh_nodes:
        (transparent if node.mesh.is_transparent else solid).append(node)
    for nodes in (solid, transparent):
        nodes.sort(key=lambda n: -np.linalg.norm(scene.get_pose(n)[:3, 3] - cam_loc))
    return solid + transparent


class _LocatedProgram(ShaderProgram):
    """A pyrender shader program that looks each uniform's location up once (per GL program) and
    sets values as pyrender does: arrays of 1 dimension as vectors of their kind (unsigned, signed
    or float32), of 2 as row-major float32 matrices, Python floats, ints and bools as scalars; a
    name the program does not use is skipped (pyrender ignores it too). A value equal to the one
    last set (the same converted bytes) is not sent again: a program keeps its uniforms."""

    def set_uniform(self, name, value, unsigned=False):
        uniforms = self.__dict__.get("_kpdata_uniforms")
        if uniforms is None or uniforms[0] != self._program_id:
            uniforms = self.__dict__["_kpdata_uniforms"] = (self._program_id, {})
        slot = uniforms[1].get(name)
        if slot is None:  # [location, the last value set]
            slot = uniforms[1][name] = [GL.glGetUniformLocation(self._program_id, name), None]
        loc = slot[0]
        if loc == -1:
            return
        if isinstance(value, np.ndarray):
            if value.ndim == 1:
                kind = value.dtype.kind
                if unsigned or kind == "u":
                    fn, arr = f"glUniform{value.shape[0]}uiv", value.astype(np.uint32)
                elif kind == "i":
                    fn, arr = f"glUniform{value.shape[0]}iv", value.astype(np.int32)
                else:
                    fn, arr = f"glUniform{value.shape[0]}fv", value.astype(np.float32)
                args = (loc, 1, arr)
            else:
                rows, cols = value.shape
                fn, arr = f"glUniformMatrix{rows if rows == cols else f'{rows}x{cols}'}fv", value.astype(np.float32)
                args = (loc, 1, GL.GL_TRUE, arr)
            last = (fn, arr.tobytes())
        elif isinstance(value, float):
            fn, args, last = "glUniform1f", (loc, value), ("1f", value)
        elif isinstance(value, (bool, int, np.integer)):
            fn = "glUniform1ui" if unsigned else "glUniform1i"
            args = (loc, int(value))
            last = (fn, int(value))
        else:
            raise ValueError(f"uniform {name}: cannot set a value of type {type(value).__name__}")
        if slot[1] != last:
            getattr(GL, fn)(*args)
            slot[1] = last


def _located(program):
    if type(program) is ShaderProgram:
        program.__class__ = _LocatedProgram
    return program


class _PassState:
    """The GL state a pass has set so far (capabilities, blend function, polygon mode, cull face):
    a setting equal to the one in place is not sent again."""

    def __init__(self):
        self.values: dict = {}

    def set(self, key, value, apply) -> None:
        if self.values.get(key, _UNSET) != value:
            apply()
            self.values[key] = value

    def enable(self, cap, on: bool) -> None:
        self.set(cap, on, lambda: (GL.glEnable if on else GL.glDisable)(cap))

    def forget(self) -> None:
        self.values.clear()


_UNSET = object()


class _ColorDraw:
    """What pyrender's ``_bind_and_draw_primitive`` binds for one primitive in a colour pass, found
    once: its program, textures (unit, texture, sampler uniform), material uniforms, blending,
    polygon mode, face culling and draw call, in pyrender's order. :meth:`of` gives None for what
    this class does not reproduce (points, instances, materials other than metallic-roughness):
    those primitives are drawn by pyrender's own method."""

    _TEXTURES = ((TexFlags.NORMAL, "normalTexture", "normal_texture"),
                 (TexFlags.OCCLUSION, "occlusionTexture", "occlusion_texture"),
                 (TexFlags.EMISSIVE, "emissiveTexture", "emissive_texture"),
                 (TexFlags.BASE_COLOR, "baseColorTexture", "base_color_texture"),
                 (TexFlags.METALLIC_ROUGHNESS, "metallicRoughnessTexture", "metallic_roughness_texture"),
                 (TexFlags.DIFFUSE, "diffuseTexture", "diffuse_texture"),
                 (TexFlags.SPECULAR_GLOSSINESS, "specularGlossinessTexture", "specular_glossiness_texture"))

    def __init__(self, program, primitive, textures, uniforms, blend, polygon, cull):
        self.program, self.primitive = program, primitive
        self.textures, self.uniforms, self.blend, self.polygon, self.cull = textures, uniforms, blend, polygon, cull

    @classmethod
    def of(cls, renderer, primitive, flags) -> "_ColorDraw | None":
        material = primitive.material
        if primitive.mode != GLTF.TRIANGLES or primitive.poses is not None or \
                not isinstance(material, MetallicRoughnessMaterial) or flags & (RenderFlags.DEPTH_ONLY | RenderFlags.SEG):
            return None
        program = renderer._get_primitive_program(primitive, flags, ProgramFlags.USE_MATERIAL)
        tf = material.tex_flags
        textures = [(unit, getattr(material, attr), f"material.{name}")
                    for unit, (flag, attr, name) in enumerate(t for t in cls._TEXTURES if tf & t[0])]
        uniforms = (("material.emissive_factor", material.emissiveFactor),
                    ("material.base_color_factor", material.baseColorFactor),
                    ("material.metallic_factor", material.metallicFactor),
                    ("material.roughness_factor", material.roughnessFactor))
        blend = (GL.GL_SRC_ALPHA, GL.GL_ONE_MINUS_SRC_ALPHA) if material.alphaMode == "BLEND" else (GL.GL_ONE, GL.GL_ZERO)
        wireframe = material.wireframe
        if flags & RenderFlags.FLIP_WIREFRAME:
            wireframe = not wireframe
        polygon = GL.GL_LINE if flags & RenderFlags.ALL_WIREFRAME or wireframe else GL.GL_FILL
        cull = not (material.doubleSided or flags & RenderFlags.SKIP_CULL_FACES)
        return cls(program, primitive, textures, uniforms, blend, polygon, cull)

    def draw(self, program, pose, state: _PassState) -> None:
        """Bind and draw as pyrender does (``program`` bound, its view uniforms set)."""
        program.set_uniform("M", pose)
        GL.glBindVertexArray(self.primitive._vaid)
        for unit, texture, name in self.textures:
            GL.glActiveTexture(GL.GL_TEXTURE0 + unit)
            texture._bind()
            program.set_uniform(name, unit)
        for name, value in self.uniforms:
            program.set_uniform(name, value)
        state.enable(GL.GL_BLEND, True)
        state.set("blend", self.blend, lambda: GL.glBlendFunc(*self.blend))
        state.set("polygon", self.polygon, lambda: GL.glPolygonMode(GL.GL_FRONT_AND_BACK, self.polygon))
        state.enable(GL.GL_CULL_FACE, self.cull)
        if self.cull:
            state.set("cull", GL.GL_BACK, lambda: GL.glCullFace(GL.GL_BACK))
        state.enable(GL.GL_PROGRAM_POINT_SIZE, False)
        p = self.primitive
        if p.indices is not None:
            GL.glDrawElementsInstanced(p.mode, p.indices.size, GL.GL_UNSIGNED_INT, ctypes.c_void_p(0), 1)
        else:
            GL.glDrawArraysInstanced(p.mode, 0, len(p.positions), 1)


_INST_M_LOC = 1  # pyrender's location of the instance matrix for a primitive with positions only


class _DepthMesh:
    """A pyrender mesh's triangles for the depth pass: one vertex array holding each primitive's
    distinct positions (float32, the values pyrender uploads) and one index buffer; each primitive
    is one draw, in order, as pyrender draws it (Mesa chooses its clipping path per draw, which
    decides the last bit of the window coordinates: triangles meeting exactly at a pixel centre
    cover it as they do in pyrender's pass only when drawn in the same groups). The instance
    matrix is the constant identity (pyrender's for a primitive without instances)."""

    def __init__(self, mesh):
        vertices, indices, self.draws = [], [], []
        base = start = 0
        for p in mesh.primitives:
            pos = np.asarray(p.positions, np.float32).reshape(-1, 3)
            corners = np.arange(len(pos)) if p.indices is None else np.asarray(p.indices, np.int64).reshape(-1)
            corners = corners[: len(corners) - len(corners) % 3]
            distinct, inverse = np.unique(pos, axis=0, return_inverse=True)
            vertices.append(distinct)
            indices.append(inverse.reshape(-1)[corners] + base)
            self.draws.append((start, len(corners)))
            base += len(distinct)
            start += len(corners)
        data = np.ascontiguousarray(np.concatenate(vertices) if vertices else np.zeros((0, 3)), dtype=np.float32)
        index = np.ascontiguousarray(np.concatenate(indices) if indices else np.zeros(0), dtype=np.uint32)
        self.vao = GL.glGenVertexArrays(1)
        GL.glBindVertexArray(self.vao)
        self.vbo, self.ebo = GL.glGenBuffers(2)
        GL.glBindBuffer(GL.GL_ARRAY_BUFFER, self.vbo)
        GL.glBufferData(GL.GL_ARRAY_BUFFER, data.nbytes, data, GL.GL_STATIC_DRAW)
        GL.glVertexAttribPointer(0, 3, GL.GL_FLOAT, GL.GL_FALSE, 12, ctypes.c_void_p(0))
        GL.glEnableVertexAttribArray(0)
        GL.glBindBuffer(GL.GL_ELEMENT_ARRAY_BUFFER, self.ebo)
        GL.glBufferData(GL.GL_ELEMENT_ARRAY_BUFFER, index.nbytes, index, GL.GL_STATIC_DRAW)
        GL.glBindVertexArray(0)

    def draw(self):
        GL.glBindVertexArray(self.vao)
        for i in range(4):  # constant attributes (arrays disabled): the identity's columns
            GL.glVertexAttrib4f(_INST_M_LOC + i, *(1.0 if j == i else 0.0 for j in range(4)))
        for start, count in self.draws:
            GL.glDrawElements(GL.GL_TRIANGLES, count, GL.GL_UNSIGNED_INT, ctypes.c_void_p(4 * start))
        GL.glBindVertexArray(0)

    def delete(self):
        GL.glDeleteVertexArrays(1, [self.vao])
        GL.glDeleteBuffers(2, [self.vbo, self.ebo])


def linear_depth(d: np.ndarray, znear: float, zfar: float) -> np.ndarray:
    """Depth-buffer values (H, W) float32 in [0, 1] -> z-depth, 0 where 1.0 (no hit): pyrender's
    linearisation, in the same float32 arithmetic (pyrender computes the hit pixels only; each
    pixel's value is its own, so computing all and keeping the hits gives the same bits, without
    boolean indexing: a third of the time)."""
    hit = d != 1.0
    d = 2.0 * d - 1.0
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):  # pixels not kept
        z = (2.0 * znear * zfar) / (zfar + znear - d * (zfar - znear))
    return np.where(hit, z, np.float32(0.0)).astype(np.float32, copy=False)


def adopt(offscreen) -> ViewRenderer:
    """Swap a fresh ``pyrender.OffscreenRenderer``'s renderer for a :class:`ViewRenderer` (its GL
    context current); returns it."""
    old = offscreen._renderer  # noqa: SLF001 - pyrender has no hook to choose the renderer class
    old.delete()
    new = ViewRenderer(offscreen.viewport_width, offscreen.viewport_height, offscreen.point_size)
    offscreen._renderer = new  # noqa: SLF001
    return new
