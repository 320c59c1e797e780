"""Click-Here keypoint maps against scipy's own constructions, bit for bit (issue 3 acceptance)."""
import numpy as np
import pytest
from scipy import ndimage

from kpdata import clickhere as ch
from kpdata.clickhere import keypoint_maps as km
from kpdata.errors import InputError

POINTS = [(0, 0), (226, 226), (0, 226), (226, 0), (113, 113), (5, 200), (150, 3), (91, 92), (92, 91)]


def _binary(xy):
    b = np.zeros((227, 227), np.uint8)
    b[xy[1], xy[0]] = 255
    return b


def _scipy_bytescale(data):
    # scipy.misc.bytescale as scipy.misc.imsave applied it (scipy < 1.2), low=0, high=255
    cmin, cmax = data.min(), data.max()
    cscale = cmax - cmin
    if cscale == 0:
        cscale = 1
    scale = float(255 - 0) / cscale
    bytedata = (data - cmin) * scale + 0
    return (bytedata.clip(0, 255) + 0.5).astype(np.uint8)


@pytest.mark.parametrize("xy", POINTS + [tuple(p) for p in np.random.default_rng(3).integers(0, 227, (12, 2))])
def test_maps_equal_scipy_bit_for_bit(xy):
    binary = _binary(xy)
    inv = 1 - binary / 255
    assert np.array_equal(km.keypoint_loc(xy), binary)
    cheb = ndimage.distance_transform_cdt(inv, "chessboard")
    taxi = ndimage.distance_transform_cdt(inv, "taxicab")
    eucl = ndimage.distance_transform_edt(inv)
    assert km.chessboard_map(xy).dtype == cheb.dtype and np.array_equal(km.chessboard_map(xy), cheb)
    assert np.array_equal(km.manhattan_map(xy), taxi)
    assert km.euclidean_map(xy).dtype == eucl.dtype and np.array_equal(km.euclidean_map(xy), eucl)
    g = ndimage.gaussian_filter(binary / 255.0, sigma=23, mode="constant")
    g = g / g.max()
    assert np.array_equal(km.gaussian_map(xy), g)
    assert np.array_equal(km.gaussian_map_uint8(xy), _scipy_bytescale(g))
    assert km.gaussian_map_uint8(xy)[xy[1], xy[0]] == 255


def test_out_of_crop_keypoint_is_an_error():
    with pytest.raises(ValueError, match="outside"):
        km.chessboard_map((227, 0))


def test_keypoint_pixel_mapping():
    # formats.md §3.7: floor(227 * (kp - bbox_tl) / bbox_size), bbox_size = (x2 - x1 + 1, y2 - y1 + 1)
    # = (W, H) of the crop (not W - 1, H - 1), clamped to 226. A 454 x 228 crop:
    uv = np.array([[0.0, 0.0], [453.0, 227.0], [226.5, 113.5], [-0.4, 300.0], [2.0, 1.0]])
    px = km.keypoint_pixel(uv, (454, 228))
    assert px.tolist() == [[0, 0], [226, 226], [113, 113], [0, 226], [1, 0]]
    assert ch.crop_pixels(uv, 454, 228).tolist() == px.tolist()


def test_crop_pixels_divide_by_the_box_size():
    # the crop box of a render, (x1, y1, x2, y2) inclusive, and keypoints in render pixels; the
    # reference is Click-Here's formula written out here, per keypoint
    rng = np.random.default_rng(5)
    moved = 0
    for _ in range(200):
        x1, y1 = rng.integers(0, 300, 2)
        x2, y2 = x1 + rng.integers(20, 500), y1 + rng.integers(20, 400)
        kp = np.stack([rng.uniform(x1, x2 + 1), rng.uniform(y1, y2 + 1)], -1)
        want = [min(int(np.floor(227 * (kp[0] - x1) / (x2 - x1 + 1))), 226),
                min(int(np.floor(227 * (kp[1] - y1) / (y2 - y1 + 1))), 226)]
        got = ch.crop_pixels(np.array([kp - (x1, y1)]), int(x2 - x1 + 1), int(y2 - y1 + 1))[0].tolist()
        assert got == want, (x1, y1, x2, y2, kp)
        old = np.floor(227 * (kp - (x1, y1)) / (x2 - x1, y2 - y1)).clip(0, 226)
        moved += bool(np.any(old != want))
    assert moved > 50  # the old (W - 1, H - 1) divisor differs on many of these


def test_labels_and_flips():
    assert km.view2label(-12, 5) == 348 + 1800
    assert km.viewpoint_label(5, 30, 10, 355).tolist() == [5, 1830, 1810, 2155]
    assert km.label_angles(359.7, -12.2, 3.0) == (0, 348, 357)
    assert km.flip_angles(30, 10, 357) == (330, 10, 3)
    assert km.flip_angles(0, 348, 0) == (0, 348, 0)
    assert km.swap_left_right("upper_left_windshield") == "upper_right_windshield"
    assert km.swap_left_right("body_back_right_lower") == "body_back_left_lower"
    assert km.swap_left_right("head_center") == "head_center"
    assert km.one_hot(3, 34).tolist() == [0, 0, 0, 1] + [0] * 30


def test_class_table_is_click_heres_34(tmp_path):
    t = ch.KeypointClassTable.clickhere34()
    assert len(t) == 34
    assert t.names[0] == "bus_body_back_left_lower" and t.names[11] == "bus_right_front_wheel"
    assert t.names[12] == "car_left_front_wheel" and t.names[24] == "motorbike_back_seat"
    assert t.index("car", "right_back_trunk") == 23 and t.index("chair", "leg") is None
    p = tmp_path / "classes.txt"
    p.write_text("# mine\ncar_a\ncar_b\n")
    assert ch.KeypointClassTable.from_file(str(p)).names == ("car_a", "car_b")
    p.write_text("car_a\ncar_a\n")
    with pytest.raises(InputError, match="repeats"):
        ch.KeypointClassTable.from_file(str(p))


def test_instance_keys():
    stem = ch.view_stem("02958343", "abc", 7, (30, 348, 3), 2.4)
    assert stem == "02958343_abc_v000007_a030_e348_t003_d002"
    assert ch.instance_key(1234, stem, 5, 17, True) == f"00001234_{stem}_obj0_objc5_kp17_r"
