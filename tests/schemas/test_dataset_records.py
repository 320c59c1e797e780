"""schemas.dataset.records: a written dataset folder read back without Beam or TensorFlow
(metadata, TFRecord / LMDB records, the decoded items of each record kind, KeyPose sequence
folders), on small folders written here (dataset_folders.py)."""
import io
import json
import os

import numpy as np
import pytest

from tests.schemas.dataset_folders import (
    SYNSET, clickhere_view, image, kp2d_record, keypointnet_record, view_record, write_clickhere, write_dataset,
    write_keypointnet, write_keypose, write_kp2d, write_sequences, write_views,
)
from kpdata import keypose
from kpdata.errors import InputError
from schemas import clickhere as chs
from schemas.dataset import names, records
from schemas.view import VIEW


def test_load_info_reads_dataset_info_and_names_a_missing_one(tmp_path):
    write_views(tmp_path / "d")
    info = records.load_info(str(tmp_path / "d"))
    assert info["record"] == "view" and sorted(info["splits"]) == ["test", "train"]
    with pytest.raises(FileNotFoundError, match=r"empty/kpdata_info\.json: no kpdata_info\.json; is .*empty a kpdata"):
        records.load_info(str(tmp_path / "empty"))
    # a folder written before kpdata_info.json: its dataset_info.json is kpdata's own (splits an object)
    old = tmp_path / "old"
    old.mkdir()
    (old / names.DATASET_INFO).write_text(json.dumps(info))
    assert records.info_file(str(old)).endswith(names.DATASET_INFO) and records.load_info(str(old)) == info
    (old / names.DATASET_INFO).write_text(json.dumps({"name": "x", "splits": [{"name": "train"}]}))  # TFDS's only
    assert records.info_file(str(old)) is None
    with pytest.raises(FileNotFoundError, match="no kpdata_info.json"):
        records.load_info(str(old))


@pytest.mark.parametrize("fmt", ["tfrecord", "lmdb"])
def test_iter_records_yields_every_split_in_key_order(tmp_path, fmt):
    d = write_views(tmp_path / fmt, fmt=fmt)
    got = list(records.iter_records(d))
    assert [s for s, _ in got] == ["test"] * 4 + ["train"] * 8  # splits by name
    keys = [VIEW.decode(raw, {"key"})["key"] for _, raw in got]
    assert keys[:4] == [f"{SYNSET}/m0/v{i:06d}" for i in range(4)] and keys[4:] == sorted(keys[4:])
    assert got[5][1] == VIEW.encode(view_record(1, 1))  # the bytes written
    assert [raw for _, raw in records.iter_records(d, "train")] == [raw for s, raw in got if s == "train"]
    assert list(records.iter_records(d, "nope")) == []


def test_iter_records_reads_through_the_given_filesystem(tmp_path):
    d = write_views(tmp_path / "d")
    files = {os.path.join("mem://x", n): (tmp_path / "d" / n).read_bytes() for n in os.listdir(d)}

    class Memory:  # a remote filesystem as a pipeline passes it (Beam's FileSystems has these two)
        opened = []

        @staticmethod
        def exists(path):
            return path in files

        @classmethod
        def open(cls, path):
            cls.opened.append(os.path.basename(path))
            return io.BytesIO(files[path])

    assert records.load_info("mem://x", Memory)["record"] == "view"
    assert list(records.iter_records("mem://x", fs=Memory)) == list(records.iter_records(d))
    assert Memory.opened[0] == names.KPDATA_INFO and len(Memory.opened) == 4  # info twice, two shards
    with pytest.raises(FileNotFoundError, match="mem://y"):
        records.load_info("mem://y", Memory)


def test_iter_views_decodes_the_fields_asked_for(tmp_path):
    d = write_views(tmp_path / "d", models=2, views=2)
    views = list(records.iter_views(d, "train", fields={"key", "keypoints/uv"}))
    assert [v["key"] for v in views] == [f"{SYNSET}/m1/v000000", f"{SYNSET}/m1/v000001"]
    assert set(views[0]) == {"key", "keypoints/uv"}
    np.testing.assert_array_equal(views[1]["keypoints/uv"], [[6, 6], [12, 13]])


def _instances(d, split=None):
    return {r["key"]: r for r in records.iter_instances(d, split)}


def test_iter_instances_reads_the_three_clickhere_layouts_alike(tmp_path):
    compact = _instances(write_clickhere(tmp_path / "compact", chs.CLICKHERE_VIEW.name))
    tf = _instances(write_clickhere(tmp_path / "tf", chs.CLICKHERE_INSTANCE.name))
    caffe = _instances(write_clickhere(tmp_path / "caffe", records.CAFFE_RECORD))
    # 2 views x 2 keypoints of model 0 (no _r copies) + 2 views x 2 keypoints x 2 of model 1
    assert len(compact) == 12 and sum(k.endswith("_r") for k in compact) == 4
    assert set(compact) == set(tf) == set(caffe)
    expected = {i["key"]: i for v in (clickhere_view(0, 0, False), clickhere_view(1, 1))
                for i in chs.expand(chs.decode_view(chs.CLICKHERE_VIEW.encode(v)))}
    for key, want in expected.items():
        for got in (compact[key], tf[key], caffe[key]):
            assert got["image"].shape == (227, 227, 3) and got["image"].dtype == np.uint8
            np.testing.assert_array_equal(got["image"], want["image"])
            np.testing.assert_array_equal(got["keypoint_pixel"], want["keypoint_pixel"])
            np.testing.assert_array_equal(got["keypoint_class"], want["keypoint_class"])
            assert got["keypoint_class"].dtype == np.uint8
            np.testing.assert_array_equal(got["viewpoint_label"], want["viewpoint_label"])
            np.testing.assert_array_equal(np.float32(got["euclidean_dt_map"]), np.float32(want["euclidean_dt_map"]))
    assert set(_instances(str(tmp_path / "caffe"), "test")) == {k for k in compact if "_m0_" in k}
    assert [r["key"] for r in records.iter_instances(str(tmp_path / "tf"), "test")] == sorted(
        k for k in compact if "_m0_" in k)


