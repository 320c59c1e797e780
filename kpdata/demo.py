"""The built-in demo set: four procedural, textured, low-poly ShapeNet-style models with keypoints.

Two cars (``02958343``: a sedan and a hatchback), a bus (``02924116``) and a motorbike
(``03790512``), each with the Click-Here keypoints of its class, written in the ShapeNetCore v1
layout so every reader of real ShapeNet reads them unchanged::

    <root>/<synset>/<model_id>/model.obj            triangles, v/vt/vn, one usemtl group per material
    <root>/<synset>/<model_id>/model.mtl            Ka/Kd/Ks/Ns/d/illum, map_Kd for textured materials
    <root>/<synset>/<model_id>/images/texture*.png  128x128 procedural textures
    <root>/<synset>/<model_id>/keypoints.json       {name: [x, y, z]} (Click-Here format)

Frames and units
----------------
Everything is in the OBJ's own frame, ShapeNet's Y-up model frame, in model units: +Y is up, the
object's front faces ``DEMO_FRONT_AXIS`` (+X) and its own left side is ``DEMO_LEFT_AXIS`` (-Z),
right is +Z, as the real ShapeNetCore v1 models face (``_ORIENT_*`` below sets this in one
place). As ShapeNet v1 does, each model is centred at its bounding-box centre and scaled so that
the bounding-box diagonal is 1. ``keypoints.json`` uses the same frame and units; every keypoint is
a point of the written mesh surface, with the coordinates written with the same ``%.6f`` rounding
as the OBJ vertices, so it lies on the surface of the parsed file too (within 1e-6).

No keypoint sits on an edge or a corner of the mesh: visibility is decided by a depth test at the
keypoint's (rounded) pixel, which flips at random for points on a silhouette. Each keypoint lies
inside one face that a viewer associates with it (a car's windshield glass, its tail panel, a
bus's front face, a seat top, ...), at least 4% of the bounding-box diagonal from every edge of
that face, or at the centre of a small face (lights, handlebar grips, the steering head). The
exceptions by construction are the centres of round caps (wheel hubs, the motorbike's headlamp),
which are fan-centre vertices of flat discs.

Geometry is built from closed convex primitives (extruded convex polygons, cylinders) with
outward-facing, consistent winding; each primitive shares its vertex positions, so every
primitive is watertight in the OBJ (position indices). Wheels are cylinders whose axis is the
lateral (X) axis; a wheel keypoint is the centre of the outer cap of its hub (min X for left
wheels, max X for right wheels).

Output is byte-identical on every call (no randomness; fixed float formatting; PNGs encoded by
OpenCV from deterministic arrays).
"""
from __future__ import annotations

import hashlib
import os

import cv2
import numpy as np

from kpdata import cache
from kpdata.cache import default_cache_dir
from kpdata.seeding import rng_for

__all__ = [
    "DEMO_MODELS",
    "DEMO_KEYPOINT_NAMES",
    "DEMO_UP_AXIS",
    "DEMO_FRONT_AXIS",
    "DEMO_LEFT_AXIS",
    "DEMO_DIR_NAME",
    "write_demo_set",
    "demo_shapenet_dir",
    "demo_files",
    "demo_models",
    "default_cache_dir",
]

CAR, BUS, MOTORBIKE = "02958343", "02924116", "03790512"

# Click-Here keypoint names per synset, in Click-Here's KEYPOINT_TYPES order.
DEMO_KEYPOINT_NAMES: dict[str, tuple[str, ...]] = {
    BUS: ("body_back_left_lower", "body_back_left_upper", "body_back_right_lower",
          "body_back_right_upper", "body_front_left_upper", "body_front_right_upper",
          "body_front_left_lower", "body_front_right_lower", "left_back_wheel",
          "left_front_wheel", "right_back_wheel", "right_front_wheel"),
    CAR: ("left_front_wheel", "left_back_wheel", "right_front_wheel", "right_back_wheel",
          "upper_left_windshield", "upper_right_windshield", "upper_left_rearwindow",
          "upper_right_rearwindow", "left_front_light", "right_front_light",
          "left_back_trunk", "right_back_trunk"),
    MOTORBIKE: ("back_seat", "front_seat", "head_center", "headlight_center", "left_back_wheel",
                "left_front_wheel", "left_handle_center", "right_back_wheel",
                "right_front_wheel", "right_handle_center"),
}


def _model_id(name: str) -> str:
    return hashlib.md5(f"kpdata-demo-{name}".encode("ascii")).hexdigest()


# (synset, name, model_id) per model, sorted by (synset, model_id).
DEMO_MODELS: tuple[tuple[str, str, str], ...] = tuple(sorted(
    ((synset, name, _model_id(name)) for synset, name in
     ((CAR, "sedan"), (CAR, "hatchback"), (BUS, "bus"), (MOTORBIKE, "motorbike"))),
    key=lambda m: (m[0], m[2])))

# Axes of the OBJ frame (unit vectors, Y-up model frame). The models are designed with front = -Z,
# left = -X (the design frame); the written frame is the design frame after the signed axis
# permutation _ORIENT_*, applied before normalisation. A signed permutation is exact in floating
# point, so keypoints stay exactly on the surface. (2, 1, 0) with signs (-1, 1, 1) is a rotation
# about +Y that writes the models facing +X with their left at -Z, the way the ShapeNetCore v1
# models in shared/fixtures/shapenet_core_v1 (chair backrest, airplane tail at -X) face.
_ORIENT_PERM = (2, 1, 0)      # output axis i takes design axis _ORIENT_PERM[i] ...
_ORIENT_SIGN = (-1.0, 1.0, 1.0)  # ... times _ORIENT_SIGN[i]


def _orient_vec(v) -> tuple[float, float, float]:
    v = np.asarray(v, dtype=np.float64)
    return tuple(float(_ORIENT_SIGN[i] * v[_ORIENT_PERM[i]]) for i in range(3))


DEMO_UP_AXIS = _orient_vec((0.0, 1.0, 0.0))
DEMO_FRONT_AXIS = _orient_vec((0.0, 0.0, -1.0))
DEMO_LEFT_AXIS = _orient_vec((-1.0, 0.0, 0.0))

