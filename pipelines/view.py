"""``render_shapenet --layout view`` (the default): keypoint-labelled views, one ``view`` record each.

Work: one unit per model (:mod:`pipelines.stream`): RenderViews plans and renders its views, each
encoded (:func:`encode_view`) and streamed into the model's part; the parts are assembled into the
shards; failures go to errors/failures.jsonl and the metadata is written last. The layout
registers itself with :mod:`pipelines.shapenet_views`.
"""
from __future__ import annotations

import argparse
import collections
import dataclasses
import functools
import logging


from kpdata import geometry
from kpdata.keypoints import KeypointSource
from kpdata.viewpoints import ViewpointTable
from pipelines import shapenet_views, skeleton, sinks
from pipelines.shapenet_views import COMMAND, DEFAULT_LAYOUT, ModelTask, RenderConfig, load_model, plan_views
from pipelines.workers import EmptyViews, RendererDoFn
from renderers import RenderRequest
from schemas.view import VIEW, make_view_record

LOG = logging.getLogger("kpdata.render_shapenet")
LAYOUT = DEFAULT_LAYOUT


class RenderViews(RendererDoFn):
    """ModelTask -> rendered views (dicts of arrays); failures to the ``failed`` output.

    The renderer is created once per worker in ``setup`` and freed in ``teardown``; each model is
    loaded and uploaded once, then rendered from all its views.
    """

    def __init__(self, config: RenderConfig, keypoints: KeypointSource, table: ViewpointTable | None,
                 backend: str = "pyrender"):
        super().__init__(config.image_size, backend)
        self.config, self.keypoints, self.table = config, keypoints, table

    def load(self, task: ModelTask):
        return load_model(task.model, self.keypoints)

    def render(self, task: ModelTask, loaded):
        (mesh, kps), model, intr = loaded, task.model, self.config.intrinsics
        empty = EmptyViews(model.key, model.model_dir)
        specs = plan_views(task, self.config, self.table)
        queued = collections.deque()  # (spec, cam_T_obj) of the requests handed to the renderer

        def requests():  # each pose computed when the renderer asks for it: while it rasterises
            for spec in specs:
                queued.append((spec, geometry.viewpoint_to_cam_T_obj(spec.viewpoint)))
                yield RenderRequest(intr, tuple(map(tuple, queued[-1][1])))

        with self.prepared(mesh) as handle:
            for out in self.renderer.render_many(handle, requests(), kps, self.config.visibility_tolerance):
                spec, cam_T_obj = queued.popleft()
                self.count("views_rendered")
                if not empty.shows(out, spec.key):
                    continue
                yield {"split": task.split, "key": spec.key, "synset": model.synset, "model_id": model.model_id,
                       "viewpoint": spec.viewpoint.as_array(), "K": intr.K, "cam_T_obj": cam_T_obj,
                       "names": kps.names, "xyz": kps.xyz, **out}
        yield from empty.letters()


def encode_view(view: dict, seed: int) -> list[tuple[str, bytes]]:
    """A rendered view -> [(key, serialized VIEW Example)]."""
    rec = make_view_record(
        key=view["key"], synset=view["synset"], model_id=view["model_id"], seed=seed,
        rgba=view["rgba"], depth=view["depth"], K=view["K"], cam_T_obj=view["cam_T_obj"],
        viewpoint=view["viewpoint"], names=view["names"], uv=view["uv"], z=view["z"],
        xyz=view["xyz"], visible=view["visible"])
    return [(view["key"], VIEW.encode(rec))]


@dataclasses.dataclass(frozen=True)
class ViewPlan(skeleton.Plan):
    source: KeypointSource
    table: ViewpointTable | None
    shards: dict
    failures: tuple = ()


def plan(config: RenderConfig) -> ViewPlan:
    """The models, one task each, and the shards per split."""
    root, models = shapenet_views.list_models(config.shapenet_dir, config.synsets, config.mesh_dir, config.mesh_up)
    source = KeypointSource(config.keypoints or None)
    table = None if config.viewpoints == "uniform" else ViewpointTable.from_file(config.viewpoints)
    per_model = len(table) if config.views_per_model < 0 else config.views_per_model
    tasks, views_per_split = shapenet_views.model_tasks(config, models, per_model)
    w, h = config.image_size
    kp_failures, kp_counts = shapenet_views.keypoint_plan(source, models)
    counts = {"models": len(tasks), "views": sum(views_per_split.values()), **kp_counts,
              "split_assignment": shapenet_views.split_assignment("model", {t.model.key: t.split for t in tasks})}
    return ViewPlan(config, tasks, counts,
                    f"rendering {counts['views']} views of {counts['models']} models from {root} into "
                    f"{config.output_dir}", source, table,
                    skeleton.shards_per_split(views_per_split, config.num_shards, w * h * 1.5), kp_failures)


def work(plan: ViewPlan) -> skeleton.Work:
    config = plan.config
    units, shards = skeleton.shard_layout(shapenet_views.model_units(plan.tasks), plan.shards, config.format,
                                          config.name)
    return skeleton.Work(units, RenderViews(config, plan.source, plan.table),
                         functools.partial(encode_view, seed=config.seed), shards, plan_failures=plan.failures)


def write_metadata(_, config: RenderConfig, command, planned: dict, failures, timings, shard_infos):
    splits = sinks.splits_info(shard_infos, config.format)
    written = sum(s["num_examples"] for s in splits.values())
    failed_models = {f["key"] for f in failures if f["stage"] in ("load", "render") and f["key"].count("/") == 1}  # not views
    return skeleton.write_dataset_files(
        config, config, command, schema=VIEW,
        info={"version": VIEW.version, "record": VIEW.name, "splits": splits,
              "split_assignment": planned["split_assignment"]},
        counts={"models": planned["models"], "views_planned": planned["views"],
                "models_failed": len(failed_models), "records_written": written,
                **shapenet_views.keypoint_counts(planned)},
        failures=failures, failure_rate=skeleton.rate(planned["views"] - written, planned["views"]), timings=timings)


def config_from_args(parser: argparse.ArgumentParser, args, argv) -> RenderConfig:
    return shapenet_views.render_config(args)


STEPS = skeleton.Steps(COMMAND, LOG, plan, work, write_metadata)
shapenet_views.register(shapenet_views.Layout(LAYOUT, config_from_args, STEPS))


