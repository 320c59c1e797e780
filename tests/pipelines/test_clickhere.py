"""render_shapenet --layout clickhere end to end (issue 3): the Caffe LMDB layout, the instance
TFRecords and the compact layouts on the same instances; Datums against a protobuf definition of
Caffe's Datum; maps against scipy; flips; lights; determinism; dropped views."""
import json
import os
import re
import subprocess
import sys

import lmdb
import numpy as np
import pytest
from scipy import ndimage

from kpdata.clickhere import imageops
from pipelines import clickhere, render_shapenet
from schemas import clickhere as chs
from schemas.dataset import records
from schemas.dataset import names

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(__file__)), "schemas"))
from test_caffe_datum import reference_datum

BASE = ["--layout", "clickhere", "--image_size", "480x270", "--focal", "525", "--views_per_model", "3",
        "--splits", "train=0.5,test=0.5", "--seed", "3", "--preview", "0"]
KEY_RE = re.compile(r"^\d{8}_\d{8}_[0-9a-f]{32}_v\d{6}_a\d{3}_e\d{3}_t\d{3}_d\d{3}_obj0_objc(4|5|8)_kp\d+(_r)?$")


@pytest.fixture(scope="module")
def runs(fixtures, tmp_path_factory):
    bg = ["--backgrounds", os.path.join(fixtures, "sun2012_sample")]
    out = {}
    for name, extra in (("caffe", ["--format", "lmdb"]), ("tfrecord", ["--format", "tfrecord"]),
                        ("compact_lmdb", ["--format", "lmdb", "--compact"]),
                        ("compact_tfrecord", ["--format", "tfrecord", "--compact"])):
        d = tmp_path_factory.mktemp(name)
        assert render_shapenet.run(BASE + bg + extra + ["--output_dir", str(d)]) == 0
        out[name] = d
    return out


def _instances(d):
    return {r["key"]: r for r in records.iter_instances(str(d))}


def test_caffe_layout_has_identical_sorted_key_sets(runs):
    d = runs["caffe"]
    info = records.load_info(str(d))
    assert info["record"] == "caffe_datum" and set(info["splits"]) == {"train", "test"}
    for split in ("train", "test"):
        keys_txt = (d / split / "keys.txt").read_text().split()
        assert keys_txt == sorted(keys_txt) and len(keys_txt) > 10
        assert all(KEY_RE.match(k) for k in keys_txt), keys_txt[:3]
        assert info["splits"][split]["num_instances"] == len(keys_txt) == info["splits"][split]["num_examples"]
        for field in chs.CAFFE_FIELDS:
            env = lmdb.open(str(d / split / f"{field}_lmdb"), readonly=True, lock=False)
            with env.begin() as txn:
                keys = [k.decode("ascii") for k, _ in txn.cursor()]
            env.close()
            assert keys == keys_txt, field
        flipped = {k for k in keys_txt if k.endswith("_r")}
        assert bool(flipped) == (split == "train")  # --flip_splits train (the default)


