"""``render_shapenet --layout keypointnet``: KeypointNet view pairs (formats.md §1).

Work: one unit per model (:mod:`pipelines.stream`): RenderPairs loads, normalises and renders the
model's pairs, each encoded (:func:`encode_pair`) and streamed into the model's own ``.tfrecord``;
failures to ``errors/failures.jsonl``; the driver writes ``projection.txt``, ``train.txt``,
``dev.txt``, ``test.txt``, ``job.txt`` and kpdata's own metadata last. The folder holds nothing
else: KeypointNet trains on every ``.tfrecord`` in it (a used folder is refused unless the same
command resumes, or ``--overwrite``).

The layout registers itself with :mod:`pipelines.shapenet_views`: its flags join render_shapenet's
parser (:func:`add_flags`), and ``--layout keypointnet`` runs :data:`STEPS` on the configuration of
:func:`config_from_args`.
"""
from __future__ import annotations

import argparse
import dataclasses
import functools
import logging
import os

import numpy as np

from kpdata import geometry, seeding

from kpdata.sources import shapenet
from kpdata import keypointnet as kpn
from kpdata.camera import Intrinsics
from kpdata.errors import InputError
from kpdata.keypoints import KeypointSource, label_keypoints
from kpdata.mesh import LoadedMesh
from kpdata.seeding import rng_for
from pipelines import shapenet_views, skeleton, sinks
from pipelines import options as opts
from pipelines.shapenet_views import COMMAND, ShapeNetConfig
from pipelines.stream import Unit
from pipelines.workers import EMPTY_VIEW, RendererDoFn
from renderers import Light, RenderRequest
from schemas.dataset.names import KEYPOINTNET_JOB as JOB_FILE, KEYPOINTNET_PROJECTION as PROJECTION_FILE
from schemas.dataset.names import KEYPOINTNET_SPLITS as SPLIT_NAMES, TFRECORD_EXT as RECORD_EXT, split_list
from schemas.keypointnet import make_pair_record, schema

LOG = logging.getLogger("kpdata.render_shapenet.keypointnet")
LAYOUT = "keypointnet"
DEFAULT_SPLITS = (("train", 0.8), ("dev", 0.1), ("test", 0.1))
DEFAULT_IMAGE_SIZE = (128, 128)
DEFAULT_NAME = "keypointnet_pairs"
# Flags of this layout only, and render_shapenet flags that do not apply to it.
OWN_FLAGS = ("pairs_per_model", "fov", "distance", "perturb", "roll", "jitter", "extras")
VIEW_ONLY_FLAGS = ("views_per_model", "viewpoints", "focal", "num_shards")


@dataclasses.dataclass(frozen=True)
class PairConfig(ShapeNetConfig):
    """Everything that decides the output; serialised into kpdata_info.json."""

    pairs_per_model: int = 16
    image_size: tuple = DEFAULT_IMAGE_SIZE
    fov: float = kpn.DEFAULT_FOV
    distance: float = kpn.DEFAULT_DISTANCE
    perturb: float = 0.0
    roll: bool = False
    jitter: float = kpn.DEFAULT_JITTER
    light_intensity: float = 1.0
    extras: bool = True
    name: str = DEFAULT_NAME
    splits: tuple = DEFAULT_SPLITS
    # Visibility: |z - depth| <= tolerance, in object units (largest extent 2).
    visibility_tolerance: float = 0.05

    @property
    def intrinsics(self) -> Intrinsics:
        return kpn.intrinsics(self.fov, self.image_size[0], self.image_size[1])

    def projection(self) -> np.ndarray:
        # Near/far bracket the object (radius <= sqrt(3)) and the jitter; KeypointNet reads only
        # p[0, 0] and p[1, 1].
        return kpn.projection_matrix(self.fov, max(self.distance - 4.0, self.distance / 2.0), self.distance + 4.0)


@dataclasses.dataclass(frozen=True)
class PairTask:
    model: shapenet.ShapeNetModel
    split: str
    num_pairs: int


def record_name(model: shapenet.ShapeNetModel) -> str:
    """A model's record file name without extension (the line in train/dev/test.txt)."""
    return f"{model.synset}_{model.model_id}"


def pair_key(model: shapenet.ShapeNetModel, index: int) -> str:
    return f"{model.synset}/{model.model_id}/p{index:06d}"