DEMO_DIR_NAME = "demo_shapenet-v1"

_TEX_SIZE = 128


# --------------------------------------------------------------------------------------------
# Materials
# --------------------------------------------------------------------------------------------

def _material(kd, ks=(0.3, 0.3, 0.3), ns=40.0, texture=None, ka=(0.2, 0.2, 0.2)):
    return {"Ka": ka, "Kd": kd, "Ks": ks, "Ns": ns, "texture": texture}


_TYRE = _material((0.06, 0.06, 0.06), ks=(0.05, 0.05, 0.05), ns=8.0)
_METAL = _material((0.62, 0.64, 0.68), ks=(0.8, 0.8, 0.8), ns=120.0)
_GLASS = _material((0.32, 0.48, 0.66), ks=(0.9, 0.9, 0.9), ns=200.0)
_TRIM = _material((0.12, 0.12, 0.13), ks=(0.2, 0.2, 0.2), ns=20.0)
_HEADLIGHT = _material((1.0, 0.86, 0.38), ks=(0.9, 0.9, 0.9), ns=150.0)
_TAILLIGHT = _material((0.85, 0.06, 0.05), ks=(0.6, 0.6, 0.6), ns=100.0)


def _textured(name, ks=(0.4, 0.4, 0.4), ns=60.0):
    return _material((1.0, 1.0, 1.0), ks=ks, ns=ns, texture=name)


# --------------------------------------------------------------------------------------------
# Procedural textures (RGB uint8, row 0 = top of the image = v=1 in OBJ texture coordinates)
# --------------------------------------------------------------------------------------------

def _grid(n=_TEX_SIZE):
    v, u = np.meshgrid(np.arange(n, dtype=np.float64), np.arange(n, dtype=np.float64),
                       indexing="ij")
    return u / (n - 1), 1.0 - v / (n - 1)  # u right, v up


def _fill(img, mask, rgb):
    img[mask] = np.asarray(rgb, dtype=np.float64)


def _finish(img) -> np.ndarray:
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


def _tex_sedan_body():
    """Red with a vertical gradient, two white racing stripes and a thin black pinstripe."""
    u, v = _grid()
    img = np.zeros(u.shape + (3,))
    shade = (0.75 + 0.25 * v)[..., None]
    img[:] = np.array([200.0, 24.0, 30.0]) * shade
    _fill(img, (np.abs(v - 0.42) < 0.07) | (np.abs(v - 0.62) < 0.07), (245, 245, 240))
    _fill(img, np.abs(v - 0.52) < 0.015, (20, 20, 25))
    return _finish(img)


def _tex_hatchback_body():
    """Blue-to-cyan gradient with a yellow/black checker band low on the body."""
    u, v = _grid()
    img = np.zeros(u.shape + (3,))
    t = v[..., None]
    img[:] = (1 - t) * np.array([20.0, 50.0, 170.0]) + t * np.array([40.0, 190.0, 220.0])
    band = (v > 0.12) & (v < 0.36)
    checker = ((np.floor(u * 12) + np.floor((v - 0.12) / 0.12)) % 2) == 0
    _fill(img, band & checker, (250, 210, 20))
    _fill(img, band & ~checker, (25, 25, 25))
    return _finish(img)


def _tex_bus_body():
    """School-bus yellow, darker towards the bottom, with green, white and green bands."""
    u, v = _grid()
    img = np.zeros(u.shape + (3,))
    shade = (0.7 + 0.3 * v)[..., None]
    img[:] = np.array([250.0, 190.0, 20.0]) * shade
    _fill(img, np.abs(v - 0.30) < 0.05, (20, 130, 60))
    _fill(img, np.abs(v - 0.38) < 0.025, (245, 245, 245))
    _fill(img, np.abs(v - 0.46) < 0.03, (20, 130, 60))
    _fill(img, v < 0.06, (40, 40, 40))
    return _finish(img)


def _tex_moto_body():
    """Green with diagonal black and white stripes."""
    u, v = _grid()
    img = np.zeros(u.shape + (3,))
    img[:] = np.array([30.0, 170.0, 70.0]) * (0.8 + 0.2 * u)[..., None]
    d = (u + v) * 4.0
    frac = d - np.floor(d)
    _fill(img, frac < 0.22, (15, 15, 15))
    _fill(img, (frac >= 0.22) & (frac < 0.3), (240, 240, 240))
    return _finish(img)


def _tex_moto_seat():
    """Dark brown/black quilted checker."""
    u, v = _grid()
    img = np.zeros(u.shape + (3,))
    checker = ((np.floor(u * 8) + np.floor(v * 8)) % 2) == 0
    _fill(img, checker, (70, 42, 25))
    _fill(img, ~checker, (28, 22, 18))
    return _finish(img)


# --------------------------------------------------------------------------------------------
# Primitives. A part is (material, V (n,3), F (m,3) int, UV (m,3,2), N (m,3,3)):
# vertex positions shared inside the part, texture coordinates and normals per triangle corner.
# --------------------------------------------------------------------------------------------

def _tri_normal(a, b, c):
    n = np.cross(b - a, c - a)
    return n / np.linalg.norm(n)


def _planar_uv(pts, normal):
    """Per-polygon planar UVs normalised to [0, 1]: u and v along the two axes of the plane
    most parallel to the polygon (X faces: (z, y); Y faces: (z, x); Z faces: (x, y))."""
    axis = int(np.argmax(np.abs(normal)))
    ua, va = {0: (2, 1), 1: (2, 0), 2: (0, 1)}[axis]
    out = np.empty((len(pts), 2))
    for k, a in enumerate((ua, va)):
        c = pts[:, a]
        span = c.max() - c.min()
        out[:, k] = (c - c.min()) / span if span > 1e-12 else 0.5
    return out


