"""Render ShapeNet models (or the built-in demo set) into a dataset of keypoint-labelled views.

    python -m pipelines.render_shapenet [flags] [Beam flags]

Graph: ListModels -> Reshuffle -> RenderViews (plans and renders each model's views) -> EncodeExamples
-> WriteShards,
with failures going to errors/failures.jsonl and metadata written last (WriteMetadata).
"""
from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import sys
import time

import apache_beam as beam

from kpdata import demo, geometry

from kpdata.sources import shapenet
from kpdata.camera import Intrinsics
from kpdata.errors import InputError
from kpdata.keypoints import KeypointSource
from kpdata.mesh import load_mesh
from kpdata.seeding import rng_for, split_of
from kpdata.viewpoints import UniformPrior, ViewpointTable
from pipelines import keypointnet, report, sinks
from pipelines import options as opts
from pipelines.workers import RendererDoFn
from renderers import RenderRequest
from schemas.view import VIEW, make_view_record

LOG = logging.getLogger("kpdata.render_shapenet")
DEMO = "demo"


@dataclasses.dataclass(frozen=True)
class RenderConfig:
    """Everything that decides the output; serialised into dataset_info.json."""

    shapenet_dir: str = DEMO
    synsets: tuple = ()
    keypoints: str = ""
    views_per_model: int = 8  # -1 = every row of the viewpoint file once, in order
    viewpoints: str = "uniform"
    image_size: tuple = (960, 540)
    focal: float = 1050.0
    format: str = "tfrecord"
    output_dir: str = "kpdata_out"
    name: str = "shapenet_views"
    num_shards: int = 0
    seed: int = 0
    splits: tuple = (("train", 1.0),)
    preview: int = 16
    max_failure_rate: float = 0.05
    visibility_tolerance: float = 0.01

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


def assign_split(config: RenderConfig, model: shapenet.ShapeNetModel) -> str:
    """Seeded split by model (all views of a model share a split)."""
    return split_of(config.seed, config.splits, model.key)


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


class RenderViews(RendererDoFn):
    """ModelTask -> rendered views (dicts of arrays); failures to the ``failed`` output.

    The renderer is created once per worker in ``setup`` and freed in ``teardown``; each model is
    loaded and uploaded once, then rendered from all its views.
    """

    def __init__(self, config: RenderConfig, keypoints: KeypointSource, table: ViewpointTable | None,
                 backend: str = "pyrender"):
        super().__init__(backend)
        self.config, self.keypoints, self.table = config, keypoints, table

    def process(self, task: ModelTask):
        model = task.model
        t0 = time.perf_counter()
        try:
            mesh = load_mesh(shapenet.require_obj(model))
            kps = self.keypoints.lookup(model.synset, model.model_id, model.model_dir)
        except InputError as e:
            beam.metrics.Metrics.counter("render_shapenet", "models_failed").inc()
            yield beam.pvalue.TaggedOutput("failed", sinks.failure_record(
                model.key, "load", e.error, e.message, e.path or model.model_dir))
            return
        handle = self.renderer.prepare(mesh)
        intr = self.config.intrinsics
        try:
            for spec in plan_views(task, self.config, self.table):
                cam_T_obj = geometry.viewpoint_to_cam_T_obj(spec.viewpoint)
                request = RenderRequest(intr, tuple(map(tuple, cam_T_obj)))
                out = self.renderer.render(handle, request, kps, self.config.visibility_tolerance)
                beam.metrics.Metrics.counter("render_shapenet", "views_rendered").inc()
                yield {"split": task.split, "key": spec.key, "synset": model.synset, "model_id": model.model_id,
                       "viewpoint": spec.viewpoint.as_array(), "K": intr.K, "cam_T_obj": cam_T_obj,
                       "names": kps.names, "xyz": kps.xyz, **out}
        finally:
            self.renderer.release(handle)
        yield beam.pvalue.TaggedOutput("timing", ("render", time.perf_counter() - t0))


def encode_view(view: dict, seed: int) -> tuple[str, str, bytes]:
    """A rendered view -> (split, key, serialized VIEW Example)."""
    rec = make_view_record(
        key=view["key"], synset=view["synset"], model_id=view["model_id"], seed=seed,
        rgba=view["rgba"], depth=view["depth"], K=view["K"], cam_T_obj=view["cam_T_obj"],
        viewpoint=view["viewpoint"], names=view["names"], uv=view["uv"], z=view["z"],
        xyz=view["xyz"], visible=view["visible"])
    return view["split"], view["key"], VIEW.encode(rec)


def write_metadata(_, config: RenderConfig, argv, shard_infos, failures, timings, planned: dict):
    out = config.output_dir
    splits = sinks.splits_info(shard_infos, config.format)
    written = sum(s["num_examples"] for s in splits.values())
    failed_models = sorted({f["key"] for f in failures if f["stage"] == "load"})
    sinks.write_json(os.path.join(out, sinks.FEATURES), VIEW.describe())
    sinks.write_json(os.path.join(out, sinks.DATASET_INFO), {
        "name": config.name, "version": VIEW.version, "record": VIEW.name, "splits": splits,
        "config": dataclasses.asdict(config), "seed": config.seed,
        "command": "python -m pipelines.render_shapenet " + " ".join(argv),
        "code_version": report.code_version(),
    })
    stats = {
        "counts": {"models": planned["models"], "views_planned": planned["views"],
                   "models_failed": len(failed_models), "records_written": written},
        "failures": sinks.failure_summary(failures),
        "failure_rate": (planned["views"] - written) / planned["views"] if planned["views"] else 0.0,
        "timings": {stage: round(sum(t for s, t in timings if s == stage), 3) for stage, _ in timings},
    }
    sinks.write_json(os.path.join(out, sinks.STATS), stats)
    return stats


