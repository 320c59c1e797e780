"""``render_shapenet --layout clickhere``: Click-Here CNN / Render for CNN training data.

Work: one unit per model (:mod:`pipelines.stream`): RenderClickHereViews (per view: viewpoint,
random lights, render, truncation crop, background overlay, JPEG, keypoint labels -> one compact
``clickhere_view`` record) streams into the model's part what the output layout stores:

* ``--format lmdb``: each view's instances as Caffe Datums (:func:`caffe_records`), assembled per
  split into Click-Here's layout
  (``<split>/<field>_lmdb``, one LMDB per field, identical sorted key sets, Caffe ``Datum``
  values; ``keys.txt``; ``views.jsonl``);
* ``--format tfrecord``: one ``clickhere_instance`` Example per instance (:func:`instance_records`),
  assembled into shards sorted by instance key;
* ``--compact`` (either format): the compact records themselves.

The full layouts are expanded from the compact records by :func:`schemas.clickhere.expand`, so
every layout holds the same instances with the same arrays.
"""
from __future__ import annotations

import argparse
import dataclasses
import itertools
import logging
import os

import apache_beam as beam
import numpy as np

from kpdata import clickhere as ch
from kpdata import geometry
from kpdata.clickhere import imageops
from kpdata.clickhere import kde
from kpdata.clickhere import keypoint_maps as km
from kpdata.errors import InputError
from kpdata.keypoints import KeypointSource
from kpdata.clickhere.lighting import R4CNNLighting
from kpdata.seeding import rng_for
from kpdata.viewpoints import ViewpointTable, read_viewpoint_file
from pipelines import clickhere_box, shapenet_views, skeleton, sinks, stream
from pipelines import options as opts
from pipelines.shapenet_views import COMMAND, ModelTask, RenderConfig, load_model, plan_views
from pipelines.workers import EMPTY_VIEW, RendererDoFn, failure_stage
from renderers import RenderRequest
from renderers.fake import mesh_vertices
from renderers.lighting import to_render_lights
from schemas import clickhere as chs
from schemas.dataset import caffe_lmdb
from schemas.dataset.names import DROPPED_FILE
from schemas.dataset import names

LOG = logging.getLogger("kpdata.render_shapenet.clickhere")
CAFFE_FORMAT = "clickhere_lmdb"
TRUNCATION_DEFAULT = "default"
LAYOUT = "clickhere"
OWN_FLAGS = ("backgrounds", "background_ratio", "truncations", "keypoint_classes", "compact", "flip_splits",
             "clickhere_render")


def add_flags(p) -> None:
    """The layout's flags (used only with ``--layout clickhere``)."""
    g = p.add_argument_group("clickhere layout (--layout clickhere)")
    g.add_argument("--backgrounds", default="none",
                   help="folder of background photos (filelist.txt or every image file); 'none' = uniform "
                        "gray only (default: %(default)s)")
    g.add_argument("--background_ratio", type=opts.fraction, default=imageops.BACKGROUND_RATIO,
                   help="probability of a photo background, else uniform gray (default: %(default)s)")
    g.add_argument("--truncations", default=TRUNCATION_DEFAULT,
                   help="'default' (N(0, 0.1) clipped to +-0.5 per side), 'none' (tight box), a "
                        "'left right top bottom' file, or a truncation_distribution folder of <class>.txt "
                        "(default: %(default)s)")
    g.add_argument("--keypoint_classes", default="clickhere34",
                   help="'clickhere34' or a file of <class>_<keypoint> lines (default: %(default)s)")
    g.add_argument("--compact", action="store_true",
                   help="write compact records (JPEG crop + sparse labels) instead of the full maps")
    g.add_argument("--flip_splits", default="train",
                   help="comma-separated splits that get the flipped _r copies; 'none' = none (default: %(default)s)")
    g.add_argument("--clickhere_render", choices=clickhere_box.MODES, default="full",
                   help="'full': render the whole image, crop the object's box, resize it to 227x227 at "
                        "expansion (Render for CNN's chain, exact); 'box': render the box directly at 227x227 "
                        "(faster; same boxes and keypoint maps, images differ by anti-aliasing: "
                        "docs/performance.md) (default: %(default)s)")


@dataclasses.dataclass(frozen=True)
class ClickHereConfig:
    """Everything that decides a clickhere output; serialised into kpdata_info.json."""

    render: RenderConfig
    backgrounds: str = ""
    background_ratio: float = imageops.BACKGROUND_RATIO
    truncations: str = TRUNCATION_DEFAULT
    keypoint_classes: str = "clickhere34"
    compact: bool = False
    flip_splits: tuple = ("train",)
    jpeg_quality: int = imageops.JPEG_QUALITY
    crop_render: str = "full"