def assign_splits(seed: int, splits, models, strict: bool = True) -> dict[str, str]:
    """Seeded split by model: {model key: split} (:func:`kpdata.seeding.assign_splits`: largest
    remainder, at least one model in every split of non-zero fraction: KeypointNet's evaluation
    reads dev.txt and needs a file in it). Too few models for the splits: SplitError when
    ``strict`` (the user gave --splits), else the default splits are filled as far as they go."""
    return seeding.assign_splits(seed, splits, [m.key for m in models], "model", strict)


# ------------------------------------------------------------------------------------ flags


def add_flags(parser: argparse.ArgumentParser) -> None:
    """This layout's flags (render_shapenet's shared flags apply too)."""
    g = parser.add_argument_group("--layout keypointnet")
    g.add_argument("--pairs_per_model", type=int, default=16,
                   help="KeypointNet: view pairs (Examples) per model (default: %(default)s)")
    g.add_argument("--fov", type=float, default=kpn.DEFAULT_FOV,
                   help="KeypointNet: field of view in degrees; projection.txt holds cot(fov/2) "
                        "(default: %(default)s)")
    g.add_argument("--distance", type=float, default=kpn.DEFAULT_DISTANCE,
                   help="KeypointNet: camera distance from the object centre (default: %(default)s)")
    g.add_argument("--perturb", type=float, default=0.0,
                   help="KeypointNet: 0 = view 1 independent of view 0; > 0 = view 1 is view 0's "
                        "direction moved by up to this (unit-sphere units) (default: %(default)s)")
    g.add_argument("--roll", action="store_true", default=False,
                   help="KeypointNet: roll each camera by U(-90, 90) degrees (default: off)")
    g.add_argument("--jitter", type=float, default=kpn.DEFAULT_JITTER,
                   help="KeypointNet: camera-location jitter, U(-j, j) per axis (default: %(default)s)")
    g.add_argument("--extras", choices=("all", "none"), default="all",
                   help="KeypointNet: 'all' adds key, ids, seed, viewpoints and keypoints to each "
                        "Example; 'none' writes only the original six features (default: %(default)s)")


def config_from_args(parser: argparse.ArgumentParser, args, argv) -> PairConfig:
    given = opts.given_flags(parser, argv)
    wrong = sorted(set(VIEW_ONLY_FLAGS) & given)
    if wrong:
        parser.error(f"--layout keypointnet does not take {', '.join('--' + w for w in wrong)}: it writes one "
                     f".tfrecord per model; the camera is set by --fov, --distance, --perturb, --roll, --jitter")
    if args.format != "tfrecord":
        parser.error("--layout keypointnet writes TFRecord files (KeypointNet reads nothing else); drop --format lmdb")
    size = tuple(args.image_size) if "image_size" in given else DEFAULT_IMAGE_SIZE
    if size[0] != size[1]:
        parser.error(f"--layout keypointnet needs square images (KeypointNet's pixel grid), got {size[0]}x{size[1]}")
    splits = tuple(args.splits) if "splits" in given else DEFAULT_SPLITS
    bad = [n for n, _ in splits if n not in SPLIT_NAMES]
    if bad:
        parser.error(f"--layout keypointnet splits are train, dev and test, got {', '.join(bad)}")
    if args.pairs_per_model <= 0:
        parser.error("--pairs_per_model must be > 0")
    if not 0 < args.fov < 180:
        parser.error("--fov must be in (0, 180) degrees")
    if not args.distance > 0:
        parser.error("--distance must be > 0")
    if args.perturb < 0 or args.jitter < 0:
        parser.error("--perturb and --jitter must be >= 0")
    return PairConfig(
        pairs_per_model=args.pairs_per_model, image_size=size, fov=args.fov, distance=args.distance,
        perturb=args.perturb, roll=bool(args.roll), jitter=args.jitter, extras=args.extras == "all",
        splits=splits, **shapenet_views.model_fields(args),
        **{**opts.output_fields(PairConfig, args), "name": args.name if "name" in given else DEFAULT_NAME})


# ------------------------------------------------------------------------------------ rendering


def normalized_mesh(mesh: LoadedMesh) -> tuple[LoadedMesh, np.ndarray, float]:
    """The mesh moved into the object frame (centred, largest extent 2): (mesh, center, scale)."""
    try:
        center, s = kpn.normalization(mesh.bounds)
    except ValueError as e:
        raise InputError("degenerate_mesh", str(e), mesh.path) from None
    scene = mesh.scene.copy()
    scene.apply_transform(kpn.obj_T_model(center, s))
    return LoadedMesh(mesh.path, scene, np.array(scene.bounds, dtype=np.float64), mesh.num_faces), center, s