def build_parser() -> argparse.ArgumentParser:
    from pipelines import clickhere  # imported here: clickhere imports this module
    p = argparse.ArgumentParser(prog="python -m pipelines.render_shapenet", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--layout", choices=("view", clickhere.LAYOUT, keypointnet.LAYOUT), default="view",
                   help="what to write: 'view' records; 'clickhere': Click-Here / Render for CNN instances "
                        "(crops over backgrounds, keypoint maps, viewpoint labels); 'keypointnet': KeypointNet "
                        "view pairs (one .tfrecord per model, projection.txt, train/dev/test.txt, job.txt) "
                        "(default: %(default)s)")
    p.add_argument("--shapenet_dir", default=DEMO,
                   help="ShapeNetCore v1 or v2 folder; 'demo' = the built-in demo set (default: %(default)s)")
    p.add_argument("--synsets", default="", help="comma-separated synset ids or names (default: all)")
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
    opts.add_output_flags(p, name="shapenet_views", max_failure_rate=0.05)
    clickhere.add_flags(p)
    keypointnet.add_flags(p)
    return p


def config_from_args(args) -> RenderConfig:
    if args.views_per_model == "all":
        if args.viewpoints == "uniform":
            raise SystemExit("--views_per_model all needs --viewpoints FILE (it renders every row once)")
        vpm = -1
    else:
        try:
            vpm = int(args.views_per_model)
        except ValueError:
            raise SystemExit(f"--views_per_model: expected an integer or 'all', got {args.views_per_model!r}") from None
        if vpm <= 0:
            raise SystemExit("--views_per_model must be > 0")
    if args.focal <= 0:
        raise SystemExit("--focal must be > 0")
    synsets = tuple(shapenet.synset_id(s) for s in args.synsets.split(",") if s.strip())
    return RenderConfig(
        shapenet_dir=args.shapenet_dir, synsets=synsets, keypoints=args.keypoints, views_per_model=vpm,
        viewpoints=args.viewpoints, image_size=tuple(args.image_size), focal=args.focal, format=args.format,
        output_dir=args.output_dir, name=args.name, num_shards=args.num_shards, seed=args.seed,
        splits=tuple(args.splits), preview=args.preview, max_failure_rate=args.max_failure_rate)


def run(argv=None) -> int:
    """Run the pipeline; returns the exit status (non-zero when failures exceed the limit)."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args, pipeline_options = opts.parse(parser, argv)
    from pipelines import clickhere  # imported here: clickhere imports this module
    given = opts.given_flags(parser, argv)
    for layout, own in ((clickhere.LAYOUT, clickhere.OWN_FLAGS), (keypointnet.LAYOUT, keypointnet.OWN_FLAGS)):
        wrong = sorted(set(own) & given)
        if wrong and args.layout != layout:
            parser.error(f"--layout {args.layout} does not take {', '.join('--' + w for w in wrong)} "
                         f"(flags of --layout {layout})")
    if args.layout == keypointnet.LAYOUT:
        return keypointnet.run(parser, args, argv, pipeline_options)
    config = config_from_args(args)
    if args.layout == clickhere.LAYOUT:
        return clickhere.run_layout(args, pipeline_options, argv, config)
    start = time.time()
    root = demo.demo_shapenet_dir() if config.shapenet_dir == DEMO else config.shapenet_dir
    try:
        models = shapenet.scan(root, config.synsets or None)
        source = KeypointSource(config.keypoints or None)
        table = None if config.viewpoints == "uniform" else ViewpointTable.from_file(config.viewpoints)
    except InputError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if not models:
        print(f"error: {root}: no ShapeNet models found (expected <synset>/<model_id>/model.obj "
              f"or .../models/model_normalized.obj)", file=sys.stderr)
        return 2
    per_model = len(table) if config.views_per_model < 0 else config.views_per_model
    tasks = [ModelTask(m, assign_split(config, m), per_model) for m in models]
    views_per_split = {name: 0 for name, _ in config.splits}
    for t in tasks:
        views_per_split[t.split] += t.num_views
    w, h = config.image_size
    shards = {s: (config.num_shards or sinks.auto_num_shards(n, w * h * 1.5)) for s, n in views_per_split.items()}
    planned = {"models": len(tasks), "views": sum(views_per_split.values())}
    if "://" not in config.output_dir:
        os.makedirs(config.output_dir, exist_ok=True)
    LOG.info("rendering %d views of %d models from %s into %s", planned["views"], planned["models"], root,
             config.output_dir)

    p = beam.Pipeline(options=pipeline_options)
    rendered = (p | "ListModels" >> beam.Create(tasks)
                | "Reshuffle" >> beam.Reshuffle()
                | "RenderViews" >> beam.ParDo(RenderViews(config, source, table)).with_outputs(
                    "failed", "timing", main="views"))
    records = rendered.views | "EncodeExamples" >> beam.Map(encode_view, config.seed)
    shard_infos = records | "WriteShards" >> sinks.WriteShards(config.output_dir, config.name, config.format, shards)
    failures = rendered.failed
    _ = failures | "WriteDeadLetters" >> sinks.WriteDeadLetters(config.output_dir)
    _ = (p | "Once" >> beam.Create([None])
         | "WriteMetadata" >> beam.Map(
             write_metadata, config, argv, beam.pvalue.AsList(shard_infos), beam.pvalue.AsList(failures),
             beam.pvalue.AsList(rendered.timing), planned))
    p.run().wait_until_finish()
    return report.finish(config.output_dir, config.max_failure_rate, config.preview, start)


if __name__ == "__main__":
    # Run the imported module, not __main__, so workers can unpickle its classes by name.
    from pipelines import render_shapenet  # noqa: PLW0406
    sys.exit(render_shapenet.run())
