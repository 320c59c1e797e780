"""render_stereo -> gen_tfrecords round trip on the demo set: TensorFlow parses the records with a
spec written from formats.md §2.6 alone (in a subprocess), disparities match fx*B/z, Do/Dt match
trimesh ray casting, determinism, bad input, KeyPose .obj input, the preview sheet."""
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import trimesh

from kpdata import geometry, keypose

from kpdata.keypose import exr
from kpdata.mesh import load_mesh
from pipelines import gen_tfrecords, render_stereo
from schemas.dataset import previews, records
from schemas.keypose import decode_keypose

SMALL = ["--image_size", "320x180", "--focal", "168.9", "--frames", "3"]


def seq_dirs(root):
    return sorted(os.path.dirname(p) for p in
                  __import__("glob").glob(os.path.join(str(root), "*", "texture_*_pose_*", "data_params.pbtxt")))


@pytest.fixture(scope="module")
def rendered(tmp_path_factory, gl):
    out = tmp_path_factory.mktemp("stereo")
    rc = render_stereo.run(["--synsets", "car", "--output_dir", str(out), "--seed", "3", "--preview", "4",
                            *SMALL])
    assert rc == 0
    return out


@pytest.fixture(scope="module")
def converted(rendered, tmp_path_factory):
    out = tmp_path_factory.mktemp("records")
    rc = gen_tfrecords.run(["--input", os.path.join(str(rendered), "*", "texture_*_pose_*"),
                            "--val", "car_1/*", "--image_size", "189x106_fl100", "--output_dir", str(out),
                            "--preview", "4"])
    assert rc == 0
    return out


def test_sequence_layout(rendered):
    dirs = seq_dirs(rendered)
    assert [os.path.relpath(d, rendered) for d in dirs] == ["car_0/texture_0_pose_0", "car_1/texture_0_pose_0"]
    names = sorted(os.listdir(dirs[1]))
    per_frame = ["L.png", "R.png", "L.pbtxt", "R.pbtxt", "mask.png", "border.png", "Do.exr", "Dt.exr"]
    assert names == sorted([f"{i:06d}_{s}" for i in range(3) for s in per_frame] + ["data_params.pbtxt",
                                                                                    "scene.json"])
    dp = keypose.read_data_params(os.path.join(dirs[1], "data_params.pbtxt"))
    assert (dp.resx, dp.resy, dp.num_kp) == (320, 180, 12)
    assert dp.camera.baseline == pytest.approx(0.12) and dp.camera.fx == pytest.approx(168.9)
    kt = keypose.read_key_targets(os.path.join(dirs[1], "000001_L.pbtxt"))
    assert len(kt.proj_targets) == 3 and not kt.mirrored  # itself + the 2 other frames
    assert kt.proj_targets[0] == kt.kp_target
    kt_r = keypose.read_key_targets(os.path.join(dirs[1], "000001_R.pbtxt"))
    t_l, t_r = keypose.transform_matrix(kt.kp_target), keypose.transform_matrix(kt_r.kp_target)
    np.testing.assert_allclose(t_r[0, 3], t_l[0, 3] - 0.12, atol=1e-6)
    np.testing.assert_allclose(t_r[:3, :3], t_l[:3, :3])
    # the KeyPose CAD file: its keypoints, through world_T_cad, are the scene's keypoints
    scene = json.loads(Path(os.path.join(dirs[1], "scene.json")).read_text())
    cad = keypose.read_keypose_obj(os.path.join(rendered, "objects", "car_1.obj"))
    np.testing.assert_allclose(geometry.transform_points(np.array(scene["world_T_cad"]), cad.keypoints),
                               scene["keypoints_world"], atol=2e-6)
    np.testing.assert_allclose(keypose.world_points(kt.kp_target), scene["keypoints_world"], atol=1e-5)
    mask = keypose.read_png(os.path.join(dirs[1], "000000_mask.png"), "mask")
    border = keypose.read_png(os.path.join(dirs[1], "000000_border.png"), "border")
    assert set(np.unique(mask)) == {0, 255} and 50 < np.count_nonzero(mask) < mask.size / 2
    assert np.count_nonzero(border) > 0 and np.count_nonzero(border & ~mask) > 0


