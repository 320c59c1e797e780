"""A fake backend: analytic renders of a mesh's bounding box or bounding sphere, without OpenGL.

Same interface as the pyrender backend (:class:`renderers.base.Renderer`), for fast pipeline tests
on machines with no GL stack: numpy only, vectorised, deterministic (the same request gives the
same bytes on every machine).

The model is replaced by a proxy primitive in its own (OBJ) frame, computed by :meth:`prepare`
from the vertices of its faces (scene-graph transforms applied):

* ``shape="box"``: the axis-aligned bounding box ``[lo, hi]`` (a flat box of zero thickness, such
  as a ground plane, is a rectangle);
* ``shape="sphere"``: the sphere centred at the box's centre through the farthest vertex.

Each pixel is rendered by casting rays through it, in closed form:

* Rays: OpenCV pixel centres (DESIGN §4), ``d = ((u - cx) / fx, (v - cy) / fy, 1)`` in the
  camera frame, moved into the object frame with ``inverse(cam_T_obj)``. A point ``t * d`` has
  z-depth ``t``, so the ray parameter of the first hit in front of the camera (``t > 0``) is the
  depth. A camera inside the proxy sees its inside.
* ``depth`` (H, W) float32: z-depth of the ray through the pixel centre, 0 where it misses.
* alpha: coverage, the fraction of ``samples x samples`` sub-pixel rays (a regular grid centred
  on the pixel) that hit, times 255, rounded.
* rgb: flat Lambert shading of each hit with the proxy's normal there (turned towards the
  camera) and the request's lights and ambient, with a constant albedo ``color``: ambient adds
  ``ambient * albedo``; a directional light ``intensity * max(n . -direction, 0) / pi * albedo``;
  a point light the same with ``intensity / r^2`` at distance ``r``; a hemisphere light
  ``intensity * (1 + n . -direction) / 2 * albedo`` (all times the light's colour). Sub-pixel
  colours are averaged over all samples with misses transparent black (as a multisample resolve
  over pyrender's transparent background), clipped to [0, 1] and scaled to uint8.
"""
from __future__ import annotations

import numpy as np

from kpdata.mesh import LoadedMesh
from renderers.base import Light, Renderer, RenderRequest

SHAPES = ("box", "sphere")
DEFAULT_COLOR = (0.8, 0.8, 0.8)


def mesh_vertices(mesh: LoadedMesh) -> np.ndarray:
    """(N, 3) float64 vertices of every geometry with faces in ``mesh.scene``, in the OBJ frame
    (the scene graph's transforms applied; :meth:`kpdata.mesh.LoadedMesh.parts`)."""
    parts = mesh.parts()
    if not parts:
        raise ValueError(f"{mesh.path}: the mesh has no faces to render")
    return np.concatenate([np.asarray(g.vertices, dtype=np.float64) for g in parts])


def pixel_rays(intrinsics, du: float = 0.0, dv: float = 0.0) -> np.ndarray:
    """(3, H * W) float64 camera-frame ray directions with z = 1 through the points
    ``(u + du, v + dv)`` of every pixel (columns in row-major pixel order, OpenCV pixel centres at
    integers)."""
    w, h = intrinsics.width, intrinsics.height
    x = (np.arange(w, dtype=np.float64) + du - intrinsics.cx) / intrinsics.fx
    y = (np.arange(h, dtype=np.float64) + dv - intrinsics.cy) / intrinsics.fy
    return np.stack([np.tile(x, h), np.repeat(y, w), np.ones(h * w)])


