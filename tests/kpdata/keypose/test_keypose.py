"""KeyPose I/O: the real protos parse, the proto definition file matches the descriptor, the uvd
geometry, the resize of §2.5, depth EXR, KeyPose .obj files."""
import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from kpdata import keypose

from kpdata.keypose import exr
from kpdata.keypose import proto as kpp
from kpdata.errors import InputError

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
SAMPLE = os.path.join("keypose_sample", "bottle_0", "texture_5_pose_0")


def _strip(text):
    lines = []
    for line in text.splitlines():
        line = line.split("//")[0].strip()
        if line:
            lines.append(" ".join(line.split()))
    return lines


def test_proto_file_matches_the_descriptor():
    with open(os.path.join(ROOT, "kpdata", "keypose", "data.proto"), encoding="utf-8") as f:
        source = f.read()
    assert _strip(source) == _strip(kpp.proto_source())


def test_real_pbtxt_files_parse(fixtures):
    folder = os.path.join(fixtures, SAMPLE)
    assert keypose.list_frames(folder) == ["000001", "000002", "000003"]
    dp = keypose.read_data_params(os.path.join(folder, "data_params.pbtxt"))
    assert (dp.resx, dp.resy, dp.num_kp) == (1280, 720, 2)
    assert dp.camera.fx == pytest.approx(675.61713) and dp.camera.baseline == pytest.approx(0.120007)
    for frame in ("000001", "000002", "000003"):
        kt_l = keypose.read_key_targets(keypose.frame_path(folder, frame, "L_pb"))
        kt_r = keypose.read_key_targets(keypose.frame_path(folder, frame, "R_pb"))
        assert len(kt_l.proj_targets) == 6 and len(kt_l.kp_target.keypoints) == 2 and not kt_l.mirrored
        t_l, t_r = keypose.transform_matrix(kt_l.kp_target), keypose.transform_matrix(kt_r.kp_target)
        # R's transform is L's with t_x - baseline; u_R = u_L - fx B / z (formats.md §2.3)
        np.testing.assert_allclose(t_r[0, 3], t_l[0, 3] - kt_l.kp_target.camera.baseline, atol=1e-5)
        a_l, a_r = keypose.target_arrays(kt_l.kp_target), keypose.target_arrays(kt_r.kp_target)
        np.testing.assert_allclose(a_l.keys_uvd[:, 0] - a_r.keys_uvd[:, 0], a_l.keys_uvd[:, 2], atol=1e-3)
        # L and R see the same world points
        np.testing.assert_allclose(keypose.world_points(kt_l.kp_target), keypose.world_points(kt_r.kp_target),
                                   atol=1e-5)
        # to_world @ keys_uvd = the world point; to_uvd inverts it
        w = keypose.project_h(a_l.to_world, a_l.keys_uvd)
        np.testing.assert_allclose(w[:, :3], keypose.world_points(kt_l.kp_target), atol=1e-6)
        np.testing.assert_allclose(keypose.project_h(a_l.to_uvd, w), a_l.keys_uvd, atol=1e-6)
    kt = keypose.read_key_targets(os.path.join(folder, "000001_L.pbtxt"))
    k0 = kt.kp_target.keypoints[0]
    assert (k0.u, k0.v, k0.z) == pytest.approx((417.01191, 412.04999, 0.75923024))
    assert kpp.parse_text(kpp.to_text(kt), "KeyTargets") == kt  # text round trip


def test_worked_resize_example_of_formats_2_5(fixtures):
    dp = keypose.read_data_params(os.path.join(fixtures, SAMPLE, "data_params.pbtxt"))
    plan = keypose.resize_plan(dp.camera, keypose.ImageSize.parse("756x424_fl400"))
    assert plan.scale == pytest.approx(1.689, abs=1e-3) and (plan.cropx, plan.cropy) == (2, 2)
    kt = keypose.read_key_targets(os.path.join(fixtures, SAMPLE, "000001_L.pbtxt"))
    before = keypose.world_points(kt.kp_target)
    keypose.resize_key_targets(kt, plan)
    c = kt.kp_target.camera
    assert (c.fx, c.fy, c.resx, c.resy) == pytest.approx((400, 400, 756, 424))
    assert c.cx == pytest.approx(373.1, abs=0.05) and c.cy == pytest.approx(199.1, abs=0.05)
    np.testing.assert_allclose(keypose.world_points(kt.kp_target), before, atol=1e-5)


def test_image_size_parse_and_errors():
    s = keypose.ImageSize.parse("756x424_fl400")
    assert (s.width, s.height, s.focal, str(s)) == (756, 424, 400.0, "756x424_fl400")
    dp = s.data_params(2, 0.12)
    assert (dp.camera.cx, dp.camera.cy, dp.camera.baseline) == pytest.approx((378, 212, 0.12))
    for bad in ("756x424", "756x424_f400", "0x424_fl400", "axb_fl1"):
        with pytest.raises(ValueError, match="WxH_flF"):
            keypose.ImageSize.parse(bad)


