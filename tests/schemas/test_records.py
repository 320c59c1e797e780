"""The record maker generated from each schema (``Schema.record``): round trips of every declared
schema (values made from the declaration itself -> record -> Example bytes -> decode equals the
record, and the input in the array shapes), and the clear errors of the maker and of the makers
that derive fields (a wrong shape, a wrong dtype, a missing or unknown field)."""
import os

import numpy as np
import pytest

from kpdata import keypose
from schemas import clickhere, keypointnet, kp2d
from schemas import keypose as keypose_schema
from schemas.features import PNGImage, Schema, SchemaError, Tensor, Text
from schemas.view import VIEW, decode_view, make_view_record

SCHEMAS = [VIEW, clickhere.CLICKHERE_VIEW, clickhere.CLICKHERE_INSTANCE, keypointnet.KEYPOINTNET_PAIR,
           keypointnet.KEYPOINTNET_PAIR_CORE, kp2d.KP2D_PAIR, keypose_schema.KEYPOSE]
DIMS = {"K": 3, "N": 2, "F": 2, "L": 3, "C": 5, "H": 6, "W": 7}


def _size(shape, field):
    names = iter(field.dims)
    return tuple(DIMS[next(names)] if s is None else s for s in shape)


def _values(schema: Schema, seed: int = 0) -> dict:
    """One value per field, in the field's array shape, of a dtype the maker must cast (float64
    for float32 fields, int32 for int64 fields, python str for text)."""
    rng = np.random.default_rng(seed)
    out = {}
    for f in schema.fields:
        if isinstance(f, Text):
            out[f.name] = f"{f.name}-value" if f.shape == () else [f"{f.name}{i}" for i in range(DIMS[f.dims[0]])]
        elif isinstance(f, PNGImage):
            out[f.name] = rng.integers(0, np.iinfo(f.dtype).max, _size(f.shape, f), dtype=f.dtype)
        elif isinstance(f, Tensor):
            shape = _size(f.array_shape, f)
            out[f.name] = rng.integers(-99, 99, shape, dtype=np.int32) if f.kind == "int64" else rng.normal(size=shape)
        else:  # clickhere's opaque Bytes (a JPEG file)
            out[f.name] = rng.bytes(40)
    return out


@pytest.mark.parametrize("schema", SCHEMAS, ids=lambda s: f"{s.name}-{len(s.fields)}")
def test_round_trip_of_every_schema(schema):
    values = _values(schema)
    rec = schema.record(values)
    data = schema.encode(rec)
    assert data == schema.encode(schema.record(_values(schema)))  # deterministic
    stored, shaped = schema.decode(data), schema.decode(data, arrays=True)
    assert list(stored) == [f.name for f in schema.fields]
    for f in schema.fields:
        if isinstance(f, Text) or not isinstance(f, (Tensor, PNGImage)):
            assert stored[f.name] == rec[f.name] == values[f.name], f.name
            continue
        np.testing.assert_array_equal(stored[f.name], rec[f.name], err_msg=f.name)
        want = np.asarray(values[f.name]).astype(f.dtype)
        assert np.shape(shaped[f.name]) == want.shape, f.name
        np.testing.assert_array_equal(shaped[f.name], want, err_msg=f.name)
    # the maker takes the stored shapes as well: a decoded record makes the same bytes
    assert schema.encode(schema.record(stored)) == data


def test_record_casts_to_the_stored_dtype_and_shape():
    rec = VIEW.record(_values(VIEW))
    assert rec["camera/K"].shape == (9,) and rec["camera/K"].dtype == np.float32
    assert rec["keypoints/uv"].shape == (6,) and rec["keypoints/visible"].dtype == np.int64
    assert isinstance(rec["seed"], np.int64) and isinstance(rec["depth/scale"], np.float32)


def test_empty_lists_of_any_number_type_are_accepted():
    values = _values(VIEW)
    values.update({"keypoints/names": [], "keypoints/uv": [], "keypoints/z": [], "keypoints/xyz": np.zeros((0, 3)),
                   "keypoints/visible": []})
    rec = VIEW.record(values)
    assert rec["keypoints/visible"].dtype == np.int64 and rec["keypoints/xyz"].shape == (0,)
    assert decode_view(VIEW.encode(rec))["keypoints/uv"].shape == (0, 2)