_DOWN_OBJ = geometry.invert_transform(geometry.world_T_obj_shapenet())[:3, :3] @ np.array([0.0, 0.0, -1.0])


def view_request(config: PairConfig, view: kpn.PairView) -> RenderRequest:
    """The render request of one camera of a pair: KeypointNet's sky light, no ambient."""
    sky = Light("hemisphere", intensity=config.light_intensity,
                direction=tuple(float(x) for x in view.cam_T_obj[:3, :3] @ _DOWN_OBJ))
    return RenderRequest(config.intrinsics, tuple(map(tuple, view.cam_T_obj)), lights=(sky,), ambient=(0.0, 0.0, 0.0))


def view_output(config: PairConfig, view: kpn.PairView, out: dict, xyz) -> dict:
    """One camera of a pair from its render ``out``: ``rgba`` (KeypointNet's silhouette image),
    ``depth`` (H, W) float32 z-depth, and for ``xyz`` (K, 3, object frame) ``uv`` (K, 2) pixels and
    ``visible``."""
    if not out["mask"].any():  # the pair's model fails (stage render): no record shows an empty view
        raise InputError("empty_view", EMPTY_VIEW)
    labels = label_keypoints(config.intrinsics.K, view.cam_T_obj, xyz, out["depth"], 0.0, config.visibility_tolerance)
    return {"rgba": kpn.silhouette_rgba(out["rgba"], out["depth"]), "depth": out["depth"],
            "uv": labels.uv, "visible": labels.visible}


def render_pairs(renderer, handle, task: PairTask, config: PairConfig, center, scale, names, xyz_obj):
    """Yield the rendered pairs of one prepared model (``xyz_obj``: (K, 3) keypoints, OBJ frame).
    The cameras are rendered through ``renderer.render_many``: the next is rasterised while one is
    labelled and handed on."""
    model = task.model
    xyz = (np.asarray(xyz_obj, dtype=np.float64).reshape(-1, 3) - center) * scale
    pairs = []
    for i in range(task.num_pairs):
        key = pair_key(model, i)
        pairs.append((key, kpn.sample_pair(rng_for(config.seed, key), config.distance, config.perturb, config.roll,
                                           config.jitter)))
    rendered = renderer.render_many(handle, (view_request(config, v) for _, views in pairs for v in views))
    for key, (v0, v1) in pairs:
        r0 = view_output(config, v0, next(rendered), xyz)
        r1 = view_output(config, v1, next(rendered), xyz)
        yield {"split": task.split, "file": record_name(model), "key": key, "synset": model.synset,
               "model_id": model.model_id, "views": (v0, v1), "renders": (r0, r1), "center": center,
               "scale": scale, "names": tuple(names), "xyz": xyz}


class RenderPairs(RendererDoFn):
    """PairTask -> rendered pairs; failures to the ``failed`` output, timings to ``timing``."""

    def __init__(self, config: PairConfig, keypoints: KeypointSource, backend: str = "pyrender"):
        super().__init__(config.image_size, backend)
        self.config, self.keypoints = config, keypoints

    def load(self, task: PairTask):
        model = task.model
        mesh, kps = shapenet_views.load_model(model, self.keypoints)
        mesh, center, scale = normalized_mesh(mesh)
        return mesh, center, scale, kps

    def render(self, task: PairTask, loaded):
        mesh, center, scale, kps = loaded
        with self.prepared(mesh) as handle:
            for pair in render_pairs(self.renderer, handle, task, self.config, center, scale, kps.names, kps.xyz):
                self.count("pairs_rendered")
                yield pair


def encode_pair(pair: dict, config: PairConfig) -> list[tuple[str, bytes]]:
    """A rendered pair -> [(key, serialized Example)]."""
    v0, v1 = pair["views"]
    r0, r1 = pair["renders"]
    extras = None
    if config.extras:
        extras = {"key": pair["key"], "synset": pair["synset"], "model_id": pair["model_id"], "seed": config.seed,
                  "viewpoint0": v0.viewpoint.as_array(), "viewpoint1": v1.viewpoint.as_array(),
                  "object/center": pair["center"], "object/scale": pair["scale"], "keypoints/names": pair["names"],
                  "keypoints/xyz": pair["xyz"], "keypoints/uv0": r0["uv"], "keypoints/visible0": r0["visible"],
                  "keypoints/uv1": r1["uv"], "keypoints/visible1": r1["visible"]}
    rec = make_pair_record(img0=r0["rgba"], img1=r1["rgba"], mv0=v0.mv, mv1=v1.mv, extras=extras)
    return [(pair["key"], schema(config.extras).encode(rec))]


