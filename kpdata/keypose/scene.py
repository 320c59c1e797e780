"""Scenes for KeyPose-style stereo sequences: an object resting on a textured plane, a rectified
stereo rig moving around it.

Frames (metres throughout):

* **world**: Z-up "table" frame; the plane is ``z = 0`` (a square of side ``plane_size``
  centred at the origin); the object rests on it. KeyPose's ``transform`` is ``cam_T_world``.
* **object**: the mesh file's own frame. ShapeNet models (Y-up, diagonal 1) are turned Z-up as
  Blender does and scaled to a bounding-box diagonal of ``object_size``; KeyPose ``.obj`` files
  are metres, Z-up, and keep their size. ``world_T_obj`` then turns the object by a yaw about Z and
  sets it down with its lowest point on the plane at a horizontal offset.
* **cameras**: OpenCV frames. The right camera is the left one moved by the baseline along its own
  x axis: ``cam_T_world_R = translate(-B, 0, 0) @ cam_T_world_L`` (rectified, same K).

Everything random is drawn from a generator the caller passes (``rng_for(seed, key)``).
"""
from __future__ import annotations

import dataclasses

import numpy as np
import trimesh

from kpdata import geometry
from kpdata.mesh import LoadedMesh


@dataclasses.dataclass(frozen=True)
class Placement:
    """``world_T_obj`` (4, 4) and the object's scale (model units -> metres)."""

    world_T_obj: np.ndarray
    scale: float


def place_object(bounds_obj, up_turn, scale: float, yaw: float, offset_xy) -> Placement:
    """Put an object on the plane.

    Args:
      bounds_obj: (2, 3) min/max corners in the object frame (model units).
      up_turn: (4, 4) rotation taking the object frame to Z-up (e.g. ``world_T_obj_shapenet``).
      scale: model units -> metres.
      yaw: rotation about world Z, radians.
      offset_xy: (2,) where the centre of the object's footprint goes on the plane, metres.
    """
    b = np.asarray(bounds_obj, dtype=np.float64)
    corners = np.array([[x, y, z] for x in b[:, 0] for y in b[:, 1] for z in b[:, 2]])
    m = geometry.make_transform(geometry.rot_z(yaw)) @ np.diag([scale, scale, scale, 1.0]) @ np.asarray(up_turn)
    pts = geometry.transform_points(m, corners)
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    shift = np.array([offset_xy[0] - (lo[0] + hi[0]) / 2, offset_xy[1] - (lo[1] + hi[1]) / 2, -lo[2]])
    world_T_obj = geometry.make_transform(translation=shift) @ m
    return Placement(world_T_obj, float(scale))


def generated_texture(rng: np.random.Generator, size: int = 512) -> np.ndarray:
    """A procedural table-cloth texture (size, size, 3) uint8 RGB that tiles seamlessly: checks,
    slanted stripes or blotches in two to three random colours, plus fine noise (texture helps
    stereo matching)."""
    kind = int(rng.integers(3))
    colors = rng.uniform(30, 230, (3, 3))
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    if kind == 0:
        k = int(rng.integers(4, 12))  # squares per tile
        idx = ((np.floor(xx * k / size) + np.floor(yy * k / size)) % 2).astype(int)
    elif kind == 1:
        a, b = int(rng.integers(1, 4)), int(rng.integers(-3, 4))  # integer slopes keep the tile periodic
        k = int(rng.integers(3, 9))  # stripe triples per period
        t = ((a * xx + b * yy) % size) / size
        idx = (np.floor(t * 3 * k) % 3).astype(int)
    else:
        spec = np.zeros((size, size), complex)  # periodic noise: a few low Fourier modes
        for fy in range(-4, 5):
            for fx in range(-4, 5):
                if fx or fy:
                    spec[fy % size, fx % size] = rng.normal() + 1j * rng.normal()
        noise = np.fft.ifft2(spec).real
        idx = np.digitize(noise, np.quantile(noise, [1 / 3, 2 / 3]))
    img = colors[idx] + rng.normal(0, 12, (size, size, 1))
    return np.clip(img, 0, 255).astype(np.uint8)


def plane_mesh(size: float, texture_rgb, repeats: float) -> trimesh.Trimesh:
    """A textured square ``size`` x ``size`` metres at z = 0, facing +Z; the texture repeats
    ``repeats`` times across it."""
    from PIL import Image

    h = size / 2
    v = np.array([[-h, -h, 0], [h, -h, 0], [h, h, 0], [-h, h, 0]], dtype=np.float64)
    f = np.array([[0, 1, 2], [0, 2, 3]])
    uv = np.array([[0, 0], [repeats, 0], [repeats, repeats], [0, repeats]], dtype=np.float64)
    material = trimesh.visual.material.SimpleMaterial(image=Image.fromarray(np.asarray(texture_rgb, np.uint8)),
                                                      diffuse=[255, 255, 255, 255], ambient=[255, 255, 255, 255],
                                                      specular=[20, 20, 20, 255], glossiness=5)
    return trimesh.Trimesh(v, f, visual=trimesh.visual.TextureVisuals(uv=uv, material=material), process=False)


def scene_mesh(obj: LoadedMesh | None, world_T_obj, plane: trimesh.Trimesh | None, path: str = "") -> LoadedMesh:
    """A LoadedMesh (what renderers take) of the object placed in the world plus the plane; either
    may be None (plane only = the scene behind a transparent object; object only = its mask)."""
    scene = trimesh.Scene()
    if obj is not None:
        for node in obj.scene.graph.nodes_geometry:
            transform, geom_name = obj.scene.graph[node]
            scene.add_geometry(obj.scene.geometry[geom_name], node_name=f"obj/{node}",
                               transform=np.asarray(world_T_obj) @ np.asarray(transform))
    if plane is not None:
        scene.add_geometry(plane, node_name="plane")
    bounds = np.array(scene.bounds, dtype=np.float64)
    faces = sum(len(g.faces) for g in scene.geometry.values() if hasattr(g, "faces"))
    return LoadedMesh(path, scene, bounds, int(faces))


def camera_path(rng: np.random.Generator, n: int, target, distance=(0.55, 0.8), elevation_deg=(45.0, 65.0),
                sweep_deg: float = 120.0, jitter: float = 0.01) -> list[np.ndarray]:
    """``n`` left-camera poses ``cam_T_world`` (4, 4) on an arc around ``target`` (3,): azimuth
    sweeps ``sweep_deg`` from a random start, elevation and distance drift smoothly within their
    ranges, the look-at point jitters by ``jitter`` metres; image up is world +Z."""
    az0 = rng.uniform(0, 360)
    el = rng.uniform(*elevation_deg, size=2)
    dist = rng.uniform(*distance, size=2)
    poses = []
    for i in range(n):
        t = i / max(n - 1, 1)
        az = np.deg2rad(az0 + sweep_deg * t)
        e = np.deg2rad(el[0] + (el[1] - el[0]) * t)
        d = dist[0] + (dist[1] - dist[0]) * t
        look = np.asarray(target, dtype=np.float64) + rng.uniform(-jitter, jitter, 3)
        eye = look + d * np.array([np.cos(e) * np.cos(az), np.cos(e) * np.sin(az), np.sin(e)])
        poses.append(geometry.look_at_cv(eye, look, up=(0.0, 0.0, 1.0)))
    return poses


def right_from_left(cam_T_world_l, baseline: float) -> np.ndarray:
    """The right camera of a rectified pair: the left one moved ``baseline`` metres along its x axis."""
    return geometry.make_transform(translation=[-baseline, 0.0, 0.0]) @ np.asarray(cam_T_world_l, dtype=np.float64)
