"""``render_shapenet --layout clickhere``: Click-Here CNN / Render for CNN training data.

Graph: ListModels -> Reshuffle -> RenderClickHereViews (per view: viewpoint, random lights,
render, truncation crop, background overlay, JPEG, keypoint labels -> one compact
``clickhere_view`` record) -> then by output layout:

* ``--format lmdb``: WriteCaffeLmdbs (Click-Here's layout: ``<split>/<field>_lmdb``, one LMDB per
  field, identical sorted key sets, Caffe ``Datum`` values; ``keys.txt``; ``views.jsonl``);
* ``--format tfrecord``: WriteInstanceShards (one ``clickhere_instance`` Example per instance);
* ``--compact`` (either format): WriteShards of the compact records themselves.

The full layouts are expanded from the compact records by :func:`schemas.clickhere.expand` in the
writers, so every layout holds the same instances with the same arrays.
"""
from __future__ import annotations

import dataclasses
import os
import sys
import time

import apache_beam as beam
import numpy as np

from kpdata import clickhere as ch
from kpdata import demo, geometry
from kpdata.clickhere import imageops
from kpdata.clickhere import kde
from kpdata.sources import shapenet
from kpdata.clickhere import keypoint_maps as km
from kpdata.errors import InputError
from kpdata.keypoints import KeypointSource
from kpdata.clickhere.lighting import R4CNNLighting
from kpdata.mesh import load_mesh
from kpdata.seeding import bucket, rng_for
from kpdata.viewpoints import ViewpointTable, read_viewpoint_file
from pipelines import dataset, report, sinks
from pipelines import options as opts
from pipelines.render_shapenet import (
    DEMO,
    ModelTask,
    RenderConfig,
    assign_split,
    plan_views,
)
from pipelines.workers import RendererDoFn
from renderers import RenderRequest
from schemas import clickhere as chs
from schemas.dataset import caffe_lmdb
from schemas.dataset.names import DROPPED_FILE

CAFFE_FORMAT = "clickhere_lmdb"
TRUNCATION_DEFAULT = "default"
LAYOUT = "clickhere"
OWN_FLAGS = ("backgrounds", "background_ratio", "truncations", "keypoint_classes", "compact", "flip_splits")


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


@dataclasses.dataclass(frozen=True)
class ClickHereConfig:
    """Everything that decides a clickhere output; serialised into dataset_info.json."""

    render: RenderConfig
    backgrounds: str = ""
    background_ratio: float = imageops.BACKGROUND_RATIO
    truncations: str = TRUNCATION_DEFAULT
    keypoint_classes: str = "clickhere34"
    compact: bool = False
    flip_splits: tuple = ("train",)
    jpeg_quality: int = imageops.JPEG_QUALITY

    @property
    def image_size(self) -> tuple[int, int]:
        return self.render.image_size