def config_from_args(parser: argparse.ArgumentParser, args, argv) -> ClickHereConfig:
    """The shared flags (:func:`pipelines.shapenet_views.render_config`) and this layout's."""
    render = shapenet_views.render_config(args)
    flips = () if args.flip_splits.strip() in ("", "none") else tuple(
        s.strip() for s in args.flip_splits.split(",") if s.strip())
    return ClickHereConfig(render=render, backgrounds="" if args.backgrounds == "none" else args.backgrounds,
                           background_ratio=args.background_ratio,
                           truncations=args.truncations, keypoint_classes=args.keypoint_classes,
                           compact=bool(args.compact), flip_splits=flips, crop_render=args.clickhere_render)


# ----------------------------------------------------------------------------------------------
# Sources of viewpoints and truncations (per class when given as folders)
# ----------------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Sources:
    """Viewpoint and truncation tables per R4CNN class ('' = every class)."""

    viewpoints: dict      # class -> ViewpointTable
    truncations: dict     # class -> kde.SampleTable; empty with 'none' / 'default'
    truncation_mode: str  # 'table' | 'default' | 'none'

    def viewpoint_table(self, cls: str):
        return self.viewpoints.get(cls, self.viewpoints.get(""))

    def truncation(self, cls: str, rng: np.random.Generator):
        if self.truncation_mode == "none":
            return None
        if self.truncation_mode == "default":
            return np.clip(rng.normal(0.0, kde.TRUNCATION_SIGMA, 4), -kde.TRUNCATION_CLIP, kde.TRUNCATION_CLIP)
        table = self.truncations.get(cls, self.truncations.get(""))
        if table is None:
            raise InputError("missing_truncations", f"no truncation distribution for class {cls!r}",
                             f"{cls}.txt")
        return table.draw(rng)


def _per_class(folder: str, reader) -> dict:
    out = {}
    for name in sorted(os.listdir(folder)):
        stem, ext = os.path.splitext(name)
        if ext == ".txt" and stem in kde.R4CNN_CLASSES:
            out[stem] = reader(os.path.join(folder, name))
    if not out:
        raise InputError("missing_distribution", f"no <class>.txt files of the classes {', '.join(kde.R4CNN_CLASSES)}",
                         folder)
    return out


def load_sources(config: ClickHereConfig) -> Sources:
    v = config.render.viewpoints
    if v != "uniform" and os.path.isdir(v):
        views = _per_class(v, lambda p: ViewpointTable(tuple(map(tuple, read_viewpoint_file(p).tolist()))))
    else:
        views = {}
    t = config.truncations
    if t in ("none", TRUNCATION_DEFAULT):
        return Sources(views, {}, t)
    if os.path.isdir(t):
        return Sources(views, _per_class(t, lambda p: kde.SampleTable(kde.read_table(p))), "table")
    return Sources(views, {"": kde.SampleTable(kde.read_table(t))}, "table")


def load_class_table(spec: str) -> ch.KeypointClassTable:
    return ch.KeypointClassTable.clickhere34() if spec == "clickhere34" else ch.KeypointClassTable.from_file(spec)


# ----------------------------------------------------------------------------------------------
# Rendering and composing views
# ----------------------------------------------------------------------------------------------