def _convex_part(material, verts, polygons):
    """Closed convex solid from vertex positions and planar convex polygons (index lists in
    boundary order, either winding): fan-triangulated, wound outward, flat normals."""
    verts = np.asarray(verts, dtype=np.float64)
    centre = verts.mean(axis=0)
    faces, uvs, normals = [], [], []
    for poly in polygons:
        poly = list(poly)
        p = verts[poly]
        n = _tri_normal(p[0], p[1], p[2])
        if np.dot(n, p.mean(axis=0) - centre) < 0:
            poly = poly[::-1]
            p = p[::-1]
            n = -n
        uv = _planar_uv(p, n)
        for k in range(1, len(poly) - 1):
            faces.append((poly[0], poly[k], poly[k + 1]))
            uvs.append((uv[0], uv[k], uv[k + 1]))
            normals.append((n, n, n))
    return (material, verts, np.asarray(faces, dtype=np.int64), np.asarray(uvs),
            np.asarray(normals))


def _prism(material, profile, axis, lo, hi):
    """Convex polygon extruded along a design axis.

    axis "x": ``profile`` is [(z, y), ...], extruded over x in [lo, hi];
    axis "z": ``profile`` is [(x, y), ...], extruded over z in [lo, hi];
    axis "y": ``profile`` is [(x, z), ...], extruded over y in [lo, hi].
    """
    n = len(profile)
    verts = []
    for t in (lo, hi):
        for a, b in profile:
            if axis == "x":
                verts.append((t, b, a))
            elif axis == "z":
                verts.append((a, b, t))
            else:
                verts.append((a, t, b))
    polys = [list(range(n)), list(range(n, 2 * n))]
    polys += [[i, (i + 1) % n, n + (i + 1) % n, n + i] for i in range(n)]
    return _convex_part(material, verts, polys)


def _box(material, x0, x1, y0, y1, z0, z1):
    return _prism(material, [(z0, y0), (z1, y0), (z1, y1), (z0, y1)], "x", x0, x1)


def _slab_on_edge(material, p0, p1, x0, x1, inset=0.003, out=0.012):
    """Thin slab (e.g. a window) lying on a slanted face whose profile edge runs p0 -> p1
    (points (z, y)), extruded over x in [x0, x1]. The slab spans from ``inset`` inside the face
    to ``out`` outside it; "outside" is ``d`` rotated by +90 degrees in the (z, y) plane, where
    ``d`` is the direction p0 -> p1 (so order p0, p1 accordingly)."""
    return _prism(material, _slab_profile(p0, p1, inset, out), "x", x0, x1)


def _slab_profile(p0, p1, inset=0.003, out=0.012):
    """(z, y) profile of :func:`_slab_on_edge`: [p0 in, p1 in, p1 out, p0 out]; the outer face
    (the one a viewer sees) runs between the last two points."""
    p0 = np.asarray(p0, dtype=np.float64)
    p1 = np.asarray(p1, dtype=np.float64)
    d = (p1 - p0) / np.linalg.norm(p1 - p0)
    nrm = np.array([-d[1], d[0]])
    return [tuple(p0 - inset * nrm), tuple(p1 - inset * nrm), tuple(p1 + out * nrm),
            tuple(p0 + out * nrm)]