@pytest.mark.parametrize("field,value,message", [
    ("camera/K", np.zeros((3, 4)), r"camera/K: expected \(3, 3\) float32 \(or stored \(9\)\), got \(3, 4\) float64"),
    ("keypoints/uv", np.zeros((3, 3)), r"keypoints/uv: expected \(K, 2\) float32 \(or stored \(K\*2\)\), got \(3, 3\) float64"),
    ("keypoints/visible", np.zeros(3), r"keypoints/visible: expected \(K\) int64, got \(3,\) float64"),
    ("viewpoint", ["a", "b", "c", "d"], r"viewpoint: expected \(4\) float32, got \(4,\) <U1"),
    ("seed", [1, 2], r"seed: expected \(\) int64, got \(2,\) int64"),
    ("image/encoded", np.zeros((6, 7, 4), np.float32),
     r"image/encoded: expected \(H, W, 4\) uint8 image, got \(6, 7, 4\) float32"),
    ("mask/encoded", np.zeros((6, 7, 1), np.uint8), r"mask/encoded: expected \(H, W\) uint8 image, got \(6, 7, 1\) uint8"),
    ("keypoints/names", ["a", 2, "c"], r"keypoints/names: expected \(K\) strings, got int items"),
    ("keypoints/names", "abc", r"keypoints/names: expected \(K\) strings, got str"),
    ("key", b"x", "key: expected a string, got bytes"),
    ("keypoints/z", np.zeros(4), "keypoints/z has K=4 but keypoints/names has K=3"),
])
def test_record_rejects_a_wrong_value_naming_the_field_and_both_shapes(field, value, message):
    values = _values(VIEW)
    values[field] = value
    with pytest.raises(SchemaError, match=message):
        VIEW.record(values)


def test_record_rejects_missing_unknown_and_repeated_fields():
    values = _values(VIEW)
    del values["seed"]
    with pytest.raises(SchemaError, match=r"view record: missing fields \['seed'\], unexpected fields \[\]"):
        VIEW.record(values)
    with pytest.raises(SchemaError, match=r"missing fields \[\], unexpected fields \['bogus'\]"):
        VIEW.record(_values(VIEW), bogus=1)
    with pytest.raises(SchemaError, match=r"fields given twice \['seed'\]"):
        VIEW.record(_values(VIEW), seed=3)
    v = _values(VIEW)
    assert VIEW.encode(VIEW.record({k: x for k, x in v.items() if k != "seed"}, seed=v["seed"])) == \
        VIEW.encode(VIEW.record(v))


def test_a_bad_array_declaration_is_refused():
    with pytest.raises(ValueError, match=r"m: array shape \(3, 4\) does not hold"):
        Tensor("m", shape=(9,), array=(3, 4))


def _view_args(k=3):
    rng = np.random.default_rng(1)
    return dict(key="s/m/v000000", synset="s", model_id="m", seed=1, rgba=rng.integers(0, 256, (6, 7, 4), dtype=np.uint8),
                depth=rng.uniform(0, 2, (6, 7)), K=np.eye(3), cam_T_obj=np.eye(4), viewpoint=[1, 2, 3, 4],
                names=[f"k{i}" for i in range(k)], uv=rng.uniform(0, 6, (k, 2)), z=np.ones(k), xyz=np.zeros((k, 3)),
                visible=np.ones(k, bool))


@pytest.mark.parametrize("arg,value,message", [
    ("uv", np.zeros((3, 3)), r"keypoints/uv: expected \(K, 2\) float32 \(or stored \(K\*2\)\), got \(3, 3\) float64"),
    ("visible", np.ones(3, np.float32), r"keypoints/visible: expected \(K\) int64, got \(3,\) float32"),
    ("rgba", np.zeros((6, 7, 3), np.uint8), r"image/encoded: expected \(H, W, 4\) uint8 image, got \(6, 7, 3\) uint8"),
    ("rgba", np.zeros((5, 7, 4), np.uint8), "mask/encoded has H=6 but image/encoded has H=5"),
    ("cam_T_obj", np.eye(3), r"camera/cam_T_obj: expected \(4, 4\) float32 \(or stored \(16\)\), got \(3, 3\) float64"),
])
def test_view_maker_rejects_wrong_values(arg, value, message):
    args = _view_args()
    args[arg] = value
    with pytest.raises(SchemaError, match=message):
        make_view_record(**args)


