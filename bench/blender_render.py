"""Blender's views/s on the same chair, for the comparison in docs/performance.md.

    KPDATA_FIXTURES=/work/shared/fixtures /work/bpyenv/bin/python bench/blender_render.py [--views 20] [--sizes 227x227,960x540]
        [--engines CYCLES,BLENDER_WORKBENCH] [--obj PATH]

Runs in a separate virtual environment with Blender as a Python module (``pip install bpy==4.2.0``
into a Python 3.11 venv; bpy is not a kpdata dependency). It renders the real ShapeNet v1 chair of
the fixtures at Render for CNN's camera (fx = fy = 1050 at 960x540, scaled with the width) from
``--views`` seeded viewpoints (azimuth uniform, elevation 0-40 degrees, distance 2.5), with
Render for CNN's kind of lighting (an environment light plus point lamps) and a transparent
background, written as RGBA PNGs:

* Cycles at Render for CNN's 8 samples per pixel (CPU, denoising off);
* Blender's Workbench engine (rasterised, through whatever OpenGL Blender finds: Mesa's llvmpipe
  here, like pyrender).

The first view of each (engine, size) warms up (scene sync, kernels) and is not counted; prints
warm views/s, one line per (engine, size).
"""
from __future__ import annotations

import argparse
import math
import os
import random
import tempfile
import time

import bpy

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.environ.get("KPDATA_FIXTURES") or os.path.join(HERE, "..", "..", "shared", "fixtures")
CHAIR = os.path.join(FIXTURES, "shapenet_core_v1", "03001627", "21bfb150cfc23accb01c58badc8bbc39", "model.obj")


def setup_scene(obj: str) -> bpy.types.Object:
    bpy.ops.wm.read_factory_settings(use_empty=True)
    bpy.ops.wm.obj_import(filepath=obj)  # Y-up OBJ -> Blender's Z-up, as Render for CNN's import
    scene = bpy.context.scene
    world = bpy.data.worlds.new("world")
    scene.world = world
    world.use_nodes = True
    world.node_tree.nodes["Background"].inputs["Strength"].default_value = 0.5  # environment light
    rng = random.Random(0)
    for i in range(4):  # Render for CNN draws point lamps 8-20 units away
        az, el, dist = rng.uniform(0, 2 * math.pi), rng.uniform(0, math.pi / 3), rng.uniform(8, 20)
        data = bpy.data.lights.new(f"lamp{i}", type="POINT")
        data.energy = 2000.0
        lamp = bpy.data.objects.new(f"lamp{i}", data)
        lamp.location = (dist * math.cos(el) * math.cos(az), dist * math.cos(el) * math.sin(az), dist * math.sin(el))
        scene.collection.objects.link(lamp)
    cam_data = bpy.data.cameras.new("camera")
    cam = bpy.data.objects.new("camera", cam_data)
    scene.collection.objects.link(cam)
    scene.camera = cam
    target = bpy.data.objects.new("target", None)
    scene.collection.objects.link(target)
    track = cam.constraints.new("TRACK_TO")
    track.target, track.track_axis, track.up_axis = target, "TRACK_NEGATIVE_Z", "UP_Y"
    scene.render.film_transparent = True
    scene.render.use_persistent_data = True  # keep the synced scene and BVH between views
    scene.render.image_settings.file_format = "PNG"
    scene.render.image_settings.color_mode = "RGBA"
    return cam


def configure(engine: str, w: int, h: int, cam) -> None:
    scene = bpy.context.scene
    scene.render.engine = engine
    if engine == "CYCLES":
        scene.cycles.device = "CPU"
        scene.cycles.samples = 8  # Render for CNN's setting
        scene.cycles.use_denoising = False
        scene.cycles.use_adaptive_sampling = False
    scene.render.resolution_x, scene.render.resolution_y, scene.render.resolution_percentage = w, h, 100
    cam.data.sensor_fit = "HORIZONTAL"
    cam.data.sensor_width = 32.0
    cam.data.lens = 1050.0 * w / 960.0 * 32.0 / w  # fx in pixels -> focal length in mm


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--views", type=int, default=20)
    p.add_argument("--sizes", default="227x227,960x540")
    p.add_argument("--engines", default="CYCLES,BLENDER_WORKBENCH")
    p.add_argument("--obj", default=CHAIR)
    a = p.parse_args(argv)
    cam = setup_scene(os.path.abspath(a.obj))
    out = tempfile.mkdtemp(prefix="kpdata-blender-")
    rng = random.Random(1)
    poses = [(rng.uniform(0, 360), rng.uniform(0, 40)) for _ in range(a.views + 1)]
    print(f"Blender {bpy.app.version_string}, {os.cpu_count()} CPUs, chair {os.path.relpath(a.obj)}")
    for size in a.sizes.split(","):
        w, h = map(int, size.split("x"))
        for engine in a.engines.split(","):
            configure(engine, w, h, cam)
            t0 = None
            for i, (az, el) in enumerate(poses):
                if i == 1:
                    t0 = time.perf_counter()
                az_r, el_r = math.radians(az), math.radians(el)
                cam.location = (2.5 * math.cos(el_r) * math.cos(az_r), 2.5 * math.cos(el_r) * math.sin(az_r),
                                2.5 * math.sin(el_r))
                bpy.context.scene.render.filepath = os.path.join(out, f"{engine}_{size}_{i:04d}.png")
                bpy.ops.render.render(write_still=True)
            dt = time.perf_counter() - t0
            print(f"{engine:<18} {size:>8}: {a.views / dt:6.2f} views/s ({1000 * dt / a.views:7.1f} ms/view, "
                  f"warm, PNG written)")


if __name__ == "__main__":
    main()