def test_iter_instances_refuses_other_datasets(tmp_path):
    d = write_views(tmp_path / "d")
    with pytest.raises(ValueError, match=r"d: not a clickhere dataset \(record 'view'\)"):
        next(records.iter_instances(d))


def test_keypointnet_pairs_get_a_key_when_the_core_layout_has_none(tmp_path):
    core = list(records.iter_keypointnet_pairs(write_keypointnet(tmp_path / "core", models=2, extras=False)))
    assert [r["key"] for r in core] == [f"record/{i:06d}" for i in range(4)]
    assert core[1]["mv0"].shape == (4, 4) and core[1]["img1"].shape == (24, 24, 4)
    full = list(records.iter_keypointnet_pairs(write_keypointnet(tmp_path / "full", models=2)))
    assert [r["key"] for r in full] == [f"{SYNSET}/m{m}/p{p:04d}" for m in range(2) for p in range(2)]
    assert full[0]["keypoints/uv0"].shape == (1, 2)
    fields = list(records.iter_keypointnet_pairs(str(tmp_path / "full"), fields={"key", "mv0"}))
    assert set(fields[0]) == {"key", "mv0"}
    assert keypointnet_record(0, 0, False)  # the core record encodes without extras


def test_iter_kp2d_pairs(tmp_path):
    d = write_kp2d(tmp_path / "d", photos=2, pairs=2)
    pairs = list(records.iter_kp2d_pairs(d))
    assert [p["key"] for p in pairs] == sorted(k for k, _ in (kp2d_record(p, i) for p in range(2) for i in range(2)))
    assert pairs[0]["homography"].shape == (3, 3) and pairs[0]["image/encoded"].shape == (32, 32, 3)
    assert set(next(records.iter_kp2d_pairs(d, fields={"key"}))) == {"key"}


def test_keypose_records_and_frames(tmp_path, fixtures):
    d = write_keypose(tmp_path / "d", fixtures)
    raws = list(records.iter_keypose_records(d))
    assert [k for k, _ in raws] == ["train/0000", "train/0001", "val/0002"]
    assert [k for k, _ in records.iter_keypose_records(d, "val")] == ["val/0000"]
    f0, f1 = (records.keypose_frame(k, raw) for k, raw in raws[:2])
    assert f0["key"] == "train/0000" and f0["img_L"].shape == (18, 32, 3)
    # the records store B, G, R (KeyPose's order); a frame comes back R, G, B for display
    np.testing.assert_array_equal(f0["img_L"], image(0, 0, 3, 32)[:18])
    np.testing.assert_array_equal(f1["img_R"], image(1, 1, 3, 32)[:18])
    assert f0["mask"] is None and f1["mask"] is None  # KeyPose's records are opaque and carry no mask
    kt = keypose.read_key_targets(os.path.join(fixtures, "keypose_sample/bottle_0/texture_5_pose_0/000001_R.pbtxt"))
    np.testing.assert_allclose(f0["uvd_R"][:, :2], [[k.u, k.v] for k in kt.kp_target.keypoints], rtol=1e-6)
    assert f0["uvd_L"].shape == (2, 4)
    np.testing.assert_array_equal(f0["visible_R"], [k.visible for k in kt.kp_target.keypoints])


def test_sequence_folders(tmp_path, fixtures):
    root = write_sequences(tmp_path / "seq", fixtures)
    pbs = records.sequence_frames(root)
    assert [os.path.basename(p) for p in pbs] == ["000001_L.pbtxt", "000002_L.pbtxt", "000003_L.pbtxt"]
    assert records.is_sequence_tree(root) and records.is_sequence_tree(str(tmp_path))
    assert not records.is_sequence_tree(str(tmp_path / "seq" / "bottle_0" / "nope"))
    f = records.read_sequence_frame(root, pbs[1])
    assert f["key"] == "bottle_0/texture_5_pose_0/000002"
    assert f["img_L"].shape == f["img_R"].shape == (18, 32, 4) and f["mask"].shape == (18, 32)
    kt = keypose.read_key_targets(pbs[1].replace("_L.", "_R."))
    np.testing.assert_allclose(f["uvd_R"][:, :2], [[k.u, k.v] for k in kt.kp_target.keypoints], rtol=1e-6)
    assert f["visible_L"] == [k.visible for k in keypose.read_key_targets(pbs[1]).kp_target.keypoints]

    mono = write_sequences(tmp_path / "mono", fixtures, mask=False, mono=True)
    m = records.read_sequence_frame(mono, records.sequence_frames(mono)[0])
    assert m["img_R"] is m["img_L"] and m["mask"] is None
    np.testing.assert_array_equal(m["uvd_R"], m["uvd_L"])

    os.remove(os.path.join(root, "bottle_0", "texture_5_pose_0", "000003_R.png"))
    with pytest.raises(InputError, match="R image does not exist"):
        records.read_sequence_frame(root, pbs[2])


def test_written_folder_matches_dataset_info(tmp_path):
    d = write_dataset(tmp_path / "d", "view", {"train": [("b", b"2"), ("a", b"1")]}, fmt="lmdb")
    info = json.loads((tmp_path / "d" / names.KPDATA_INFO).read_text())
    assert info["splits"]["train"]["shards"][0]["file"] == names.lmdb_name("syn", "train")
    assert list(records.iter_records(d)) == [("train", b"1"), ("train", b"2")]
