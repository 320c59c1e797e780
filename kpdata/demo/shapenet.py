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

from kpdata.demo import cache
from kpdata.demo.models import (BUILDERS, DEMO_FRONT_AXIS, DEMO_KEYPOINT_NAMES, DEMO_LEFT_AXIS, DEMO_MODELS, ORIENT_PERM,
                                ORIENT_SIGN)
from kpdata.demo.parts import Builder, finish
from kpdata.seeding import rng_for

__all__ = ["DEMO_DIR_NAME", "write_demo_set", "demo_shapenet_dir", "demo_files", "demo_models"]

DEMO_DIR_NAME = "demo_shapenet-v1"


# --------------------------------------------------------------------------------------------
# Serialisation
# --------------------------------------------------------------------------------------------

def _axis_name(v) -> str:
    i = int(np.argmax(np.abs(v)))
    return ("-" if v[i] < 0 else "+") + "XYZ"[i]


def _f(x: float) -> str:
    s = "%.6f" % x
    return "0.000000" if s == "-0.000000" else s


def _normalise(builder: Builder):
    """Orient, then centre at the bounding-box centre and scale to a unit bounding-box diagonal;
    the same float operations are applied to vertices and keypoints."""
    perm, sign = list(ORIENT_PERM), np.asarray(ORIENT_SIGN)
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
    builder, textures = BUILDERS[base]()
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

def _stretch(builder: Builder, scale) -> Builder:
    """The builder's parts and keypoints scaled per design axis by ``scale`` (3,). An axis
    scaling maps planes to planes, so every keypoint stays on its face and every convex part
    stays convex and watertight; normals transform by the inverse scale and are renormalised."""
    s = np.asarray(scale, dtype=np.float64)
    out = Builder()
    out.materials = dict(builder.materials)
    for name, verts, faces, uvs, normals in builder.parts:
        n = np.asarray(normals, dtype=np.float64) / s
        n = n / np.linalg.norm(n, axis=-1, keepdims=True)
        out.parts.append((name, np.asarray(verts, dtype=np.float64) * s, faces, uvs, n))
    out.keypoints = {k: tuple(float(c) for c in np.asarray(v) * s) for k, v in builder.keypoints.items()}
    return out


def _recolour(rgb: np.ndarray, mix: np.ndarray) -> np.ndarray:
    """Texture colours mixed by the 3x3 matrix ``mix`` (rows: output R, G, B)."""
    return finish(rgb.astype(np.float64) @ np.asarray(mix, dtype=np.float64).T)


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


def demo_shapenet_dir(cache_dir: str | None = None, count: int = 4) -> str:
    """A ShapeNetCore-v1-layout directory holding the demo set, generated on first use.

    ``cache_dir``: where to keep it (default ``default_cache_dir()``); the set lives in
    ``<cache_dir>/demo_shapenet-v1`` (``count`` > 4: the set grown to ``count`` models with seeded
    variants, :func:`demo_models`, in ``<cache_dir>/demo_shapenet-v1-<count>``, checked by a
    stamp of the generating code rather than byte by byte). A folder that is missing a file or
    whose files differ from
    what this code generates (e.g. a half-deleted or older set) is regenerated. Generation
    goes to a temporary sibling folder that is renamed into place, so a concurrent process sees
    either no set or a complete one; if another process wins the rename, ours is discarded."""
    if count == len(DEMO_MODELS):
        return cache.materialize(cache_dir, DEMO_DIR_NAME, demo_files())
    # A grown set is checked by a stamp (the generating code's hash and the count), not byte by byte.
    code = b"".join(open(os.path.join(os.path.dirname(__file__), f), "rb").read()
                    for f in ("shapenet.py", "models.py", "parts.py"))
    stamp = f"{hashlib.sha256(code).hexdigest()} count={count}"
    return cache.materialize_stamped(cache_dir, f"{DEMO_DIR_NAME}-{count}", lambda: demo_files(count), stamp)
