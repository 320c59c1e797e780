"""Decoding one key's Click-Here Datums for validation: every field must parse with its declared
shape and dtype (schemas.clickhere.CAFFE_LAYOUT), keypoint_loc must hold one keypoint; the values
come back as the instance arrays the record checks take."""
import numpy as np

from schemas import caffe
from schemas import clickhere as chs
from schemas.dataset import checks
from schemas.dataset.validation.caffe import decode_datums

KEY = "12345678_02958343_abc_v000001_a018_e014_t002_d003_obj0_objc5_kp17"


def _instance():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (227, 227, 3)).astype(np.uint8)
    return chs.instance_arrays(image, (40, 100), 17, 34, [5, 5 * 360 + 18, 5 * 360 + 14, 5 * 360 + 2])


def test_valid_datums_decode_to_the_instance_arrays():
    inst = _instance()
    arrs, problems = decode_datums(chs.caffe_datums(inst), 34)
    assert problems == []
    np.testing.assert_array_equal(arrs["image"], inst["image"])
    np.testing.assert_array_equal(arrs["keypoint_pixel"], [40, 100])
    assert arrs["viewpoint_label"].dtype == np.float32  # as stored
    np.testing.assert_array_equal(arrs["viewpoint_label"], inst["viewpoint_label"])
    assert arrs["keypoint_class"].shape == (34,) and arrs["keypoint_class"].dtype == np.uint8
    assert checks.check_clickhere_instance(dict(arrs, key=KEY), 34) == []


def test_wrong_shape_dtype_missing_and_garbage():
    datums = chs.caffe_datums(_instance())
    datums["chessboard_dt_map"] = caffe.array_to_datum(caffe.datum_to_array(datums["chessboard_dt_map"])[:, :100])
    datums["keypoint_class"] = caffe.array_to_datum(caffe.datum_to_array(datums["keypoint_class"]).astype(np.float32))
    datums["image"] = None
    datums["viewpoint_label"] = b"\xff\xff"
    arrs, problems = decode_datums(datums, 34)
    assert arrs == {}
    assert problems[:3] == ["image_lmdb: no value",
                            "chessboard_dt_map_lmdb: Datum (1, 100, 227) float32, expected (1, 227, 227) float32",
                            "keypoint_class_lmdb: Datum (34, 1, 1) float32, expected (34, 1, 1) uint8"]
    assert problems[3].startswith("viewpoint_label_lmdb: not a Caffe Datum of its stated shape (")
    datums = chs.caffe_datums(_instance())
    assert decode_datums(datums, 12)[1] == ["keypoint_class_lmdb: Datum (34, 1, 1) uint8, expected (12, 1, 1) uint8"]
    assert decode_datums(datums, None)[1] == []


def test_keypoint_loc_with_two_keypoints():
    inst = _instance()
    inst["keypoint_loc"] = inst["keypoint_loc"].copy()
    inst["keypoint_loc"][0, 0] = 255
    assert decode_datums(chs.caffe_datums(inst), 34) == ({}, ["keypoint_loc has 2 pixels at 255, expected exactly 1"])


def test_r_copy_keeps_the_original_class_in_its_key():
    """formats.md §3.7: an _r key names the unflipped keypoint class and appends _r; the copy's
    one-hot is the left/right-swapped class (Click-Here's job_to_keypoint_class_vector)."""
    from kpdata.clickhere import KeypointClassTable
    from schemas.dataset.validation.clickhere import flip_classes

    names = KeypointClassTable.clickhere34().names
    orig = names.index("car_left_front_wheel")
    swapped = names.index("car_right_front_wheel")
    flip = flip_classes({})
    assert flip[orig] == swapped and flip[swapped] == orig and flip[names.index("motorbike_head_center")] == \
        names.index("motorbike_head_center")
    key = KEY.replace("_kp17", f"_kp{orig}_r")
    assert key.endswith("_kp" + str(orig) + "_r")
    label = [5, 5 * 360 + (360 - 18) % 360, 5 * 360 + 14, 5 * 360 + (-2) % 360]  # az, tilt mirrored
    image = np.zeros((227, 227, 3), np.uint8)
    good = chs.instance_arrays(image, (40, 100), swapped, 34, label)
    assert checks.check_clickhere_instance(dict(good, key=key, flipped=1), 34, flip) == []
    bad = chs.instance_arrays(image, (40, 100), orig, 34, label)  # the one-hot not swapped
    problems = checks.check_clickhere_instance(dict(bad, key=key, flipped=1), 34, flip)
    assert len(problems) == 1 and "left/right-swapped class" in problems[0]
