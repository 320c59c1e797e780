"""python -m pipelines.validate: every pipeline's small job validates clean; targeted corruptions of
copies (framing, files, metadata, keys, per-field LMDBs, record values, layout files) exit 1 naming
the file, the key where there is one, and the defect."""
import json
import os
import shutil

import lmdb
import numpy as np
import pytest

from kpdata import keypose, seeding
from kpdata.keypose import proto as kpp
from pipelines import (
    gen_homography_pairs,
    gen_tfrecords,
    render_shapenet,
    render_stereo,
    validate,
)
from schemas import clickhere as chs
from schemas import example_proto, tfrecord
from schemas.dataset import names

VIEW = ["--image_size", "320x240", "--focal", "350", "--views_per_model", "2", "--preview", "0",
        "--splits", "train=0.5,test=0.5", "--seed", "3"]  # seed 3: two demo models per split
CLICKHERE = ["--layout", "clickhere", "--image_size", "320x180", "--focal", "300", "--views_per_model", "2",
             "--synsets", "car", "--preview", "0", "--splits", "train=0.5,test=0.5", "--seed", "3"]


@pytest.fixture(scope="module")
def made(tmp_path_factory, gl):
    """Each pipeline's small job, run once for the module: {kind: folder}."""
    root = tmp_path_factory.mktemp("made")
    d = {k: str(root / k) for k in ("view", "view_lmdb", "ch_caffe", "ch_tfrecord", "ch_compact_lmdb",
                                    "ch_compact_tfrecord", "keypointnet", "kp2d", "stereo", "keypose",
                                    "keypose_lmdb")}
    d["hpatches"] = str(root / "hpatches")
    seqs = os.path.join(d["stereo"], "*", "texture_*_pose_*")
    runs = [
        (render_shapenet, VIEW + ["--num_shards", "2", "--output_dir", d["view"]]),
        (render_shapenet, VIEW + ["--format", "lmdb", "--synsets", "car", "--output_dir", d["view_lmdb"]]),
        (render_shapenet, CLICKHERE + ["--format", "lmdb", "--output_dir", d["ch_caffe"]]),
        (render_shapenet, CLICKHERE + ["--format", "tfrecord", "--num_shards", "2", "--output_dir", d["ch_tfrecord"]]),
        (render_shapenet, CLICKHERE + ["--format", "lmdb", "--compact", "--output_dir", d["ch_compact_lmdb"]]),
        (render_shapenet, CLICKHERE + ["--format", "tfrecord", "--compact", "--output_dir", d["ch_compact_tfrecord"]]),
        (render_shapenet, ["--layout", "keypointnet", "--pairs_per_model", "2", "--preview", "0",
                           "--output_dir", d["keypointnet"]]),
        (gen_homography_pairs, ["--pairs_per_image", "2", "--preview", "0", "--hpatches_out", d["hpatches"],
                                "--output_dir", d["kp2d"]]),
        (render_stereo, ["--synsets", "car", "--frames", "2", "--image_size", "320x180", "--focal", "170",
                         "--preview", "0", "--output_dir", d["stereo"]]),
        (gen_tfrecords, ["--input", seqs, "--val", "car_1/*", "--image_size", "192x112_fl100", "--preview", "0",
                         "--output_dir", d["keypose"]]),
        (gen_tfrecords, ["--input", seqs, "--image_size", "192x112_fl100", "--format", "lmdb", "--preview", "0",
                         "--output_dir", d["keypose_lmdb"]]),
    ]
    for module, argv in runs:
        assert module.run(argv) == 0, (module.__name__, argv)
    return d


def run_json(path, *flags):
    """(exit status, report dict) of ``validate --json``."""
    import contextlib
    import io
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        rc = validate.run([str(path), "--json", *flags])
    return rc, json.loads(buf.getvalue())


def defects(report, check=None):
    return [d for d in report["defects"] if check is None or d["check"] == check]


def assert_defect(report, check, file_part, message_part, key=None):
    found = [d for d in defects(report, check) if file_part in d["file"] and message_part in d["message"]
             and (key is None or d["key"] == key)]
    assert found, f"no {check} defect on {file_part!r} saying {message_part!r}" + (f" for {key}" if key else "") + \
        "; got " + json.dumps(report["defects"][:8], indent=1)
    return found


