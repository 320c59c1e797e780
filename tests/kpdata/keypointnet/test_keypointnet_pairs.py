"""KeypointNet pair cameras, projection and images (no rendering).

The model-view matrix is checked against an independent reconstruction of render.py's
``get_modelview_matrix``: Blender's ``to_track_quat('-Z', 'Y')`` camera, ``roll_camera``'s
post-multiplied rotation about the local z axis, the location jitter, and ``to_blender``."""
import math

import numpy as np
import pytest

from kpdata import camera, geometry
from kpdata import keypointnet as kpn
from kpdata.seeding import rng_for

TO_BLENDER = np.array([[1.0, 0, 0, 0], [0, 0, -1, 0], [0, 1, 0, 0], [0, 0, 0, 1]])


def _blender_mv(direction, distance, roll_deg, eye):
    """render.py's M = inverse(camera.matrix_world) * to_blender, built from Blender's rules."""
    d = np.asarray(direction, float) / np.linalg.norm(direction)
    z_cam = d  # the camera's -Z looks at the origin
    y_cam = np.array([0.0, 0.0, 1.0]) - d[2] * d  # track quat: local Y as close to world +Z as possible
    y_cam /= np.linalg.norm(y_cam)
    x_cam = np.cross(y_cam, z_cam)
    rot = np.stack([x_cam, y_cam, z_cam], axis=1)  # camera axes as columns (matrix_world rotation)
    t = math.radians(roll_deg)
    rz = np.array([[math.cos(t), -math.sin(t), 0], [math.sin(t), math.cos(t), 0], [0, 0, 1]])
    world = np.eye(4)
    world[:3, :3] = rot @ rz
    world[:3, 3] = eye
    return np.linalg.inv(world) @ TO_BLENDER


@pytest.mark.parametrize("roll", [0.0, 37.0, -80.0])
def test_modelview_matches_blenders_camera(roll):
    rng = np.random.default_rng(3)
    for _ in range(20):
        d = kpn.random_top_sphere(rng)
        eye = kpn.jitter_location(rng, 30 * d, 0.2)
        view = kpn.make_view(d, 30.0, roll, eye)
        np.testing.assert_allclose(view.mv, _blender_mv(d, 30.0, roll, eye), atol=1e-9)
        np.testing.assert_allclose(view.mvi @ view.mv, np.eye(4), atol=1e-12)


def test_camera_looks_at_the_object_with_up_up():
    rng = np.random.default_rng(0)
    for _ in range(50):
        d = kpn.random_top_sphere(rng)
        v = kpn.make_view(d, 30.0, 0.0, 30.0 * d)
        # The object centre lies on the optical axis, 30 in front (OpenGL looks down -z).
        np.testing.assert_allclose(v.mv @ [0, 0, 0, 1], [0, 0, -30, 1], atol=1e-9)
        # The object's up axis (+Y of the OBJ frame) points up in the image (OpenGL +y).
        up = v.mv[:3, :3] @ [0, 1, 0]
        assert up[1] > 0 and abs(up[0]) < 1e-9


def test_pair_sampling_follows_render_py():
    dist, views0, views1, rolls = [], [], [], []
    for i in range(2000):
        v0, v1 = kpn.sample_pair(rng_for(5, f"p{i}"), 30.0, 0.0, True, 0.2)
        for v in (v0, v1):
            c = v.mvi[:3, 3]  # camera centre in the object frame
            dist.append(np.linalg.norm(c))
            assert np.all(np.abs(v.eye - geometry.camera_center(
                v.viewpoint.azimuth, v.viewpoint.elevation, 30.0)) <= 0.2 + 1e-9)
            assert v.eye[2] >= 0
            rolls.append(v.roll_deg)
        views0.append(geometry.camera_center(v0.viewpoint.azimuth, v0.viewpoint.elevation, 1.0))
        views1.append(geometry.camera_center(v1.viewpoint.azimuth, v1.viewpoint.elevation, 1.0))
    dist, views0, views1, rolls = map(np.asarray, (dist, views0, views1, rolls))
    assert np.all(np.abs(dist - 30) <= 0.2 * math.sqrt(3) + 1e-9)
    for v in (views0, views1):
        assert np.all(v[:, 2] >= 0)
        # Uniform on the upper hemisphere: z ~ U(0, 1), azimuth uniform.
        assert abs(v[:, 2].mean() - 0.5) < 0.03 and abs(v[:, 0].mean()) < 0.04 and abs(v[:, 1].mean()) < 0.04
        assert abs(np.mean(v[:, 2] < 0.5) - 0.5) < 0.04
    # Independent views: the direction cosines are uncorrelated.
    assert abs(np.mean(np.sum(views0 * views1, axis=1)) - 0.25) < 0.04  # E[z0 z1] = 1/4, E[x0 x1] = 0
    assert np.all(np.abs(rolls) < 90) and rolls.std() > 45