class RenderClickHereViews(RendererDoFn):
    """ModelTask -> (split, view key, compact record bytes); failures to ``failed`` (stage
    ``load``, ``label`` or ``compose``), views without a keypoint left to ``dropped``, counters
    to ``counts`` as (name, n)."""

    def __init__(self, config: ClickHereConfig, keypoints: KeypointSource, table, sources: Sources,
                 classes: ch.KeypointClassTable, backend: str = "pyrender"):
        super().__init__(config.render.image_size, backend)
        self.config, self.keypoints, self.table, self.sources, self.classes = config, keypoints, table, sources, classes
        self.picker = None
        self.vertices = None  # (N, 3) of the model, for --clickhere_render box

    def setup(self):
        super().setup()
        self.picker = imageops.BackgroundPicker(self.config.backgrounds, self.config.background_ratio)

    def load(self, task: ModelTask):
        mesh, kps = load_model(task.model, self.keypoints)
        with failure_stage("label"):
            cls_name = kde.class_of_synset(task.model.synset)
        if self.config.crop_render == "box":
            with failure_stage("load"):
                self.vertices = mesh_vertices(mesh)
        return mesh, kps, cls_name

    def render(self, task: ModelTask, loaded):
        (mesh, kps, cls_name), model, cfg = loaded, task.model, self.config.render
        intr = cfg.intrinsics
        class_table = self.sources.viewpoint_table(cls_name)
        views = []  # each view's own generator draws its lamps now, the rest of its draws after its render
        for index, spec in enumerate(plan_views(task, cfg, self.table)):
            rng = rng_for(cfg.seed, "clickhere/" + spec.key)
            vp = spec.viewpoint if class_table is None else class_table.sample(rng_for(cfg.seed, spec.key))
            views.append((index, spec, vp, rng, *self._request(vp, intr, rng)))
        with self.prepared(mesh) as handle:
            if self.config.crop_render == "box":
                rendered = itertools.repeat(None)
            else:  # the next view is rasterised while this one is composed
                rendered = self.renderer.render_many(handle, (v[-1] for v in views), kps, cfg.visibility_tolerance)
            for (index, spec, vp, rng, lighting, request), out in zip(views, rendered):
                try:
                    record = self._view(model, cls_name, index, spec.key, vp, task.split, handle, kps, rng, lighting,
                                        request, out)
                except InputError as e:
                    yield beam.pvalue.TaggedOutput("failed", sinks.failure_record(
                        spec.key, getattr(e, "stage", None) or "compose", e.error, e.message, e.path))
                    continue
                for name, kind, message, path in self.picker.reports():
                    yield beam.pvalue.TaggedOutput("backgrounds", sinks.failure_record(
                        name, "background", kind, message, path))
                counts, rec, dropped = record
                for item in counts:
                    yield beam.pvalue.TaggedOutput("counts", item)
                if rec is not None:
                    yield task.split, spec.key, chs.CLICKHERE_VIEW.encode(rec)
                else:
                    yield beam.pvalue.TaggedOutput("dropped", sinks.failure_record(
                        spec.key, "crop", "no_visible_keypoint", dropped, model.model_dir))

    @staticmethod
    def _request(vp, intr, rng) -> tuple[R4CNNLighting, RenderRequest]:
        """A view's lamps (drawn from its generator ``rng``) and its render request."""
        lighting = R4CNNLighting.sample(rng)
        lights, ambient = to_render_lights(lighting, geometry.viewpoint_to_cam_T_world(vp))
        cam_T_obj = geometry.viewpoint_to_cam_T_obj(vp)
        return lighting, RenderRequest(intr, tuple(map(tuple, cam_T_obj)), lights=lights, ambient=ambient)

    def _view(self, model, cls_name, index, key, vp, split, handle, kps, rng, lighting, request, out):
        """One view's compact record from its render ``out`` (``renderer.render``'s dict; None with
        ``--clickhere_render box``, which renders here)."""
        cfg, counts = self.config.render, [("views_rendered", 1)]
        if self.config.crop_render == "box":
            box, sample, truncation = clickhere_box.render_view(
                self.renderer, handle, request, kps, cfg.visibility_tolerance, self.vertices,
                lambda: self.sources.truncation(cls_name, rng), kps.names, self.picker, rng,
                self.config.jpeg_quality, km.CROP_SIZE)
            if box.tight is None:
                with failure_stage("render"):
                    raise InputError("empty_view", EMPTY_VIEW, model.model_dir)
        else:
            if not out["mask"].any():
                with failure_stage("render"):
                    raise InputError("empty_view", EMPTY_VIEW, model.model_dir)
            truncation = self.sources.truncation(cls_name, rng)
            sample = ch.compose_view(out["rgba"], out["uv"], out["visible"], kps.names, truncation, self.picker, rng,
                                     self.config.jpeg_quality)
        if sample is None:
            return (counts + [("views_dropped_no_keypoint", 1)], None,
                    f"no keypoint visible in the truncated crop (viewpoint {vp.as_array().round(2).tolist()})")
        counts += [("backgrounds_skipped", len(sample.skipped)),
                   ("backgrounds_gray" if sample.background.startswith("gray:") else "backgrounds_photo", 1)]
        classes = [self.classes.index(cls_name, n) for n in sample.names]
        flip_classes = [self.classes.index(cls_name, km.swap_left_right(n)) for n in sample.names]
        keep = [i for i, (c, f) in enumerate(zip(classes, flip_classes)) if c is not None and f is not None]
        if len(keep) < len(classes):
            counts.append(("keypoints_not_in_class_table", len(classes) - len(keep)))
        if not keep:
            return (counts + [("views_dropped_no_keypoint", 1)], None,
                    f"none of the visible keypoints {sample.names} (or its left/right twin) is in the keypoint class table")
        obj = ch.object_class_index(cls_name)
        angles = km.label_angles(vp.azimuth, vp.elevation, vp.tilt)
        stem = ch.view_stem(model.synset, model.model_id, index, angles, vp.distance)
        flip = split in self.config.flip_splits
        keys = [ch.instance_key(ch.random_prefix(rng), stem, obj, classes[i], False) for i in keep]
        # an _r key names the original keypoint class (Click-Here's get_job_key), not the mirrored one
        flip_keys = [ch.instance_key(ch.random_prefix(rng), stem, obj, classes[i], True) for i in keep] if flip else []
        uv = sample.uv[keep]
        counts.append((f"instances/{split}", len(keys) + len(flip_keys)))
        rec = chs.CLICKHERE_VIEW.record({
            "key": key, "synset": model.synset, "model_id": model.model_id, "seed": cfg.seed,
            "image/jpeg": sample.jpeg, "image/height": sample.height, "image/width": sample.width,
            "viewpoint": vp.as_array(), "object_class": obj, "viewpoint_label": km.viewpoint_label(obj, *angles),
            "num_keypoint_classes": len(self.classes), "keypoints/names": [sample.names[i] for i in keep],
            "keypoints/uv": uv, "keypoints/pixel": ch.crop_pixels(uv, sample.width, sample.height),
            "keypoints/class": [classes[i] for i in keep], "keypoints/flip_class": [flip_classes[i] for i in keep],
            "instances/key": keys, "instances/flip_key": flip_keys, "render/crop_box": sample.box,
            "render/truncation": np.zeros(4) if truncation is None else truncation,
            "render/environment_energy": lighting.environment_energy, "render/lights": lighting.as_array(),
            "render/background": sample.background, "render/crop_render": self.config.crop_render})
        return counts, rec, None


