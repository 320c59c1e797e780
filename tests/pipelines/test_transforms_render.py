"""The render DoFns under Beam's TestPipeline with the fake renderer backend (no GL): render_shapenet
RenderViews, clickhere RenderClickHereViews, keypointnet RenderPairs, render_stereo RenderSequences
(and gen_tfrecords' ConvertFrames on the sequences it writes), and the view layout's graph pieces
end to end.

The models are boxes in a ShapeNet-layout folder, so the fake backend's proxy (the bounding box)
is the model itself, with two keypoints on each face: a keypoint on a face turned towards the
camera is visible, one on a face turned away is hidden. Outputs are checked to be keyed as
planned, a corrupt OBJ to reach the dead-letter output, and every keypoint label to agree with a
depth test against the fake depth.
"""
import functools
import json
import os

import apache_beam as beam
import numpy as np
import pytest
import trimesh
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing import test_pipeline
from apache_beam.testing.util import assert_that, equal_to

from kpdata import camera, geometry, keypose
from kpdata.keypoints import CLICKHERE_KEYPOINTS, KeypointSource
from kpdata.keypose import exr
from kpdata.mesh import load_mesh
from kpdata.sources import shapenet
from kpdata.viewpoints import ViewpointTable
from pipelines import clickhere, gen_tfrecords, keypointnet, render_stereo, shapenet_views, sinks, skeleton, view
from renderers import FakeRenderer, RenderRequest
from schemas import clickhere as chs
from schemas import tfrecord
from schemas.keypose import decode_keypose
from schemas.dataset.names import ERRORS_DIR, FAILURES_FILE, shard_name
from schemas.view import decode_view

SYNSET = "02958343"  # car: a Render for CNN class with Click-Here keypoint names
NAMES = CLICKHERE_KEYPOINTS[SYNSET]  # 12 names: two keypoints on each of the six faces
EXTENTS = np.array([0.8, 0.5, 0.6])
CENTER = np.array([0.05, 0.1, -0.03])
MODELS = {"box0": 1.0, "box1": 1.25}  # model id -> scale of the box
ROWS = ((30.0, 20.0, 0.0, 2.5), (150.0, 45.0, 5.0, 2.0), (250.0, -10.0, -5.0, 3.0), (330.0, 70.0, 0.0, 2.2))
CORRUPT = f"{SYNSET}/corrupt"


def face_keypoints(scale: float) -> tuple[np.ndarray, np.ndarray]:
    """(12, 3) keypoints on the faces of the box of ``scale`` (OBJ frame), in NAMES order, and
    (12, 3) the outward normals of their faces."""
    xyz, normals = [], []
    ext = EXTENTS * scale
    for a in range(3):
        b = (a + 1) % 3
        for sign in (-1.0, 1.0):
            for offset in (-0.2, 0.2):
                p = CENTER.copy()
                p[a] += sign * ext[a] / 2
                p[b] += offset * ext[b]
                xyz.append(p)
                normals.append(sign * np.eye(3)[a])
    return np.array(xyz), np.array(normals)


@pytest.fixture(scope="module")
def box_tree(tmp_path_factory):
    """A ShapeNet v1 folder: two boxes with keypoints.json and one corrupt OBJ."""
    root = tmp_path_factory.mktemp("shapenet")
    for model_id, scale in MODELS.items():
        d = root / SYNSET / model_id
        d.mkdir(parents=True)
        box = trimesh.creation.box(extents=EXTENTS * scale)
        box.apply_translation(CENTER)
        box.export(str(d / "model.obj"))
        xyz, _ = face_keypoints(scale)
        (d / "keypoints.json").write_text(json.dumps({n: p.tolist() for n, p in zip(NAMES, xyz)}))
    (root / SYNSET / "corrupt").mkdir()
    (root / SYNSET / "corrupt" / "model.obj").write_bytes(b"v 1 2\nf 1 2 3 x\n\x00\xff garbage \x01")
    return str(root)


def depth_test(K, cam_T_obj, xyz, depth, rel_tolerance, abs_tolerance=0.0):
    """(uv (K, 2), z (K,), visible (K,)) by the rule of DESIGN §4, written out again: the keypoint's
    pixel (rounded) inside the image, something hit there, at the keypoint's own depth."""
    uv, z = camera.project(K, cam_T_obj, xyz)
    col, row = np.floor(uv[:, 0] + 0.5).astype(int), np.floor(uv[:, 1] + 0.5).astype(int)
    h, w = depth.shape
    inside = (z > 0) & (col >= 0) & (col < w) & (row >= 0) & (row < h)
    d = np.where(inside, depth[np.clip(row, 0, h - 1), np.clip(col, 0, w - 1)], 0.0)
    return uv, z, inside & (d > 0) & (np.abs(z - d) <= rel_tolerance * z + abs_tolerance)