def config_from_args(args, render: RenderConfig) -> ClickHereConfig:
    flips = () if args.flip_splits.strip() in ("", "none") else tuple(
        s.strip() for s in args.flip_splits.split(",") if s.strip())
    return ClickHereConfig(render=render, backgrounds="" if args.backgrounds == "none" else args.backgrounds,
                           background_ratio=args.background_ratio,
                           truncations=args.truncations, keypoint_classes=args.keypoint_classes,
                           compact=bool(args.compact), flip_splits=flips)


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
    """ModelTask -> (split, view key, compact record bytes); failures to ``failed``, counters to
    ``counts`` as (name, n)."""

    def __init__(self, config: ClickHereConfig, keypoints: KeypointSource, table, sources: Sources,
                 classes: ch.KeypointClassTable):
        self.config, self.keypoints, self.table, self.sources, self.classes = config, keypoints, table, sources, classes
        self.picker = None

    def setup(self):
        super().setup()
        self.picker = imageops.BackgroundPicker(self.config.backgrounds, self.config.background_ratio)

    def process(self, task: ModelTask):
        model, cfg = task.model, self.config.render
        t0 = time.perf_counter()
        try:
            mesh = load_mesh(shapenet.require_obj(model))
            kps = self.keypoints.lookup(model.synset, model.model_id, model.model_dir)
        except InputError as e:
            yield beam.pvalue.TaggedOutput("failed", sinks.failure_record(
                model.key, "load", e.error, e.message, e.path or model.model_dir))
            return
        try:
            cls_name = kde.class_of_synset(model.synset)
        except InputError as e:
            yield beam.pvalue.TaggedOutput("failed", sinks.failure_record(
                model.key, "label", e.error, e.message, model.model_dir))
            return
        handle = self.renderer.prepare(mesh)
        intr = cfg.intrinsics
        class_table = self.sources.viewpoint_table(cls_name)
        try:
            for index, spec in enumerate(plan_views(task, cfg, self.table)):
                rng = rng_for(cfg.seed, "clickhere/" + spec.key)
                vp = spec.viewpoint if class_table is None else class_table.sample(rng_for(cfg.seed, spec.key))
                try:
                    record = self._view(model, cls_name, index, spec.key, vp, task.split, handle, intr, kps, rng)
                except InputError as e:
                    yield beam.pvalue.TaggedOutput("failed", sinks.failure_record(
                        spec.key, "compose", e.error, e.message, e.path))
                    continue
                counts, rec, dropped = record
                for item in counts:
                    yield beam.pvalue.TaggedOutput("counts", item)
                if rec is not None:
                    yield task.split, spec.key, chs.CLICKHERE_VIEW.encode(rec)
                else:
                    yield beam.pvalue.TaggedOutput("dropped", sinks.failure_record(
                        spec.key, "crop", "no_visible_keypoint", dropped, model.model_dir))
        finally:
            self.renderer.release(handle)
        yield beam.pvalue.TaggedOutput("timing", ("render", time.perf_counter() - t0))

    def _view(self, model, cls_name, index, key, vp, split, handle, intr, kps, rng):
        cfg, counts = self.config.render, [("views_rendered", 1)]
        cam_T_world = geometry.viewpoint_to_cam_T_world(vp)
        cam_T_obj = geometry.viewpoint_to_cam_T_obj(vp)
        lighting = R4CNNLighting.sample(rng)
        from renderers.lighting import to_render_lights
        lights, ambient = to_render_lights(lighting, cam_T_world)
        request = RenderRequest(intr, tuple(map(tuple, cam_T_obj)), lights=lights, ambient=ambient)
        out = self.renderer.render(handle, request, kps, cfg.visibility_tolerance)
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
        flip_keys = [ch.instance_key(ch.random_prefix(rng), stem, obj, flip_classes[i], True) for i in keep] if flip else []
        uv = sample.uv[keep]
        counts.append((f"instances/{split}", len(keys) + len(flip_keys)))
        rec = chs.make_view_record(
            key=key, synset=model.synset, model_id=model.model_id, seed=cfg.seed, jpeg=sample.jpeg,
            width=sample.width, height=sample.height, viewpoint=vp.as_array(), object_class=obj,
            viewpoint_label=km.viewpoint_label(obj, *angles), num_keypoint_classes=len(self.classes),
            names=[sample.names[i] for i in keep], uv=uv, pixel=ch.crop_pixels(uv, sample.width, sample.height),
            classes=[classes[i] for i in keep], flip_classes=[flip_classes[i] for i in keep], keys=keys,
            flip_keys=flip_keys, crop_box=sample.box,
            truncation=np.zeros(4) if truncation is None else truncation,
            environment_energy=lighting.environment_energy, lights=lighting.as_array(),
            background=sample.background)
        return counts, rec, None


# ----------------------------------------------------------------------------------------------
# Writers of the full layouts
# ----------------------------------------------------------------------------------------------

