"""gen_tfrecords on the real KeyPose protos (with test-made 1280x720 images): the §2.5 camera
updates, world points through to_world @ keys_uvd, registration of pixels and keypoints, layout,
LMDB, TfSet input, mono folders, and bad input -> dead letters."""
import io
import json
import os
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from kpdata import keypose

from kpdata.keypose import exr
from kpdata.keypose import proto as kpp
from pipelines import gen_tfrecords
from schemas.dataset.records import iter_records, load_info
from schemas import example_proto
from schemas.keypose import KEYPOSE, decode_keypose, make_keypose_record

SAMPLE = os.path.join("keypose_sample", "bottle_0", "texture_5_pose_0")


def make_sequence(fixtures, dst, mask=True):
    """Copy the real pbtxts and draw 1280x720 images: a grey gradient with a white dot at every
    kp_target keypoint (L and R), so registration after the resize can be checked."""
    src = os.path.join(fixtures, SAMPLE)
    shutil.copytree(src, dst)
    os.chmod(dst, 0o755)
    for f in os.listdir(dst):
        os.chmod(os.path.join(dst, f), 0o644)
    yy, xx = np.mgrid[0:720, 0:1280]
    for frame in keypose.list_frames(dst):
        for side in ("L", "R"):
            kt = keypose.read_key_targets(keypose.frame_path(dst, frame, side + "_pb"))
            img = np.stack([(xx * 0.1) % 256, (yy * 0.2) % 256, np.full_like(xx, 60)], axis=2).astype(np.uint8)
            for k in kt.kp_target.keypoints:
                cv2.circle(img, (round(k.u * 16), round(k.v * 16)), 7 * 16, (255, 255, 255), -1,
                           cv2.LINE_AA, 4)
            keypose.write_png(keypose.frame_path(dst, frame, side), img)
        if mask:
            m = np.zeros((720, 1280), np.uint8)
            m[300:600, 350:500] = 255
            keypose.write_png(keypose.frame_path(dst, frame, "mask"), m)
    return dst


def records(out):
    return [decode_keypose(raw) for _, raw in iter_records(str(out))]


@pytest.fixture(scope="module")
def converted(fixtures, tmp_path_factory):
    root = tmp_path_factory.mktemp("kp")
    seq = make_sequence(fixtures, str(root / "data" / "bottle_0" / "texture_5_pose_0"))
    out = root / "out"
    rc = gen_tfrecords.run(["--input", str(root / "data" / "bottle_0" / "texture_*_pose_*"),
                            "--image_size", "756x424_fl400", "--output_dir", str(out), "--preview", "3"])
    assert rc == 0
    return seq, out


def test_fixture_conversion_cameras_and_world_points(converted):
    """Acceptance: fx = fy = 400, cx, cy of §2.5's worked example, to_world_L @ keys_uvd_L = the world
    point of the original 1280x720 target within 1e-4 m."""
    seq, out = converted
    recs = records(out)
    assert len(recs) == 3
    for frame, r in zip(("000001", "000002", "000003"), recs):
        orig = keypose.read_key_targets(keypose.frame_path(seq, frame, "L_pb"))
        orig_r = keypose.read_key_targets(keypose.frame_path(seq, frame, "R_pb"))
        for pf, o in (("L", orig), ("R", orig_r)):
            fx, fy, cx, cy, b, resx, resy = r[f"camera_{pf}"]
            assert (fx, fy, resx, resy) == pytest.approx((400, 400, 756, 424))
            assert b == pytest.approx(0.120007, abs=1e-6)
            c = o.kp_target.camera
            assert cx == pytest.approx((c.cx - 2) * 400 / 675.61713, abs=1e-3)
            assert cy == pytest.approx((c.cy - 2) * 400 / 675.61713, abs=1e-3)
            world = keypose.world_points(o.kp_target)
            keys = r[f"keys_uvd_{pf}"].astype(np.float64)
            got = keypose.project_h(r[f"to_world_{pf}"].astype(np.float64), keys)[:, :3]
            np.testing.assert_allclose(got, world, atol=1e-4)
            # to_uvd maps the world points back to keys_uvd
            uvd = keypose.project_h(r[f"to_uvd_{pf}"].astype(np.float64), np.c_[world, np.ones(len(world))])
            np.testing.assert_allclose(uvd[:, :3], keys[:, :3], atol=2e-2)
            # proj targets: 6 in the pbtxt, first 5 kept
            assert r[f"num_targets_{pf}"] == 5 and r[f"num_kp_{pf}"] == 2
            assert r[f"targets_to_uvd_{pf}"].shape == (5, 4, 4) and r[f"targets_keys_uvd_{pf}"].shape == (5, 2, 4)
            for i, t in enumerate(list(o.proj_targets)[:5]):
                tw = keypose.world_points(t)
                tuvd = keypose.project_h(r[f"targets_to_uvd_{pf}"][i].astype(np.float64), np.c_[tw, np.ones(2)])
                np.testing.assert_allclose(tuvd[:, :2], r[f"targets_keys_uvd_{pf}"][i][:, :2], atol=2e-2)
        cx_l = r["camera_L"][2]
        assert cx_l == pytest.approx(373.1, abs=0.05) and r["camera_L"][3] == pytest.approx(199.1, abs=0.05)
        assert r["mirrored"] == 0


