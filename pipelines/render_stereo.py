"""Render KeyPose-layout stereo/depth sequences of objects with keypoints resting on a textured plane.

    python -m pipelines.render_stereo [flags] [Beam flags]

Per sequence ``<object>/texture_<t>_pose_<p>/``: the object (the built-in demo set, ShapeNet models
with keypoint annotations, or KeyPose ``.obj`` files with ``o kp.NNN`` groups) rests on a plane
with texture ``t`` in placement ``p``; a rectified stereo pair moves around it. Per frame: L/R PNG,
mask and border, ``Do`` / ``Dt`` depth EXRs, L/R KeyTargets pbtxt with ``kp_target`` and up to
``--proj_targets`` projection targets; ``data_params.pbtxt`` and ``scene.json`` per sequence.

Work: one unit per sequence (:mod:`pipelines.stream`): RenderSequences renders and writes the
sequence folder (temporary name, then renamed); its summary goes to the run's journal, from which
the driver writes the metadata; failures go to errors/failures.jsonl. A rerun resumes.
"""
from __future__ import annotations

import argparse
import dataclasses
import glob
import hashlib
import json
import logging
import os
import shutil
import uuid

import numpy as np
import trimesh

from kpdata import geometry, keypose

from kpdata.keypose import exr

from kpdata.sources import photos as photos_io
from kpdata.sources import meshes, shapenet

from kpdata.keypose import scene as stereo_scene
from kpdata.keypose import proto as kpp
from kpdata.camera import Intrinsics
from kpdata.errors import InputError
from kpdata.keypoints import Keypoints3D, KeypointSource
from kpdata.mesh import LoadedMesh, load_mesh
from kpdata.seeding import rng_for
from pipelines import skeleton, sinks
from pipelines import options as opts
from pipelines.options import DEMO, OutputConfig
from pipelines.stream import Unit
from pipelines.workers import RendererDoFn
from renderers import RenderRequest
from schemas.dataset.names import KEYPOSE_SEQUENCES as RECORD, OBJECTS_DIR, SCENE_JSON
from schemas.dataset import names

LOG = logging.getLogger("kpdata.render_stereo")
COMMAND = "pipelines.render_stereo"
GENERATED = "generated"
PHOTO_EXTS = (".jpg", ".jpeg", ".png", ".bmp")


@dataclasses.dataclass(frozen=True)
class StereoConfig(OutputConfig):
    """Everything that decides the output; serialised into kpdata_info.json."""

    models: str = DEMO
    mesh_dir: str = ""
    mesh_up: str = "y"
    synsets: tuple = ()
    keypoints: str = ""
    textures: str = GENERATED
    num_textures: int = 1
    num_poses: int = 1
    frames: int = 3
    image_size: tuple = (1280, 720)
    focal: float = 675.6
    baseline: float = 0.12
    object_size: float = 0.25
    plane_size: float = 4.0
    proj_targets: int = 5
    visibility: str = "onscreen"
    output_dir: str = "kpdata_out/keypose_sequences"
    name: str = "keypose_sequences"
    preview: int = 8

    @property
    def intrinsics(self) -> Intrinsics:
        return Intrinsics.centered(self.image_size[0], self.image_size[1], self.focal)

    @property
    def camera(self):
        i = self.intrinsics
        return keypose.make_camera(i.fx, i.fy, i.cx, i.cy, self.baseline, i.width, i.height)


@dataclasses.dataclass(frozen=True)
class ObjectSource:
    """An object to render: ``name`` (e.g. ``car_0``, ``bottle_0``), ``kind`` ``shapenet`` or
    ``keypose``, the mesh path, and for ShapeNet the model (for its keypoint lookup)."""

    name: str
    kind: str
    path: str
    model: shapenet.ShapeNetModel | None = None


@dataclasses.dataclass(frozen=True)
class SequenceTask:
    key: str  # <object>/texture_<t>_pose_<p>
    obj: ObjectSource
    texture: int
    pose: int