# ----------------------------------------------------------------------------------------------
# Records of each output layout
# ----------------------------------------------------------------------------------------------

def caffe_records(view: tuple) -> list[tuple[str, bytes]]:
    """A rendered view -> its instances' Caffe Datums, packed (:func:`caffe_lmdb.pack_view`) under
    the view's key: the expansion runs here, in parallel, the assembly only stores them."""
    return [(view[1], caffe_lmdb.pack_view(view[2]))]


def instance_records(view: tuple) -> list[tuple[str, bytes]]:
    """A rendered view (split, view key, compact bytes) -> its ``clickhere_instance`` Examples (with
    the flipped copies)."""
    return [(inst["key"], chs.encode_instance(inst)) for inst in chs.expand(chs.decode_view(view[2]))]


# ----------------------------------------------------------------------------------------------
# Metadata
# ----------------------------------------------------------------------------------------------

def record_kind(config: ClickHereConfig) -> str:
    if config.compact:
        return chs.CLICKHERE_VIEW.name
    return chs.CAFFE_LAYOUT.name if config.render.format == "lmdb" else chs.CLICKHERE_INSTANCE.name


def record_schema(config: ClickHereConfig):
    """The record declaration of the output: a Schema, or the Caffe LMDB layout."""
    if config.compact:
        return chs.CLICKHERE_VIEW
    if config.render.format == "tfrecord":
        return chs.CLICKHERE_INSTANCE
    return chs.CAFFE_LAYOUT


def write_metadata(_, config: ClickHereConfig, command, planned, failures, timings, shard_infos, counts):
    rcfg = config.render
    fmt = CAFFE_FORMAT if (rcfg.format == "lmdb" and not config.compact) else rcfg.format
    splits = sinks.splits_info(shard_infos, fmt)
    totals: dict = {}
    for name, n in counts:
        totals[name] = totals.get(name, 0) + n
    for split, s in splits.items():
        s["num_instances"] = totals.get(f"instances/{split}", 0)
        s["num_views"] = s["num_examples"] if config.compact else None
    failed_models = {f["key"] for f in failures if f["stage"] in ("load", "label", "render") and f["key"].count("/") == 1}
    failed_views = planned["per_model"] * len(failed_models) + \
        sum(1 for f in failures if f["stage"] in ("compose", "render") and f["key"].count("/") > 1)
    return skeleton.write_dataset_files(
        rcfg, config, command, schema=record_schema(config),
        info={"version": chs.CLICKHERE_VIEW.version, "layout": LAYOUT, "record": record_kind(config),
              "compact": config.compact, "splits": splits, "split_assignment": planned["split_assignment"]},
        counts={"models": planned["models"], "views_planned": planned["views"],
                "records_written": sum(s["num_examples"] for s in splits.values()),
                "instances_written": sum(s["num_instances"] for s in splits.values()),
                **{k: v for k, v in sorted(totals.items()) if not k.startswith("instances/")},
                **shapenet_views.keypoint_counts(planned)},
        failures=failures, failure_rate=skeleton.rate(failed_views, planned["views"]), timings=timings)