def _toward(a, b, dist):
    """The point ``dist`` from ``a`` on the segment a -> b (points (z, y)); computed from the
    segment's own end points, so it lies on the face they bound up to float rounding."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    return tuple(a + (b - a) * (dist / np.linalg.norm(b - a)))


def _cylinder(material, center, radius, x0, x1, segments=20):
    """Cylinder with its axis along X over [x0, x1], centred at (·, cy, cz) = ``center``.

    Caps are fans around a centre vertex (so the cap centres are exact mesh vertices);
    side normals are radial (smooth), cap normals axial. Returns (part, cap_min, cap_max)."""
    cy, cz = center
    ang = 2.0 * np.pi * np.arange(segments) / segments
    ring = np.stack([cy + radius * np.sin(ang), cz + radius * np.cos(ang)], axis=1)
    verts = [(x0, y, z) for y, z in ring] + [(x1, y, z) for y, z in ring]
    c0, c1 = 2 * segments, 2 * segments + 1
    verts += [(x0, cy, cz), (x1, cy, cz)]
    verts = np.asarray(verts, dtype=np.float64)
    faces, uvs, normals = [], [], []
    radial = np.stack([np.zeros(segments), np.sin(ang), np.cos(ang)], axis=1)
    ex = np.array([1.0, 0.0, 0.0])
    for i in range(segments):
        j = (i + 1) % segments
        ui, uj = i / segments, (i + 1) / segments
        # Side quad (i, j) x (x0, x1): outward is radial.
        a, b, c, d = i, j, segments + j, segments + i
        tri1, tri2 = (a, b, c), (a, c, d)
        uv_q = {a: (ui, 0.0), b: (uj, 0.0), c: (uj, 1.0), d: (ui, 1.0)}
        for tri in (tri1, tri2):
            t = list(tri)
            n = _tri_normal(*verts[t])
            mid = verts[t].mean(axis=0)
            if np.dot(n, mid - np.array([mid[0], cy, cz])) < 0:
                t = t[::-1]
            faces.append(tuple(t))
            uvs.append([uv_q[k] for k in t])
            normals.append([radial[k % segments] for k in t])
        # Caps: x0 faces -X, x1 faces +X.
        for ctr, base, sign in ((c0, 0, -1.0), (c1, segments, 1.0)):
            t = [ctr, base + i, base + j]
            n = _tri_normal(*verts[t])
            if np.dot(n, sign * ex) < 0:
                t = [t[0], t[2], t[1]]
            faces.append(tuple(t))
            cap_uv = {ctr: (0.5, 0.5)}
            for k in (base + i, base + j):
                cap_uv[k] = (0.5 + 0.5 * np.cos(ang[k - base]), 0.5 + 0.5 * np.sin(ang[k - base]))
            uvs.append([cap_uv[k] for k in t])
            normals.append([sign * ex] * 3)
    part = (material, verts, np.asarray(faces, dtype=np.int64), np.asarray(uvs),
            np.asarray(normals))
    return part, (x0, cy, cz), (x1, cy, cz)


def _cylinder_z(material, center, radius, z0, z1, segments=20):
    """Cylinder with its axis along Z over [z0, z1] at (cx, cy) = ``center``; returns
    (part, cap_min, cap_max) where the caps are the z0 (front, -Z) and z1 ends."""
    cx, cy = center
    ang = 2.0 * np.pi * np.arange(segments) / segments
    prof = [(cx + radius * np.cos(a), cy + radius * np.sin(a)) for a in ang]
    # A prism with fan caps around an explicit centre vertex so the cap centres are vertices.
    n = segments
    verts = [(x, y, z0) for x, y in prof] + [(x, y, z1) for x, y in prof]
    verts += [(cx, cy, z0), (cx, cy, z1)]
    polys = [[i, (i + 1) % n, n + (i + 1) % n, n + i] for i in range(n)]
    polys += [[2 * n, i, (i + 1) % n] for i in range(n)]
    polys += [[2 * n + 1, n + i, n + (i + 1) % n] for i in range(n)]
    return _convex_part(material, verts, polys), (cx, cy, z0), (cx, cy, z1)


class _Builder:
    """Collects parts per material (in insertion order) and named keypoints (design frame)."""

    def __init__(self):
        self.materials: dict[str, dict] = {}
        self.parts: list[tuple] = []
        self.keypoints: dict[str, tuple[float, float, float]] = {}

    def add(self, name, material, part):
        if name not in self.materials:
            self.materials[name] = material
        elif self.materials[name] is not material:
            raise ValueError(f"material {name!r} defined twice")
        self.parts.append((name,) + tuple(part[1:]))

    def kp(self, name, xyz):
        if name in self.keypoints:
            raise ValueError(f"keypoint {name!r} defined twice")
        self.keypoints[name] = tuple(float(c) for c in xyz)

    def wheel(self, prefix, side, center, radius, width, x_inner, hub_radius, hub_out,
              segments=24):
        """A tyre (dark cylinder) and a hub (metal cylinder proud of the tyre's outer cap).
        ``side`` -1 (left, -X) or +1 (right, +X); the keypoint is the hub's outer cap centre."""
        if side < 0:
            tyre, _, _ = _cylinder(_TYRE, center, radius, -(x_inner + width), -x_inner, segments)
            hub, outer, _ = _cylinder(_METAL, center, hub_radius, -(x_inner + width + hub_out),
                                      -(x_inner + width - 0.5 * hub_out), segments // 2)
        else:
            tyre, _, _ = _cylinder(_TYRE, center, radius, x_inner, x_inner + width, segments)
            hub, _, outer = _cylinder(_METAL, center, hub_radius, x_inner + width - 0.5 * hub_out,
                                      x_inner + width + hub_out, segments // 2)
        self.add("tyre", _TYRE, tyre)
        self.add("hub", _METAL, hub)
        self.kp(prefix, outer)


def _mirror_pair(builder, name_left, name_right, x, y, z):
    """Keypoints at (-|x|, y, z) (left) and (+|x|, y, z) (right)."""
    builder.kp(name_left, (-abs(x), y, z))
    builder.kp(name_right, (abs(x), y, z))


# --------------------------------------------------------------------------------------------
# Models (design frame: metres-ish, y = 0 is the ground, front = -Z, left = -X)
# --------------------------------------------------------------------------------------------

def _car(kind: str) -> tuple[_Builder, dict[str, np.ndarray]]:
    b = _Builder()
    if kind == "sedan":
        half_w, cab_w = 0.90, 0.78
        # Lower body profile (z, y): bonnet slopes down to the nose, flat trunk lid.
        body = [(-2.30, 0.30), (2.30, 0.30), (2.30, 0.90), (1.30, 0.95), (-1.30, 0.95),
                (-2.30, 0.78)]
        body_top = 0.95
        cab_bottom = body_top - 0.03
        # Cabin profile (z, y): windshield from (-1.15, .) up to (-0.35, 1.45), rear window
        # from (0.60, 1.45) down to (1.25, .).
        ws_lo, ws_hi = (-1.15, cab_bottom), (-0.35, 1.45)
        rw_hi, rw_lo = (0.60, 1.45), (1.25, cab_bottom)
        wheel_r, wheel_w, wheel_y = 0.33, 0.22, 0.33
        wheel_z = (-1.40, 1.45)
        light_y, light_x = (0.51, 0.74), (0.46, 0.82)
        tail_y = (0.45, 0.56)  # low on the tail, clear of the trunk keypoints above them
        kp_inset = 0.22  # > 4% of the bounding-box diagonal (5.31)
        tex = _tex_sedan_body()
    else:  # hatchback: shorter, taller, cabin runs to a steep tailgate.
        half_w, cab_w = 0.88, 0.80
        body = [(-2.00, 0.32), (2.00, 0.32), (2.00, 0.98), (-1.00, 0.98), (-2.00, 0.80)]
        body_top = 0.98
        cab_bottom = body_top - 0.03
        ws_lo, ws_hi = (-0.95, cab_bottom), (-0.15, 1.60)
        rw_hi, rw_lo = (1.78, 1.60), (1.97, cab_bottom)
        wheel_r, wheel_w, wheel_y = 0.34, 0.22, 0.34
        wheel_z = (-1.25, 1.30)
        light_y, light_x = (0.56, 0.78), (0.48, 0.78)
        tail_y = (0.48, 0.64)
        kp_inset = 0.20  # > 4% of the bounding-box diagonal (4.81)
        tex = _tex_hatchback_body()
    paint = _textured("texture0.png")
    b.add("paint", paint, _prism(paint, body, "x", -half_w, half_w))
    cabin = [ws_lo, rw_lo, rw_hi, ws_hi]
    b.add("paint", paint, _prism(paint, cabin, "x", -cab_w, cab_w))

    # Glass: windshield and rear window slabs inset from the cabin edges; side windows.
    def lerp(p, q, t):
        return (p[0] + (q[0] - p[0]) * t, p[1] + (q[1] - p[1]) * t)

    inset_x = 0.07
    glass_w = cab_w - inset_x
    ws = _slab_profile(lerp(ws_lo, ws_hi, 0.12), lerp(ws_lo, ws_hi, 0.92))  # p0 low, p1 high
    rw = _slab_profile(lerp(rw_hi, rw_lo, 0.08), lerp(rw_hi, rw_lo, 0.88))  # p0 high, p1 low
    b.add("glass", _GLASS, _prism(_GLASS, ws, "x", -glass_w, glass_w))
    b.add("glass", _GLASS, _prism(_GLASS, rw, "x", -glass_w, glass_w))
    # Keypoints never sit on an edge or corner of the mesh (where the per-pixel depth test
    # that decides visibility flips at random): each lies inside one face, ``kp_inset`` from
    # every edge of it. Windshield / rear window: the upper corners of the glass's outer face
    # (slanted; the point is computed from that face's own (z, y) end points), pulled in
    # along the glass and across it.
    z, y = _toward(ws[2], ws[3], kp_inset)  # from the windshield's top edge down the glass
    _mirror_pair(b, "upper_left_windshield", "upper_right_windshield", glass_w - kp_inset, y, z)
    z, y = _toward(rw[3], rw[2], kp_inset)  # from the rear window's top edge down the glass
    _mirror_pair(b, "upper_left_rearwindow", "upper_right_rearwindow", glass_w - kp_inset, y, z)
    # Trunk: the upper outer corners of the tail panel (the body's back face, z = z_back),
    # inset from its top and side edges; the tail lights sit lower, below these points.
    _mirror_pair(b, "left_back_trunk", "right_back_trunk", half_w - kp_inset,
                 body[2][1] - kp_inset, body[1][0])
    y_lo, y_hi = cab_bottom + 0.12, ws_hi[1] - 0.07
    pillar = 0.5 * (ws_hi[0] + rw_hi[0])
    for side in (-1.0, 1.0):
        x0, x1 = (-cab_w - 0.012, -cab_w + 0.003) if side < 0 else (cab_w - 0.003, cab_w + 0.012)

        def z_on(edge_lo, edge_hi, y, off):
            t = (y - edge_lo[1]) / (edge_hi[1] - edge_lo[1])
            return edge_lo[0] + (edge_hi[0] - edge_lo[0]) * t + off

        front = [(z_on(ws_lo, ws_hi, y_lo, 0.10), y_lo), (pillar - 0.05, y_lo),
                 (pillar - 0.05, y_hi), (z_on(ws_lo, ws_hi, y_hi, 0.10), y_hi)]
        back = [(pillar + 0.05, y_lo), (z_on(rw_lo, rw_hi, y_lo, -0.10), y_lo),
                (z_on(rw_lo, rw_hi, y_hi, -0.10), y_hi), (pillar + 0.05, y_hi)]
        b.add("glass", _GLASS, _prism(_GLASS, front, "x", x0, x1))
        b.add("glass", _GLASS, _prism(_GLASS, back, "x", x0, x1))

    # Lights on the nose (z = body front) and the tail; grille between the headlights.
    z_front, z_back = body[0][0], body[1][0]
    for side in (-1.0, 1.0):
        xa, xb = sorted((side * light_x[0], side * light_x[1]))
        b.add("headlight", _HEADLIGHT, _box(_HEADLIGHT, xa, xb, light_y[0], light_y[1],
                                            z_front - 0.03, z_front + 0.02))
        b.add("taillight", _TAILLIGHT, _box(_TAILLIGHT, xa, xb, tail_y[0], tail_y[1],
                                            z_back - 0.02, z_back + 0.02))
    # Front lights: the centre of the headlight's outward (front) face.
    _mirror_pair(b, "left_front_light", "right_front_light", 0.5 * (light_x[0] + light_x[1]),
                 0.5 * (light_y[0] + light_y[1]), z_front - 0.03)
    b.add("trim", _TRIM, _box(_TRIM, -light_x[0] + 0.06, light_x[0] - 0.06, light_y[0] - 0.12,
                              light_y[1] - 0.02, z_front - 0.015, z_front + 0.02))
    # Bumpers.
    for z0, z1 in ((z_front - 0.06, z_front + 0.05), (z_back - 0.05, z_back + 0.06)):
        b.add("trim", _TRIM, _box(_TRIM, -half_w + 0.02, half_w - 0.02, 0.30, 0.44, z0, z1))

    for zi, fb in zip(wheel_z, ("front", "back")):
        for side, lr in ((-1, "left"), (1, "right")):
            b.wheel(f"{lr}_{fb}_wheel", side, (wheel_y, zi), wheel_r, wheel_w,
                    half_w + 0.04 - wheel_w, 0.16, 0.03)
    return b, {"texture0.png": tex}


def _bus() -> tuple[_Builder, dict[str, np.ndarray]]:
    b = _Builder()
    hw, y0, y1, zf, zb = 1.25, 0.35, 3.20, -5.00, 5.00
    paint = _textured("texture0.png")
    b.add("paint", paint, _box(paint, -hw, hw, y0, y1, zf, zb))
    # Body corners: on the front / back face (not on the box's edges, where the per-pixel depth
    # test that decides visibility flips at random), ``kp_inset`` (> 4% of the bounding-box
    # diagonal, 11.02) in from the face's side and top / bottom edges. The windows, sign and
    # lights below keep clear of these points.
    kp_inset = 0.45
    for fb, z in (("front", zf), ("back", zb)):
        for lr, x in (("left", -hw + kp_inset), ("right", hw - kp_inset)):
            b.kp(f"body_{fb}_{lr}_lower", (x, y0 + kp_inset, z))
            b.kp(f"body_{fb}_{lr}_upper", (x, y1 - kp_inset, z))
    t, o = 0.003, 0.015  # slab depth inside / outside the body
    # Side windows (a row on each side; the right side keeps room for the door at the front).
    win_y = (1.85, 2.90)
    for side in (-1.0, 1.0):
        x0, x1 = (-hw - o, -hw + t) if side < 0 else (hw - t, hw + o)
        z_start = -4.70 if side < 0 else -3.55
        zs = np.linspace(z_start, 4.60, 7 if side < 0 else 6)
        for za, zc in zip(zs[:-1], zs[1:]):
            b.add("glass", _GLASS, _box(_GLASS, x0, x1, win_y[0], win_y[1], za + 0.06, zc - 0.06))
    # Door (right side, front): glass panel with a dark frame behind it.
    b.add("trim", _TRIM, _box(_TRIM, hw - t, hw + o, 0.45, 2.95, -4.75, -3.75))
    b.add("glass", _GLASS, _box(_GLASS, hw - t, hw + o + 0.005, 0.60, 2.85, -4.68, -4.27))
    b.add("glass", _GLASS, _box(_GLASS, hw - t, hw + o + 0.005, 0.60, 2.85, -4.23, -3.82))
    # Windshield, destination sign, rear window (below / between the upper body keypoints).
    b.add("glass", _GLASS, _box(_GLASS, -1.10, 1.10, 1.45, 2.50, zf - o, zf + t))
    b.add("headlight", _HEADLIGHT, _box(_HEADLIGHT, -0.45, 0.45, 2.85, 3.10, zf - o, zf + t))
    b.add("glass", _GLASS, _box(_GLASS, -0.55, 0.55, 1.70, 2.50, zb - t, zb + o))
    # Head/tail lights (above the lower body keypoints), bumpers.
    for side in (-1.0, 1.0):
        xa, xb = sorted((side * 0.80, side * 1.10))
        b.add("headlight", _HEADLIGHT, _box(_HEADLIGHT, xa, xb, 1.05, 1.25, zf - o, zf + t))
        b.add("taillight", _TAILLIGHT, _box(_TAILLIGHT, xa, xb, 1.10, 1.45, zb - t, zb + o))
    b.add("trim", _TRIM, _box(_TRIM, -hw + 0.05, hw - 0.05, 0.38, 0.56, zf - 0.10, zf + 0.05))
    b.add("trim", _TRIM, _box(_TRIM, -hw + 0.05, hw - 0.05, 0.38, 0.56, zb - 0.05, zb + 0.10))
    for z, fb in ((-3.20, "front"), (3.00, "back")):
        for side, lr in ((-1, "left"), (1, "right")):
            b.wheel(f"{lr}_{fb}_wheel", side, (0.50, z), 0.50, 0.28, hw + 0.05 - 0.28, 0.24, 0.04)
    return b, {"texture0.png": _tex_bus_body()}


def _beam(material, p0, p1, half_t, x0, x1):
    """A straight bar of square-ish section in the (z, y) plane from p0 to p1 (both (z, y)),
    ``half_t`` thick on each side, over x in [x0, x1]."""
    p0 = np.asarray(p0, dtype=np.float64)
    p1 = np.asarray(p1, dtype=np.float64)
    d = (p1 - p0) / np.linalg.norm(p1 - p0)
    nrm = np.array([-d[1], d[0]]) * half_t
    prof = [tuple(p0 - nrm), tuple(p1 - nrm), tuple(p1 + nrm), tuple(p0 + nrm)]
    return _prism(material, prof, "x", x0, x1)


def _motorbike() -> tuple[_Builder, dict[str, np.ndarray]]:
    b = _Builder()
    paint = _textured("texture0.png")
    seat = _textured("texture1.png", ks=(0.1, 0.1, 0.1), ns=10.0)
    wr, wy = 0.32, 0.32
    zf_wheel, zb_wheel = -0.70, 0.70
    # Wheels: front tyre x in [-0.06, 0.06], rear [-0.08, 0.08]; hubs stand 0.02 proud.
    for z, fb, half in ((zf_wheel, "front", 0.06), (zb_wheel, "back", 0.08)):
        for side, lr in ((-1, "left"), (1, "right")):
            if side < 0:
                b.add("tyre", _TYRE, _cylinder(_TYRE, (wy, z), wr, -half, half, 28)[0])
                hub, outer, _ = _cylinder(_METAL, (wy, z), 0.10, -half - 0.02, -half + 0.02, 14)
            else:
                hub, _, outer = _cylinder(_METAL, (wy, z), 0.10, half - 0.02, half + 0.02, 14)
            b.add("hub", _METAL, hub)
            b.kp(f"{lr}_{fb}_wheel", outer)
    # Front fork (two legs, ending above the hub so the hub centre stays visible).
    for side in (-1.0, 1.0):
        xa, xb = sorted((side * 0.085, side * 0.115))
        b.add("metal", _METAL, _beam(_METAL, (zf_wheel + 0.03, 0.44), (-0.53, 0.92), 0.018, xa, xb))
        # Swingarm to the rear hub.
        b.add("metal", _METAL, _beam(_METAL, (zb_wheel - 0.12, 0.36), (0.02, 0.46), 0.022, xa, xb))
    # Engine, frame, exhaust.
    b.add("trim", _TRIM, _box(_TRIM, -0.15, 0.15, 0.24, 0.60, -0.32, 0.22))
    # (The frame tube runs low enough under the seat to stay 2% of the diagonal from front_seat.)
    b.add("trim", _TRIM, _beam(_TRIM, (-0.50, 0.88), (0.45, 0.66), 0.035, -0.04, 0.04))
    b.add("trim", _TRIM, _beam(_TRIM, (-0.48, 0.80), (-0.30, 0.40), 0.035, -0.04, 0.04))
    # Exhaust above the rear axle height so the right rear hub stays visible from the right.
    ex, _, _ = _cylinder_z(_METAL, (0.19, 0.48), 0.04, -0.10, 0.90, 12)
    b.add("metal", _METAL, ex)
    # Fuel tank (slanted top, textured) and the rear cowl.
    tank = [(-0.46, 0.64), (0.02, 0.64), (0.02, 0.84), (-0.30, 0.90), (-0.46, 0.86)]
    b.add("paint", paint, _prism(paint, tank, "x", -0.16, 0.16))
    b.add("paint", paint, _box(paint, -0.10, 0.10, 0.60, 0.72, 0.55, 0.98))
    # Front mudguard.
    b.add("paint", paint, _box(paint, -0.075, 0.075, 0.66, 0.70, -0.90, -0.56))
    # Seat: top face y = 0.82; keypoints on the top at its front and back.
    seat_top = 0.82
    b.add("seat", seat, _box(seat, -0.14, 0.14, 0.70, seat_top, 0.03, 0.62))
    # Both 0.10 (> 4% of the bounding-box diagonal, 2.42) in from the seat top's front / back
    # edge and 0.14 from its sides.
    b.kp("front_seat", (0.0, seat_top, 0.13))
    b.kp("back_seat", (0.0, seat_top, 0.52))
    # Tail light.
    b.add("taillight", _TAILLIGHT, _box(_TAILLIGHT, -0.07, 0.07, 0.63, 0.70, 0.97, 1.00))
    # Steering head (top face centre = head_center), handlebar, grips.
    head_top = 1.03  # above the handlebar, so the keypoint on its top face stays visible
    b.add("metal", _METAL, _box(_METAL, -0.06, 0.06, 0.86, head_top, -0.58, -0.46))
    b.kp("head_center", (0.0, head_top, -0.52))
    # Handlebar low in the grips and the head, clear of the keypoints on their tops.
    b.add("metal", _METAL, _box(_METAL, -0.31, 0.31, 0.945, 0.980, -0.535, -0.505))
    grip_top = 1.015
    for side, lr in ((-1.0, "left"), (1.0, "right")):
        # Grips 0.10 x 0.10 in plan, so the keypoint (the centre of the top) is 0.05 (2% of
        # the diagonal) from the top's edges.
        xa, xb = sorted((side * 0.30, side * 0.40))
        b.add("trim", _TRIM, _box(_TRIM, xa, xb, 0.955, grip_top, -0.570, -0.470))
        b.kp(f"{lr}_handle_center", (0.5 * (xa + xb), grip_top, -0.520))
    # Headlight: a cylinder along Z in front of the steering head; keypoint = front cap centre.
    lamp, front, _ = _cylinder_z(_HEADLIGHT, (0.0, 0.84), 0.075, -0.68, -0.58, 16)
    b.add("headlight", _HEADLIGHT, lamp)
    b.kp("headlight_center", front)
    # Headlight housing behind the lamp.
    housing, _, _ = _cylinder_z(_TRIM, (0.0, 0.84), 0.085, -0.60, -0.50, 16)
    b.add("trim", _TRIM, housing)
    return b, {"texture0.png": _tex_moto_body(), "texture1.png": _tex_moto_seat()}


_BUILDERS = {
    "sedan": lambda: _car("sedan"),
    "hatchback": lambda: _car("hatchback"),
    "bus": _bus,
    "motorbike": _motorbike,
}


# --------------------------------------------------------------------------------------------
# Serialisation
# --------------------------------------------------------------------------------------------

def _axis_name(v) -> str:
    i = int(np.argmax(np.abs(v)))
    return ("-" if v[i] < 0 else "+") + "XYZ"[i]


def _f(x: float) -> str:
    s = "%.6f" % x
    return "0.000000" if s == "-0.000000" else s


def _normalise(builder: _Builder):
    """Orient, then centre at the bounding-box centre and scale to a unit bounding-box diagonal;
    the same float operations are applied to vertices and keypoints."""
    perm, sign = list(_ORIENT_PERM), np.asarray(_ORIENT_SIGN)
    all_v = np.concatenate([p[1] for p in builder.parts])[:, perm] * sign
    lo, hi = all_v.min(axis=0), all_v.max(axis=0)
    centre = (lo + hi) / 2.0
    scale = 1.0 / float(np.linalg.norm(hi - lo))

    def tf(v):
        return (np.asarray(v, dtype=np.float64)[..., perm] * sign - centre) * scale

    return tf, perm, sign


def _model_files(name: str, variant: dict | None = None) -> dict[str, bytes]:
    """{relative path: bytes} of one model folder; ``variant`` (see :func:`_variant_params`)
    stretches the design and recolours its textures (None = the base model, unchanged)."""
    base = variant["base"] if variant else name
    builder, textures = _BUILDERS[base]()
    if variant:
        builder = _stretch(builder, variant["scale"])
        textures = {k: _recolour(v, variant["mix"]) for k, v in textures.items()}
    tf, perm, sign = _normalise(builder)

    # Materials in first-use order; parts grouped by material.
    mat_names = list(builder.materials)
    obj = [f"# kpdata demo model '{name}': procedural, low-poly, ShapeNetCore v1 layout.",
           f"# Frame: Y-up model frame, front {_axis_name(DEMO_FRONT_AXIS)}, left "
           f"{_axis_name(DEMO_LEFT_AXIS)}; centred at the bounding-box centre,",
           "# bounding-box diagonal 1 (model units).",
           "mtllib model.mtl"]
    v_lines, vt_lines, vn_lines, f_blocks = [], [], [], []
    vt_index: dict[str, int] = {}
    vn_index: dict[str, int] = {}

    def idx(table, lines, key, prefix):
        if key not in table:
            table[key] = len(table) + 1
            lines.append(f"{prefix} {key}")
        return table[key]

    v_offset = 0
    for mat in mat_names:
        block = [f"g {mat}", f"usemtl {mat}", "s off"]
        for pname, verts, faces, uvs, normals in builder.parts:
            if pname != mat:
                continue
            vv = tf(verts)
            v_lines.extend(f"v {_f(x)} {_f(y)} {_f(z)}" for x, y, z in vv)
            nn = np.asarray(normals)[..., perm] * sign
            for fi, tri in enumerate(faces):
                corners = []
                for k in range(3):
                    t = idx(vt_index, vt_lines, f"{_f(uvs[fi][k][0])} {_f(uvs[fi][k][1])}", "vt")
                    n = nn[fi][k]
                    n = idx(vn_index, vn_lines, f"{_f(n[0])} {_f(n[1])} {_f(n[2])}", "vn")
                    corners.append(f"{tri[k] + 1 + v_offset}/{t}/{n}")
                block.append("f " + " ".join(corners))
            v_offset += len(verts)
        f_blocks.append(block)
    lines = obj + v_lines + vt_lines + vn_lines
    for block in f_blocks:
        lines += block
    files = {"model.obj": ("\n".join(lines) + "\n").encode("ascii")}

    mtl = ["# kpdata demo materials", f"# Material Count: {len(mat_names)}", ""]
    for mat in mat_names:
        m = builder.materials[mat]
        mtl += [f"newmtl {mat}",
                f"Ns {_f(m['Ns'])}",
                "Ka " + " ".join(_f(c) for c in m["Ka"]),
                "Kd " + " ".join(_f(c) for c in m["Kd"]),
                "Ks " + " ".join(_f(c) for c in m["Ks"]),
                "d 1.000000",
                "illum 2"]
        if m["texture"]:
            if m["texture"] not in textures:
                raise ValueError(f"material {mat!r} uses a texture that is not built")
            mtl.append(f"map_Kd images/{m['texture']}")
        mtl.append("")
    files["model.mtl"] = "\n".join(mtl).encode("ascii")

    for tex_name, rgb in sorted(textures.items()):
        ok, png = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR),
                               [cv2.IMWRITE_PNG_COMPRESSION, 9])
        if not ok:
            raise RuntimeError(f"could not encode {tex_name}")
        files[f"images/{tex_name}"] = png.tobytes()

    synset = next(m[0] for m in DEMO_MODELS if m[1] == base)
    expected = DEMO_KEYPOINT_NAMES[synset]
    if sorted(builder.keypoints) != sorted(expected):
        raise AssertionError(f"{name}: keypoints {sorted(builder.keypoints)} != {sorted(expected)}")
    kp_lines = []
    for kname in sorted(builder.keypoints):
        x, y, z = tf(builder.keypoints[kname])
        kp_lines.append(f'  "{kname}": [{_f(x)}, {_f(y)}, {_f(z)}]')
    files["keypoints.json"] = ("{\n" + ",\n".join(kp_lines) + "\n}\n").encode("ascii")
    return files


# --------------------------------------------------------------------------------------------
# Seeded variants (``count`` > 4): more models for held-out evaluation
# --------------------------------------------------------------------------------------------

def _stretch(builder: _Builder, scale) -> _Builder:
    """The builder's parts and keypoints scaled per design axis by ``scale`` (3,). An axis
    scaling maps planes to planes, so every keypoint stays on its face and every convex part
    stays convex and watertight; normals transform by the inverse scale and are renormalised."""
    s = np.asarray(scale, dtype=np.float64)
    out = _Builder()
    out.materials = dict(builder.materials)
    for name, verts, faces, uvs, normals in builder.parts:
        n = np.asarray(normals, dtype=np.float64) / s
        n = n / np.linalg.norm(n, axis=-1, keepdims=True)
        out.parts.append((name, np.asarray(verts, dtype=np.float64) * s, faces, uvs, n))
    out.keypoints = {k: tuple(float(c) for c in np.asarray(v) * s) for k, v in builder.keypoints.items()}
    return out


def _recolour(rgb: np.ndarray, mix: np.ndarray) -> np.ndarray:
    """Texture colours mixed by the 3x3 matrix ``mix`` (rows: output R, G, B)."""
    return _finish(rgb.astype(np.float64) @ np.asarray(mix, dtype=np.float64).T)


def _variant_params(index: int, seed: int) -> dict:
    """Variant ``index`` (>= 4) of the demo set: base model ``DEMO_MODELS[index % 4]``, stretched
    by U(0.8, 1.25) in length, U(0.85, 1.15) in width, U(0.85, 1.2) in height, textures recoloured
    by a random channel permutation blended with the original. Seeded per index."""
    rng = rng_for(seed, f"demo-variant/{index}")
    base = DEMO_MODELS[index % len(DEMO_MODELS)][1]
    # Design frame: x = width (left -X), y = height, z = length (front -Z).
    scale = (rng.uniform(0.85, 1.15), rng.uniform(0.85, 1.2), rng.uniform(0.8, 1.25))
    perm = np.eye(3)[rng.permutation(3)]
    t = rng.uniform(0.3, 1.0)
    mix = t * perm + (1 - t) * np.eye(3)
    return {"base": base, "scale": scale, "mix": mix,
            "model_id": hashlib.md5(f"kpdata-demo-{base}-variant-{seed}-{index}".encode("ascii")).hexdigest()}


def demo_models(count: int = 4, seed: int = 0) -> list[tuple[str, str, str]]:
    """(synset, name, model_id) of a demo set of ``count`` models: the 4 base models, then
    seeded variants ``<base>-v<index>`` of them, sorted by (synset, model_id)."""
    if count < len(DEMO_MODELS):
        raise ValueError(f"demo set: count must be >= {len(DEMO_MODELS)}, got {count}")
    out = list(DEMO_MODELS)
    for i in range(len(DEMO_MODELS), count):
        v = _variant_params(i, seed)
        synset = next(m[0] for m in DEMO_MODELS if m[1] == v["base"])
        out.append((synset, f"{v['base']}-v{i}", v["model_id"]))
    return sorted(out, key=lambda m: (m[0], m[2]))


def demo_files(count: int = 4, seed: int = 0) -> dict[str, bytes]:
    """Every file of the demo set: {relative path with '/' separators: bytes}, sorted by path.
    Relative paths look like ``02958343/<model_id>/model.obj``. ``count`` > 4 adds seeded
    variants (``seed``) of the 4 base models; the 4 base models' files never change."""
    out = {}
    for synset, name, model_id in demo_models(count, seed):
        variant = None
        if "-v" in name:
            variant = _variant_params(int(name.rsplit("-v", 1)[1]), seed)
        for rel, data in _model_files(name, variant).items():
            out[f"{synset}/{model_id}/{rel}"] = data
    return dict(sorted(out.items()))


def write_demo_set(root: str, count: int = 4, seed: int = 0) -> list[str]:
    """Write the demo set under ``root`` (created if needed; existing files are overwritten).

    Returns the model directories ``<root>/<synset>/<model_id>``, sorted. The files are
    byte-identical on every call; coordinates are in the OBJ's Y-up model frame (module
    docstring). ``count`` > 4 adds seeded variants (:func:`demo_models`)."""
    model_dirs = set()
    for rel, data in demo_files(count, seed).items():
        path = os.path.join(root, *rel.split("/"))
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)
        synset, model_id = rel.split("/")[:2]
        model_dirs.add(os.path.join(root, synset, model_id))
    return sorted(model_dirs)


def demo_shapenet_dir(cache_dir: str | None = None) -> str:
    """A ShapeNetCore-v1-layout directory holding the demo set, generated on first use.

    ``cache_dir``: where to keep it (default ``default_cache_dir()``); the set lives in
    ``<cache_dir>/demo_shapenet-v1``. A folder that is missing a file or whose files differ from
    what this code generates (e.g. a half-deleted or older set) is regenerated. Generation
    goes to a temporary sibling folder that is renamed into place, so a concurrent process sees
    either no set or a complete one; if another process wins the rename, ours is discarded."""
    return cache.materialize(cache_dir, DEMO_DIR_NAME, demo_files())