def copy(made, kind, tmp_path):
    dst = tmp_path / kind
    shutil.copytree(made[kind], dst)
    return dst


def info_of(d):
    with open(os.path.join(d, "kpdata_info.json")) as f:
        return json.load(f)


def write_info(d, info):
    with open(os.path.join(d, "kpdata_info.json"), "w") as f:
        json.dump(info, f, indent=2, sort_keys=True)


def first_shard(d, split="train"):
    """The split's shard with the most examples."""
    return max(info_of(d)["splits"][split]["shards"], key=lambda s: s["examples"])["file"]


def rewrite_shard(d, rel, edit):
    """Rewrite TFRecord ``rel`` with ``edit(index, Example)`` applied to each record (valid framing),
    and update dataset_info's bytes so only the edit is wrong."""
    path = os.path.join(d, rel)
    with open(path, "rb") as f:
        records = list(tfrecord.read_records(f))
    out = []
    for i, data in enumerate(records):
        ex = example_proto.parse_example(data)
        res = edit(i, ex)
        out.append(res if isinstance(res, (bytes, list)) else ex.SerializeToString(deterministic=True))
    flat = []
    for r in out:
        flat.extend(r if isinstance(r, list) else [r])
    with open(path, "wb") as f:
        size = tfrecord.write_records(f, flat)
    info = info_of(d)
    for s in info["splits"].values():
        for sh in s["shards"]:
            if sh["file"] == rel:
                s["num_bytes"] += size - sh["bytes"]
                sh["bytes"] = size
    write_info(d, info)


def tree_state(d):
    """{relative path: (size, mtime_ns)} of every file under ``d``."""
    out = {}
    for dirpath, _, files in os.walk(d):
        for f in files:
            st = os.stat(os.path.join(dirpath, f))
            out[os.path.relpath(os.path.join(dirpath, f), d)] = (st.st_size, st.st_mtime_ns)
    return out


def key_of(ex):
    return ex.features.feature["key"].bytes_list.value[0].decode()


# ------------------------------------------------------------------------------------ clean runs


@pytest.mark.parametrize("kind", ["view", "view_lmdb", "ch_caffe", "ch_tfrecord", "ch_compact_lmdb",
                                  "ch_compact_tfrecord", "keypointnet", "kp2d", "stereo", "keypose", "keypose_lmdb",
                                  "hpatches"])
def test_every_pipelines_output_validates_clean(made, kind, capsys):
    before = tree_state(made[kind])
    rc, report = run_json(made[kind])
    assert tree_state(made[kind]) == before, "validation changed the dataset folder"
    assert rc == 0 and report["ok"] and report["defects"] == [], report["defects"][:5]
    statuses = {c["name"]: c["status"] for c in report["checks"]}
    assert set(statuses.values()) == {"ok"}
    if kind not in ("stereo", "hpatches"):
        assert {"metadata", "files", "records", "keys", "invariants", "errors"} <= set(statuses)
    assert validate.run([made[kind]]) == 0
    assert "no defects" in capsys.readouterr().out


def test_kp2d_checks_its_hpatches_export(made):
    _, report = run_json(made["kp2d"])
    hp = [c for c in report["checks"] if c["name"] == "hpatches"]
    assert hp and hp[0]["status"] == "ok" and "12 sequences" in hp[0]["notes"][0]


# ---------------------------------------------------------------------------- framing and files


def test_truncated_shard(made, tmp_path):
    d = copy(made, "view", tmp_path)
    rel = first_shard(d)
    path = d / rel
    size = os.path.getsize(path)
    with open(path, "r+b") as f:
        f.truncate(size - 100)
    rc, report = run_json(d)
    assert rc == 1
    assert_defect(report, "framing", rel, "truncated record")
    assert_defect(report, "files", rel, f"{size - 100} bytes, kpdata_info.json lists {size}")
    assert_defect(report, "files", rel, "records, kpdata_info.json lists")


def test_flipped_byte_fails_the_data_checksum(made, tmp_path):
    d = copy(made, "view", tmp_path)
    rel = first_shard(d)
    with open(d / rel, "r+b") as f:
        f.seek(40)
        b = f.read(1)
        f.seek(40)
        f.write(bytes([b[0] ^ 0x5A]))
    rc, report = run_json(d)
    assert rc == 1
    assert_defect(report, "framing", rel, "bad data checksum in record 0 at byte 0")