def list_objects(config: StereoConfig) -> list[ObjectSource]:
    """The objects of ``--models``: ShapeNet models named ``<synset name>_<i>`` (i over the synset's
    models in id order), or KeyPose ``.obj`` files named by their stem."""
    if config.mesh_dir:
        models = meshes.scan(config.mesh_dir, config.synsets or None, config.mesh_up)
    elif opts.demo_count(config.models) is None and (config.models.endswith(".obj") or os.path.isfile(config.models)):
        paths = sorted(glob.glob(config.models)) or [config.models]
        return [ObjectSource(os.path.splitext(os.path.basename(p))[0], "keypose", p) for p in paths]
    else:
        models = shapenet.scan(opts.shapenet_root(config.models), config.synsets or None)
    out, count = [], {}
    for m in models:
        base = shapenet.synset_name(m.synset)
        i = count.get(base, 0)
        count[base] = i + 1
        out.append(ObjectSource(f"{base}_{i}", "shapenet", m.obj_path or m.model_dir, m))
    return out


def texture_image(config: StereoConfig, index: int) -> tuple[np.ndarray, str]:
    """Texture ``index`` (RGB uint8) and its description: the index-th photo of ``--textures``
    (sorted, wrapping around) or a generated pattern seeded by ``(seed, "texture_<index>")``.
    The same texture index looks the same for every object, as in KeyPose's captures."""
    if config.textures == GENERATED:
        return stereo_scene.generated_texture(rng_for(config.seed, f"texture_{index}")), GENERATED
    photos = sorted(f for f in os.listdir(config.textures) if f.lower().endswith(PHOTO_EXTS))
    path = os.path.join(config.textures, photos[index % len(photos)])
    try:  # read as bytes (any file name), a truncated or non-image file refused with its reason
        img = photos_io.read_image(path)
    except InputError as e:
        raise InputError("corrupt_texture", f"texture photo: {e.message}", e.path) from None
    return img, photos_io.printable(path)


def load_object(src: ObjectSource, keypoints: KeypointSource):
    """(LoadedMesh, Keypoints3D in the object frame, up-turn (4, 4), scale to metres factor or None)."""
    if src.kind == "keypose":
        kobj = keypose.read_keypose_obj(src.path)
        mesh = trimesh.Trimesh(kobj.vertices, kobj.faces, process=False)
        mesh.visual = trimesh.visual.ColorVisuals(mesh, face_colors=[200, 210, 225, 255])
        scene = trimesh.Scene(mesh)
        loaded = LoadedMesh(src.path, scene, np.array(scene.bounds), len(kobj.faces))
        return loaded, Keypoints3D(tuple(kobj.names), kobj.keypoints), np.eye(4), 1.0
    model = src.model
    if isinstance(model, meshes.MeshModel):
        loaded, kps = meshes.load(model)
    else:
        loaded = load_mesh(shapenet.require_obj(model))
        kps = keypoints.lookup(model.synset, model.model_id, model.model_dir)
    if len(kps) == 0:
        raise InputError("no_keypoints", "model has no keypoint annotation (KeyPose needs keypoints)",
                         model.model_dir)
    return loaded, kps, geometry.world_T_obj_shapenet(), None


def _onscreen(uv, z, w, h) -> np.ndarray:
    return (z > 0) & (uv[:, 0] >= 0) & (uv[:, 0] < w) & (uv[:, 1] >= 0) & (uv[:, 1] < h)


def choose_proj_frames(config: StereoConfig, seq_key: str, i: int, n: int) -> list[int]:
    """The frames whose projections go into frame ``i``'s proj_targets: ``i`` itself, then up to
    ``proj_targets - 1`` other frames drawn with the frame's generator."""
    others = [j for j in range(n) if j != i]
    k = min(config.proj_targets - 1, len(others))
    rng = rng_for(config.seed, f"{seq_key}/{i:06d}")
    picked = rng.choice(others, size=k, replace=False).tolist() if k > 0 else []
    return [i] + [int(j) for j in picked]