def intersect_box(origin, dirs, lo, hi) -> tuple[np.ndarray, np.ndarray]:
    """First hits ``t > 0`` of the rays ``origin + t * dirs`` with the box ``[lo, hi]`` (slab test).

    Args:
      origin: (3,) ray origin; dirs: (3, N) directions (one per column); lo, hi: (3,) box corners,
      same frame.
    Returns:
      t: (N,) float64 ray parameter of the hit, inf where the ray misses;
      normal: (3, N) float64 unit normal of the face hit, pointing against the ray.
    """
    dirs = np.asarray(dirs, dtype=np.float64)
    tmin, tmax = [], []
    for a in range(3):
        o, lo_a, hi_a, d = float(origin[a]), float(lo[a]), float(hi[a]), dirs[a]
        inside = lo_a <= o <= hi_a  # a ray parallel to the slab stays in or out of it
        with np.errstate(divide="ignore", invalid="ignore"):
            t1, t2 = (lo_a - o) / d, (hi_a - o) / d
        parallel = d == 0.0
        tmin.append(np.where(parallel, -np.inf if inside else np.inf, np.minimum(t1, t2)))
        tmax.append(np.where(parallel, np.inf if inside else -np.inf, np.maximum(t1, t2)))
    t_near = np.maximum(np.maximum(tmin[0], tmin[1]), tmin[2])
    t_far = np.minimum(np.minimum(tmax[0], tmax[1]), tmax[2])
    enter = t_near > 0.0
    hit = (t_near <= t_far) & (t_far > 0.0)
    t = np.where(hit, np.where(enter, t_near, t_far), np.inf)
    normal = np.zeros_like(dirs)
    taken = np.zeros(len(t), dtype=bool)
    for a in range(3):  # the face hit: the first slab whose entry (or, from inside, exit) bounds t
        face = np.where(enter, tmin[a] == t_near, tmax[a] == t_far) & ~taken
        normal[a] = np.where(face, -np.sign(dirs[a]), 0.0)
        taken |= face
    return t, normal


def intersect_sphere(origin, dirs, center, radius: float) -> tuple[np.ndarray, np.ndarray]:
    """First hits ``t > 0`` of the rays ``origin + t * dirs`` with a sphere.

    Args:
      origin: (3,); dirs: (3, N) directions (one per column); center: (3,), same frame; radius: > 0.
    Returns:
      t: (N,) float64, inf where the ray misses; normal: (3, N) unit sphere normal at the hit,
      turned against the ray (inward when the origin is inside).
    """
    dirs = np.asarray(dirs, dtype=np.float64)
    oc = np.asarray(origin, dtype=np.float64) - np.asarray(center, dtype=np.float64)
    a = dirs[0] * dirs[0] + dirs[1] * dirs[1] + dirs[2] * dirs[2]
    b = 2.0 * (oc[0] * dirs[0] + oc[1] * dirs[1] + oc[2] * dirs[2])
    c = float(oc @ oc - radius * radius)
    disc = b * b - 4.0 * a * c
    hit = disc >= 0.0
    root = np.sqrt(np.where(hit, disc, 0.0))
    q = -0.5 * (b + np.where(b >= 0.0, root, -root))  # the stable pair of roots: q / a and c / q
    with np.errstate(divide="ignore", invalid="ignore"):
        r1, r2 = q / a, np.where(q != 0.0, c / q, -np.inf)
    t_first, t_second = np.minimum(r1, r2), np.maximum(r1, r2)
    t = np.where(hit & (t_first > 0.0), t_first, np.where(hit & (t_second > 0.0), t_second, np.inf))
    normal = (oc[:, None] + np.where(np.isfinite(t), t, 0.0) * dirs) / radius
    facing = (normal * dirs).sum(axis=0) > 0.0
    return t, np.where(facing, -normal, normal)


def shade(normals_cam, points_cam, lights: tuple[Light, ...], ambient, color) -> np.ndarray:
    """(3, N) float64 linear RGB of surface points (not clipped).

    Args:
      normals_cam: (3, N) unit normals, OpenCV camera frame; points_cam: (3, N) the points there;
      lights: :class:`~renderers.base.Light` s in the camera frame; ambient, color: RGB.
    """
    irradiance = np.repeat(np.asarray(ambient, dtype=np.float64)[:, None], normals_cam.shape[1], axis=1)
    for light in lights:
        rgb = (np.asarray(light.color, dtype=np.float64) * light.intensity)[:, None]
        if light.kind == "point":
            to_light = np.asarray(light.position, dtype=np.float64)[:, None] - points_cam
            r2 = np.maximum((to_light * to_light).sum(axis=0), 1e-12)
            cos = (normals_cam * to_light).sum(axis=0) / np.sqrt(r2)
            irradiance += np.maximum(cos, 0.0) / (np.pi * r2) * rgb
            continue
        d = np.asarray(light.direction, dtype=np.float64)
        cos = (-d / np.linalg.norm(d)) @ normals_cam
        if light.kind == "hemisphere":
            irradiance += (1.0 + cos) / 2.0 * rgb
        else:
            irradiance += np.maximum(cos, 0.0) / np.pi * rgb
    return irradiance * np.asarray(color, dtype=np.float64)[:, None]


