"""What ``python -m pipelines.render_shapenet``'s layouts share, below them all.

* the configuration every layout reads (:class:`ShapeNetConfig`), the view layouts' render
  configuration (:class:`RenderConfig`) and their flags (:func:`add_flags`, :func:`render_config`);
* the models (the built-in demo set by default: :func:`list_models`, :func:`load_model`), one
  :class:`ModelTask` per model with its seeded split, and the views planned for it
  (:func:`plan_views`, keys from :func:`view_key`);
* the layout registry: each layout module (``view`` in :mod:`pipelines.render_shapenet`,
  :mod:`pipelines.clickhere`, :mod:`pipelines.keypointnet`) registers a :class:`Layout`, through
  which ``--layout`` dispatches.
"""
from __future__ import annotations

import argparse
import dataclasses
from typing import Any, Callable

from kpdata import geometry
from kpdata.camera import Intrinsics
from kpdata.keypoints import Keypoints3D, KeypointSource
from kpdata.mesh import LoadedMesh, load_mesh
from kpdata import seeding
from kpdata.seeding import rng_for
from kpdata.sources import meshes, shapenet
from kpdata.viewpoints import UniformPrior, ViewpointTable
from pipelines import options as opts
from pipelines import sinks
from pipelines.options import DEMO, OutputConfig, ShardedOutputConfig
from pipelines.skeleton import NoInput, Steps
from pipelines.stream import Unit

COMMAND = "pipelines.render_shapenet"
DEFAULT_LAYOUT = "view"


@dataclasses.dataclass(frozen=True)
class ShapeNetConfig(OutputConfig):
    """What every layout's configuration holds: the models (``shapenet_dir``, ``synsets``), their
    ``keypoints`` source, the image size (W, H) in pixels, the splits by model with fractions, and
    the keypoint visibility tolerance (``|z - depth|`` in model units), besides the output part."""

    shapenet_dir: str = DEMO
    mesh_dir: str = ""
    mesh_up: str = "y"
    synsets: tuple = ()
    keypoints: str = ""
    image_size: tuple = (960, 540)
    splits: tuple = (("train", 1.0),)
    visibility_tolerance: float = 0.01


@dataclasses.dataclass(frozen=True)
class RenderConfig(ShapeNetConfig, ShardedOutputConfig):
    """Everything that decides the output; serialised into kpdata_info.json."""

    views_per_model: int = 8  # -1 = every row of the viewpoint file once, in order
    viewpoints: str = "uniform"
    focal: float = 1050.0
    name: str = "shapenet_views"

    @property
    def intrinsics(self) -> Intrinsics:
        return Intrinsics.centered(self.image_size[0], self.image_size[1], self.focal)


@dataclasses.dataclass(frozen=True)
class ModelTask:
    """One model to render, with its split; views are planned on the worker."""

    model: shapenet.ShapeNetModel
    split: str
    num_views: int


@dataclasses.dataclass(frozen=True)
class ViewSpec:
    key: str
    viewpoint: geometry.Viewpoint


def view_key(model: shapenet.ShapeNetModel, index: int) -> str:
    return f"{model.synset}/{model.model_id}/v{index:06d}"


def assign_splits(config: RenderConfig, models) -> dict[str, str]:
    """{model key: split}: the plan-wide seeded split by model (all views of a model share a
    split; :func:`kpdata.seeding.assign_splits`). SplitError when a split would get no model."""
    return seeding.assign_splits(config.seed, config.splits, [m.key for m in models], "model")


def split_assignment(by: str, groups: dict[str, str]) -> dict:
    """kpdata_info.json's ``split_assignment``: ``by`` (model, photo) and {group: split}, sorted;
    validate checks every record's group against it."""
    return {"by": by, "groups": dict(sorted(groups.items()))}