def test_view_maker_derives_depth_mask_and_size():
    args = _view_args()
    out = decode_view(VIEW.encode(make_view_record(**args)))
    assert (out["image/height"], out["image/width"]) == (6, 7)
    np.testing.assert_array_equal(out["mask/encoded"] > 0, out["depth"] > 0)
    np.testing.assert_allclose(out["depth"], args["depth"], atol=out["depth/scale"])
    np.testing.assert_array_equal(out["keypoints/uv"], np.float32(args["uv"]))


def test_kp2d_maker():
    rng = np.random.default_rng(2)
    img = rng.integers(0, 256, (6, 7, 3), dtype=np.uint8)
    args = dict(key="a.jpg/p0000", image_path="a.jpg", seed=3, pair_index=0, image=img, image_aug=img[::-1].copy(),
                homography=np.eye(3), homography_pixels=np.eye(3) * 2, source_size=(70, 60))
    out = kp2d.decode_pair(kp2d.KP2D_PAIR.encode(kp2d.make_pair_record(**args)))
    assert (out["image/height"], out["image/width"], out["source/height"], out["source/width"]) == (6, 7, 60, 70)
    np.testing.assert_array_equal(out["homography/pixels"], np.eye(3) * 2)
    args["image_aug"] = img.astype(np.float64)
    with pytest.raises(SchemaError, match=r"image_aug/encoded: expected \(H, W, 3\) uint8 image, got \(6, 7, 3\) float64"):
        kp2d.make_pair_record(**args)


def test_keypointnet_maker_derives_inverses_and_names_missing_extras():
    img = np.zeros((8, 8, 4), np.uint8)
    mv = np.eye(4)
    mv[:3, 3] = (0.5, 0.0, -3.0)
    rec = keypointnet.make_pair_record(img0=img, img1=img, mv0=mv, mv1=mv.ravel())
    np.testing.assert_allclose(rec["mvi0"].reshape(4, 4) @ mv, np.eye(4), atol=1e-6)
    assert set(rec) == {f.name for f in keypointnet.CORE_FIELDS}
    extras = {f: v for f, v in _values(keypointnet.KEYPOINTNET_PAIR).items()
              if f in {e.name for e in keypointnet.EXTRA_FIELDS} and f != "keypoints/names"}
    with pytest.raises(SchemaError, match=r"missing fields \['keypoints/names'\], unexpected fields \[\]"):
        keypointnet.make_pair_record(img0=img, img1=img, mv0=mv, mv1=mv, extras=extras)


def test_keypose_maker_on_real_targets(fixtures):
    folder = os.path.join(fixtures, "keypose_sample", "bottle_0", "texture_5_pose_0")
    kt_l = keypose.read_key_targets(keypose.frame_path(folder, "000001", "L_pb"))
    kt_r = keypose.read_key_targets(keypose.frame_path(folder, "000001", "R_pb"))
    img = np.arange(6 * 7 * 3, dtype=np.uint8).reshape(6, 7, 3)  # B, G, R as KeyPose stores it
    rec = keypose_schema.make_keypose_record(img, img, kt_l, kt_r)
    out = keypose_schema.decode_keypose(keypose_schema.KEYPOSE.encode(rec))
    main = keypose.target_arrays(kt_l.kp_target)
    np.testing.assert_array_equal(out["keys_uvd_L"], main.keys_uvd.astype(np.float32))
    assert out["num_kp_L"] == 2 and out["num_targets_L"] == 5 and out["targets_keys_uvd_R"].shape == (5, 2, 4)
    np.testing.assert_array_equal(out["img_L"], img)  # the stored channels as they are
    with pytest.raises(SchemaError, match=r"img_R: expected \(H, W, 3\) uint8 image, got \(6, 7\) uint8"):
        keypose_schema.make_keypose_record(img, img[..., 0], kt_l, kt_r)
    rgba = np.full((6, 7, 4), 255, np.uint8)  # no alpha: KeyPose's records are opaque 3-channel PNGs
    with pytest.raises(SchemaError, match=r"img_L: expected \(H, W, 3\) uint8 image, got \(6, 7, 4\) uint8"):
        keypose_schema.make_keypose_record(rgba, img, kt_l, kt_r)
