"""Rendering throughput of the render stage, as ratios against baselines run in the same process.

    python bench/render_throughput.py [--views 16] [--size 960x540] [--obj PATH]

1. per-model reuse (ours: load + upload a model once, render all its views) vs the naive
   per-view loop (load, upload, render for every view);
2. the centred depth pass: a full view (RGBA pass + depth pass + keypoint labels) vs a bare
   RGBA render (what a single MSAA pass would cost);
3. encoding: a view record (PNG RGBA + mask + uint16 depth + Example) vs the render itself.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from kpdata import demo, geometry, mesh  # noqa: E402

from kpdata.sources import shapenet
from kpdata.camera import Intrinsics  # noqa: E402
from kpdata.seeding import rng_for  # noqa: E402
from kpdata.viewpoints import UniformPrior  # noqa: E402
from renderers import RenderRequest, create_renderer  # noqa: E402
from schemas.view import VIEW, make_view_record  # noqa: E402


def main(argv=None):
    p = argparse.ArgumentParser()
    p.add_argument("--views", type=int, default=16)
    p.add_argument("--size", default="960x540")
    p.add_argument("--obj", default="")
    a = p.parse_args(argv)
    w, h = map(int, a.size.split("x"))
    obj = a.obj or shapenet.scan(demo.demo_shapenet_dir())[0].obj_path
    intr = Intrinsics.centered(w, h, 1050 * w / 960)
    vps = [UniformPrior().sample(rng_for(0, f"bench/{i}")) for i in range(a.views)]
    reqs = [RenderRequest(intr, tuple(map(tuple, geometry.viewpoint_to_cam_T_obj(v)))) for v in vps]
    r = create_renderer(w, h)
    r.render(r.prepare(mesh.load_mesh(obj)), reqs[0])  # warm up GL and caches

    t = time.perf_counter()
    for q in reqs:
        handle = r.prepare(mesh.load_mesh(obj))
        r.render(handle, q)
        r.release(handle)
    naive = time.perf_counter() - t

    t = time.perf_counter()
    handle = r.prepare(mesh.load_mesh(obj))
    outs = [r.render(handle, q) for q in reqs]
    ours = time.perf_counter() - t

    t = time.perf_counter()
    import pyrender  # noqa: PLC0415
    for q in reqs:
        scene = handle["scene"]
        cam = pyrender.IntrinsicsCamera(intr.fx, intr.fy, intr.cx + 0.5, intr.cy + 0.5, znear=0.5, zfar=5)
        node = scene.add(cam, pose=geometry.cv_pose_to_gl_pose(geometry.invert_transform(q.pose)))
        with r._gl():  # noqa: SLF001 - the bare RGBA pass, for comparison only
            r._renderer.render(scene, flags=pyrender.RenderFlags.RGBA)  # noqa: SLF001
        scene.remove_node(node)
    bare = time.perf_counter() - t

    t = time.perf_counter()
    for o, q, v in zip(outs, reqs, vps):
        VIEW.encode(make_view_record(key="b/c/v000000", synset="b", model_id="c", seed=0, rgba=o["rgba"],
                                     depth=o["depth"], K=intr.K, cam_T_obj=q.pose, viewpoint=v.as_array(),
                                     names=[], uv=o["uv"], z=o["z"], xyz=[], visible=o["visible"]))
    enc = time.perf_counter() - t
    r.close()
    n = a.views
    print(f"model {os.path.relpath(obj)}  {n} views at {w}x{h}")
    print(f"naive per-view load+upload+render : {1000 * naive / n:7.1f} ms/view")
    print(f"per-model reuse (ours)            : {1000 * ours / n:7.1f} ms/view   speed-up x{naive / ours:.2f}")
    print(f"bare RGBA pass                    : {1000 * bare / n:7.1f} ms/view   full view costs x{ours / bare:.2f}")
    print(f"encode record (PNGs + Example)    : {1000 * enc / n:7.1f} ms/view   = x{enc / ours:.2f} of rendering")


if __name__ == "__main__":
    main()