def render_sequence(renderer, task: SequenceTask, config: StereoConfig, keypoints: KeypointSource,
                    out_dir: str) -> dict:
    """Render one sequence into ``out_dir`` (created). Returns a summary dict; InputError on bad input."""
    src = task.obj
    loaded, kps, up_turn, scale = load_object(src, keypoints)
    if scale is None:  # ShapeNet: model units -> metres, to a bounding-box diagonal of object_size
        scale = config.object_size / max(float(np.linalg.norm(loaded.bounds[1] - loaded.bounds[0])), 1e-9)
    tex, tex_desc = texture_image(config, task.texture)
    pose_rng = rng_for(config.seed, f"{src.name}/pose_{task.pose}")
    placement = stereo_scene.place_object(loaded.bounds, up_turn, scale, pose_rng.uniform(0, 2 * np.pi),
                                          pose_rng.uniform(-0.05, 0.05, 2))
    kp_world = geometry.transform_points(placement.world_T_obj, kps.xyz)
    plane = stereo_scene.plane_mesh(config.plane_size, tex, repeats=config.plane_size / 0.5)
    full = stereo_scene.scene_mesh(loaded, placement.world_T_obj, plane, src.path)
    plane_only = stereo_scene.scene_mesh(None, None, plane)
    obj_only = stereo_scene.scene_mesh(loaded, placement.world_T_obj, None, src.path)
    centre = geometry.transform_points(placement.world_T_obj, loaded.bounds.mean(axis=0, keepdims=True))[0]
    poses_l = stereo_scene.camera_path(rng_for(config.seed, task.key), config.frames, centre)
    poses_r = [stereo_scene.right_from_left(p, config.baseline) for p in poses_l]
    intr, cam = config.intrinsics, config.camera
    w, h = config.image_size
    kp_names = Keypoints3D(kps.names, kp_world)
    handles = {name: renderer.prepare(m) for name, m in (("full", full), ("plane", plane_only), ("obj", obj_only))}
    frames = []
    try:
        for i, (pl, pr) in enumerate(zip(poses_l, poses_r)):
            fr = {}
            for side, pose in (("L", pl), ("R", pr)):
                req = RenderRequest(intr, tuple(map(tuple, pose)))
                out = renderer.render(handles["full"], req, kp_names, 0.01)
                vis = out["visible"] if config.visibility == "depth" else _onscreen(out["uv"], out["z"], w, h)
                fr[side] = (out["rgba"], out["depth"], vis)
            req_l = RenderRequest(intr, tuple(map(tuple, pl)))
            fr["Dt"] = renderer.render(handles["plane"], req_l)["depth"]
            d_obj = renderer.render(handles["obj"], req_l)["depth"]
            do = fr["L"][1]
            fr["mask"] = ((d_obj > 0) & (np.abs(d_obj - do) <= 1e-3 * d_obj)).astype(np.uint8) * 255
            frames.append(fr)
    finally:
        for hd in handles.values():
            renderer.release(hd)

    os.makedirs(out_dir, exist_ok=True)
    n = len(frames)
    for i, fr in enumerate(frames):
        fid = f"{i:06d}"
        for side in ("L", "R"):
            keypose.write_png(keypose.frame_path(out_dir, fid, side), fr[side][0][..., :3])
        keypose.write_png(keypose.frame_path(out_dir, fid, "mask"), fr["mask"])
        keypose.write_png(keypose.frame_path(out_dir, fid, "border"), keypose.border_from_mask(fr["mask"]))
        exr.write_depth_exr(keypose.frame_path(out_dir, fid, "Do"), fr["L"][1])
        exr.write_depth_exr(keypose.frame_path(out_dir, fid, "Dt"), fr["Dt"])
        proj = choose_proj_frames(config, task.key, i, n)
        for side, poses in (("L", poses_l), ("R", poses_r)):
            kt = kpp.new("KeyTargets")
            kt.kp_target.CopyFrom(keypose.make_target(poses[i], cam, kp_world, fr[side][2]))
            for j in proj:
                kt.proj_targets.add().CopyFrom(keypose.make_target(poses[j], cam, kp_world, frames[j][side][2]))
            kt.mirrored = False
            keypose.write_text(keypose.frame_path(out_dir, fid, side + "_pb"), kt)
    dp = kpp.new("DataParams")
    dp.resx, dp.resy, dp.num_kp = w, h, len(kps)
    dp.camera.CopyFrom(cam)
    keypose.write_text(os.path.join(out_dir, keypose.DATA_PARAMS), dp)
    cad_T_obj = np.diag([scale, scale, scale, 1.0]) @ up_turn  # object file -> Z-up metres (the CAD frame)
    world_T_cad = placement.world_T_obj @ np.linalg.inv(cad_T_obj)
    scene_info = {
        "key": task.key, "seed": config.seed, "object": src.name, "source": src.path, "kind": src.kind,
        "texture": task.texture, "texture_source": tex_desc, "pose": task.pose,
        "plane_size": config.plane_size, "object_scale": scale,
        "world_T_obj": placement.world_T_obj.tolist(), "world_T_cad": world_T_cad.tolist(),
        "keypoint_names": list(kps.names), "keypoints_world": kp_world.tolist(),
        "cad_file": f"../../{OBJECTS_DIR}/{src.name}.obj",
    }
    with open(os.path.join(out_dir, SCENE_JSON), "w", encoding="utf-8") as f:
        json.dump(scene_info, f, indent=2, sort_keys=True)
        f.write("\n")
    verts, faces = [], []
    for node in loaded.scene.graph.nodes_geometry:
        transform, geom_name = loaded.scene.graph[node]
        g = loaded.scene.geometry[geom_name]
        if hasattr(g, "faces") and len(g.faces):
            faces.append(np.asarray(g.faces) + sum(len(v) for v in verts))
            verts.append(geometry.transform_points(cad_T_obj @ np.asarray(transform), g.vertices))
    cad_text = keypose.keypose_obj_text(np.concatenate(verts), np.concatenate(faces),
                                        geometry.transform_points(cad_T_obj, kps.xyz))
    return {"key": task.key, "object": src.name, "frames": n, "num_kp": len(kps), "cad_obj": cad_text}


