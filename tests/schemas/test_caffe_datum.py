"""Our Datum bytes against a separately built protobuf definition of Caffe's Datum; Click-Here's LMDB
layout (schemas.clickhere.CAFFE_LAYOUT) against the arrays caffe.io would store."""
import numpy as np
import pytest
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

from schemas import caffe
from schemas import clickhere as chs

# caffe/proto/caffe.proto, message Datum (proto2), declared here independently of schemas.caffe
_CAFFE_PROTO = [("channels", 1, "TYPE_INT32", "LABEL_OPTIONAL"), ("height", 2, "TYPE_INT32", "LABEL_OPTIONAL"),
                ("width", 3, "TYPE_INT32", "LABEL_OPTIONAL"), ("data", 4, "TYPE_BYTES", "LABEL_OPTIONAL"),
                ("label", 5, "TYPE_INT32", "LABEL_OPTIONAL"), ("float_data", 6, "TYPE_FLOAT", "LABEL_REPEATED"),
                ("encoded", 7, "TYPE_BOOL", "LABEL_OPTIONAL")]


def reference_datum():
    F = descriptor_pb2.FieldDescriptorProto
    fdp = descriptor_pb2.FileDescriptorProto(name="test/caffe.proto", package="caffe", syntax="proto2")
    m = fdp.message_type.add(name="Datum")
    for name, num, t, lab in _CAFFE_PROTO:
        m.field.add(name=name, number=num, type=getattr(F, t), label=getattr(F, lab))
    return message_factory.GetMessages([fdp], pool=descriptor_pool.DescriptorPool())["caffe.Datum"]


def test_datum_bytes_equal_protobufs_own_serialisation():
    Datum = reference_datum()
    rng = np.random.default_rng(0)
    for arr in (rng.integers(0, 256, (3, 227, 227)).astype(np.uint8), rng.random((1, 227, 227)) * 300,
                np.arange(34, dtype=np.uint8).reshape(34, 1, 1), np.array([5, 1830, 1810, 2155.0]).reshape(4, 1, 1),
                np.arange(227 * 227, dtype=np.int32).reshape(1, 227, 227)):
        d = Datum(channels=arr.shape[0], height=arr.shape[1], width=arr.shape[2])
        if arr.dtype == np.uint8:
            d.data = arr.tobytes()
        else:
            d.float_data.extend(arr.astype(np.float32).ravel().tolist())
        assert caffe.array_to_datum(arr) == d.SerializeToString(deterministic=True)
        back = caffe.datum_to_array(caffe.array_to_datum(arr))
        assert back.shape == arr.shape and np.array_equal(back, arr.astype(back.dtype))


# ----------------------------------------------------------------- the Click-Here layout, declared once


def _instance(seed=0, label=(5, 1818, 1814, 1802)):
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 256, (227, 227, 3)).astype(np.uint8)
    return chs.instance_arrays(image, rng.integers(0, 227, 2), 3, 34, np.asarray(label, np.int64))


def test_click_here_datums_are_the_arrays_caffe_io_would_store():
    """Independently: Click-Here's create_*_lmdb store the BGR image as (3, H, W) uint8, each map as
    (1, H, W), the one-hot as (C, 1, 1) uint8 and the label as (4, 1, 1) floats."""
    inst = _instance()
    datums = chs.caffe_datums(inst)
    assert list(datums) == list(chs.CAFFE_FIELDS)
    want = {"image": inst["image"][:, :, ::-1].transpose(2, 0, 1), "keypoint_class": inst["keypoint_class"][:, None, None],
            "viewpoint_label": inst["viewpoint_label"].astype(np.float32)[:, None, None]}
    for f in ("keypoint_loc", "gaussian_keypoint_map", "chessboard_dt_map", "euclidean_dt_map", "manhattan_dt_map"):
        want[f] = inst[f][None]
    for f, arr in want.items():
        assert datums[f] == caffe.array_to_datum(np.ascontiguousarray(arr)), f
    back = chs.instance_from_datums(datums)
    for f in ("image", "keypoint_loc", "gaussian_keypoint_map", "chessboard_dt_map", "manhattan_dt_map",
              "keypoint_class", "viewpoint_label", "keypoint_pixel"):
        np.testing.assert_array_equal(back[f], inst[f], err_msg=f)
    assert back["viewpoint_label"].dtype == np.int64 and back["keypoint_class"].dtype == np.uint8
    np.testing.assert_array_equal(back["euclidean_dt_map"], inst["euclidean_dt_map"].astype(np.float32))
    only = chs.instance_from_datums({"keypoint_loc": datums["keypoint_loc"]})
    assert set(only) == {"keypoint_loc", "keypoint_pixel"}


def test_layout_description_and_lmdb_names():
    assert chs.lmdb_name("euclidean_dt_map") == "euclidean_dt_map_lmdb"
    desc = chs.CAFFE_LAYOUT.describe()
    assert desc["name"] == "caffe_datum" == chs.CAFFE_LAYOUT.name
    assert desc["fields"][0] == {"lmdb": "image_lmdb", "shape": [3, 227, 227], "storage": "data (uint8)"}
    assert desc["fields"][6] == {"lmdb": "keypoint_class_lmdb", "shape": ["C", 1, 1], "storage": "data (uint8)"}
    assert desc["fields"][7] == {"lmdb": "viewpoint_label_lmdb", "shape": [4, 1, 1], "storage": "float_data"}
    assert [f["storage"] for f in desc["fields"][3:6]] == ["float_data"] * 3
    with pytest.raises(KeyError, match="not a field of the caffe_datum LMDB layout"):
        chs.lmdb_name("mask")


def test_field_problem_names_shape_and_dtype():
    f = chs.CAFFE_LAYOUT["keypoint_class"]
    assert f.problem(np.zeros((34, 1, 1), np.uint8)) is None
    assert f.problem(np.zeros((34, 1, 1), np.uint8), 12) == "Datum (34, 1, 1) uint8, expected (12, 1, 1) uint8"
    assert chs.CAFFE_LAYOUT["image"].problem(np.zeros((3, 227, 200), np.float32)) == \
        "Datum (3, 227, 200) float32, expected (3, 227, 227) uint8"
    with pytest.raises(ValueError, match="expected a \\(C, H, W\\) shape"):
        caffe.DatumField("x", (1, 2), "uint8", caffe.PLANE)
    inst = _instance()
    inst["keypoint_loc"][0, 0] = 255
    with pytest.raises(ValueError, match="keypoint_loc holds 2 keypoints, expected 1"):
        chs.instance_from_datums(chs.caffe_datums(inst))