def plan_views(task: ModelTask, config: RenderConfig, table: ViewpointTable | None) -> list[ViewSpec]:
    """The task's views: file rows in order (``views_per_model = -1``), or draws from the
    viewpoint source with each view's own generator ``rng_for(seed, key)``."""
    prior = UniformPrior()
    specs = []
    for i in range(task.num_views):
        key = view_key(task.model, i)
        if config.views_per_model < 0:
            vp = table.row(i)
        elif table is not None:
            vp = table.sample(rng_for(config.seed, key))
        else:
            vp = prior.sample(rng_for(config.seed, key))
        specs.append(ViewSpec(key, vp))
    return specs


def model_fields(args) -> dict:
    """``shapenet_dir``, ``mesh_dir``, ``mesh_up``, ``synsets`` (ids; ``--synsets`` takes ids or
    names; with ``--mesh_dir`` also category folder names) and ``keypoints`` from the shared flags
    (:func:`pipelines.options.model_source_fields`), as keyword arguments of a :class:`ShapeNetConfig`."""
    return {**opts.model_source_fields(args), "keypoints": args.keypoints}


def list_models(shapenet_dir: str, synsets: tuple, mesh_dir: str = "",
                mesh_up: str = "y") -> tuple[str, list[shapenet.ShapeNetModel]]:
    """(root, models) of ``--mesh_dir`` when given (:mod:`kpdata.sources.meshes`), else of
    ``--shapenet_dir`` ('demo' = the built-in demo set, 'demo:N' = it grown to N models),
    restricted to ``synsets`` when given; :class:`NoInput` when there is none."""
    if mesh_dir:
        models = meshes.scan(mesh_dir, synsets or None, mesh_up)
        if not models:
            raise NoInput(f"{mesh_dir}: no mesh files found (looked for {', '.join(meshes.MESH_EXTS)})")
        return mesh_dir, models
    root = opts.shapenet_root(shapenet_dir)
    models = shapenet.scan(root, synsets or None)
    if not models:
        raise NoInput(f"{root}: no ShapeNet models found (expected <synset>/<model_id>/model.obj "
                      f"or .../models/model_normalized.obj; for a folder of plain mesh files use --mesh_dir)")
    return root, models


def load_model(model: shapenet.ShapeNetModel, keypoints: KeypointSource) -> tuple[LoadedMesh, Keypoints3D]:
    """A model's mesh and its keypoints in the model frame (a ShapeNet model: the OBJ's own frame;
    a ``--mesh_dir`` model: normalised, :func:`kpdata.sources.meshes.file_to_model`); InputError
    for bad input."""
    if isinstance(model, meshes.MeshModel):
        return meshes.load(model)
    mesh = load_mesh(shapenet.require_obj(model))
    return mesh, keypoints.lookup(model.synset, model.model_id, model.model_dir)


def keypoint_plan(source: KeypointSource, models) -> tuple[tuple, dict]:
    """(dead letters, counts) of the keypoint annotations against the planned models: one dead
    letter (stage ``keypoints``) per malformed annotation entry (the others are used); counts
    ``models_with_keypoints`` and, for KeypointNet annotation files, ``annotations_unmatched``:
    entries naming no planned model (absent from the folder, or outside ``--synsets``)."""
    failures = tuple(sinks.failure_record(getattr(e, "key", "") or source.path, "keypoints", e.error, e.message,
                                          e.path or source.path) for e in source.problems)
    counts = {"models_with_keypoints": sum(source.has(m.synset, m.model_id, m.model_dir) for m in models)}
    annotated = source.annotated
    if annotated or source.problems:
        counts["annotations_unmatched"] = len(annotated - {(m.synset, m.model_id) for m in models})
    return failures, counts


KEYPOINT_COUNTS = ("models_with_keypoints", "annotations_unmatched")


def keypoint_counts(planned: dict) -> dict:
    """The counts of :func:`keypoint_plan` among a plan's counts, for stats.json."""
    return {k: planned[k] for k in KEYPOINT_COUNTS if k in planned}