# ------------------------------------------------------------------------------------ metadata


def write_metadata(_, config: PairConfig, command, planned: dict, failures, timings, file_infos):
    """Writes projection.txt, train/dev/test.txt, job.txt (KeypointNet's files) and kpdata's metadata."""
    out = config.output_dir
    infos = sorted(({**d, "name": d["file"][:-len(RECORD_EXT)]} for d in file_infos), key=lambda d: d["file"])
    shard_infos = [dict(d, index=i) for i, d in enumerate(infos)]
    splits = sinks.splits_info(shard_infos, "tfrecord")
    for split in SPLIT_NAMES:
        names = [d["name"] for d in infos if d["split"] == split]
        sinks.write_text(os.path.join(out, split_list(split)), "".join(n + "\n" for n in names))
    sinks.write_text(os.path.join(out, JOB_FILE), "".join(
        f"{d['name']} {d['name'].split('_', 1)[0]} {d['name'].split('_', 1)[1]}\n" for d in infos))
    sinks.write_text(os.path.join(out, PROJECTION_FILE), kpn.format_projection(config.projection()))
    written = sum(d["examples"] for d in infos)
    failed_models = {f["key"] for f in failures if f["stage"] in ("load", "render")}
    rec_schema = schema(config.extras)
    return skeleton.write_dataset_files(
        config, config, command, schema=rec_schema,
        info={"version": rec_schema.version, "record": rec_schema.name, "layout": LAYOUT, "splits": splits,
              "intrinsics": dataclasses.asdict(config.intrinsics), "split_assignment": planned["split_assignment"]},
        counts={"models": planned["models"], "views_planned": planned["pairs"], "pairs_planned": planned["pairs"],
                "models_failed": len(failed_models), "records_written": written,
                **shapenet_views.keypoint_counts(planned)},
        failures=failures, failure_rate=skeleton.rate(planned["pairs"] - written, planned["pairs"]), timings=timings)


# ------------------------------------------------------------------------------------ run


@dataclasses.dataclass(frozen=True)
class PairPlan(skeleton.Plan):
    source: KeypointSource
    failures: tuple = ()


def plan(config: PairConfig) -> PairPlan:
    """The models, one task each with its split."""
    root, models = shapenet_views.list_models(config.shapenet_dir, config.synsets, config.mesh_dir, config.mesh_up)
    source = KeypointSource(config.keypoints or None)
    split_of = assign_splits(config.seed, config.splits, models, strict=config.splits != DEFAULT_SPLITS)
    tasks = [PairTask(m, split_of[m.key], config.pairs_per_model) for m in models]
    kp_failures, kp_counts = shapenet_views.keypoint_plan(source, models)
    counts = {"models": len(tasks), "pairs": len(tasks) * config.pairs_per_model, **kp_counts,
              "split_assignment": shapenet_views.split_assignment("model", split_of)}
    return PairPlan(config, tasks, counts, f"rendering {counts['pairs']} KeypointNet pairs of {counts['models']} "
                                           f"models from {root} into {config.output_dir}", source, kp_failures)


def work(plan: PairPlan) -> skeleton.Work:
    """One unit per model, written straight into its ``<synset>_<model_id>.tfrecord``."""
    units = [Unit(t.model.key, t.split, (t,), t.num_pairs, final=record_name(t.model) + RECORD_EXT)
             for t in plan.tasks]
    return skeleton.Work(sorted(units, key=lambda u: u.key), RenderPairs(plan.config, plan.source),
                         functools.partial(encode_pair, config=plan.config), label="pairs",
                         plan_failures=plan.failures)


def summary(config: PairConfig) -> dict:
    return {"counts": lambda c: f"   models {c['models']}  pairs planned {c['pairs_planned']}  written {c['records_written']}"}


STEPS = skeleton.Steps(COMMAND, LOG, plan, work, write_metadata, summary=summary)
shapenet_views.register(shapenet_views.Layout(LAYOUT, config_from_args, STEPS, add_flags, OWN_FLAGS))
