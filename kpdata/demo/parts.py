"""Building blocks of the demo models: materials, texture helpers, closed convex primitives
(extruded convex polygons, cylinders) with outward winding, and the part/keypoint builder.

A part is (material, V (n,3), F (m,3) int, UV (m,3,2), N (m,3,3)) in the design frame
(see :mod:`kpdata.demo.models`)."""
from __future__ import annotations

import numpy as np


TEX_SIZE = 128


# --------------------------------------------------------------------------------------------
# Materials
# --------------------------------------------------------------------------------------------

def material(kd, ks=(0.3, 0.3, 0.3), ns=40.0, texture=None, ka=(0.2, 0.2, 0.2)):
    return {"Ka": ka, "Kd": kd, "Ks": ks, "Ns": ns, "texture": texture}


TYRE = material((0.06, 0.06, 0.06), ks=(0.05, 0.05, 0.05), ns=8.0)
METAL = material((0.62, 0.64, 0.68), ks=(0.8, 0.8, 0.8), ns=120.0)
GLASS = material((0.32, 0.48, 0.66), ks=(0.9, 0.9, 0.9), ns=200.0)
TRIM = material((0.12, 0.12, 0.13), ks=(0.2, 0.2, 0.2), ns=20.0)
HEADLIGHT = material((1.0, 0.86, 0.38), ks=(0.9, 0.9, 0.9), ns=150.0)
TAILLIGHT = material((0.85, 0.06, 0.05), ks=(0.6, 0.6, 0.6), ns=100.0)


def textured(name, ks=(0.4, 0.4, 0.4), ns=60.0):
    return material((1.0, 1.0, 1.0), ks=ks, ns=ns, texture=name)



# --------------------------------------------------------------------------------------------
# Texture helpers (RGB uint8, row 0 = top of the image = v=1 in OBJ texture coordinates)
# --------------------------------------------------------------------------------------------

def grid(n=TEX_SIZE):
    v, u = np.meshgrid(np.arange(n, dtype=np.float64), np.arange(n, dtype=np.float64),
                       indexing="ij")
    return u / (n - 1), 1.0 - v / (n - 1)  # u right, v up


def fill(img, mask, rgb):
    img[mask] = np.asarray(rgb, dtype=np.float64)


def finish(img) -> np.ndarray:
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


# --------------------------------------------------------------------------------------------
# Primitives. A part is (material, V (n,3), F (m,3) int, UV (m,3,2), N (m,3,3)):
# vertex positions shared inside the part, texture coordinates and normals per triangle corner.
# --------------------------------------------------------------------------------------------

def tri_normal(a, b, c):
    n = np.cross(b - a, c - a)
    return n / np.linalg.norm(n)


def planar_uv(pts, normal):
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


def convex_part(material, verts, polygons):
    """Closed convex solid from vertex positions and planar convex polygons (index lists in
    boundary order, either winding): fan-triangulated, wound outward, flat normals."""
    verts = np.asarray(verts, dtype=np.float64)
    centre = verts.mean(axis=0)
    faces, uvs, normals = [], [], []
    for poly in polygons:
        poly = list(poly)
        p = verts[poly]
        n = tri_normal(p[0], p[1], p[2])
        if np.dot(n, p.mean(axis=0) - centre) < 0:
            poly = poly[::-1]
            p = p[::-1]
            n = -n
        uv = planar_uv(p, n)
        for k in range(1, len(poly) - 1):
            faces.append((poly[0], poly[k], poly[k + 1]))
            uvs.append((uv[0], uv[k], uv[k + 1]))
            normals.append((n, n, n))
    return (material, verts, np.asarray(faces, dtype=np.int64), np.asarray(uvs),
            np.asarray(normals))


def prism(material, profile, axis, lo, hi):
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
    return convex_part(material, verts, polys)


def box(material, x0, x1, y0, y1, z0, z1):
    return prism(material, [(z0, y0), (z1, y0), (z1, y1), (z0, y1)], "x", x0, x1)


def slab_on_edge(material, p0, p1, x0, x1, inset=0.003, out=0.012):
    """Thin slab (e.g. a window) lying on a slanted face whose profile edge runs p0 -> p1
    (points (z, y)), extruded over x in [x0, x1]. The slab spans from ``inset`` inside the face
    to ``out`` outside it; "outside" is ``d`` rotated by +90 degrees in the (z, y) plane, where
    ``d`` is the direction p0 -> p1 (so order p0, p1 accordingly)."""
    return prism(material, slab_profile(p0, p1, inset, out), "x", x0, x1)


def slab_profile(p0, p1, inset=0.003, out=0.012):
    """(z, y) profile of :func:`slab_on_edge`: [p0 in, p1 in, p1 out, p0 out]; the outer face
    (the one a viewer sees) runs between the last two points."""
    p0 = np.asarray(p0, dtype=np.float64)
    p1 = np.asarray(p1, dtype=np.float64)
    d = (p1 - p0) / np.linalg.norm(p1 - p0)
    nrm = np.array([-d[1], d[0]])
    return [tuple(p0 - inset * nrm), tuple(p1 - inset * nrm), tuple(p1 + out * nrm),
            tuple(p0 + out * nrm)]


def toward(a, b, dist):
    """The point ``dist`` from ``a`` on the segment a -> b (points (z, y)); computed from the
    segment's own end points, so it lies on the face they bound up to float rounding."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    return tuple(a + (b - a) * (dist / np.linalg.norm(b - a)))


def cylinder(material, center, radius, x0, x1, segments=20):
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
            n = tri_normal(*verts[t])
            mid = verts[t].mean(axis=0)
            if np.dot(n, mid - np.array([mid[0], cy, cz])) < 0:
                t = t[::-1]
            faces.append(tuple(t))
            uvs.append([uv_q[k] for k in t])
            normals.append([radial[k % segments] for k in t])
        # Caps: x0 faces -X, x1 faces +X.
        for ctr, base, sign in ((c0, 0, -1.0), (c1, segments, 1.0)):
            t = [ctr, base + i, base + j]
            n = tri_normal(*verts[t])
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


def cylinder_z(material, center, radius, z0, z1, segments=20):
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
    return convex_part(material, verts, polys), (cx, cy, z0), (cx, cy, z1)


class Builder:
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
            tyre, _, _ = cylinder(TYRE, center, radius, -(x_inner + width), -x_inner, segments)
            hub, outer, _ = cylinder(METAL, center, hub_radius, -(x_inner + width + hub_out),
                                      -(x_inner + width - 0.5 * hub_out), segments // 2)
        else:
            tyre, _, _ = cylinder(TYRE, center, radius, x_inner, x_inner + width, segments)
            hub, _, outer = cylinder(METAL, center, hub_radius, x_inner + width - 0.5 * hub_out,
                                      x_inner + width + hub_out, segments // 2)
        self.add("tyre", TYRE, tyre)
        self.add("hub", METAL, hub)
        self.kp(prefix, outer)


def mirror_pair(builder, name_left, name_right, x, y, z):
    """Keypoints at (-|x|, y, z) (left) and (+|x|, y, z) (right)."""
    builder.kp(name_left, (-abs(x), y, z))
    builder.kp(name_right, (abs(x), y, z))