def facing(cam_T_obj, xyz, normals) -> np.ndarray:
    """(K,) cosine between each keypoint's face normal and the direction to the camera."""
    to_eye = geometry.invert_transform(cam_T_obj)[:3, 3] - xyz
    return np.einsum("ij,ij->i", normals, to_eye) / np.linalg.norm(to_eye, axis=1)


def check_against_faces(visible, cos, margin=0.7):
    """Keypoints on faces clearly turned towards the camera are visible, those on faces turned
    away are not (between, a pixel's rounding may slide onto a neighbouring face)."""
    assert np.all(visible[cos > margin]) and not np.any(visible[cos < 0]), (visible, cos)


def _tasks(root, config, num_views):
    models = shapenet.scan(root)
    split_of = shapenet_views.assign_splits(config, models)
    return [shapenet_views.ModelTask(m, split_of[m.key], num_views) for m in models]


def _failure(f):
    return f["key"], f["stage"], f["error"]


def view_config(root, **kw):
    return shapenet_views.RenderConfig(shapenet_dir=root, views_per_model=-1, viewpoints="table.txt",
                                        image_size=(128, 96), focal=110.0, seed=3,
                                        splits=(("train", 0.5), ("test", 0.5)), **kw)


def test_render_views(box_tree):
    config = view_config(box_tree)
    table = ViewpointTable(ROWS)
    tasks = _tasks(box_tree, config, len(ROWS))
    good = [t for t in tasks if t.model.model_id in MODELS]

    def check(views):
        assert len(views) == len(ROWS) * len(good)
        for v in views:
            i = int(v["key"].rsplit("/v", 1)[1])
            np.testing.assert_allclose(v["viewpoint"], ROWS[i])
            np.testing.assert_allclose(v["cam_T_obj"], geometry.viewpoint_to_cam_T_obj(geometry.Viewpoint(*ROWS[i])))
            np.testing.assert_array_equal(v["mask"], v["depth"] > 0)
            assert v["mask"].sum() > 200 and np.all(v["rgba"][..., 3][v["mask"]] > 0)
            assert v["names"] == NAMES
            uv, z, visible = depth_test(v["K"], v["cam_T_obj"], v["xyz"], v["depth"], config.visibility_tolerance)
            np.testing.assert_allclose(v["uv"], uv, atol=1e-3)
            np.testing.assert_allclose(v["z"], z, rtol=1e-6)
            np.testing.assert_array_equal(v["visible"], visible)
            _, normals = face_keypoints(MODELS[v["model_id"]])
            check_against_faces(v["visible"], facing(v["cam_T_obj"], v["xyz"], normals))
            assert 0 < v["visible"].sum() < len(NAMES)

    with test_pipeline.TestPipeline() as p:
        out = (p | beam.Create(tasks)
               | "RenderViews" >> beam.ParDo(view.RenderViews(config, KeypointSource(None), table,
                                                                         backend="fake"))
               .with_outputs("failed", "timing", main="views"))
        assert_that(out.views | beam.Map(lambda v: (v["split"], v["key"])),
                    equal_to([(t.split, shapenet_views.view_key(t.model, i)) for t in good for i in range(len(ROWS))]),
                    label="Keys")
        assert_that(out.views, check, label="Labels")
        assert_that(out.failed | beam.Map(_failure), equal_to([(CORRUPT, "load", "corrupt_mesh")]), label="Failed")
        assert_that(out.timing | beam.Map(lambda t: t[0]), equal_to(["render"] * len(good)), label="Timing")