def write_instance_shard(path: str, views) -> dict:
    """Expand compact records into ``clickhere_instance`` Examples, one TFRecord shard sorted by key."""
    records = [(inst["key"], chs.encode_instance(inst)) for _, raw in views for inst in chs.expand(chs.decode_view(raw))]
    return sinks.write_tfrecord_shard(path, records)


class WriteFullLayout(beam.PTransform):
    """(split, view key, compact bytes) -> shard info dicts, for the Caffe LMDB layout
    (``fmt='lmdb'``, one folder per split) or instance TFRecords (``fmt='tfrecord'``)."""

    def __init__(self, output_dir: str, name: str, fmt: str, shards: dict[str, int]):
        super().__init__()
        self.output_dir, self.name, self.fmt = output_dir, name, fmt
        self.shards = {s: (1 if fmt == "lmdb" else int(n)) for s, n in shards.items()}

    def expand(self, records):
        shards = self.shards
        every = [(s, i) for s, n in sorted(shards.items()) for i in range(n)]
        keyed = records | "AssignShard" >> beam.Map(lambda r: ((r[0], bucket(r[1], shards[r[0]])), (r[1], r[2])))
        empty = records.pipeline | "EveryShard" >> beam.Create(every) | "NoRecords" >> beam.Map(lambda s: (s, None))
        return (({"records": keyed, "present": empty}) | "GroupShards" >> beam.CoGroupByKey()
                | "WriteShard" >> beam.Map(self._write))

    def _write(self, item):
        (split, index), groups = item
        if self.fmt == "lmdb":
            info = caffe_lmdb.write_caffe_lmdbs(os.path.join(self.output_dir, split), groups["records"])
        else:
            n = self.shards[split]
            info = write_instance_shard(os.path.join(self.output_dir, sinks.shard_name(self.name, split, index, n)),
                                        groups["records"])
        return {"split": split, "index": index, "num_shards": self.shards[split], **info}


# ----------------------------------------------------------------------------------------------
# Metadata, reading back, preview
# ----------------------------------------------------------------------------------------------

def record_kind(config: ClickHereConfig) -> str:
    if config.compact:
        return chs.CLICKHERE_VIEW.name
    return chs.CAFFE_LAYOUT.name if config.render.format == "lmdb" else chs.CLICKHERE_INSTANCE.name


def features(config: ClickHereConfig) -> dict:
    if config.compact:
        return chs.CLICKHERE_VIEW.describe()
    if config.render.format == "tfrecord":
        return chs.CLICKHERE_INSTANCE.describe()
    return chs.CAFFE_LAYOUT.describe()


def write_metadata(_, config: ClickHereConfig, argv, shard_infos, failures, counts, timings, planned):
    out, rcfg = config.render.output_dir, config.render
    fmt = CAFFE_FORMAT if (rcfg.format == "lmdb" and not config.compact) else rcfg.format
    splits = sinks.splits_info(shard_infos, fmt)
    totals: dict = {}
    for name, n in counts:
        totals[name] = totals.get(name, 0) + n
    for split, s in splits.items():
        s["num_instances"] = totals.get(f"instances/{split}", 0)
        s["num_views"] = s["num_examples"] if config.compact else None
    sinks.write_json(os.path.join(out, sinks.FEATURES), features(config))
    sinks.write_json(os.path.join(out, sinks.DATASET_INFO), {
        "name": rcfg.name, "version": chs.CLICKHERE_VIEW.version, "layout": "clickhere",
        "record": record_kind(config), "compact": config.compact, "splits": splits,
        "config": dataclasses.asdict(config), "seed": rcfg.seed,
        "command": "python -m pipelines.render_shapenet " + " ".join(argv), "code_version": report.code_version(),
    })
    failed_views = planned["per_model"] * len({f["key"] for f in failures if f["stage"] in ("load", "label")}) + \
        sum(1 for f in failures if f["stage"] == "compose")
    stats = {
        "counts": {"models": planned["models"], "views_planned": planned["views"],
                   "records_written": sum(s["num_examples"] for s in splits.values()),
                   "instances_written": sum(s["num_instances"] for s in splits.values()),
                   **{k: v for k, v in sorted(totals.items()) if not k.startswith("instances/")}},
        "failures": sinks.failure_summary(failures),
        "failure_rate": failed_views / planned["views"] if planned["views"] else 0.0,
        "timings": {stage: round(sum(t for s, t in timings if s == stage), 3) for stage, _ in timings},
    }
    sinks.write_json(os.path.join(out, sinks.STATS), stats)
    return stats