# ----------------------------------------------------------------------------------------------
# The run
# ----------------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class ClickHerePlan(skeleton.Plan):
    source: KeypointSource
    table: ViewpointTable | None
    sources: Sources
    classes: ch.KeypointClassTable
    shards: dict
    failures: tuple = ()


def plan(config: ClickHereConfig) -> ClickHerePlan:
    """The models, one task each, the viewpoint/truncation sources, the keypoint classes and the
    shards per split."""
    render = config.render
    root, models = shapenet_views.list_models(render.shapenet_dir, render.synsets, render.mesh_dir, render.mesh_up)
    source = KeypointSource(render.keypoints or None)
    sources = load_sources(config)
    table = None
    if render.viewpoints != "uniform" and not sources.viewpoints:
        table = ViewpointTable.from_file(render.viewpoints)
    if sources.viewpoints and render.views_per_model < 0:
        raise SystemExit("error: --views_per_model all needs a single --viewpoints FILE, not a folder")
    classes = load_class_table(config.keypoint_classes)
    if config.backgrounds:
        imageops.list_backgrounds(config.backgrounds)
    per_model = len(table) if render.views_per_model < 0 else render.views_per_model
    tasks, views_per_split = shapenet_views.model_tasks(render, models, per_model)
    per_view = 40e3 if config.compact else 12 * 1.2e6
    kp_failures, kp_counts = shapenet_views.keypoint_plan(source, models)
    counts = {"models": len(tasks), "views": sum(views_per_split.values()), "per_model": per_model, **kp_counts,
              "split_assignment": shapenet_views.split_assignment("model", {t.model.key: t.split for t in tasks})}
    return ClickHerePlan(config, tasks, counts,
                         f"rendering {counts['views']} clickhere views of {counts['models']} models from {root} "
                         f"into {render.output_dir}", source, table, sources, classes,
                         skeleton.shards_per_split(views_per_split, render.num_shards, per_view), kp_failures)


def work(plan: ClickHerePlan) -> skeleton.Work:
    config, render = plan.config, plan.config.render
    full = not config.compact
    fmt = "caffe" if full and render.format == "lmdb" else render.format
    units, shards = skeleton.shard_layout(shapenet_views.model_units(plan.tasks), plan.shards, fmt, render.name)
    records = {"tfrecord": instance_records, "caffe": caffe_records}.get(fmt) if full else stream.keyed
    return skeleton.Work(
        units, RenderClickHereViews(config, plan.source, plan.table, plan.sources, plan.classes), records, shards,
        lists=("shards", "counts"), plan_failures=plan.failures,
        dead_letters=(("failed", names.FAILURES_FILE), ("dropped", DROPPED_FILE),
                      ("backgrounds", names.BACKGROUNDS_FILE)))


def summary(config: ClickHereConfig) -> dict:
    return {"counts": lambda c: (f"   models {c['models']}  views planned {c['views_planned']}  records written "
                                 f"{c['records_written']} ({c['instances_written']} keypoint instances)"),
            "extra": lambda c: [
        f"   views dropped (no keypoint left in the crop) {c.get('views_dropped_no_keypoint', 0)}",
        f"   backgrounds: photo {c.get('backgrounds_photo', 0)}  gray {c.get('backgrounds_gray', 0)}  photos rejected "
        f"on the way (grayscale or smaller than the crop; another was drawn) {c.get('backgrounds_skipped', 0)}"
        + (f" (each photo rejected or converted: {names.ERRORS_DIR}/{names.BACKGROUNDS_FILE})"
           if config.backgrounds else "")]}


def render_part(config: ClickHereConfig) -> RenderConfig:
    """The output part of the configuration."""
    return config.render


STEPS = skeleton.Steps(COMMAND, LOG, plan, work, write_metadata, summary=summary, output=render_part)
shapenet_views.register(shapenet_views.Layout(LAYOUT, config_from_args, STEPS, add_flags, OWN_FLAGS))