def test_render_clickhere_views(box_tree):
    config = clickhere.ClickHereConfig(render=view_config(box_tree), truncations="none", flip_splits=("train",))
    table = ViewpointTable(ROWS)
    tasks = _tasks(box_tree, config.render, len(ROWS))
    good = [t for t in tasks if t.model.model_id in MODELS]
    classes = clickhere.load_class_table(config.keypoint_classes)
    intr = config.render.intrinsics

    def check(records):
        assert len(records) == len(ROWS) * len(good)
        renderer = FakeRenderer()
        for split, key, raw in records:
            rec = chs.decode_view(raw)
            assert rec["key"] == key
            model_id, i = key.split("/")[1], int(key.rsplit("/v", 1)[1])
            pose = geometry.viewpoint_to_cam_T_obj(geometry.Viewpoint(*ROWS[i]))
            mesh = load_mesh(os.path.join(box_tree, SYNSET, model_id, "model.obj"))
            depth = renderer.render(renderer.prepare(mesh), RenderRequest(intr, tuple(map(tuple, pose))))["depth"]
            xyz, normals = face_keypoints(MODELS[model_id])
            uv, _, visible = depth_test(intr.K, pose, xyz, depth, config.render.visibility_tolerance)
            check_against_faces(visible, facing(pose, xyz, normals))
            # the tight crop keeps every visible keypoint, at its projection less the crop's corner
            assert rec["keypoints/names"] == [n for n, vis in zip(NAMES, visible) if vis]
            np.testing.assert_allclose(rec["keypoints/uv"] + rec["render/crop_box"][:2], uv[visible], atol=1e-3)
            assert list(rec["keypoints/class"]) == [classes.index("car", n) for n in rec["keypoints/names"]]
            assert len(rec["instances/flip_key"]) == (len(rec["keypoints/names"]) if split == "train" else 0)
            np.testing.assert_allclose(rec["viewpoint"], ROWS[i])

    with test_pipeline.TestPipeline() as p:
        out = (p | beam.Create(tasks)
               | "RenderClickHereViews" >> beam.ParDo(clickhere.RenderClickHereViews(
                   config, KeypointSource(None), table, clickhere.load_sources(config), classes, backend="fake"))
               .with_outputs("failed", "dropped", "timing", "counts", main="views"))
        assert_that(out.views | beam.Map(lambda r: (r[0], r[1])),
                    equal_to([(t.split, shapenet_views.view_key(t.model, i)) for t in good for i in range(len(ROWS))]),
                    label="Keys")
        assert_that(out.views, check, label="Labels")
        assert_that(out.failed | beam.Map(_failure), equal_to([(CORRUPT, "load", "corrupt_mesh")]), label="Failed")
        assert_that(out.dropped, equal_to([]), label="Dropped")
        assert_that(out.counts | beam.Filter(lambda c: c[0] == "views_rendered"),
                    equal_to([("views_rendered", 1)] * len(ROWS) * len(good)), label="Counts")


def test_render_pairs(box_tree):
    config = keypointnet.PairConfig(shapenet_dir=box_tree, image_size=(64, 64), pairs_per_model=3, seed=1)
    models = shapenet.scan(box_tree)
    tasks = [keypointnet.PairTask(m, "dev" if m.model_id == "box1" else "train", config.pairs_per_model)
             for m in models]
    good = [t for t in tasks if t.model.model_id in MODELS]
    intr = config.intrinsics

    def check(pairs):
        assert len(pairs) == config.pairs_per_model * len(good)
        for pair in pairs:
            scale = MODELS[pair["model_id"]]
            xyz_obj, normals = face_keypoints(scale)
            np.testing.assert_allclose(pair["xyz"], (xyz_obj - pair["center"]) * pair["scale"], atol=1e-9)
            np.testing.assert_allclose(pair["center"], CENTER, atol=1e-9)  # the box's centre
            assert pair["scale"] == pytest.approx(2.0 / (EXTENTS.max() * scale))  # largest extent 2
            for pair_view, r in zip(pair["views"], pair["renders"]):
                np.testing.assert_array_equal(r["rgba"][..., 3], np.where(r["depth"] > 0, 255, 0))
                uv, _, visible = depth_test(intr.K, pair_view.cam_T_obj, pair["xyz"], r["depth"], 0.0,
                                            config.visibility_tolerance)
                np.testing.assert_allclose(r["uv"], uv, atol=1e-3)
                np.testing.assert_array_equal(r["visible"], visible)
                check_against_faces(r["visible"], facing(pair_view.cam_T_obj, pair["xyz"], normals))

    with test_pipeline.TestPipeline() as p:
        out = (p | beam.Create(tasks)
               | "RenderPairs" >> beam.ParDo(keypointnet.RenderPairs(config, KeypointSource(None), backend="fake"))
               .with_outputs("failed", "timing", main="pairs"))
        assert_that(out.pairs | beam.Map(lambda r: (r["split"], r["file"], r["key"])),
                    equal_to([(t.split, keypointnet.record_name(t.model), keypointnet.pair_key(t.model, i))
                              for t in good for i in range(config.pairs_per_model)]), label="Keys")
        assert_that(out.pairs, check, label="Labels")
        assert_that(out.failed | beam.Map(_failure), equal_to([(CORRUPT, "load", "corrupt_mesh")]), label="Failed")


