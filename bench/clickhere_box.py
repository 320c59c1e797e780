"""``--clickhere_render box`` against ``full`` at the render level, in one process (no Beam).

    PYOPENGL_PLATFORM=egl python bench/clickhere_box.py [SHAPENET_DIR] [--synsets S] [--models N] [--views N]

For random viewpoints (Render for CNN's lamps, 960x540, focal 1050) of the first ``--models``
models: the default path (the full render, its alpha box) against the box path
(:mod:`pipelines.clickhere_box`: the box from one unlit coverage pass of the projected hull's
window, the keypoints' depth window, the box rendered at 227x227), per view in ms, and whether
the boxes are equal. Then the |difference| (grey levels, every RGB value) of the 227x227 images
over a gray background, split into its causes (wall time and CPU time of the process, every
thread, per view):

* ``anti-aliasing``: crop resized (no JPEG) vs box render (no JPEG);
* ``final``: the full path's JPEG at the crop size, resized, vs the box path's JPEG at 227x227
  (what the datasets hold);
* ``JPEG, full`` / ``JPEG, box``: each path's own JPEG error (quality 75), for scale.

Default SHAPENET_DIR: the demo set. Under CPU contention compare the ratio, not the ms.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time

os.environ.setdefault("PYOPENGL_PLATFORM", "egl")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

from kpdata import geometry  # noqa: E402
from kpdata.camera import Intrinsics  # noqa: E402
from kpdata.clickhere import compose, imageops  # noqa: E402
from kpdata.clickhere.lighting import R4CNNLighting  # noqa: E402
from kpdata.keypoints import KeypointSource  # noqa: E402
from kpdata.viewpoints import Viewpoint  # noqa: E402
from pipelines import clickhere_box  # noqa: E402
from pipelines.options import DEMO  # noqa: E402
from pipelines.shapenet_views import list_models, load_model  # noqa: E402
from renderers import RenderRequest  # noqa: E402
from renderers.fake import mesh_vertices  # noqa: E402
from renderers.lighting import to_render_lights  # noqa: E402
from renderers.pyrender_backend import PyrenderRenderer  # noqa: E402


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("shapenet_dir", nargs="?", default=DEMO)
    p.add_argument("--synsets", default="")
    p.add_argument("--models", type=int, default=8)
    p.add_argument("--views", type=int, default=4, help="views per model (default: %(default)s)")
    a = p.parse_args(argv)
    _, models = list_models(a.shapenet_dir, tuple(s for s in a.synsets.split(",") if s))
    r = PyrenderRenderer(960, 540)
    intr = Intrinsics.centered(960, 540, 1050.0)
    rng = np.random.default_rng(0)
    t_full = t_box = cpu_full = cpu_box = 0.0
    n = same = 0
    stats: dict = {}
    for m in models[:a.models]:
        mesh, kps = load_model(m, KeypointSource(None))
        verts, handle = mesh_vertices(mesh), r.prepare(mesh)
        r.render(handle, RenderRequest(intr, tuple(map(tuple, np.eye(4)))))  # warm the shaders
        for _ in range(a.views):
            vp = Viewpoint(rng.uniform(0, 360), rng.uniform(-10, 40), rng.uniform(-5, 5), rng.uniform(2.0, 3.0))
            lights, ambient = to_render_lights(R4CNNLighting.sample(rng), geometry.viewpoint_to_cam_T_world(vp))
            req = RenderRequest(intr, tuple(map(tuple, geometry.viewpoint_to_cam_T_obj(vp))), lights=lights,
                                ambient=ambient)
            t0, c0 = time.perf_counter(), time.process_time()
            out = r.render(handle, req, kps)
            tight = imageops.alpha_box(out["rgba"][..., 3])
            t1, c1 = time.perf_counter(), time.process_time()
            box = clickhere_box.tight_box(r, handle, req, verts).tight
            if box is not None:
                clickhere_box.keypoint_labels(r, handle, req, kps, box, 0.01)
                direct = r.render_color(handle, dataclasses.replace(req, intrinsics=compose.box_intrinsics(intr, box)))
            t2, c2 = time.perf_counter(), time.process_time()
            if tight is None or box is None:
                continue
            t_full, t_box, n, same = t_full + t1 - t0, t_box + t2 - t1, n + 1, same + (tight == box)
            cpu_full, cpu_box = cpu_full + c1 - c0, cpu_box + c2 - c1
            patch = imageops.crop(out["rgba"], tight)
            gray = np.full(patch.shape[:2] + (3,), 128, np.uint8)
            full_raw = imageops.composite(patch, gray)
            full_final = imageops.resize(imageops.decode_jpeg(imageops.encode_jpeg(full_raw)), 227)
            full_raw = imageops.resize(full_raw, 227)
            box_raw = imageops.composite(direct, imageops.resize(gray, 227))
            box_final = imageops.decode_jpeg(imageops.encode_jpeg(box_raw))
            for name, (x, y) in {"anti-aliasing (no JPEG)": (full_raw, box_raw), "final (as stored)": (full_final, box_final),
                                 "JPEG, full path": (full_raw, full_final), "JPEG, box path": (box_raw, box_final)}.items():
                d = np.abs(x.astype(np.int16) - y.astype(np.int16))
                stats.setdefault(name, []).append((d.mean(), d.max(), 100.0 * (d > 8).mean()))
        r.release(handle)
    r.close()
    print(f"{n} views of {min(a.models, len(models))} models from {a.shapenet_dir}, 960x540 -> 227x227, load "
          f"{os.getloadavg()[0]:.1f}")
    print(f"render per view: full {1000 * t_full / n:.1f} ms (render, labels, alpha box), box {1000 * t_box / n:.1f} ms "
          f"(coverage, depth window, 227x227 render): box {t_full / t_box:.2f}x faster; boxes equal {same}/{n}")
    print(f"CPU per view (every thread of the process): full {1000 * cpu_full / n:.1f} ms, box {1000 * cpu_box / n:.1f} ms: "
          f"box {cpu_full / cpu_box:.2f}x less")
    print("|difference| in grey levels (RGB values, gray background): mean / max / % > 8")
    for name, v in stats.items():
        v = np.asarray(v)
        print(f"  {name:<26} {v[:, 0].mean():5.2f} / {v[:, 1].max():3.0f} / {v[:, 2].mean():4.1f}%")


if __name__ == "__main__":
    main()