def iter_instances(output_dir: str, split: str | None = None):
    """Yield the instances of a clickhere dataset of any layout as dicts of arrays (``key``,
    ``image`` (227, 227, 3) RGB, ``keypoint_pixel``, the maps, ``keypoint_class``,
    ``viewpoint_label``), in key order per split (compact: view order, then instance order)."""
    info = dataset.load_info(output_dir)
    kind = info.get("record")
    if kind == chs.CLICKHERE_VIEW.name:
        for _, raw in dataset.iter_records(output_dir, split, info):
            yield from chs.expand(chs.decode_view(raw))
    elif kind == chs.CLICKHERE_INSTANCE.name:
        for _, raw in dataset.iter_records(output_dir, split, info):
            rec = chs.decode_instance(raw)
            rec["image"] = rec.pop("image/encoded")
            rec["keypoint_class"] = rec["keypoint_class"].astype(np.uint8)
            yield rec
    elif kind == "caffe_datum":
        for name in sorted(info["splits"]):
            if split is None or name == split:
                yield from caffe_lmdb.read_caffe_split(os.path.join(output_dir, name))
    else:
        raise ValueError(f"{output_dir}: not a clickhere dataset (record {kind!r})")


def _stem(key: str) -> str:
    return key.split("_", 1)[1].split("_obj0_")[0]


def _signed(deg: float) -> float:
    return deg - 360.0 if deg > 180.0 else deg


def select_instances(instances, n: int, scan_limit: int = 4096) -> list[dict]:
    """Up to ``n`` instances spread over models and views: round robin over models, each turn
    taking the next view of that model (alternating originals and ``_r`` copies)."""
    by_model: dict = {}
    for i, inst in enumerate(instances):
        if i >= scan_limit:
            break
        stem = _stem(inst["key"])
        views = by_model.setdefault(stem.split("_v")[0], {})
        views.setdefault(stem, []).append(inst)
    queues = {m: [sorted(v, key=lambda r: (r["key"].endswith("_r"), r["key"])) for _, v in sorted(views.items())]
              for m, views in by_model.items()}
    out, turn = [], 0
    while len(out) < n and any(any(v) for v in queues.values()):
        for m in sorted(queues):
            views = [v for v in queues[m] if v]
            if views and len(out) < n:
                view = views[turn % len(views)]
                out.append(view.pop(len(view) - 1 if turn % 2 and view[-1]["key"].endswith("_r") else 0))
        turn += 1
    return out


def preview_views(output_dir: str, n: int, class_names=None) -> list[dict]:
    """Tiles for the contact sheet: instances spread over models and views."""
    class_names = class_names or ch.KeypointClassTable.clickhere34().names
    out = []
    for r in select_instances(iter_instances(output_dir), n):
        c = int(np.argmax(r["keypoint_class"]))
        label = r["viewpoint_label"]
        cls = int(label[0])
        name = class_names[c] if c < len(class_names) else f"kp{c}"
        out.append({"key": r["key"].split("_", 1)[1], "image": r["image"],
                    "keypoints/names": [name + ("  (_r)" if r["key"].endswith("_r") else "")],
                    "keypoints/uv": np.asarray(r["keypoint_pixel"], np.float32).reshape(1, 2),
                    "keypoints/visible": np.ones(1, np.int64),
                    "caption": (f"label az {label[1] - 360 * cls} el {_signed(float(label[2] - 360 * cls)):.0f} "
                                f"tilt {_signed(float(label[3] - 360 * cls)):.0f}")})
    return out