def test_depths_match_ray_casting(rendered):
    """Acceptance: Do (object opaque) and Dt (object transparent: the plane behind) agree within 1%
    with trimesh ray casting against the scene with and without the object, at sampled pixels."""
    d = seq_dirs(rendered)[1]
    scene = json.loads(Path(os.path.join(d, "scene.json")).read_text())
    loaded = load_mesh(scene["source"])
    parts = []
    for node in loaded.scene.graph.nodes_geometry:
        transform, name = loaded.scene.graph[node]
        g = loaded.scene.geometry[name]
        parts.append(trimesh.Trimesh(geometry.transform_points(np.array(scene["world_T_obj"]) @ transform, g.vertices),
                                     g.faces, process=False))
    obj = trimesh.util.concatenate(parts)
    h = scene["plane_size"] / 2
    plane = trimesh.Trimesh([[-h, -h, 0], [h, -h, 0], [h, h, 0], [-h, h, 0]], [[0, 1, 2], [0, 2, 3]], process=False)
    with_obj = trimesh.util.concatenate([obj, plane])
    rng = np.random.default_rng(0)
    for frame in ("000000", "000002"):
        kt = keypose.read_key_targets(keypose.frame_path(d, frame, "L_pb"))
        cam, t = kt.kp_target.camera, keypose.transform_matrix(kt.kp_target)
        do = exr.read_depth_exr(keypose.frame_path(d, frame, "Do"))
        dt = exr.read_depth_exr(keypose.frame_path(d, frame, "Dt"))
        mask = keypose.read_png(keypose.frame_path(d, frame, "mask"), "mask") > 0
        ys, xs = np.nonzero(mask)
        pick = rng.choice(len(xs), 150, replace=False)
        px = np.concatenate([np.stack([xs[pick], ys[pick]], 1), rng.integers([0, 0], [320, 180], (150, 2))])
        # keep pixels away from depth edges (a ray through the pixel centre vs. a sub-pixel boundary)
        pad = np.pad(do, 1, mode="edge")
        win = np.stack([pad[1 + dy:181 + dy, 1 + dx:321 + dx] for dy in (-1, 0, 1) for dx in (-1, 0, 1)])
        smooth = (win.max(0) - win.min(0)) < 0.02 * np.maximum(do, 1e-6)
        px = px[smooth[px[:, 1], px[:, 0]]]
        assert len(px) > 150
        world_T_cam = np.linalg.inv(t)
        dirs_cam = np.stack([(px[:, 0] - cam.cx) / cam.fx, (px[:, 1] - cam.cy) / cam.fy, np.ones(len(px))], 1)
        dirs = dirs_cam @ world_T_cam[:3, :3].T
        origins = np.repeat(world_T_cam[None, :3, 3], len(px), 0)
        for mesh, depth, label in ((with_obj, do, "Do"), (plane, dt, "Dt")):
            locs, idx, _ = mesh.ray.intersects_location(origins, dirs, multiple_hits=True)
            ref = np.zeros(len(px))
            for k in range(len(px)):
                hits = locs[idx == k]
                if len(hits):
                    ref[k] = ((hits - origins[k]) @ t[2, :3]).min()  # z-depth = camera z of the hit
            got = depth[px[:, 1], px[:, 0]]
            assert np.all((ref > 0) == (got > 0)), label
            hit = ref > 0
            rel = np.abs(got[hit] - ref[hit]) / ref[hit]
            assert rel.max() < 0.01, (label, frame, rel.max())
        on_obj = mask[px[:, 1], px[:, 0]]
        assert on_obj.sum() > 50 and np.all(do[px[on_obj, 1], px[on_obj, 0]] < dt[px[on_obj, 1], px[on_obj, 0]])


def test_disparity_of_visible_keypoints(converted):
    """Acceptance: for every visible keypoint d = fx * B / z and u_L - u_R = d within 0.01 px."""
    n = 0
    for _, raw in records.iter_records(str(converted)):
        r = decode_keypose(raw)
        fx, b = float(r["camera_L"][0]), float(r["camera_L"][4])
        assert fx == pytest.approx(100) and b == pytest.approx(0.12)
        kl, kr = r["keys_uvd_L"].astype(np.float64), r["keys_uvd_R"].astype(np.float64)
        world = keypose.project_h(r["to_world_L"].astype(np.float64), kl)
        cam = np.c_[world[:, :3], np.ones(len(world))] @ np.linalg.inv(r["to_world_L"].astype(np.float64)).T
        z = geometry.transform_points(
            np.linalg.inv(np.linalg.inv(r["to_uvd_L"].astype(np.float64)) @ keypose.p_matrix(
                keypose.make_camera(*r["camera_L"]))), world[:, :3])[:, 2]
        vis = (r["visible_L"] > 0) & (r["visible_R"] > 0)
        np.testing.assert_allclose(kl[vis, 2], fx * b / z[vis], atol=0.01)
        np.testing.assert_allclose(kl[vis, 0] - kr[vis, 0], kl[vis, 2], atol=0.01)
        np.testing.assert_allclose(kl[:, 1], kr[:, 1], atol=0.01)
        assert cam.shape == kl.shape
        n += int(vis.sum())
    assert n > 40