def model_tasks(config: RenderConfig, models, num_views: int) -> tuple[list[ModelTask], dict[str, int]]:
    """One task of ``num_views`` views per model, with its seeded split; and the views per split."""
    split_of = assign_splits(config, models)
    tasks = [ModelTask(m, split_of[m.key], num_views) for m in models]
    views_per_split = {name: 0 for name, _ in config.splits}
    for t in tasks:
        views_per_split[t.split] += t.num_views
    return tasks, views_per_split


def model_units(tasks: list[ModelTask]) -> list[Unit]:
    """One work unit per model task (key: the model's key), planned items: its views."""
    return [Unit(t.model.key, t.split, (t,), t.num_views) for t in tasks]


# ------------------------------------------------------------------------------------ flags


def add_flags(p: argparse.ArgumentParser) -> None:
    """The flags every layout reads (a layout may refuse some), and the output group."""
    opts.add_model_source_flags(p)
    p.add_argument("--keypoints", default="",
                   help="Click-Here keypoints folder, or a KeypointNet annotation file or folder "
                        "(default: none; a model folder's own keypoints.json is always used)")
    p.add_argument("--views_per_model", default="8",
                   help="views per model, or 'all' = every row of --viewpoints once, in order (default: %(default)s)")
    p.add_argument("--viewpoints", default="uniform",
                   help="'uniform' (the built-in prior) or a file of 'azimuth elevation tilt distance' lines "
                        "(default: %(default)s)")
    p.add_argument("--image_size", type=opts.image_size, default=(960, 540), help="WxH (default: 960x540)")
    p.add_argument("--focal", type=float, default=1050.0, help="focal length in pixels (default: %(default)s)")
    p.add_argument("--splits", type=opts.splits, default=(("train", 1.0),),
                   help="splits by model with fractions, e.g. train=0.9,test=0.1 (default: train=1)")
    opts.add_output_flags(p, RenderConfig)


def render_config(args) -> RenderConfig:
    """The shared flags -> :class:`RenderConfig` (SystemExit on a bad value)."""
    if args.views_per_model == "all":
        if args.viewpoints == "uniform":
            raise SystemExit("error: --views_per_model all needs --viewpoints FILE (it renders every row once)")
        vpm = -1
    else:
        try:
            vpm = int(args.views_per_model)
        except ValueError:
            raise SystemExit(f"error: --views_per_model: expected an integer or 'all', got {args.views_per_model!r}") from None
        if vpm <= 0:
            raise SystemExit("error: --views_per_model must be > 0 (or 'all' with --viewpoints FILE)")
    if args.focal <= 0:
        raise SystemExit("error: --focal must be > 0")
    return RenderConfig(
        views_per_model=vpm, viewpoints=args.viewpoints, image_size=tuple(args.image_size), focal=args.focal,
        splits=tuple(args.splits), **model_fields(args), **opts.output_fields(RenderConfig, args))


# ------------------------------------------------------------------------------------ layouts


@dataclasses.dataclass(frozen=True)
class Layout:
    """One ``--layout`` of render_shapenet.

    ``add_flags(parser)``: the layout's own flag group (None: none); ``own_flags``: their
    destinations, refused with any other layout; ``config_from_args(parser, args, argv)``: the
    layout's configuration; ``steps``: the rest of its run (:class:`pipelines.skeleton.Steps`)."""

    name: str
    config_from_args: Callable[[argparse.ArgumentParser, argparse.Namespace, list], Any]
    steps: Steps
    add_flags: Callable[[argparse.ArgumentParser], None] | None = None
    own_flags: tuple = ()


LAYOUTS: dict[str, Layout] = {}


def register(layout: Layout) -> Layout:
    """Add ``layout`` to the registry (a layout module does this when imported)."""
    if layout.name in LAYOUTS:
        raise ValueError(f"layout {layout.name!r} is registered twice")
    LAYOUTS[layout.name] = layout
    return layout


def layouts() -> list[Layout]:
    """The registered layouts: the default first, then by name."""
    return [LAYOUTS[n] for n in sorted(LAYOUTS, key=lambda n: (n != DEFAULT_LAYOUT, n))]