def test_resize_image_keeps_pixels_where_keypose_puts_them():
    """A dot drawn at (u, v) lands where KeyPose's resize puts it: pixel edges aligned
    (scikit-image's grid mode), crop coordinate x -> (x + 0.5) / factor - 0.5 with factor = crop
    size / output size; within 0.25 px of KeyPose's camera update (u - cropx) / scale."""
    plan = keypose.ResizePlan(scale=675.61713 / 400, cropx=2, cropy=2, width=756, height=424)
    img = np.zeros((720, 1280), np.uint8)
    pts = [(417.3, 412.6), (900.2, 150.8), (40.5, 700.1)]
    for u, v in pts:
        cv2.circle(img, (round(u * 16), round(v * 16)), 6 * 16, 255, -1, cv2.LINE_AA, 4)
    out = keypose.resize_image(img, plan).astype(np.float64)
    assert out.shape == (424, 756)
    fu, fv = 1276 / 756, 716 / 424
    for u, v in pts:
        eu, ev = (u - 2 + 0.5) / fu - 0.5, (v - 2 + 0.5) / fv - 0.5
        assert abs(eu - (u - 2) / plan.scale) < 0.25 and abs(ev - (v - 2) / plan.scale) < 0.25
        x0, y0 = int(eu) - 8, int(ev) - 8
        win = out[max(y0, 0):y0 + 17, max(x0, 0):x0 + 17]
        ys, xs = np.mgrid[max(y0, 0):y0 + 17, max(x0, 0):x0 + 17]
        cu, cv_ = (win * xs).sum() / win.sum(), (win * ys).sum() / win.sum()
        assert abs(cu - eu) < 0.1 and abs(cv_ - ev) < 0.1, ((u, v), (cu, cv_), (eu, ev))


def _skimage_reference(img, plan):
    """formats.md §2.5 step 4 with scikit-image itself: crop round(crop/2) px per side,
    ``skimage.transform.resize(crop, (H, W), mode='constant')``, float32, then the proper uint8
    (``img_as_ubyte``: rint(255 x))."""
    from skimage.transform import resize
    from skimage.util import img_as_ubyte
    h, w = img.shape[:2]
    crop = img[plan.cropy:h - plan.cropy, plan.cropx:w - plan.cropx]
    return img_as_ubyte(resize(crop, (plan.height, plan.width), mode="constant").astype(np.float32))


@pytest.mark.parametrize("shape, plan", [
    ((720, 1280, 3), keypose.ResizePlan(675.61713 / 400, 2, 2, 756, 424)),
    ((720, 1280), keypose.ResizePlan(675.61713 / 400, 2, 2, 756, 424)),
    ((180, 320, 3), keypose.ResizePlan(170 / 100, 0, 1, 192, 112)),
    ((100, 150, 3), keypose.ResizePlan(0.5, 0, 0, 300, 200)),  # enlarging: no anti-aliasing
    ((424, 756, 3), keypose.ResizePlan(1.0, 0, 0, 756, 424))])
def test_resize_image_is_keyposes_scikit_image_resize(shape, plan):
    rng = np.random.default_rng(len(shape) + shape[0])
    img = cv2.GaussianBlur(rng.integers(0, 256, shape, dtype=np.uint8), (0, 0), 2)
    img[:3] = 255  # a bright border: the zero padding of mode='constant' darkens it
    out = keypose.resize_image(img, plan)
    ref = _skimage_reference(img, plan)
    assert out.dtype == np.uint8 and out.shape == ref.shape == (plan.height, plan.width, *shape[2:])
    assert np.abs(out.astype(int) - ref).max() == 0
    if plan.scale == 1.0:
        np.testing.assert_array_equal(out, img)


def test_resize_image_is_proper_uint8():
    """A flat frame stays flat (the zero padding's weight at the border stays under half a grey
    level at this scale): proper uint8, not KeyPose's float-to-uint8 truncation to 0."""
    plan = keypose.ResizePlan(scale=1.689, cropx=2, cropy=2, width=756, height=424)
    out = keypose.resize_image(np.full((720, 1280, 3), 200, np.uint8), plan)
    assert out.dtype == np.uint8 and out.shape == (424, 756, 3) and np.all(out == 200)


def test_bad_pbtxt_and_wrong_counts_are_input_errors(tmp_path):
    p = tmp_path / "000001_L.pbtxt"
    p.write_text("kp_target { camera { fx: 1 } keypoints { u: }")
    with pytest.raises(InputError, match="000001_L.pbtxt: not a valid keypose.KeyTargets") as e:
        keypose.read_key_targets(str(p))
    assert e.value.error == "bad_pbtxt"
    p.write_text("kp_target { transform { element: 1 } camera { fx: 1 fy: 1 resx: 2 resy: 2 } }")
    with pytest.raises(InputError, match="transform has 1 elements"):
        keypose.read_key_targets(str(p))
    with pytest.raises(InputError, match="does not exist"):
        keypose.read_key_targets(str(tmp_path / "nope.pbtxt"))