class RenderSequences(RendererDoFn):
    """SequenceTask -> summary dict, after writing the sequence folder (temporary name, then
    renamed); failures to the ``failed`` output. One renderer per worker."""

    namespace, failed_counter, stage = "render_stereo", "sequences_failed", "render"

    def __init__(self, config: StereoConfig, keypoints: KeypointSource, backend: str = "pyrender"):
        super().__init__(config.image_size, backend)
        self.config, self.keypoints = config, keypoints

    def source(self, task: SequenceTask) -> tuple[str, str]:
        return task.key, task.obj.path

    def load(self, task: SequenceTask):
        """Render the sequence into a temporary folder: (final folder, temporary folder, summary)."""
        final = os.path.join(self.config.output_dir, *task.key.split("/"))
        tmp = os.path.join(os.path.dirname(final), f".{os.path.basename(final)}.incomplete-{uuid.uuid4().hex[:8]}")
        try:
            return final, tmp, render_sequence(self.renderer, task, self.config, self.keypoints, tmp)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise

    def render(self, task: SequenceTask, loaded):
        final, tmp, summary = loaded
        if os.path.isdir(final):
            shutil.rmtree(final)
        os.replace(tmp, final)
        self.count("frames_rendered", summary["frames"])
        yield summary


def write_metadata(_, config: StereoConfig, command, planned: dict, failures, timings, sequences) -> dict:
    """Writes one KeyPose CAD file per object (``objects/<object>.obj``) and kpdata's metadata."""
    out = config.output_dir
    for s in sequences:  # one KeyPose CAD file per object (identical for all its sequences)
        os.makedirs(os.path.join(out, OBJECTS_DIR), exist_ok=True)
        sinks.write_text(os.path.join(out, OBJECTS_DIR, f"{s['object']}.obj"), s["cad_obj"])
    seqs = sorted(({k: v for k, v in s.items() if k != "cad_obj"} for s in sequences), key=lambda s: s["key"])
    return skeleton.write_dataset_files(
        config, config, command,
        info={"record": RECORD, "layout": "KeyPose <object>/texture_<t>_pose_<p>/", "sequences": seqs, "splits": {}},
        counts={"objects": planned["objects"], "sequences_planned": planned["sequences"],
                "sequences_written": len(seqs), "frames_written": sum(s["frames"] for s in seqs)},
        failures=failures, failure_rate=skeleton.rate(planned["sequences"] - len(seqs), planned["sequences"]),
        timings=timings)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m pipelines.render_stereo", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    opts.add_model_source_flags(p, "--models", "'demo' (the built-in demo set), 'demo:N' (grown to N seeded models), "
                                "a ShapeNetCore v1/v2 folder, or a glob of KeyPose .obj files with 'o kp.NNN' "
                                "keypoint groups (default: %(default)s)")
    p.add_argument("--keypoints", default="",
                   help="ShapeNet only: Click-Here keypoints folder or KeypointNet annotation file/folder "
                        "(default: none; a model folder's own keypoints.json is always used)")
    p.add_argument("--textures", default=GENERATED,
                   help="a folder of photos for the plane, or 'generated' (default: %(default)s)")
    p.add_argument("--num_textures", type=int, default=1, help="textures per object (default: %(default)s)")
    p.add_argument("--num_poses", type=int, default=1, help="object placements per texture (default: %(default)s)")
    p.add_argument("--frames", type=int, default=3, help="frames per sequence (default: %(default)s)")
    p.add_argument("--image_size", type=opts.image_size, default=(1280, 720), help="WxH (default: 1280x720)")
    p.add_argument("--focal", type=float, default=675.6, help="fx = fy in pixels (default: %(default)s)")
    p.add_argument("--baseline", type=float, default=0.12, help="stereo baseline, metres (default: %(default)s)")
    p.add_argument("--object_size", type=float, default=0.25,
                   help="ShapeNet models are scaled to this bounding-box diagonal, metres; KeyPose .obj files "
                        "keep their size (default: %(default)s)")
    p.add_argument("--plane_size", type=float, default=4.0, help="side of the textured plane, metres (default: "
                   "%(default)s)")
    p.add_argument("--proj_targets", type=int, default=5,
                   help="proj_targets per pbtxt: the frame itself plus other frames (default: %(default)s)")
    p.add_argument("--visibility", choices=("onscreen", "depth"), default="onscreen",
                   help="keypoint 'visible': on the image (KeyPose's meaning, for transparent objects) or on "
                        "the image and not occluded (depth test, 1%% tolerance) (default: %(default)s)")
    opts.add_output_flags(p, StereoConfig, output_dir="where the sequence folders go", name="dataset name",
                          preview="stereo pairs drawn into preview.png; 0 = none",
                          max_failure_rate="exit non-zero when the fraction of failed sequences exceeds this")
    return p