def test_render_sequences_then_convert_frames(box_tree, tmp_path):
    """RenderSequences writes KeyPose folders whose depth-tested visibility agrees with the Do EXR;
    ConvertFrames turns them into KEYPOSE records (a corrupt frame to the dead letters)."""
    out = str(tmp_path / "sequences")
    config = render_stereo.StereoConfig(models=box_tree, image_size=(160, 90), focal=84.45, frames=2,
                                        proj_targets=2, visibility="depth", output_dir=out, seed=2)
    objects = render_stereo.list_objects(config)
    assert [o.name for o in objects] == ["car_0", "car_1", "car_2"]  # car_2 is the corrupt OBJ
    tasks = [render_stereo.SequenceTask(f"{o.name}/texture_0_pose_0", o, 0, 0) for o in objects]
    good = tasks[:2]
    with test_pipeline.TestPipeline() as p:
        rendered = (p | "Sequences" >> beam.Create(tasks)
                    | "RenderSequences" >> beam.ParDo(render_stereo.RenderSequences(config, KeypointSource(None),
                                                                                    backend="fake"))
                    .with_outputs("failed", "timing", main="sequences"))
        assert_that(rendered.sequences | beam.Map(lambda s: (s["key"], s["object"], s["frames"], s["num_kp"])),
                    equal_to([(t.key, t.obj.name, 2, len(NAMES)) for t in good]), label="Summaries")
        assert_that(rendered.failed | beam.Map(_failure),
                    equal_to([("car_2/texture_0_pose_0", "render", "corrupt_mesh")]), label="Failed")
    folders = [os.path.join(out, *t.key.split("/")) for t in good]
    assert sorted(os.listdir(out)) == ["car_0", "car_1"]  # nothing left of the failed sequence
    n_visible = 0
    for folder in folders:
        assert keypose.list_frames(folder) == ["000000", "000001"]
        for frame in ("000000", "000001"):
            depth = exr.read_depth_exr(keypose.frame_path(folder, frame, "Do"))
            target = keypose.read_key_targets(keypose.frame_path(folder, frame, "L_pb")).kp_target
            cam = target.camera
            K = np.array([[cam.fx, 0, cam.cx], [0, cam.fy, cam.cy], [0, 0, 1]])
            xyz_world = keypose.world_points(target)
            uv, z, visible = depth_test(K, keypose.transform_matrix(target), xyz_world, depth, 0.01)
            np.testing.assert_allclose([[k.u, k.v] for k in target.keypoints], uv, atol=1e-6)
            np.testing.assert_array_equal([k.visible > 0 for k in target.keypoints], visible)
            n_visible += visible.sum()
            mask = keypose.read_png(keypose.frame_path(folder, frame, "mask"), "mask")
            assert mask.any() and np.all(depth[mask > 0] > 0)
    # the proxy of the scene is the box around plane and object: only the object's top face shows
    assert 0 < n_visible < 4 * len(NAMES)

    # the second stage: one frame's left image is corrupt
    with open(keypose.frame_path(folders[1], "000001", "L"), "wb") as f:
        f.write(b"not a png")
    gen = gen_tfrecords.GenConfig(image_size="80x45_fl42.225", examples_per_file=1)
    size = keypose.ImageSize.parse(gen.image_size)
    frame_tasks, plan_failures, files, _ = gen_tfrecords.plan_frames(gen, [(f, "train") for f in folders], size)
    assert plan_failures == [] and len(files) == 4
    bad_key = "car_1/texture_0_pose_0/000001"

    def check(groups):
        for index, (key, raw) in groups:
            task = next(t for t in frame_tasks if t.key == key)
            assert index == task.file_index
            rec = decode_keypose(raw)
            assert rec["img_L"].shape == (45, 80, 3) and int(rec["num_kp_L"]) == len(NAMES)
            kt = keypose.read_key_targets(keypose.frame_path(task.folder, task.frame, "L_pb")).kp_target
            np.testing.assert_allclose(rec["keys_uvd_L"][:, :2], [[k.u / 2, k.v / 2] for k in kt.keypoints], atol=1e-3)

    with test_pipeline.TestPipeline() as p:
        converted = (p | "Frames" >> beam.Create(frame_tasks)
                     | "ConvertFrames" >> beam.ParDo(gen_tfrecords.ConvertFrames("tfrecord"))
                     .with_outputs("failed", "timing", main="records"))
        assert_that(converted.records | beam.Map(lambda r: (r[0], r[1][0])),
                    equal_to([(t.file_index, t.key) for t in frame_tasks if t.key != bad_key]), label="Groups")
        assert_that(converted.records, check, label="Records")
        assert_that(converted.failed | beam.Map(_failure), equal_to([(bad_key, "convert", "corrupt_image")]),
                    label="Failed")