def test_datums_decode_with_caffes_definition_and_maps_equal_scipy(runs):
    Datum = reference_datum()
    d = runs["caffe"] / "train"
    envs = {f: lmdb.open(str(d / f"{f}_lmdb"), readonly=True, lock=False) for f in chs.CAFFE_FIELDS}
    txns = {f: e.begin() for f, e in envs.items()}
    keys = (d / "keys.txt").read_text().split()
    for key in keys[:: max(1, len(keys) // 12)]:
        datum = {}
        for f in chs.CAFFE_FIELDS:
            m = Datum()
            m.ParseFromString(txns[f].get(key.encode()))
            datum[f] = m
        img = datum["image"]
        assert (img.channels, img.height, img.width) == (3, 227, 227) and len(img.data) == 3 * 227 * 227
        for f in ("keypoint_loc", "gaussian_keypoint_map"):
            assert (datum[f].channels, datum[f].height, datum[f].width) == (1, 227, 227) and len(datum[f].data) == 227 ** 2
        for f in ("chessboard_dt_map", "euclidean_dt_map", "manhattan_dt_map"):
            assert (datum[f].channels, datum[f].height, datum[f].width) == (1, 227, 227)
            assert len(datum[f].float_data) == 227 ** 2 and not datum[f].data
        kc = datum["keypoint_class"]
        assert (kc.channels, kc.height, kc.width) == (34, 1, 1)
        onehot = np.frombuffer(kc.data, np.uint8)
        # the key names the unflipped class; an _r copy's one-hot is the left/right-swapped one
        table = clickhere.load_class_table("clickhere34").names
        kp_name = table[int(key.split("_kp")[1].split("_")[0])]
        want = kp_name.replace("left", "#").replace("right", "left").replace("#", "right") if key.endswith("_r") else kp_name
        assert onehot.sum() == 1 and table[int(np.argmax(onehot))] == want
        vl = datum["viewpoint_label"]
        assert (vl.channels, vl.height, vl.width) == (4, 1, 1) and len(vl.float_data) == 4
        cls = int(vl.float_data[0])
        assert f"_objc{cls}_" in key and all(360 * cls <= v < 360 * (cls + 1) for v in vl.float_data[1:])
        # the maps against scipy on the keypoint of keypoint_loc
        loc = np.frombuffer(datum["keypoint_loc"].data, np.uint8).reshape(227, 227)
        assert (loc == 255).sum() == 1
        inv = 1 - loc / 255
        cheb = np.asarray(datum["chessboard_dt_map"].float_data, np.float32).reshape(227, 227)
        assert np.array_equal(cheb, ndimage.distance_transform_cdt(inv, "chessboard").astype(np.float32))
        man = np.asarray(datum["manhattan_dt_map"].float_data, np.float32).reshape(227, 227)
        assert np.array_equal(man, ndimage.distance_transform_cdt(inv, "taxicab").astype(np.float32))
        euc = np.asarray(datum["euclidean_dt_map"].float_data, np.float32).reshape(227, 227)
        assert np.array_equal(euc, ndimage.distance_transform_edt(inv).astype(np.float32))
        g = ndimage.gaussian_filter(inv * -1 + 1, 23, mode="constant")
        g8 = np.frombuffer(datum["gaussian_keypoint_map"].data, np.uint8).reshape(227, 227)
        assert np.array_equal(g8, ((g / g.max() * 255).clip(0, 255) + 0.5).astype(np.uint8))
    for e in envs.values():
        e.close()


def test_compact_layouts_rebuild_the_full_layouts_exactly(runs):
    full = _instances(runs["caffe"])
    tf_full = _instances(runs["tfrecord"])
    for name in ("compact_lmdb", "compact_tfrecord"):
        compact = _instances(runs[name])
        assert sorted(compact) == sorted(full) == sorted(tf_full)
        for key, inst in compact.items():
            for ref in (full[key], tf_full[key]):
                for f in ("image", "keypoint_loc", "gaussian_keypoint_map", "keypoint_class", "keypoint_pixel"):
                    assert np.array_equal(inst[f], ref[f]), (name, key, f)
                for f in ("chessboard_dt_map", "euclidean_dt_map", "manhattan_dt_map"):
                    assert np.array_equal(inst[f].astype(np.float32), ref[f]), (name, key, f)
                assert np.array_equal(inst["viewpoint_label"], ref["viewpoint_label"])


def _bytes_per_instance(d):
    info = records.load_info(str(d))
    return sum(s["num_bytes"] for s in info["splits"].values()) / sum(s["num_instances"] for s in info["splits"].values())


def test_compact_is_at_least_20x_smaller(runs):
    full = _bytes_per_instance(runs["caffe"])
    for name in ("compact_lmdb", "compact_tfrecord"):
        assert full / _bytes_per_instance(runs[name]) >= 20, (name, full, _bytes_per_instance(runs[name]))


def test_flipped_copies_mirror_image_keypoint_class_and_angles(runs):
    insts = _instances(runs["compact_tfrecord"])
    recs = {r["key"]: r for r in (chs.decode_view(raw) for _, raw in records.iter_records(str(runs["compact_tfrecord"])))}
    n = 0
    for rec in recs.values():
        for i, (k, kr) in enumerate(zip(rec["instances/key"], rec["instances/flip_key"])):
            a, b = insts[k], insts[kr]
            stem = k.split("_", 1)[1].split("_kp")[0]
            assert kr.endswith("_r") and kr.split("_", 1)[1].split("_kp")[0] == stem
            # Click-Here's get_job_key: the _r key keeps the original keypoint class, + "_r"
            assert kr.split("_kp")[1] == k.split("_kp")[1] + "_r"
            assert kr.endswith(f"_kp{int(rec['keypoints/class'][i])}_r")
            assert np.array_equal(b["image"], a["image"][:, ::-1])
            assert b["keypoint_pixel"].tolist() == [226 - a["keypoint_pixel"][0], a["keypoint_pixel"][1]]
            name = rec["keypoints/names"][i]
            table = clickhere.load_class_table("clickhere34").names
            cls_name = table[int(np.argmax(a["keypoint_class"]))]
            flip_name = table[int(np.argmax(b["keypoint_class"]))]
            assert cls_name.endswith(name)
            assert flip_name == cls_name.replace("left", "#").replace("right", "left").replace("#", "right")
            c = int(a["viewpoint_label"][0])
            az, el, tilt = (int(v) - 360 * c for v in a["viewpoint_label"][1:])
            assert (b["viewpoint_label"][1:] - 360 * c).tolist() == [(360 - az) % 360, el, (-tilt) % 360]
            n += 1
    assert n > 5


def test_keypoint_pixels_divide_by_the_crop_box_size(runs):
    """formats.md §3.7: pixel = floor(227 (kp - (x1, y1)) / (x2 - x1 + 1, y2 - y1 + 1)), clamped to
    [0, 226], computed here from each view's crop box and its keypoints in render pixels; the full
    instances (keypoint_loc's 255 pixel) and the compact rebuild hold it."""
    full = _instances(runs["caffe"])
    n = 0
    for _, raw in records.iter_records(str(runs["compact_tfrecord"])):
        rec = chs.decode_view(raw)
        x1, y1, x2, y2 = (int(v) for v in rec["render/crop_box"])
        for i, key in enumerate(rec["instances/key"]):
            u, v = np.asarray(rec["keypoints/uv"], np.float64).reshape(-1, 2)[i] + (x1, y1)  # render pixels
            # (a keypoint on the box's edge may sit a rounding error outside it: clamped to 0 too)
            want = [max(0, min(int(np.floor(227 * (u - x1) / (x2 - x1 + 1))), 226)),
                    max(0, min(int(np.floor(227 * (v - y1) / (y2 - y1 + 1))), 226))]
            assert rec["keypoints/pixel"].reshape(-1, 2)[i].tolist() == want, key
            loc = full[key]["keypoint_loc"]
            assert np.argwhere(loc == 255).tolist() == [want[::-1]], key
            assert full[key]["keypoint_pixel"].tolist() == want
            if rec["instances/flip_key"]:
                kr = rec["instances/flip_key"][i]
                assert np.argwhere(full[kr]["keypoint_loc"] == 255).tolist() == [[want[1], 226 - want[0]]]
            n += 1
    assert n > 10


def test_records_carry_lights_crop_and_background(runs, fixtures):
    photos = set(imageops.list_backgrounds(os.path.join(fixtures, "sun2012_sample")))
    lines = [json.loads(ln) for split in ("train", "test")
             for ln in (runs["caffe"] / split / "views.jsonl").read_text().splitlines()]
    recs = [chs.decode_view(raw) for _, raw in records.iter_records(str(runs["compact_lmdb"]))]
    assert len(lines) == len(recs) > 0
    n_lamps = set()
    for rec in recs:
        lights = rec["render/lights"]
        n_lamps.add(len(lights))
        assert len(lights) <= 6 and 0 <= rec["render/environment_energy"] <= 1
        assert np.all((lights[:, 0] >= 8) & (lights[:, 0] <= 20)) and np.all(np.abs(lights[:, 2]) <= 90)
        bg = rec["render/background"]
        assert bg.startswith("gray:") or bg.split("@")[0] in photos
        x0, y0, x1, y1 = rec["render/crop_box"]
        assert (x1 - x0 + 1, y1 - y0 + 1) == (rec["image/width"], rec["image/height"])
        img = imageops.decode_jpeg(rec["image/jpeg"])
        assert img.shape == (rec["image/height"], rec["image/width"], 3)
        uv = rec["keypoints/uv"]
        assert np.all(uv > -0.5) and np.all(uv[:, 0] < rec["image/width"] - 0.5) and np.all(uv[:, 1] < rec["image/height"] - 0.5)
        az, el, tilt, _ = rec["viewpoint"]
        c = rec["object_class"]
        assert rec["viewpoint_label"].tolist() == [c, round(az) % 360 + 360 * c, round(el) % 360 + 360 * c,
                                                   round(-tilt % 360) % 360 + 360 * c]
    assert len(n_lamps) > 1
    stats = json.loads((runs["caffe"] / "stats.json").read_text())
    assert stats["counts"]["backgrounds_photo"] + stats["counts"]["backgrounds_gray"] == len(recs)
    assert stats["counts"]["backgrounds_photo"] > stats["counts"]["backgrounds_gray"]


def test_same_seed_same_bytes(runs, fixtures, tmp_path):
    args = BASE + ["--backgrounds", os.path.join(fixtures, "sun2012_sample"), "--format", "tfrecord", "--compact",
                   "--direct_num_workers", "2", "--direct_running_mode", "multi_threading"]
    assert render_shapenet.run(args + ["--output_dir", str(tmp_path)]) == 0
    for split in ("train", "test"):
        name = names.shard_name("shapenet_views", split, 0, 1)
        assert (tmp_path / name).read_bytes() == (runs["compact_tfrecord"] / name).read_bytes()


def test_views_without_keypoints_are_dropped_and_counted(tmp_path):
    trunc = tmp_path / "t.txt"
    trunc.write_text("0.49 -0.49 0.49 -0.49\n")  # a sliver in the middle of the object
    rc = render_shapenet.run(BASE + ["--format", "tfrecord", "--compact", "--truncations", str(trunc),
                                     "--output_dir", str(tmp_path / "o")])
    assert rc == 0
    stats = json.loads((tmp_path / "o" / "stats.json").read_text())
    dropped = stats["counts"].get("views_dropped_no_keypoint", 0)
    assert dropped > 0 and stats["counts"]["records_written"] == 12 - dropped
    lines = [json.loads(x) for x in (tmp_path / "o" / "errors" / clickhere.DROPPED_FILE).read_text().splitlines()]
    assert len(lines) == dropped and all(x["error"] == "no_visible_keypoint" and x["path"] for x in lines)
    assert (tmp_path / "o" / "errors" / "failures.jsonl").read_text() == ""


def test_bad_inputs_and_view_layout_flags(tmp_path, capsys):
    assert render_shapenet.run(BASE + ["--backgrounds", str(tmp_path / "missing"), "--output_dir", str(tmp_path)]) == 2
    assert "missing" in capsys.readouterr().err
    bad = tmp_path / "t.txt"
    bad.write_text("0 0 0\n")
    assert render_shapenet.run(BASE + ["--truncations", str(bad), "--output_dir", str(tmp_path)]) == 2
    assert "line 1" in capsys.readouterr().err
    for layout in ("view", "keypointnet"):
        with pytest.raises(SystemExit):
            render_shapenet.run(["--layout", layout, "--compact", "--output_dir", str(tmp_path)])
        assert f"--layout {layout} does not take --compact (flags of --layout clickhere)" in capsys.readouterr().err


def test_tensorflow_parses_the_instance_records(runs):
    """TensorFlow's own parser (in a subprocess) reads the instance Examples with the schema's spec."""
    path = str(runs["tfrecord"] / names.shard_name("shapenet_views", "train", 0, 1))
    code = f"""
import numpy as np, tensorflow as tf
spec = {{
  "key": tf.io.FixedLenFeature([], tf.string),
  "image/encoded": tf.io.FixedLenFeature([], tf.string),
  "chessboard_dt_map": tf.io.FixedLenFeature([227 * 227], tf.float32),
  "keypoint_class": tf.io.FixedLenFeature([34], tf.int64),
  "viewpoint_label": tf.io.FixedLenFeature([4], tf.int64),
  "keypoint_pixel": tf.io.FixedLenFeature([2], tf.int64),
}}
n = 0
for raw in tf.data.TFRecordDataset({path!r}):
    ex = tf.io.parse_single_example(raw, spec)
    img = tf.io.decode_png(ex["image/encoded"]).numpy()
    assert img.shape == (227, 227, 3)
    x, y = ex["keypoint_pixel"].numpy()
    assert ex["chessboard_dt_map"].numpy().reshape(227, 227)[y, x] == 0
    assert ex["keypoint_class"].numpy().sum() == 1
    n += 1
print("parsed", n)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=False)
    assert out.returncode == 0, out.stderr[-2000:]
    assert int(out.stdout.split()[-1]) > 5


# ------------------------------------------------------------------ --clickhere_render box (issue 15)

# Bounds of |box - full| over the 227x227 images (grey levels, every RGB value). Measured: 6.4 mean,
# 21 % > 8 for this module's runs (480x270, focal 525: crops of about 50-240 pixels, mostly upscaled by the full
# path, over photo backgrounds: the full path's JPEG is then blurred by the upscale, the box path's
# is not); 3.4 / 12 % on the demo set at 960x540 and 2.5 / 7 % on the real v1 chair
# (bench/perf.py clickhere, docs/performance.md). The bounds leave about 1.6x that worst case for
# other views and libjpeg builds; a shifted box render is caught by the alignment test below.
BOX_MEAN_BOUND, BOX_OVER8_BOUND = 10.0, 0.35

@pytest.fixture(scope="module")
def box_run(runs, fixtures, tmp_path_factory):
    d = tmp_path_factory.mktemp("compact_box")
    args = BASE + ["--backgrounds", os.path.join(fixtures, "sun2012_sample"), "--format", "tfrecord", "--compact",
                   "--clickhere_render", "box", "--output_dir", str(d)]
    assert render_shapenet.run(args) == 0
    return d


def test_box_intrinsics_are_the_crop_then_resize():
    """A point's pixel under box_intrinsics is its pixel in the full render moved into the crop
    and scaled with pixel centres aligned (an image resize's mapping), computed by hand."""
    from kpdata import camera
    from kpdata.clickhere import compose
    intr = camera.Intrinsics(1050.0, 1040.0, 479.5, 269.5, 960, 540)
    box = (301, 120, 712, 399)  # 412 x 280
    k = compose.box_intrinsics(intr, box)
    assert (k.width, k.height) == (227, 227)
    rng = np.random.default_rng(0)
    pts = np.c_[rng.uniform(-0.3, 0.3, (20, 2)), rng.uniform(2, 3, 20)]
    uv, _ = camera.project(intr.K, np.eye(4), pts)
    want = (uv - [301, 120] + 0.5) * [227 / 412, 227 / 280] - 0.5
    np.testing.assert_allclose(camera.project(k.K, np.eye(4), pts)[0], want, atol=1e-9)
    win = compose.window_intrinsics(intr, 301, 120, 412, 280)
    np.testing.assert_allclose(camera.project(win.K, np.eye(4), pts)[0], uv - [301, 120], atol=1e-9)


def test_box_render_validates_and_matches_the_full_render(runs, box_run):
    """--clickhere_render box: validate passes; the same views, crop boxes, instance keys and
    keypoint maps as the default (full) path; its 227x227 images within the measured bound of the
    full path's (crop, JPEG, resize)."""
    from schemas.dataset.validation import validate
    assert validate(str(box_run)).defects == []
    full_dir = runs["compact_tfrecord"]
    views = [{chs.decode_view(raw)["key"]: chs.decode_view(raw) for _, raw in records.iter_records(str(d))}
             for d in (full_dir, box_run)]
    assert sorted(views[0]) == sorted(views[1]) and views[0]
    for key, full in views[0].items():
        box = views[1][key]
        assert box["render/crop_render"] == "box" and full["render/crop_render"] == "full"
        assert box["render/crop_box"].tolist() == full["render/crop_box"].tolist(), key
        assert imageops.decode_jpeg(box["image/jpeg"]).shape == (227, 227, 3)
        for f in ("keypoints/names", "instances/key", "instances/flip_key", "render/background"):
            assert list(box[f]) == list(full[f]), (key, f)
        np.testing.assert_array_equal(box["keypoints/pixel"], full["keypoints/pixel"])
    full_insts, box_insts = _instances(full_dir), _instances(box_run)
    assert sorted(full_insts) == sorted(box_insts)
    diffs = []
    for key, a in full_insts.items():
        b = box_insts[key]
        for f in ("keypoint_pixel", "keypoint_loc", "gaussian_keypoint_map", "chessboard_dt_map", "euclidean_dt_map",
                  "manhattan_dt_map", "keypoint_class", "viewpoint_label"):
            np.testing.assert_array_equal(a[f], b[f], err_msg=f"{key} {f}")
        if not key.endswith("_r"):
            diffs.append(np.abs(a["image"].astype(np.int16) - b["image"].astype(np.int16)))
    d = np.stack(diffs)
    print(f"box vs full: mean {d.mean():.2f} max {d.max()} >8 {100 * (d > 8).mean():.1f}%")
    assert d.mean() <= BOX_MEAN_BOUND and (d > 8).mean() <= BOX_OVER8_BOUND


def test_box_render_is_the_crop_resized_without_a_shift():
    """The box rendered directly (pyrender) against the full 960x540 render cropped to the same box
    and resized as the expansion resizes (no background, no JPEG): the tight box is the full
    render's alpha box, the silhouettes' centroids agree within 0.05 pixel (a half-pixel error in
    the intrinsics would move them by 0.5 (227 / W - 1), about 0.2 pixel here) and the RGBA
    values differ only at anti-aliased edges (measured mean 1.2-1.8, here bounded by 4)."""
    from kpdata import camera, geometry
    from kpdata.clickhere import compose
    from kpdata.viewpoints import Viewpoint
    from pipelines import clickhere_box, shapenet_views
    from renderers import RenderRequest
    from renderers.fake import mesh_vertices
    from renderers.pyrender_backend import PyrenderRenderer
    _, models = shapenet_views.list_models(shapenet_views.DEMO, ())
    r = PyrenderRenderer(960, 540)
    intr = camera.Intrinsics.centered(960, 540, 1050.0)
    try:
        for i, model in enumerate(models[:3]):
            mesh, _ = shapenet_views.load_model(model, clickhere.KeypointSource(None))
            handle = r.prepare(mesh)
            vp = Viewpoint(40.0 + 100 * i, 15.0, 3.0, 2.2)
            req = RenderRequest(intr, tuple(map(tuple, geometry.viewpoint_to_cam_T_obj(vp))))
            full = r.render(handle, req)["rgba"]
            view = clickhere_box.tight_box(r, handle, req, mesh_vertices(mesh))
            assert view.tight == imageops.alpha_box(full[..., 3]) and view.passes == 1
            box = imageops.truncated_box(view.tight, (-0.1, 0.05, 0.1, -0.05), 960, 540)
            crop = imageops.resize(imageops.crop(full, box), 227).astype(np.float64)
            direct = r.render_color(handle, RenderRequest(compose.box_intrinsics(intr, box), req.cam_T_obj)).astype(
                np.float64)
            yy, xx = np.mgrid[:227, :227]
            centroid = [np.array([(a[..., 3] * xx).sum(), (a[..., 3] * yy).sum()]) / a[..., 3].sum()
                        for a in (crop, direct)]
            assert np.abs(centroid[0] - centroid[1]).max() < 0.05, (model.model_id, centroid)
            assert np.abs(crop - direct).mean() < 4.0
            r.release(handle)
    finally:
        r.close()