def write_preview(output_dir: str, n: int, path: str | None = None) -> str:
    from kpdata.preview import write_contact_sheet
    return write_contact_sheet(path or os.path.join(output_dir, report.PREVIEW_FILE), preview_views(output_dir, n))


# ----------------------------------------------------------------------------------------------
# The run
# ----------------------------------------------------------------------------------------------

def run_layout(args, pipeline_options, argv, render: RenderConfig) -> int:
    """Run the clickhere layout (called by render_shapenet.run)."""
    config = config_from_args(args, render)
    start = time.time()
    root = demo.demo_shapenet_dir() if render.shapenet_dir == DEMO else render.shapenet_dir
    try:
        models = shapenet.scan(root, render.synsets or None)
        source = KeypointSource(render.keypoints or None)
        sources = load_sources(config)
        table = None
        if render.viewpoints != "uniform" and not sources.viewpoints:
            table = ViewpointTable.from_file(render.viewpoints)
        if sources.viewpoints and render.views_per_model < 0:
            raise SystemExit("--views_per_model all needs a single --viewpoints FILE, not a folder")
        classes = load_class_table(config.keypoint_classes)
        if config.backgrounds:
            imageops.list_backgrounds(config.backgrounds)
    except InputError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if not models:
        print(f"error: {root}: no ShapeNet models found", file=sys.stderr)
        return 2
    per_model = len(table) if render.views_per_model < 0 else render.views_per_model
    tasks = [ModelTask(m, assign_split(render, m), per_model) for m in models]
    views_per_split = {name: 0 for name, _ in render.splits}
    for t in tasks:
        views_per_split[t.split] += t.num_views
    per_view = 40e3 if config.compact else 12 * 1.2e6
    shards = {s: (render.num_shards or sinks.auto_num_shards(n, per_view)) for s, n in views_per_split.items()}
    planned = {"models": len(tasks), "views": sum(views_per_split.values()), "per_model": per_model}
    if "://" not in render.output_dir:
        os.makedirs(render.output_dir, exist_ok=True)
    print(f"rendering {planned['views']} clickhere views of {planned['models']} models from {root} "
          f"into {render.output_dir}", file=sys.stderr)

    p = beam.Pipeline(options=pipeline_options)
    rendered = (p | "ListModels" >> beam.Create(tasks)
                | "Reshuffle" >> beam.Reshuffle()
                | "RenderClickHereViews" >> beam.ParDo(
                    RenderClickHereViews(config, source, table, sources, classes)).with_outputs(
                    "failed", "dropped", "timing", "counts", main="views"))
    if config.compact:
        infos = rendered.views | "WriteShards" >> sinks.WriteShards(render.output_dir, render.name, render.format, shards)
    else:
        infos = rendered.views | "WriteFullLayout" >> WriteFullLayout(render.output_dir, render.name, render.format,
                                                                       shards)
    _ = rendered.failed | "WriteDeadLetters" >> sinks.WriteDeadLetters(render.output_dir)
    _ = rendered.dropped | "WriteDropped" >> sinks.WriteDeadLetters(render.output_dir, DROPPED_FILE)
    _ = (p | "Once" >> beam.Create([None])
         | "WriteMetadata" >> beam.Map(
             write_metadata, config, argv, beam.pvalue.AsList(infos), beam.pvalue.AsList(rendered.failed),
             beam.pvalue.AsList(rendered.counts), beam.pvalue.AsList(rendered.timing), planned))
    p.run().wait_until_finish()
    return report.finish(render.output_dir, render.max_failure_rate, render.preview, start, extra=lambda c: [
        f"   instances {c['instances_written']}  views dropped (no keypoint left) "
        f"{c.get('views_dropped_no_keypoint', 0)}  backgrounds photo {c.get('backgrounds_photo', 0)} "
        f"gray {c.get('backgrounds_gray', 0)} skipped {c.get('backgrounds_skipped', 0)}"])