def test_make_target_round_trips_world_points():
    cam = keypose.make_camera(675.6, 675.6, 639.5, 359.5, 0.12, 1280, 720)
    rng = np.random.default_rng(0)
    xyz = rng.uniform(-0.1, 0.1, (4, 3))
    from kpdata import geometry
    t = geometry.look_at_cv([0.5, -0.4, 0.5])
    target = keypose.make_target(t, cam, xyz, np.ones(4))
    np.testing.assert_allclose(keypose.world_points(target), xyz, atol=2e-6)
    uv = cv2.projectPoints(xyz, cv2.Rodrigues(t[:3, :3])[0], t[:3, 3], np.array(
        [[675.6, 0, 639.5], [0, 675.6, 359.5], [0, 0, 1]]), None)[0].reshape(-1, 2)
    np.testing.assert_allclose([[k.u, k.v] for k in target.keypoints], uv, atol=1e-3)
    assert target.keypoints[0].x == pytest.approx(target.keypoints[0].u / 1280)


def test_depth_exr_round_trip_and_corrupt_files(tmp_path):
    rng = np.random.default_rng(1)
    d = rng.uniform(0.3, 2.0, (24, 32)).astype(np.float32)
    d[:3] = 0
    path = str(tmp_path / "000000_Do.exr")
    exr.write_depth_exr(path, d)
    first = Path(path).read_bytes()
    np.testing.assert_array_equal(exr.read_depth_exr(path), d)
    exr.write_depth_exr(path, d)
    assert Path(path).read_bytes() == first  # deterministic bytes
    import OpenEXR
    with OpenEXR.File(path) as f:
        assert list(f.channels()) == ["D"] and f.channels()["D"].pixels.dtype == np.float32
    Path(path).write_bytes(first[: len(first) // 2])
    with pytest.raises(InputError, match="cannot decode EXR") as e:
        exr.read_depth_exr(path)
    assert e.value.error == "corrupt_exr" and e.value.path == path
    with OpenEXR.File({"type": OpenEXR.scanlineimage}, {"Z": d}) as f:
        f.write(path)
    with pytest.raises(InputError, match="no channel 'D'"):
        exr.read_depth_exr(path)


def test_keypose_obj_read_and_write(tmp_path):
    import trimesh
    box = trimesh.creation.box((0.05, 0.05, 0.1))
    kps = np.array([[0, 0, 0.05], [0, 0, -0.05], [0.025, 0, 0]])
    path = tmp_path / "thing.obj"
    path.write_text(keypose.keypose_obj_text(box.vertices, box.faces, kps))
    obj = keypose.read_keypose_obj(str(path))
    assert obj.names == ("kp.000", "kp.001", "kp.002")
    np.testing.assert_allclose(obj.keypoints, kps, atol=1e-6)
    assert len(obj.faces) == 12
    # vertex-only CAD file (as KeyPose's objects/*.obj): the convex hull is rendered
    text = "o mesh\n" + "".join(f"v {x} {y} {z}\n" for x, y, z in box.vertices) + "o kp.000\nv 0 0 0.05\n"
    path.write_text(text)
    obj = keypose.read_keypose_obj(str(path))
    assert len(obj.faces) == 12 and trimesh.Trimesh(obj.vertices, obj.faces).volume == pytest.approx(0.05 * 0.05 * 0.1)
    path.write_text("o mesh\nv 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3\n")
    with pytest.raises(InputError, match="no 'o kp.NNN'"):
        keypose.read_keypose_obj(str(path))


def test_frame_images_are_read_as_keypose_reads_them(tmp_path):
    """formats.md §2.5: KeyPose's utils.read_image is cv2.imread with its default flags: B, G, R,
    alpha dropped, gray expanded. The reference is written with PIL (R, G, B(, A) in the file)."""
    from PIL import Image

    rng = np.random.default_rng(1)
    rgba = rng.integers(0, 256, (9, 11, 4), dtype=np.uint8)
    rgba[..., 3] = np.where(rng.random((9, 11)) < 0.5, 0, 255)  # a mask in alpha
    Image.fromarray(rgba, "RGBA").save(tmp_path / "rgba.png")
    got = keypose.read_frame_image(str(tmp_path / "rgba.png"), "L image")
    assert got.shape == (9, 11, 3) and got.dtype == np.uint8
    np.testing.assert_array_equal(got, rgba[..., 2::-1])  # B, G, R; the alpha is gone
    Image.fromarray(rgba[..., 0], "L").save(tmp_path / "gray.png")
    np.testing.assert_array_equal(keypose.read_frame_image(str(tmp_path / "gray.png"), "L image"),
                                  np.repeat(rgba[..., :1], 3, axis=2))
    with pytest.raises(InputError, match="L image does not exist"):
        keypose.read_frame_image(str(tmp_path / "nope.png"), "L image")
    (tmp_path / "bad.png").write_bytes(b"not a png")
    with pytest.raises(InputError, match="R image cannot be decoded"):
        keypose.read_frame_image(str(tmp_path / "bad.png"), "R image")