def test_flipped_length_byte_stops_the_framing(made, tmp_path):
    d = copy(made, "kp2d", tmp_path)
    rel = first_shard(d)
    with open(d / rel, "r+b") as f:
        f.seek(2)
        f.write(b"\x7f")
    rc, report = run_json(d)
    assert rc == 1
    assert_defect(report, "framing", rel, "bad length checksum at byte 0")


def test_deleted_shard(made, tmp_path):
    d = copy(made, "view", tmp_path)
    rel = first_shard(d, "test")
    os.remove(d / rel)
    rc, report = run_json(d)
    assert rc == 1
    assert_defect(report, "files", rel, "listed in kpdata_info.json but missing")


def test_temporary_and_stray_shards(made, tmp_path):
    d = copy(made, "view", tmp_path)
    rel = first_shard(d)
    shutil.copy(d / rel, d / f".{rel}.incomplete-0123456789ab")
    stray = rel.replace("-00000-of-00002", "-00000-of-00003")
    shutil.copy(d / rel, d / stray)
    rc, report = run_json(d)
    assert rc == 1
    assert_defect(report, "files", f".{rel}.incomplete-", "temporary name left behind")
    assert_defect(report, "files", stray, "does not list (stray)")


def test_changed_example_count(made, tmp_path):
    d = copy(made, "view", tmp_path)
    info = info_of(d)
    shard = max(info["splits"]["train"]["shards"], key=lambda s: s["examples"])
    real = shard["examples"]
    shard["examples"] = real + 1
    write_info(d, info)
    rc, report = run_json(d)
    assert rc == 1
    assert_defect(report, "files", shard["file"], f"{real} records, kpdata_info.json lists {real + 1}")
    assert_defect(report, "metadata", "kpdata_info.json", "num_examples")


def test_lmdb_shard_count_and_key(made, tmp_path):
    d = copy(made, "view_lmdb", tmp_path)
    rel = first_shard(d)
    env = lmdb.open(str(d / rel), map_size=1 << 30, subdir=True, lock=False)
    with env.begin(write=True) as txn:
        key, value = next(iter(txn.cursor()))
        txn.delete(key)
        txn.put(b"02958343/not-the-same/v000000", value)
    env.close()
    info = info_of(d)
    info["splits"]["train"]["shards"][0]["bytes"] = sum(os.path.getsize(d / rel / f) for f in os.listdir(d / rel))
    info["splits"]["train"]["num_bytes"] = info["splits"]["train"]["shards"][0]["bytes"]
    write_info(d, info)
    rc, report = run_json(d)
    assert rc == 1
    assert_defect(report, "keys", rel, "differs from the record's key field", key=key.decode())


# ------------------------------------------------------------------------------- keys and splits


def test_unsorted_and_duplicate_keys(made, tmp_path):
    d = copy(made, "kp2d", tmp_path)
    rel = first_shard(d)
    with open(d / rel, "rb") as f:
        recs = list(tfrecord.read_records(f))
    keys = [key_of(example_proto.parse_example(r)) for r in recs]
    rewrite_shard(d, rel, lambda i, ex: recs[1] if i == 0 else (recs[0] if i == 1 else recs[1] if i == 2 else None))
    rc, report = run_json(d)
    assert rc == 1
    assert_defect(report, "keys", rel, f"not sorted: follows {keys[1]!r}", key=keys[0])
    assert_defect(report, "keys", rel, "duplicate key", key=keys[1])


def test_records_in_the_wrong_split(made, tmp_path):
    d = copy(made, "view", tmp_path)
    info = info_of(d)
    info["config"]["splits"] = [["train", 1.0]]
    info["split_assignment"]["groups"] = {g: "train" for g in info["split_assignment"]["groups"]}
    write_info(d, info)
    rc, report = run_json(d)
    assert rc == 1
    assert_defect(report, "keys", "-test.tfrecord-", "belongs in split 'train'")
    info["config"]["splits"] = [["train", 0.5], ["test", 0.5]]
    write_info(d, info)
    rc, report = run_json(d)
    assert_defect(report, "metadata", "kpdata_info.json", "split_assignment: 2 of 4 models are not where the seed")