def config_from_args(args) -> StereoConfig:
    for flag in ("num_textures", "num_poses", "frames", "proj_targets"):
        if getattr(args, flag) <= 0:
            raise SystemExit(f"error: --{flag} must be > 0")
    for flag in ("focal", "baseline", "object_size", "plane_size"):
        if not getattr(args, flag) > 0:
            raise SystemExit(f"error: --{flag} must be > 0")
    if args.textures != GENERATED:
        if not os.path.isdir(args.textures):
            raise SystemExit(f"error: --textures: {args.textures} is not a folder (or use 'generated')")
        if not any(f.lower().endswith(PHOTO_EXTS) for f in os.listdir(args.textures)):
            raise SystemExit(f"error: --textures: no photos ({', '.join(PHOTO_EXTS)}) in {args.textures}")
    return StereoConfig(
        **opts.model_source_fields(args, "models"), keypoints=args.keypoints, textures=args.textures,
        num_textures=args.num_textures, num_poses=args.num_poses, frames=args.frames,
        image_size=tuple(args.image_size), focal=args.focal, baseline=args.baseline, object_size=args.object_size,
        plane_size=args.plane_size, proj_targets=args.proj_targets, visibility=args.visibility,
        **opts.output_fields(StereoConfig, args))


@dataclasses.dataclass(frozen=True)
class StereoPlan(skeleton.Plan):
    source: KeypointSource