class FakeRenderer(Renderer):
    """Analytic renders of a proxy primitive (``shape``: ``box`` or ``sphere``) with albedo
    ``color``; ``samples`` x ``samples`` sub-pixel rays give the alpha coverage. The image size is
    the request's; ``width`` and ``height`` are kept for symmetry with the GL backends."""

    def __init__(self, width: int = 960, height: int = 540, shape: str = "box",
                 color: tuple[float, float, float] = DEFAULT_COLOR, samples: int = 2):
        if shape not in SHAPES:
            raise ValueError(f"unknown fake renderer shape {shape!r} (expected one of {', '.join(SHAPES)})")
        if int(samples) < 1:
            raise ValueError(f"samples must be >= 1, got {samples}")
        self.width, self.height = int(width), int(height)
        self.shape, self.color, self.samples = shape, tuple(float(c) for c in color), int(samples)

    def prepare(self, mesh: LoadedMesh) -> dict:
        """The proxy of ``mesh``: {"shape": "box", "lo": (3,), "hi": (3,)} or
        {"shape": "sphere", "center": (3,), "radius": float}, OBJ frame."""
        verts = mesh_vertices(mesh)
        lo, hi = verts.min(axis=0), verts.max(axis=0)
        if self.shape == "box":
            return {"shape": "box", "lo": lo, "hi": hi}
        center = (lo + hi) / 2.0
        return {"shape": "sphere", "center": center,
                "radius": max(float(np.max(np.linalg.norm(verts - center, axis=1))), 1e-12)}

    def _cast(self, handle: dict, obj_T_cam: np.ndarray, dirs_cam: np.ndarray):
        """(t (N,), normal (3, N) object frame) of the camera-frame rays ``dirs_cam`` (3, N)."""
        origin = obj_T_cam[:3, 3]
        dirs = obj_T_cam[:3, :3] @ dirs_cam
        if handle["shape"] == "box":
            return intersect_box(origin, dirs, handle["lo"], handle["hi"])
        return intersect_sphere(origin, dirs, handle["center"], handle["radius"])

    def _render(self, handle: dict, request: RenderRequest) -> tuple[np.ndarray, np.ndarray]:
        intr = request.intrinsics
        h, w = intr.height, intr.width
        obj_T_cam = np.linalg.inv(request.pose)
        normal_to_cam = obj_T_cam[:3, :3].T  # inverse transpose of the object -> camera linear map
        t_centre, _ = self._cast(handle, obj_T_cam, pixel_rays(intr))
        depth = np.where(np.isfinite(t_centre), t_centre, 0.0).astype(np.float32).reshape(h, w)

        n = self.samples
        offsets = (np.arange(n) + 0.5) / n - 0.5
        rgb = np.zeros((3, h * w))
        hits = np.zeros(h * w)
        for dv in offsets:
            for du in offsets:
                dirs_cam = pixel_rays(intr, du, dv)
                t, normal_obj = self._cast(handle, obj_T_cam, dirs_cam)
                hit = np.isfinite(t)
                normals = normal_to_cam @ normal_obj[:, hit]
                normals /= np.linalg.norm(normals, axis=0)
                points = dirs_cam[:, hit] * t[hit]
                rgb[:, hit] += shade(normals, points, request.lights, request.ambient, self.color)
                hits += hit
        rgba = np.empty((h * w, 4), dtype=np.uint8)
        rgba[:, :3] = np.round(np.clip(rgb.T / (n * n), 0.0, 1.0) * 255.0)
        rgba[:, 3] = np.round(hits / (n * n) * 255.0)
        return rgba.reshape(h, w, 4), depth