def test_round_trip_parses_with_tensorflow(converted):
    """Acceptance: the records parse with tf.io.parse_single_example and a spec written from
    formats.md §2.6 alone (TensorFlow in a subprocess); decode_png(..., 4) gives alpha 255 on
    every pixel of both images (formats.md §2.9)."""
    info = records.load_info(str(converted))
    files = [os.path.join(str(converted), s["file"]) for sp in info["splits"].values() for s in sp["shards"]]
    dp = keypose.read_data_params(os.path.join(str(converted), "tfrecords", "data_params.pbtxt"))
    code = textwrap.dedent(f"""
        import json, sys
        import tensorflow as tf
        K, RESX, RESY = {dp.num_kp}, {dp.resx}, {dp.resy}
        spec = {{"mirrored": tf.io.FixedLenFeature([], tf.int64)}}
        for pf in ("L", "R"):
            spec.update({{
                "img_" + pf: tf.io.FixedLenFeature([], tf.string),
                "to_world_" + pf: tf.io.FixedLenFeature([4, 4], tf.float32),
                "to_uvd_" + pf: tf.io.FixedLenFeature([4, 4], tf.float32),
                "camera_" + pf: tf.io.FixedLenFeature([7], tf.float32),
                "keys_uvd_" + pf: tf.io.FixedLenFeature([K, 4], tf.float32),
                "visible_" + pf: tf.io.FixedLenFeature([K], tf.float32),
                "num_kp_" + pf: tf.io.FixedLenFeature([], tf.int64),
                "num_targets_" + pf: tf.io.FixedLenFeature([], tf.int64),
                "targets_to_uvd_" + pf: tf.io.FixedLenFeature([5, 4, 4], tf.float32),
                "targets_keys_uvd_" + pf: tf.io.FixedLenFeature([5, K, 4], tf.float32),
            }})
        out = []
        for raw in tf.data.TFRecordDataset({files!r}):
            ex = tf.io.parse_single_example(raw, spec)
            row = {{"mirrored": int(ex["mirrored"])}}
            for pf in ("L", "R"):
                img = tf.image.decode_png(ex["img_" + pf], 4)
                img.set_shape([RESY, RESX, 4])
                row["img_" + pf] = [int(v) for v in tf.reduce_sum(tf.cast(img, tf.int64), [0, 1]).numpy()]
                row["opaque_" + pf] = float(tf.reduce_mean(tf.cast(img[..., 3] == 255, tf.float32)))
                for k in ("keys_uvd_", "camera_", "visible_", "to_world_", "targets_keys_uvd_"):
                    row[k + pf] = ex[k + pf].numpy().tolist()
                row["num_kp_" + pf] = int(ex["num_kp_" + pf])
                row["num_targets_" + pf] = int(ex["num_targets_" + pf])
            out.append(row)
        print(json.dumps(out))
    """)
    res = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=300,
                         env={**os.environ, "CUDA_VISIBLE_DEVICES": "", "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert res.returncode == 0, res.stderr[-3000:]
    tf_rows = json.loads(res.stdout.strip().splitlines()[-1])
    ours = [decode_keypose(raw) for _, raw in records.iter_records(str(converted))]
    assert len(tf_rows) == len(ours) == 6
    for t, o in zip(tf_rows, ours):
        assert t["mirrored"] == o["mirrored"] == 0
        for pf in ("L", "R"):
            # KeyPose's parser (decode_png(..., 4)) sees our stored B, G, R channels and an alpha of
            # 255 everywhere: the records carry no alpha, so do_composite greys out nothing
            assert o["img_" + pf].shape[2] == 3
            assert t["img_" + pf][:3] == o["img_" + pf].astype(np.int64).sum(axis=(0, 1)).tolist()
            assert t["opaque_" + pf] == 1.0
            for k in ("keys_uvd_", "camera_", "visible_", "to_world_", "targets_keys_uvd_"):
                np.testing.assert_array_equal(np.array(t[k + pf], np.float32), o[k + pf])
            assert t["num_kp_" + pf] == o["num_kp_" + pf] and t["num_targets_" + pf] == o["num_targets_" + pf] == 3
            # padding of the proj targets (3 real, 2 dummy)
            np.testing.assert_array_equal(o["targets_keys_uvd_" + pf][3:, :, 3], 1)
            np.testing.assert_array_equal(o["targets_keys_uvd_" + pf][3:, :, :3], 0)
            np.testing.assert_array_equal(o["targets_to_uvd_" + pf][4], np.diag([0, 0, 0, 1]))
    info_val = [s["file"] for s in info["splits"]["val"]["shards"]]
    assert info_val == ["tfrecords/0001.tfrecord"]  # car_1 is val: after the train file


def test_same_seed_same_bytes_and_preview(rendered, tmp_path):
    out = tmp_path / "again"
    rc = render_stereo.run(["--synsets", "car", "--output_dir", str(out), "--seed", "3", "--preview", "0",
                            *SMALL])
    assert rc == 0
    for d in seq_dirs(rendered):
        rel = os.path.relpath(d, rendered)
        for f in sorted(os.listdir(d)):
            a = Path(os.path.join(d, f)).read_bytes()
            b = Path(os.path.join(out, rel, f)).read_bytes()
            assert a == b, f
    # pipelines.preview draws both the sequence tree and the records
    from pipelines import preview
    assert preview.run([str(rendered), "--output", str(tmp_path / "seq.png")]) == 0
    import cv2
    sheet = cv2.imread(str(tmp_path / "seq.png"))
    assert sheet is not None and sheet.shape[1] > 900
    (tmp_path / "empty").mkdir()
    assert previews.dataset_kind(str(tmp_path / "empty")) is None


def test_bad_objects_are_dead_letters_and_keypose_obj_input(tmp_path, gl):
    import trimesh as tm
    objs = tmp_path / "objs"
    objs.mkdir()
    box = tm.creation.box((0.06, 0.06, 0.12))
    (objs / "box_0.obj").write_text(keypose.keypose_obj_text(box.vertices, box.faces,
                                                             [[0, 0, 0.06], [0, 0.03, 0], [0.03, 0, 0]]))
    (objs / "broken_0.obj").write_text("o mesh\nv 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3\n")  # no keypoints
    out = tmp_path / "out"
    rc = render_stereo.run(["--models", str(objs / "*.obj"), "--output_dir", str(out), "--preview", "0",
                            "--frames", "2", "--image_size", "160x90", "--focal", "84.45"])
    assert rc == 1  # 1 of 2 sequences failed > 5%
    lines = [json.loads(x) for x in Path(out / "errors" / "failures.jsonl").read_text().splitlines()]
    assert [(d["key"], d["error"]) for d in lines] == [("broken_0/texture_0_pose_0", "no_keypoints")]
    assert lines[0]["path"].endswith("broken_0.obj")
    d = out / "box_0" / "texture_0_pose_0"
    kt = keypose.read_key_targets(str(d / "000000_L.pbtxt"))
    scene = json.loads(Path(d / "scene.json").read_text())
    # the box rests on the plane: its lowest keypoint group is 6 cm below the top one
    kw = np.array(scene["keypoints_world"])
    assert kw[0, 2] == pytest.approx(0.12, abs=1e-6) and len(kt.kp_target.keypoints) == 3
    assert not os.path.exists(out / "broken_0")


def test_records_hold_the_frames_in_keypose_channel_order(rendered, converted):
    """formats.md §2.5, §2.9: each record's img_L / img_R is the cv2.imread array (B, G, R) of
    its frame file, resized, 3 channels, no alpha; the left mask is not in the image. The
    reference resize here is cv2.resize (INTER_AREA) of the whole frame (189x106 at fx 100 from
    320x180 at fx 168.9: no crop); the record is decoded in stored channel order (PIL). Swapping
    the record's first and last channel makes it far from the frame."""
    import io

    import cv2
    from PIL import Image

    from schemas import example_proto

    info = records.load_info(str(converted))
    frames = [(folder, frame) for split in ("train", "val") for folder in info["folders"][split]
              for frame in keypose.list_frames(os.path.join(str(rendered), folder))]  # the records' order
    raws = [raw for _, raw in records.iter_records(str(converted))]
    assert len(raws) == len(frames) == 6
    n = 0
    for (folder, frame), raw in zip(frames, raws):
        key = f"{folder}/{frame}"
        ex = example_proto.parse_example(raw).features.feature
        for pf in ("L", "R"):
            with Image.open(io.BytesIO(ex[f"img_{pf}"].bytes_list.value[0])) as im:
                assert im.mode == "RGB"
                got = np.asarray(im).astype(np.float64)
            frame_bgr = cv2.imread(keypose.frame_path(os.path.join(str(rendered), folder), frame, pf))
            ref = cv2.resize(frame_bgr, (189, 106), interpolation=cv2.INTER_AREA).astype(np.float64)
            # pixel by pixel the two resamplers differ at the render's sharp edges (ours samples at
            # KeyPose's camera update, cv2.resize aligns pixel edges); channel by channel the means agree
            diff, swapped = np.abs(got - ref).mean(), np.abs(got[..., ::-1] - ref).mean()
            means, ref_means = got.mean(axis=(0, 1)), ref.mean(axis=(0, 1))
            assert np.abs(means - ref_means).max() < 1.5, (key, pf, means, ref_means)
            assert diff < 10 and diff < swapped / 4, (key, pf, diff, swapped)
            n += 1
    assert n == 12