def plan(config: StereoConfig) -> StereoPlan:
    """The objects and one task per (object, texture, pose)."""
    objects = list_objects(config)
    source = KeypointSource(config.keypoints or None)
    if not objects:
        raise skeleton.NoInput(f"{config.models}: no models found")
    tasks = [SequenceTask(f"{o.name}/texture_{t}_pose_{p}", o, t, p)
             for o in objects for t in range(config.num_textures) for p in range(config.num_poses)]
    return StereoPlan(config, tasks, {"objects": len(objects), "sequences": len(tasks)},
                      f"rendering {len(tasks)} sequences x {config.frames} frames of {len(objects)} objects into "
                      f"{config.output_dir}", source)


def work(plan: StereoPlan) -> skeleton.Work:
    """One unit per sequence; each writes its own folder and its summary goes to the journal."""
    units = [Unit(task.key, "", (task,), 1, final=task.key) for task in plan.tasks]
    return skeleton.Work(sorted(units, key=lambda u: u.key), RenderSequences(plan.config, plan.source),
                         lists=("items",), label="sequences")


def summary(config: StereoConfig) -> dict:
    return {"written": "frames_written",
            "counts": lambda c: (f"   objects {c['objects']}  sequences {c['sequences_written']}/{c['sequences_planned']}  "
                                 f"frames {c['frames_written']}")}


STEPS = skeleton.Steps(COMMAND, LOG, plan, work, write_metadata, summary=summary)


def run(argv=None) -> int:
    """Run the pipeline; returns the exit status (non-zero when failures exceed the limit)."""
    return skeleton.run(argv, build_parser(), config_from_args, STEPS, config_errors=(SystemExit, ValueError))


# gen_tfrecords' built-in input: the two demo cars (one KeyPose set has one keypoint count).
DEMO_SEQUENCE_FLAGS = ("--synsets", "car", "--frames", "4")


def cached_demo_sequences(cache_dir: str) -> str:
    """A folder of sequences rendered with :data:`DEMO_SEQUENCE_FLAGS`, made once under ``cache_dir``
    (``keypose_stereo_demo-<code hash>``: this module and :mod:`kpdata.keypose`), atomically renamed
    into place."""
    h = hashlib.sha256()
    for mod in (os.path.abspath(__file__), *sorted(glob.glob(os.path.join(os.path.dirname(keypose.__file__), "*.py")))):
        with open(mod, "rb") as f:
            h.update(f.read())
    target = os.path.join(cache_dir, f"keypose_stereo_demo-{h.hexdigest()[:12]}")
    if os.path.isfile(os.path.join(target, names.KPDATA_INFO)):
        return target
    os.makedirs(cache_dir, exist_ok=True)
    tmp = f"{target}.incomplete-{uuid.uuid4().hex[:8]}"
    rc = run(["--output_dir", tmp, "--preview", "0", *DEMO_SEQUENCE_FLAGS])
    if rc != 0:
        shutil.rmtree(tmp, ignore_errors=True)
        raise RuntimeError(f"rendering the demo stereo set failed (exit {rc})")
    try:
        os.replace(tmp, target)
    except OSError:  # another process finished first
        shutil.rmtree(tmp, ignore_errors=True)
    return target


if __name__ == "__main__":
    # Run the imported module, not __main__, so workers can unpickle its classes by name.
    from pipelines import render_stereo, run_command  # noqa: PLW0406
    run_command(render_stereo.run)