def png_bytes(raw: bytes, key: str) -> bytes:
    """The PNG bytes of ``key`` in a serialized Example."""
    return example_proto.parse_example(raw).features.feature[key].bytes_list.value[0]


def standard_decode(png: bytes) -> np.ndarray:
    """A PNG decoded in its stored channel order (what tf.io.decode_png / PIL return), not OpenCV's."""
    with Image.open(io.BytesIO(png)) as im:
        return np.asarray(im)


def test_fixture_images_are_registered_opaque_uint8(converted):
    _, out = converted
    for r in records(out):
        for pf in ("L", "R"):
            img = r[f"img_{pf}"]
            assert img.dtype == np.uint8 and img.shape == (424, 756, 3)  # no alpha: KeyPose's images are opaque
            gray = img.astype(np.float64).min(axis=2)  # the white dots
            for u, v, _, _ in r[f"keys_uvd_{pf}"]:
                x0, y0 = int(u) - 7, int(v) - 7
                win = np.clip(gray[y0:y0 + 15, x0:x0 + 15] - 60, 0, None)
                ys, xs = np.mgrid[y0:y0 + 15, x0:x0 + 15]
                cu, cv_ = (win * xs).sum() / win.sum(), (win * ys).sum() / win.sum()
                assert abs(cu - u) < 0.25 and abs(cv_ - v) < 0.25  # KeyPose's pixel-edge resize: ~0.2 px


def test_images_hold_keypose_bgr_frames_opaque(converted):
    """formats.md §2.5, §2.9: img_L / img_R hold what KeyPose's gen_tfrecords stores, the
    cv2.imread array (B, G, R) PNG-encoded as it is, without alpha (the left image's mask is not
    put in alpha), resized as KeyPose resizes (formats.md §2.5 step 4). Reference: the frame file
    read with cv2.imread, cropped round(crop/2) = 2 px per side and resized here with scikit-image's
    ``resize(crop, (424, 756), mode='constant')`` (KeyPose's call) to proper uint8 (rint 255 x),
    against the record's PNG decoded in stored channel order (PIL, as tf.io.decode_png does):
    mean |difference| below 1 grey level (measured 0), alpha 255 everywhere."""
    from skimage.transform import resize
    from skimage.util import img_as_ubyte
    seq, out = converted
    raws = [raw for _, raw in iter_records(str(out))]
    for frame, raw in zip(("000001", "000002", "000003"), raws):
        for pf in ("L", "R"):
            png = png_bytes(raw, f"img_{pf}")
            with Image.open(io.BytesIO(png)) as im:
                assert im.mode == "RGB"  # 3 channels: decode_png(..., 4) adds alpha 255 everywhere
            got = standard_decode(png).astype(np.float64)
            frame_bgr = cv2.imread(keypose.frame_path(seq, frame, pf))  # KeyPose's utils.read_image
            ref = img_as_ubyte(resize(frame_bgr[2:718, 2:1278], (424, 756), mode="constant").astype(np.float32))
            diff = np.abs(got - ref).mean()
            swapped = np.abs(got[..., ::-1] - ref).mean()
            assert diff < 1.0 and np.abs(got - ref).max() <= 1 and swapped > 20.0, (frame, pf, diff, swapped)
            four = np.asarray(Image.open(io.BytesIO(png)).convert("RGBA"))  # decode_png(..., 4)
            assert np.all(four[..., 3] == 255)
            # the blue channel (first in B, G, R) of the test frames is the constant 60 away from the dots
            assert np.median(got[..., 0]) == 60