# ------------------------------------------------------------------------------- record values


def test_perturbed_view_uv(made, tmp_path):
    d = copy(made, "view", tmp_path)
    rel = first_shard(d)
    hit = {}

    def edit(i, ex):
        if i == 0:
            uv = ex.features.feature["keypoints/uv"].float_list.value
            uv[0] += 1.5
            hit["key"] = key_of(ex)
    rewrite_shard(d, rel, edit)
    rc, report = run_json(d)
    assert rc == 1
    assert_defect(report, "invariants", rel, "stored uv", key=hit["key"])
    assert len(defects(report)) == 1


def test_view_mask_and_missing_feature(made, tmp_path):
    d = copy(made, "view", tmp_path)
    rel = first_shard(d)
    import cv2
    hit = {}

    def edit(i, ex):
        f = ex.features.feature
        if i == 0:
            mask = cv2.imdecode(np.frombuffer(f["mask/encoded"].bytes_list.value[0], np.uint8), cv2.IMREAD_UNCHANGED)
            mask[:3, :3] = 255 - mask[:3, :3]
            f["mask/encoded"].bytes_list.value[0] = cv2.imencode(".png", mask)[1].tobytes()
            hit[0] = key_of(ex)
        if i == 1:
            del f["viewpoint"]
            hit[1] = key_of(ex)
    rewrite_shard(d, rel, edit)
    rc, report = run_json(d)
    assert rc == 1
    assert_defect(report, "invariants", rel, "mask differs from depth > 0 at 9 pixels", key=hit[0])
    assert_defect(report, "records", rel, "missing features ['viewpoint']", key=hit[1])


def test_perturbed_keypointnet_mv(made, tmp_path):
    d = copy(made, "keypointnet", tmp_path)
    rel = first_shard(d)
    hit = {}

    def edit(i, ex):
        if i == 1:
            ex.features.feature["mv0"].float_list.value[3] += 0.01
            hit["key"] = key_of(ex)
    rewrite_shard(d, rel, edit)
    rc, report = run_json(d)
    assert rc == 1
    assert_defect(report, "invariants", rel, "mv0 @ mvi0: the product is not the identity", key=hit["key"])


def test_keypointnet_lists_and_foreign_record_file(made, tmp_path):
    d = copy(made, "keypointnet", tmp_path)
    with open(d / "dev.txt", "w") as f:
        f.write("")
    shutil.copy(d / first_shard(d), d / "foreign.tfrecord")
    with open(d / "projection.txt", "w") as f:
        f.write("1 0 0 0\n0 1 0 0\n0 0 1 0\n0 0 -1 0\n")
    rc, report = run_json(d)
    assert rc == 1
    assert_defect(report, "keypointnet", "dev.txt", "record file(s)")
    assert_defect(report, "files", "foreign.tfrecord", "stray")
    assert_defect(report, "keypointnet", "projection.txt", "cot(fov/2)")


def test_perturbed_kp2d_homography(made, tmp_path):
    d = copy(made, "kp2d", tmp_path)
    rel = first_shard(d)
    hit = {}

    def edit(i, ex):
        if i == 2:
            ex.features.feature["homography/pixels"].float_list.value[2] += 3.0
            hit["key"] = key_of(ex)
    rewrite_shard(d, rel, edit)
    rc, report = run_json(d)
    assert rc == 1
    assert_defect(report, "invariants", rel, "homography and homography/pixels are different maps", key=hit["key"])


# ---------------------------------------------------------------------------------------- clickhere


def test_clickhere_key_sets_differ_across_lmdbs(made, tmp_path):
    d = copy(made, "ch_caffe", tmp_path)
    field_dir = d / "train" / chs.lmdb_name("keypoint_class")
    env = lmdb.open(str(field_dir), map_size=1 << 30, subdir=True, lock=False)
    with env.begin(write=True) as txn:
        key = next(iter(txn.cursor().iternext(values=False)))
        txn.delete(key)
    env.close()
    rc, report = run_json(d)
    assert rc == 1
    assert_defect(report, "keys", "train/keypoint_class_lmdb", "key set differs from image_lmdb's")
    assert key.decode() in assert_defect(report, "keys", "train/keypoint_class_lmdb", "only in image")[0]["message"]