def test_view_layout_end_to_end(box_tree, tmp_path):
    """RenderViews (fake) through the streaming write path (units -> parts -> shards) and the dead
    letters, as render_shapenet runs them; the shards read back with decode_view: uv is the
    projection of xyz through K and cam_T_obj, visible keypoints have the depth within 1 % at their
    pixel, mask = depth > 0."""
    out = str(tmp_path)
    config = view_config(box_tree, output_dir=out)
    table = ViewpointTable(ROWS)
    tasks = _tasks(box_tree, config, len(ROWS))
    shards = {"train": 2, "test": 1}
    units, shard_list = skeleton.shard_layout(shapenet_views.model_units(tasks), shards, "tfrecord", config.name)
    work = skeleton.Work(units, view.RenderViews(config, KeypointSource(None), table, backend="fake"),
                         functools.partial(view.encode_view, seed=config.seed), shard_list)
    skeleton.make(work, out, PipelineOptions([]), skeleton.logging.getLogger("test"))
    failures, _, (infos,), _ = skeleton.gather(work, out)
    sinks.write_dead_letters(out, failures)
    assert [d["file"] for d in infos] == [shard_name(config.name, s, i, n) for s, n in sorted(shards.items())
                                          for i in range(n)]
    recs = []
    for split, n in shards.items():
        for i in range(n):
            path = os.path.join(out, shard_name(config.name, split, i, n))
            with open(path, "rb") as f:
                recs += [(split, decode_view(raw)) for raw in tfrecord.read_records(f, path)]
    good = [t for t in tasks if t.model.model_id in MODELS]
    assert sorted((s, r["key"]) for s, r in recs) == sorted(
        (t.split, shapenet_views.view_key(t.model, i)) for t in good for i in range(len(ROWS)))
    n_visible = 0
    for _, r in recs:
        uv, z = camera.project(r["camera/K"], r["camera/cam_T_obj"], r["keypoints/xyz"])
        assert np.max(np.abs(uv - r["keypoints/uv"])) < 1e-3
        np.testing.assert_array_equal(r["mask/encoded"] > 0, r["depth"] > 0)
        for (u, v), kz, vis in zip(r["keypoints/uv"], r["keypoints/z"], r["keypoints/visible"]):
            if vis:
                d = r["depth"][int(np.floor(v + 0.5)), int(np.floor(u + 0.5))]
                assert abs(d - kz) <= 0.01 * kz
                n_visible += 1
    assert n_visible > len(recs)
    lines = [json.loads(x) for x in open(os.path.join(out, ERRORS_DIR, FAILURES_FILE)).read().splitlines()]
    assert [_failure(x) for x in lines] == [(CORRUPT, "load", "corrupt_mesh")]


def test_render_views_runs_where_opengl_cannot_be_imported(box_tree, run_without_gl):
    """The render DoFn with the fake backend in a process where importing OpenGL, pyrender or
    pyglet fails: the pipeline modules load and render, and no GL module is loaded."""
    code = (
        "import apache_beam as beam\n"
        "from kpdata.keypoints import KeypointSource\n"
        "from kpdata.sources import shapenet\n"
        "from kpdata.viewpoints import ViewpointTable\n"
        "from pipelines import shapenet_views as rs, view\n"
        f"config = rs.RenderConfig(shapenet_dir={box_tree!r}, image_size=(32, 24), focal=30.0)\n"
        f"tasks = [rs.ModelTask(m, 'train', 1) for m in shapenet.scan({box_tree!r}) if m.model_id == 'box0']\n"
        "with beam.Pipeline() as p:\n"
        "    _ = (p | beam.Create(tasks)\n"
        "         | beam.ParDo(view.RenderViews(config, KeypointSource(None), None, backend='fake'))\n"
        "         | beam.Map(lambda v: print('rendered', v['key'], int(v['mask'].sum() > 0))))\n")
    res = run_without_gl(code)
    assert res.returncode == 0, res.stdout + res.stderr
    assert f"rendered {SYNSET}/box0/v000000 1" in res.stdout and "gl modules []" in res.stdout