def test_frame_at_the_target_size_is_stored_exactly(fixtures, tmp_path):
    """No resize (a 756x424 frame at fx 400): the stored PNG, decoded in stored order, equals the
    cv2.imread array of the frame file exactly, byte for byte, with no alpha."""
    seq = make_sequence(fixtures, str(tmp_path / "seq"))
    plan = keypose.ResizePlan(1.0, 0, 0, 756, 424)
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (424, 756, 3), dtype=np.uint8)
    for side in ("L", "R"):
        keypose.write_png(keypose.frame_path(seq, "000001", side), img if side == "L" else img[:, ::-1])
    m = np.zeros((424, 756), np.uint8)
    m[100:200, 300:400] = 255
    keypose.write_png(keypose.frame_path(seq, "000001", "mask"), m)
    fr = keypose.load_frame(seq, "000001", True, 2, 756, 424, plan)
    rec = make_keypose_record(fr.img_l, fr.img_r, fr.targets_l, fr.targets_r)
    raw = KEYPOSE.encode(rec)
    for pf in ("L", "R"):
        stored = standard_decode(png_bytes(raw, f"img_{pf}"))
        assert stored.shape == (424, 756, 3)
        np.testing.assert_array_equal(stored, cv2.imread(keypose.frame_path(seq, "000001", pf)))


def test_output_layout_tfset_and_data_params(converted):
    _, out = converted
    rec_dir = out / "tfrecords"
    assert sorted(os.listdir(rec_dir)) == ["0000.tfrecord", "data_params.pbtxt", "tfset.pbtxt"]
    tfset = keypose.read_tfset(str(rec_dir / "tfset.pbtxt"))
    assert tfset.name == "keypose" and list(tfset.train) == ["0000.tfrecord"] and list(tfset.val) == []
    dp = keypose.read_data_params(str(rec_dir / "data_params.pbtxt"))
    assert (dp.resx, dp.resy, dp.num_kp) == (756, 424, 2)
    assert (dp.camera.fx, dp.camera.cx, dp.camera.cy) == pytest.approx((400, 378, 212))
    assert dp.camera.baseline == pytest.approx(0.120007)
    tdef = keypose.read_tfset(str(out / "tfset_def.pbtxt"))
    assert tdef.image_size == "756x424_fl400"
    info = json.loads(Path(out / "kpdata_info.json").read_text())
    assert info["record"] == "keypose" and info["folders"]["train"] == ["bottle_0/texture_5_pose_0"]
    assert Path(out / "errors" / "failures.jsonl").read_text() == ""
    assert (out / "preview.png").exists()


def test_twenty_per_file_val_split_mono_and_tfset_input(fixtures, tmp_path):
    """Frames are cut into files of --examples_per_file per folder; val folders go last; a folder
    without R files uses L for R; a TfSet pbtxt selects the same folders as the flags."""
    data = tmp_path / "data" / "bottle_0"
    a = make_sequence(fixtures, str(data / "texture_0_pose_0"), mask=False)
    b = make_sequence(fixtures, str(data / "texture_5_pose_0"))
    for f in os.listdir(a):
        if "_R." in f:
            os.remove(os.path.join(a, f))
    for i in (4, 5):  # 5 frames in b
        for kind in ("L", "R", "L_pb", "R_pb", "mask"):
            shutil.copy(keypose.frame_path(b, "000001", kind), keypose.frame_path(b, f"{i:06d}", kind))
    out = tmp_path / "out"
    rc = gen_tfrecords.run(["--input", str(data / "*"), "--val", "texture_5_pose_*", "--examples_per_file", "2",
                            "--output_dir", str(out), "--preview", "0"])
    assert rc == 0
    info = load_info(str(out))
    files = {s: [(x["file"], x["examples"]) for x in info["splits"][s]["shards"]] for s in info["splits"]}
    assert files == {"train": [("tfrecords/0000.tfrecord", 2), ("tfrecords/0001.tfrecord", 1)],
                     "val": [("tfrecords/0002.tfrecord", 2), ("tfrecords/0003.tfrecord", 2),
                             ("tfrecords/0004.tfrecord", 1)]}
    tfset = keypose.read_tfset(str(out / "tfrecords" / "tfset.pbtxt"))
    assert list(tfset.train) == ["0000.tfrecord", "0001.tfrecord"] and len(tfset.val) == 3
    mono = [decode_keypose(raw) for _, raw in iter_records(str(out), "train")]
    for r in mono:  # L used for R
        np.testing.assert_array_equal(r["img_L"], r["img_R"])
        np.testing.assert_array_equal(r["keys_uvd_L"], r["keys_uvd_R"])
    # the same set from a TfSet pbtxt (common_dir relative to --data_root)
    ts = kpp.new("TfSet")
    ts.name, ts.common_dir, ts.image_size = "bottle_0_756x424_fl400_t5", "data/bottle_0", "756x424_fl400"
    ts.train.append("texture_*_pose_*")
    ts.val.append("texture_5_pose_*")
    keypose.write_text(str(tmp_path / "tfset_bottle_0_t5.pbtxt"), ts)
    out2 = tmp_path / "out2"
    rc = gen_tfrecords.run(["--tfset", str(tmp_path / "tfset_bottle_0_t5.pbtxt"), "--data_root", str(tmp_path),
                            "--examples_per_file", "2", "--output_dir", str(out2), "--preview", "0",
                            "--format", "lmdb"])
    assert rc == 0
    info2 = load_info(str(out2))
    assert info2["name"] == "bottle_0_756x424_fl400_t5"
    assert {s: info2["splits"][s]["num_examples"] for s in info2["splits"]} == {"train": 3, "val": 5}
    assert sorted(os.listdir(out2 / "tfrecords")) == ["data_params.pbtxt", "tfset.pbtxt", "train.lmdb", "val.lmdb"]
    # LMDB holds the same Examples
    lm = sorted(raw for _, raw in iter_records(str(out2)))
    tf = sorted(raw for _, raw in iter_records(str(out)))
    assert lm == tf