def test_perturb_keeps_view_1_near_view_0():
    for size in (0.05, 0.3):
        angles = []
        for i in range(500):
            v0, v1 = kpn.sample_pair(rng_for(1, f"q{i}"), 30.0, size, False, 0.0)
            d0 = v0.mvi[:3, 3] / 30.0
            d1 = v1.mvi[:3, 3] / 30.0
            angles.append(math.degrees(math.acos(min(1.0, float(d0 @ d1)))))
            assert v1.mvi[1, 3] >= -1e-9  # the OBJ frame's +Y is world up: the camera is above the ground plane
        angles = np.asarray(angles)
        assert angles.max() <= math.degrees(math.asin(size)) + 1e-6
        assert angles.mean() > 0.2 * math.degrees(size)


def test_no_roll_and_no_jitter():
    v0, v1 = kpn.sample_pair(rng_for(0, "x"), 30.0, 0.0, False, 0.0)
    for v in (v0, v1):
        assert v.roll_deg == 0.0 and v.viewpoint.tilt == 0.0 and not math.copysign(1, v.viewpoint.tilt) < 0
        np.testing.assert_allclose(np.linalg.norm(v.mvi[:3, 3]), 30.0, atol=1e-9)


def test_same_rng_same_pair():
    a = kpn.sample_pair(rng_for(9, "k"), 30.0, 0.1, True, 0.2)
    b = kpn.sample_pair(rng_for(9, "k"), 30.0, 0.1, True, 0.2)
    for va, vb in zip(a, b):
        np.testing.assert_array_equal(va.mv, vb.mv)


def _original_pixels(mv, p, xyz, w, h):
    """KeypointNet's projection (main.py Transformer.project on row vectors times mv^T) and its
    meshgrid's pixel centres, solved for OpenCV pixel coordinates."""
    xyzw = np.c_[xyz, np.ones(len(xyz))] @ np.asarray(mv).reshape(4, 4).T
    f = p[0, 0]
    ndc = -f * xyzw[:, :2] / xyzw[:, 2:3]
    # meshgrid: x_ndc(col i) = (i + 0.5) / (w / 2) - 1 ; y_ndc(row j) = -((j + 0.5) / (h / 2) - 1)
    col = (ndc[:, 0] + 1) * (w / 2) - 0.5
    row = (1 - ndc[:, 1]) * (h / 2) - 0.5
    return np.stack([col, row], axis=1)


def test_intrinsics_agree_with_keypointnets_projection_and_pixel_grid():
    rng = np.random.default_rng(2)
    p = kpn.parse_projection(kpn.format_projection(kpn.projection_matrix(5.0, 26, 34)))
    intr = kpn.intrinsics(5.0, 128, 128)
    for i in range(10):
        v0, _ = kpn.sample_pair(rng_for(0, f"i{i}"), 30.0, 0.0, True, 0.2)
        xyz = rng.uniform(-1, 1, (20, 3))
        uv, _ = camera.project(intr.K, v0.cam_T_obj, xyz)
        np.testing.assert_allclose(uv, _original_pixels(v0.mv, p, xyz, 128, 128), atol=1e-6)


def test_projection_file_reads_like_main_py():
    p = kpn.projection_matrix(5.0, 26.0, 34.0)
    text = kpn.format_projection(p)
    lines = text.splitlines()
    assert len(lines) == 4
    # main.py: [[float(y) for y in x.strip().split(" ")] for x in lines]
    parsed = np.array([[float(y) for y in x.strip().split(" ")] for x in lines])
    np.testing.assert_array_equal(parsed, p)
    assert parsed[0, 0] == parsed[1, 1] == pytest.approx(1 / math.tan(math.radians(2.5)))
    assert parsed[0, 0] == pytest.approx(22.9037655)  # formats.md §1.4: fov 5 -> 22.90