def test_clickhere_caffe_datum_values(made, tmp_path):
    d = copy(made, "ch_caffe", tmp_path)
    field_dir = d / "test" / chs.lmdb_name("chessboard_dt_map")
    from schemas import caffe
    env = lmdb.open(str(field_dir), map_size=1 << 30, subdir=True, lock=False)
    with env.begin(write=True) as txn:
        key, value = next(iter(txn.cursor()))
        arr = caffe.datum_to_array(bytes(value)).copy()
        arr[0, 0, 0] += 1
        txn.put(key, caffe.array_to_datum(arr))
        key2, value2 = list(txn.cursor())[1]
        txn.put(key2, caffe.array_to_datum(caffe.datum_to_array(bytes(value2))[:, :100]))
    env.close()
    rc, report = run_json(d)
    assert rc == 1
    assert_defect(report, "invariants", "test", "chessboard_dt_map is not the map of the keypoint", key=key.decode())
    assert_defect(report, "records", "test", "chessboard_dt_map_lmdb: Datum (1, 100, 227)", key=key2.decode())


def test_clickhere_instance_label_and_class(made, tmp_path):
    d = copy(made, "ch_tfrecord", tmp_path)
    rel = first_shard(d)
    hit = {}

    def edit(i, ex):
        f = ex.features.feature
        if i == 0:
            f["viewpoint_label"].int64_list.value[1] += 1
            hit[0] = key_of(ex)
        if i == 1:
            v = f["keypoint_class"].int64_list.value
            j = list(v).index(1)
            v[j], v[(j + 1) % len(v)] = 0, 1
            hit[1] = key_of(ex)
    rewrite_shard(d, rel, edit)
    rc, report = run_json(d)
    assert rc == 1
    assert_defect(report, "invariants", rel, "viewpoint_label", key=hit[0])
    assert_defect(report, "invariants", rel, "keypoint_class is class", key=hit[1])


def test_clickhere_compact_pixel(made, tmp_path):
    d = copy(made, "ch_compact_tfrecord", tmp_path)
    rel = first_shard(d)
    hit = {}

    def edit(i, ex):
        if i == 0:
            ex.features.feature["keypoints/pixel"].int64_list.value[0] += 2
            hit["key"] = key_of(ex)
    rewrite_shard(d, rel, edit)
    rc, report = run_json(d)
    assert rc == 1
    assert_defect(report, "invariants", rel, "is not uv", key=hit["key"])


def test_clickhere_r_key_with_the_mirrored_class(made, tmp_path):
    """An _r key must keep the original kp<class> (Click-Here's get_job_key): one naming the
    left/right-mirrored class is a defect."""
    d = copy(made, "ch_compact_tfrecord", tmp_path)
    rel = first_shard(d)  # train: flipped
    hit = {}

    def edit(i, ex):
        f = ex.features.feature
        flips = f["instances/flip_key"].bytes_list.value
        if "key" not in hit and len(flips):
            c, fc = f["keypoints/class"].int64_list.value[0], f["keypoints/flip_class"].int64_list.value[0]
            other = fc if fc != c else (c + 1) % 34
            flips[0] = flips[0].decode().replace(f"_kp{c}_r", f"_kp{other}_r").encode()
            hit["key"] = key_of(ex)
    rewrite_shard(d, rel, edit)
    rc, report = run_json(d)
    assert rc == 1 and "key" in hit
    assert_defect(report, "invariants", rel, "does not match this view", key=hit["key"])


# ------------------------------------------------------------------------------------------ keypose