def test_bad_frames_become_dead_letters(fixtures, tmp_path):
    """A missing image, a pbtxt that does not parse, a keypoint count other than data_params', a
    corrupt EXR: one dead-letter line each; the good frame is converted; exit status 1."""
    seq = make_sequence(fixtures, str(tmp_path / "data" / "bottle_0" / "texture_1_pose_0"))
    for i in (4, 5):
        for kind in ("L", "R", "L_pb", "R_pb", "mask"):
            shutil.copy(keypose.frame_path(seq, "000001", kind), keypose.frame_path(seq, f"{i:06d}", kind))
    os.remove(keypose.frame_path(seq, "000001", "R"))
    with open(keypose.frame_path(seq, "000002", "L_pb"), "a") as f:
        f.write("\nkp_target { transform { element: oops } }\n")
    kt = keypose.read_key_targets(keypose.frame_path(seq, "000003", "L_pb"))
    del kt.kp_target.keypoints[1]
    keypose.write_text(keypose.frame_path(seq, "000003", "L_pb"), kt)
    exr.write_depth_exr(keypose.frame_path(seq, "000004", "Do"), np.ones((720, 1280), np.float32))
    good = Path(keypose.frame_path(seq, "000004", "Do")).read_bytes()
    Path(keypose.frame_path(seq, "000004", "Do")).write_bytes(good[:200])
    exr.write_depth_exr(keypose.frame_path(seq, "000005", "Do"), np.ones((720, 1280), np.float32))
    bad = make_sequence(fixtures, str(tmp_path / "data" / "bottle_0" / "texture_2_pose_0"), mask=False)
    Path(bad, "data_params.pbtxt").write_text("resx: 1280 resy: 720 num_kp: two\n")
    out = tmp_path / "out"
    rc = gen_tfrecords.run(["--input", str(tmp_path / "data" / "bottle_0" / "*"), "--output_dir", str(out),
                            "--preview", "0"])
    assert rc == 1
    lines = [json.loads(x) for x in Path(out / "errors" / "failures.jsonl").read_text().splitlines()]
    got = {(d["key"].rsplit("/", 1)[1], d["error"], os.path.basename(d["path"])) for d in lines
           if d["stage"] == "convert"}
    assert got == {("000001", "missing_image", "000001_R.png"), ("000002", "bad_pbtxt", "000002_L.pbtxt"),
                   ("000003", "keypoint_count", "000003_L.pbtxt"), ("000004", "corrupt_exr", "000004_Do.exr")}
    plan = [d for d in lines if d["stage"] == "plan"]
    assert [(d["key"], d["error"], os.path.basename(d["path"])) for d in plan] == [
        ("bottle_0/texture_2_pose_0", "bad_pbtxt", "data_params.pbtxt")]
    lines = [d for d in lines if d["stage"] != "plan"]
    assert len(lines) == 4 and all(d["message"] for d in lines)
    assert len(records(out)) == 1
    stats = json.loads(Path(out / "stats.json").read_text())
    assert stats["failures"]["total"] == 5 and stats["failure_rate"] == pytest.approx(7 / 8)