def test_normalization_centres_and_scales_to_extent_2():
    bounds = np.array([[-0.3, 0.1, -2.0], [0.5, 0.4, 1.0]])
    c, s = kpn.normalization(bounds)
    t = kpn.obj_T_model(c, s)
    lo = t[:3, :3] @ bounds[0] + t[:3, 3]
    hi = t[:3, :3] @ bounds[1] + t[:3, 3]
    np.testing.assert_allclose(lo + hi, 0, atol=1e-12)
    assert np.max(hi - lo) == pytest.approx(2.0)
    with pytest.raises(ValueError, match="zero or non-finite extent"):
        kpn.normalization(np.zeros((2, 3)))


def test_relative_rotation_and_its_angle():
    rng = np.random.default_rng(4)
    v0, v1 = kpn.sample_pair(rng, 30.0, 0.0, True, 0.2)
    r = kpn.relative_rotation(v0.mv, v1.mv)
    np.testing.assert_allclose(r @ v0.mv[:3, :3], v1.mv[:3, :3], atol=1e-12)
    angle, axis = kpn.rotation_angle_axis(r)
    cos = (np.trace(v0.mv[:3, :3].T @ v1.mv[:3, :3]) - 1) / 2
    assert angle == pytest.approx(math.degrees(math.acos(cos)))
    np.testing.assert_allclose(r @ axis, axis, atol=1e-9)
    assert kpn.rotation_angle_axis(np.diag([1.0, -1.0, -1.0]))[0] == pytest.approx(180.0)


def test_silhouette_rgba():
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[1, 1] = (100, 50, 20, 255)
    rgba[1, 2] = (50, 25, 10, 128)  # half-covered edge pixel, colour premultiplied
    rgba[0, 0] = (10, 10, 10, 64)  # covered a little, but the pixel centre missed the object
    depth = np.zeros((4, 4), np.float32)
    depth[1, 1] = depth[1, 2] = 29.0
    depth[3, 3] = 29.5  # centre hit but no coverage sample: alpha still follows depth
    out = kpn.silhouette_rgba(rgba, depth)
    np.testing.assert_array_equal(out[..., 3] > 0, depth > 0)
    assert set(np.unique(out[..., 3])) == {0, 255}
    np.testing.assert_array_equal(out[1, 1], (100, 50, 20, 255))
    np.testing.assert_array_equal(out[1, 2], (100, 50, 20, 255))
    np.testing.assert_array_equal(out[0, 0], (0, 0, 0, 0))
    np.testing.assert_array_equal(out[3, 3], (0, 0, 0, 255))


def test_pair_preview_draws_both_views_and_the_relative_rotation():
    from kpdata.preview import keypointnet as kp
    from kpdata.preview import CAPTION_HEIGHT, GAP

    mv0 = kpn.make_view([0.0, -1.0, 0.0], 30.0, 0.0, [0.0, -30.0, 0.0]).mv
    mv1 = kpn.make_view([1.0, 0.0, 0.0], 30.0, 0.0, [30.0, 0.0, 0.0]).mv  # 90 degrees round the up axis
    assert kp.rotation_caption(mv0, mv1) == "R01 90.0 deg about (0.00, -1.00, 0.00)"
    img = np.zeros((128, 128, 4), np.uint8)
    img[40:90, 30:100] = (200, 30, 30, 255)
    view = {"key": "a/b/p000000", "image": img, "keypoints/names": ["k"],
            "keypoints/uv": np.array([[60.0, 60.0]], np.float32), "keypoints/visible": np.array([1])}
    tile = kp.pair_tile({"view0": view, "view1": view, "mv0": mv0, "mv1": mv1}, tile_width=200)
    assert tile.shape == (200 + CAPTION_HEIGHT + kp.BAND_HEIGHT, 2 * 200 + GAP, 3)
    # the object's red (BGR) shows in both halves
    for half in (tile[:200, :200], tile[:200, 200 + GAP:]):
        assert np.any((half[..., 2] > 150) & (half[..., 0] < 80))
    sheet = kp.pair_sheet([{"view0": view, "view1": view, "mv0": mv0, "mv1": mv1}] * 3, tile_width=200)
    assert sheet.shape[1] == 2 * tile.shape[1] + 3 * GAP  # ceil(sqrt(3 / 2)) = 2 pairs per row