def test_keypose_alpha_is_a_defect(made, tmp_path):
    """KeyPose's images are opaque 3-channel PNGs (formats.md §2.9): an img_L with a mask in alpha
    (what records written before issue 13 held) is a defect of the record's decoding."""
    import cv2

    d = copy(made, "keypose", tmp_path)
    rel = first_shard(d)

    def edit(i, ex):
        if i == 0:
            f = ex.features.feature["img_L"].bytes_list
            img = cv2.imdecode(np.frombuffer(f.value[0], np.uint8), cv2.IMREAD_UNCHANGED)
            alpha = np.zeros(img.shape[:2], np.uint8)
            alpha[: img.shape[0] // 2] = 255
            f.value[0] = cv2.imencode(".png", np.dstack([img, alpha]))[1].tobytes()
    rewrite_shard(d, rel, edit)
    rc, report = run_json(d)
    assert rc == 1
    assert_defect(report, "records", rel, "img_L: shape (", key="record 0")
    assert any("expected ('?', '?', 3)" in d["message"] for d in report["defects"])


def test_keypose_num_kp_against_data_params(made, tmp_path):
    d = copy(made, "keypose", tmp_path)
    path = d / "tfrecords" / keypose.DATA_PARAMS
    dp = kpp.read_text(str(path), "DataParams")
    dp.num_kp = dp.num_kp + 1
    keypose.write_text(str(path), dp)
    rc, report = run_json(d)
    assert rc == 1
    assert_defect(report, "invariants", "tfrecords/0000.tfrecord", "data_params.pbtxt says num_kp")


def test_keypose_to_world_perturbed_and_tfset(made, tmp_path):
    d = copy(made, "keypose", tmp_path)
    rel = first_shard(d)

    def edit(i, ex):
        if i == 0:
            ex.features.feature["to_world_R"].float_list.value[0] *= 1.1
    rewrite_shard(d, rel, edit)
    path = d / "tfrecords" / "tfset.pbtxt"
    ts = kpp.read_text(str(path), "TfSet")
    del ts.val[:]
    keypose.write_text(str(path), ts)
    rc, report = run_json(d)
    assert rc == 1
    assert_defect(report, "invariants", rel, "to_world_R @ to_uvd_R is not the identity", key="record 0")
    assert_defect(report, "keypose", "tfset.pbtxt", "val lists")


def test_stereo_sequence_keypoint_and_missing_file(made, tmp_path):
    d = copy(made, "stereo", tmp_path)
    seq = "car_0/texture_0_pose_0"
    pb = d / seq / "000001_R.pbtxt"
    kt = kpp.read_text(str(pb), "KeyTargets")
    kt.kp_target.keypoints[2].u += 2.0
    keypose.write_text(str(pb), kt)
    os.remove(d / seq / "000000_Dt.exr")
    rc, report = run_json(d)
    assert rc == 1
    assert_defect(report, "invariants", f"{seq}/000001", "R.pbtxt kp_target: u, v are not scene.json's")
    assert_defect(report, "invariants", f"{seq}/000001", "not a rectified pair")
    assert_defect(report, "sequences", f"{seq}/000000_Dt.exr", "missing")


def test_hpatches_wrong_homography(made, tmp_path):
    d = tmp_path / "hp"
    shutil.copytree(made["hpatches"], d)
    seq = min(n for n in os.listdir(d) if n.startswith("v_"))
    np.savetxt(d / seq / "H_1_3", np.eye(3))
    rc, report = run_json(d)
    assert rc == 1
    assert_defect(report, "hpatches", f"{seq}/H_1_3", "3.ppm is not 1.ppm warped by H_1_k")


# -------------------------------------------------------------------------------- errors, sampling


def test_malformed_dead_letter_lines(made, tmp_path):
    d = copy(made, "view", tmp_path)
    with open(d / "errors" / "failures.jsonl", "w") as f:
        f.write('{"key": "a", "stage": "load"}\nnot json\n')
    rc, report = run_json(d)
    assert rc == 1
    assert_defect(report, "errors", "errors/failures.jsonl", "line 1 lacks a string error, message, path")
    assert_defect(report, "errors", "errors/failures.jsonl", "line 2 is not JSON")
    assert_defect(report, "errors", "errors/failures.jsonl", "stats.json says 0 failures")


def test_max_records_samples_but_still_counts(made, tmp_path):
    d = copy(made, "kp2d", tmp_path)
    rel = first_shard(d)
    n = max(s["examples"] for s in info_of(d)["splits"]["train"]["shards"])

    def edit(i, ex):
        if i == n - 1:
            ex.features.feature["homography/pixels"].float_list.value[2] += 3.0
    rewrite_shard(d, rel, edit)
    rc, report = run_json(d, "--max_records", "2")
    assert rc == 0, report["defects"]
    assert next(c for c in report["checks"] if c["name"] == "records")["notes"] == [
        f"2 of {n} records decoded with kp2d_pair"]
    assert run_json(d)[0] == 1
    with open(d / rel, "r+b") as f:  # a truncated tail is still found when sampling
        f.truncate(os.path.getsize(d / rel) - 10)
    rc, report = run_json(d, "--max_records", "2")
    assert rc == 1
    assert_defect(report, "framing", rel, "truncated record")


def test_usage_errors(tmp_path, capsys):
    assert validate.run([str(tmp_path / "nope")]) == 2
    assert "no such folder" in capsys.readouterr().err
    assert validate.run([str(tmp_path)]) == 2
    assert "not a kpdata dataset" in capsys.readouterr().err
    (tmp_path / "kpdata_info.json").write_text('{"record": "something_else", "splits": {}}')
    assert validate.run([str(tmp_path)]) == 2
    assert validate.run([str(tmp_path), "--max_records", "0"]) == 2
    assert validate.run([str(tmp_path), "--no_such_flag"]) == 2


def test_unparseable_or_malformed_dataset_info_is_a_defect(made, tmp_path):
    (tmp_path / "kpdata_info.json").write_text("{not json")
    rc, report = run_json(tmp_path)
    assert rc == 1
    assert_defect(report, "metadata", "kpdata_info.json", "does not parse as JSON")
    d = copy(made, "kp2d", tmp_path)
    info = info_of(d)
    info["splits"]["train"]["shards"][0]["examples"] = "many"
    del info["config"]
    write_info(d, info)
    rc, report = run_json(d)
    assert rc == 1
    assert_defect(report, "metadata", "kpdata_info.json", "has no 'config'")
    assert_defect(report, "metadata", "kpdata_info.json", "shards must be a list of {file, examples >= 0")
    assert_defect(report, "files", "kp2d_pairs-train.tfrecord-00000-of-00001", "does not list (stray)")


def test_split_assignment_is_recorded_and_checked(made, tmp_path):
    """Every splitting pipeline records its plan-wide assignment (kpdata_info.json
    split_assignment, the seeded kpdata.seeding.assign_splits of its groups); the demo set's 4
    models split train=0.5,test=0.5 two and two; validate recomputes the assignment and places
    every record by it: a moved model is a defect of the metadata and of each of its records."""
    from kpdata.sources.shapenet import ShapeNetModel
    cfg = render_shapenet.RenderConfig(splits=(("train", 0.5), ("dev", 0.2), ("test", 0.3)), seed=7)
    models = [ShapeNetModel("02958343", f"{i:032x}", "/nowhere", "", 1) for i in range(40)]
    assert render_shapenet.assign_splits(cfg, models) == seeding.assign_splits(7, cfg.splits, [m.key for m in models])
    pcfg = gen_homography_pairs.PairsConfig(splits=cfg.splits, seed=7)
    rels = [f"dir/{i}.jpg" for i in range(40)]
    assert gen_homography_pairs.assign_splits(pcfg, rels) == seeding.assign_splits(7, cfg.splits, rels, "photo")
    groups = info_of(made["view"])["split_assignment"]["groups"]
    assert sorted(groups.values()) == ["test", "test", "train", "train"]
    for kind in ("view", "ch_tfrecord", "ch_caffe", "keypointnet", "kp2d"):
        sa = info_of(made[kind])["split_assignment"]
        assert sa["by"] == ("photo" if kind == "kp2d" else "model") and sa["groups"], kind
    d = copy(made, "view", tmp_path)
    info = info_of(d)
    moved = sorted(g for g, s in info["split_assignment"]["groups"].items() if s == "train")[0]
    info["split_assignment"]["groups"][moved] = "test"
    write_info(d, info)
    rc, report = run_json(d)
    assert rc == 1
    assert_defect(report, "metadata", "kpdata_info.json", "split_assignment: 1 of 4 models are not where")
    assert_defect(report, "keys", "", f"model {moved} belongs in split 'test'")


# ------------------------------------------------------------------ bad input (issue 14: 4, 8, 9, 11)


def _validate_subprocess(d):
    """``python -m pipelines.validate d`` in its own process: (exit status, output). A signal
    (SIGBUS on a truncated LMDB) shows as a negative status instead of killing the test run."""
    import subprocess
    import sys
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    p = subprocess.run([sys.executable, "-m", "pipelines.validate", str(d)], cwd=root, capture_output=True, text=True,
                       timeout=300)
    return p.returncode, p.stdout + p.stderr


@pytest.mark.parametrize("kind, keep", [("view_lmdb", 0.5), ("view_lmdb", 0.0), ("keypose_lmdb", 0.6),
                                        ("ch_caffe", 0.5), ("ch_compact_lmdb", 0.3)])
def test_truncated_lmdb_is_a_defect_not_a_signal(made, tmp_path, kind, keep):
    d = copy(made, kind, tmp_path)
    datas = sorted(os.path.join(r, f) for r, _, fs in os.walk(d) for f in fs if f == "data.mdb")
    path = max(datas, key=os.path.getsize)
    size = os.path.getsize(path)
    with open(path, "r+b") as f:
        f.truncate(int(size * keep))
    rc, out = _validate_subprocess(d)
    assert rc == 1, (rc, out[-2000:])
    rel = os.path.relpath(os.path.dirname(path), d)
    assert rel in out and ("truncated" in out or "empty file" in out), out[-2000:]


def test_a_copy_of_a_shard_under_another_name_is_listed(made, tmp_path):
    d = copy(made, "view", tmp_path)
    rel = first_shard(d)
    shutil.copy(d / rel, d / "backup-of-train")
    (d / "notes.txt").write_text("mine\n")
    os.makedirs(d / "old")
    rc, report = run_json(d)
    assert rc == 1
    for name in ("backup-of-train", "notes.txt", "old"):
        assert_defect(report, "files", name, "unexpected")
    d = copy(made, "keypose", tmp_path)
    shutil.copy(d / "tfrecords" / "0000.tfrecord", d / "tfrecords" / "0000.copy")
    rc, report = run_json(d)
    assert rc == 1 and [x["file"] for x in defects(report)] == [os.path.join("tfrecords", "0000.copy")]
    d = copy(made, "ch_caffe", tmp_path)
    shutil.copy(d / "train" / "keys.txt", d / "train" / "keys.txt.bak")
    rc, report = run_json(d)
    assert rc == 1  # (the split folder's byte count is off too)
    assert_defect(report, "files", os.path.join("train", "keys.txt.bak"), "unexpected")


def test_clickhere_keypoint_rounding_to_pixel_0_is_kept_and_valid(made, tmp_path):
    """One rule (kpdata.clickhere.keypoint_maps.in_crop) for the pipeline and validate: u = -0.07
    rounds to pixel 0, so the pipeline keeps the keypoint and validate accepts it; u = -0.6 is
    neither kept nor accepted."""
    from kpdata.clickhere import imageops, keypoint_maps
    uv, inside = imageops.shift_keypoints([[-0.07, 5.0], [-0.6, 5.0]], [True, True], (0, 0, 99, 49))
    assert inside.tolist() == [True, False]
    d = copy(made, "ch_compact_tfrecord", tmp_path)
    rel = first_shard(d)
    for u, ok in ((-0.07, True), (-0.6, False)):
        dd = tmp_path / f"u{u}"
        shutil.copytree(d, dd)
        hit = {}

        def edit(i, ex):
            if i == 0:
                f = ex.features.feature
                f["keypoints/uv"].float_list.value[0] = u
                w, h = f["image/width"].int64_list.value[0], f["image/height"].int64_list.value[0]
                uv = np.asarray(f["keypoints/uv"].float_list.value, dtype=np.float64).reshape(-1, 2)
                f["keypoints/pixel"].int64_list.value[:] = keypoint_maps.keypoint_pixel(uv, (w, h)).reshape(-1).tolist()
                hit["key"] = key_of(ex)
        rewrite_shard(dd, rel, edit)
        rc, report = run_json(dd)
        if ok:
            assert rc == 0, report["defects"][:3]
        else:
            assert rc == 1
            assert_defect(report, "invariants", rel, "outside the", key=hit["key"])


def test_an_unfinished_run_and_its_temporaries_are_reported(made, tmp_path):
    d = copy(made, "view", tmp_path)
    rel = first_shard(d)
    os.remove(d / names.KPDATA_INFO)
    shutil.copy(d / rel, d / f".{rel}.incomplete-0123456789ab")
    rc, report = run_json(d)
    assert rc == 1
    assert_defect(report, "metadata", names.KPDATA_INFO, "did not finish")
    assert_defect(report, "files", f".{rel}.incomplete-", "temporary name left behind")
