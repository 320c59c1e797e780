"""schemas.dataset.reader: the numpy reader against the TF readers of ``training/`` (run in a
subprocess, ``reader_tf_probe.py``) on every record kind in both storage formats, the real shapes
it yields, shards and their interleave, and a process where TensorFlow cannot be imported."""
import json
import os
import pickle
import subprocess
import sys

import numpy as np
import pytest

from tests.schemas.dataset_folders import (
    write_clickhere, write_dataset, write_keypointnet, write_keypose, write_kp2d, write_sequences, write_views,
)
from schemas import clickhere as chs
from schemas import tfrecord
from schemas.dataset import names, reader, records
from schemas.view import VIEW

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": ROOT}


def _to_lmdb(src: str, dst: str) -> str:
    """The records of ``src`` (TFRecord shards) rewritten as one LMDB per split, in the same order."""
    info = records.load_info(src)
    splits = {}
    for split in info["splits"]:
        splits[split] = [(f"{i:06d}", raw) for i, (_, raw) in enumerate(records.iter_records(src, split, info))]
    extra = {k: v for k, v in info.items() if k not in ("name", "record", "splits")}
    return write_dataset(dst, info["record"], splits, "lmdb", **extra)


@pytest.fixture(scope="module")
def datasets(tmp_path_factory, fixtures):
    """{name: folder} of every record kind; ``*_lmdb``: the same records in LMDB environments."""
    t = tmp_path_factory.mktemp("reader")
    d = {"view": write_views(t / "view"),
         "clickhere_view": write_clickhere(t / "compact", chs.CLICKHERE_VIEW.name),
         "clickhere_instance": write_clickhere(t / "instance", chs.CLICKHERE_INSTANCE.name),
         "keypointnet_pair": write_keypointnet(t / "keypointnet"),
         "keypointnet_core": write_keypointnet(t / "keypointnet_core", extras=False),
         "kp2d_pair": write_kp2d(t / "kp2d"),
         "keypose": write_keypose(t / "keypose", fixtures)}
    for name in list(d):
        d[name + "_lmdb"] = _to_lmdb(d[name], str(t / (name + "_lmdb")))
    d["caffe_datum"] = write_clickhere(t / "caffe", records.CAFFE_RECORD)
    return d


@pytest.fixture(scope="module")
def tf_records(datasets, tmp_path_factory):
    """What the TF readers yield for every folder of ``datasets``: {folder: {split: [records]}}."""
    out = str(tmp_path_factory.mktemp("tf") / "tf.pkl")
    r = subprocess.run([sys.executable, os.path.join(ROOT, "tests", "schemas", "reader_tf_probe.py"), out,
                        *datasets.values()], cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, f"STDOUT:\n{r.stdout[-3000:]}\nSTDERR:\n{r.stderr[-3000:]}"
    with open(out, "rb") as f:
        return pickle.load(f)


def _assert_same(np_rec: dict, tf_rec: dict, where: str) -> None:
    for name, tv in tf_rec.items():
        name = "image" if name == "image/encoded" and "image" in np_rec else name  # an instance's crop
        assert name in np_rec, f"{where}: the numpy reader has no {name!r}"
        nv = np_rec[name]
        if isinstance(tv, (str, list)):
            assert nv == tv, f"{where}: {name}: {nv!r} != {tv!r}"
            continue
        tv, nv = np.asarray(tv), np.asarray(nv)
        # TF keeps a gray PNG's channel axis and a fixed matrix flat: same values, the numpy shape is the real one
        assert nv.size == tv.size, f"{where}: {name}: numpy {nv.shape} vs TF {tv.shape}"
        np.testing.assert_array_equal(nv, tv.reshape(nv.shape), err_msg=f"{where}: {name}")


_EXAMPLE_KINDS = ["view", "clickhere_view", "clickhere_instance", "keypointnet_pair", "keypointnet_core", "kp2d_pair",
                  "keypose"]


@pytest.mark.parametrize("name,fmt", [(n, f) for n in _EXAMPLE_KINDS for f in ("tfrecord", "lmdb")]
                         + [("caffe_datum", "clickhere_lmdb")])
def test_numpy_reader_equals_the_tf_reader(datasets, tf_records, name, fmt):
    d = datasets[name + ("_lmdb" if fmt == "lmdb" else "")]
    assert {s["format"] for s in records.load_info(d)["splits"].values()} == {fmt}
    for split, tf_recs in tf_records[d].items():
        got = list(reader.read(d, split))
        assert len(got) == len(tf_recs) > 0, (name, split)
        for i, (n, t) in enumerate(zip(got, tf_recs)):
            _assert_same(n, t, f"{name} {fmt} {split}[{i}]")
        if name not in ("clickhere_view", "caffe_datum"):  # Examples: exactly the schema's fields (+ view's depth)
            expected = {"image" if name == "clickhere_instance" and f == "image/encoded" else f for f in tf_recs[0]}
            assert set(got[0]) - {"depth"} == expected, name


def test_real_shapes_and_units(datasets):
    v = next(reader.read(datasets["view"], "train"))
    k = len(v["keypoints/names"])
    assert v["keypoints/uv"].shape == (k, 2) and v["keypoints/xyz"].shape == (k, 3) and k == 2
    assert v["camera/K"].shape == (3, 3) and v["camera/cam_T_obj"].shape == (4, 4)
    assert v["image/encoded"].shape == (24, 24, 4) and v["image/encoded"].dtype == np.uint8
    assert v["depth"].dtype == np.float32 and v["depth/encoded"].dtype == np.uint16
    hit = v["mask/encoded"] > 0
    np.testing.assert_allclose(v["depth"][hit], 2.0, rtol=1e-4)  # dataset_folders writes z = 2 on the object
    assert np.all(v["depth"][~hit] == 0)
    kp = next(reader.read(datasets["keypose"]))
    assert kp["keys_uvd_L"].shape == (kp["num_kp_L"], 4) and kp["targets_to_uvd_L"].shape == (5, 4, 4)
    assert next(reader.read(datasets["kp2d_pair"]))["homography"].shape == (3, 3)
    pair = next(reader.read(datasets["keypointnet_pair"]))
    assert pair["keypoints/uv0"].shape == (1, 2) and pair["mv0"].shape == (4, 4)
    inst = next(reader.read(datasets["clickhere_view"]))
    assert inst["image"].shape == (227, 227, 3) and inst["keypoint_pixel"].shape == (2,)


def _sharded_views(root) -> str:
    """A view dataset with 3 shards in ``train`` (3, 1, 2 records) and 1 in ``test``."""
    os.makedirs(root, exist_ok=True)
    sizes = {"train": [3, 1, 2], "test": [2]}
    splits, i = {}, 0
    from tests.schemas.dataset_folders import view_record
    for split, counts in sizes.items():
        shards = []
        for j, n in enumerate(counts):
            name = names.shard_name("syn", split, j, len(counts))
            with open(os.path.join(root, name), "wb") as f:
                tfrecord.write_records(f, [VIEW.encode(view_record(j, i + v)) for v in range(n)])
            shards.append({"file": name, "examples": n, "bytes": 0})
            i += n
        splits[split] = {"format": "tfrecord", "num_examples": sum(counts), "shards": shards}
    with open(os.path.join(root, names.KPDATA_INFO), "w", encoding="utf-8") as f:
        json.dump({"name": "syn", "record": "view", "splits": splits}, f)
    return str(root)


def test_shards_one_shard_and_the_seeded_interleave(tmp_path):
    d = _sharded_views(tmp_path / "d")
    keys = [r["key"] for r in reader.read(d, "train", fields={"key"})]
    per_shard = [[r["key"] for r in reader.read(d, "train", shard=i, fields={"key"})] for i in range(3)]
    assert [len(s) for s in per_shard] == [3, 1, 2] and sum(per_shard, []) == keys
    assert [r["key"] for r in reader.read(d, "train", shard=[2, 0], fields={"key"})] == per_shard[2] + per_shard[0]
    assert len(reader.shards(d)) == 4 and [s.split for s in reader.shards(d)] == ["test", "train", "train", "train"]
    orders = {tuple(r["key"] for r in reader.read(d, "train", shuffle_shards=True, seed=s, fields={"key"}))
              for s in range(6)}
    assert all(sorted(o) == sorted(keys) for o in orders) and len(orders) > 1
    a = [r["key"] for r in reader.read(d, "train", shuffle_shards=True, seed=4, fields={"key"})]
    assert a == [r["key"] for r in reader.read(d, "train", shuffle_shards=True, seed=4, fields={"key"})]
    for s in per_shard:  # inside a shard the stored order holds
        assert [k for k in a if k in s] == s
    assert set(next(reader.read(d, fields={"key", "keypoints/uv"}))) == {"key", "keypoints/uv"}
    with pytest.raises(ValueError, match=r"no shard \[3\]"):
        list(reader.read(d, "train", shard=3))
    with pytest.raises(ValueError, match="no split 'val'"):
        list(reader.read(d, "val"))
    with pytest.raises(FileNotFoundError, match="no kpdata_info.json"):
        list(reader.read(str(tmp_path / "nothing")))


def test_interleave_takes_one_from_each_open_iterator_in_turn():
    its = [iter("abc"), iter("d"), iter("ef")]
    assert "".join(reader.interleave(its, 2)) == "adbecf"
    assert "".join(reader.interleave([iter("ab"), iter("cd")], 1)) == "abcd"


def test_sequences_are_read_frame_by_frame(tmp_path, fixtures):
    d = write_sequences(tmp_path / "seq", fixtures)
    frames = list(reader.read(d))
    expected = [records.read_sequence_frame(d, p) for p in records.sequence_frames(d)]
    assert [f["key"] for f in frames] == [e["key"] for e in expected] and len(frames) == 3
    np.testing.assert_array_equal(frames[1]["img_L"], expected[1]["img_L"])
    assert frames[0]["visible_L"].dtype == np.int64 and frames[0]["uvd_L"].shape[1] >= 3


_BLOCK_TF = """
import sys
class _NoTF:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in ('tensorflow', 'tensorflow_datasets', 'apache_beam', 'OpenGL', 'pyrender'):
            raise ImportError(name + ' is blocked in this test')
sys.meta_path.insert(0, _NoTF())
sys.modules['tensorflow'] = None
import json
import numpy as np
from schemas.dataset import reader
out = {}
for d in sys.argv[1:]:
    recs = list(reader.read(d))
    out[d] = [len(recs), sorted(recs[0]), float(sum(np.asarray(v, np.float64).sum() for r in recs for v in r.values()
                                                   if isinstance(v, np.ndarray)))]
bad = sorted(n for n in sys.modules if n.split('.')[0] in ('tensorflow', 'apache_beam') and sys.modules[n] is not None)
print(json.dumps({"summary": out, "loaded": bad}))
"""


def test_reads_every_kind_where_tensorflow_cannot_be_imported(datasets, tmp_path, fixtures):
    dirs = [*datasets.values(), write_sequences(tmp_path / "seq", fixtures)]
    r = subprocess.run([sys.executable, "-c", _BLOCK_TF, *dirs], cwd=ROOT, env=ENV, capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    got = json.loads(r.stdout.strip().splitlines()[-1])
    assert got["loaded"] == []
    for d in dirs:  # the same records as read here (numbers of records, field names, a checksum of every array)
        recs = list(reader.read(d))
        total = float(sum(np.asarray(v, np.float64).sum() for rec in recs for v in rec.values()
                          if isinstance(v, np.ndarray)))
        assert got["summary"][d] == [len(recs), sorted(recs[0]), total], d


def test_the_pytorch_wrapper_of_docs_reader_md_splits_shards_among_workers(tmp_path):
    """The IterableDataset of docs/reader.md, run against a stand-in ``torch`` (PyTorch is not a
    dependency): two workers together read every record once."""
    import re
    import types
    with open(os.path.join(ROOT, "docs", "reader.md"), encoding="utf-8") as f:
        code = re.search(r"```python\n(import torch\n.*?)```", f.read(), re.S).group(1)
    worker = {"info": None}
    data = types.SimpleNamespace(IterableDataset=object, get_worker_info=lambda: worker["info"])
    fake = types.ModuleType("torch")
    fake.utils = types.SimpleNamespace(data=data)
    saved = sys.modules.get("torch")
    sys.modules["torch"] = fake
    try:
        ns: dict = {}
        exec(code, ns)
    finally:
        sys.modules.pop("torch")
        if saved is not None:
            sys.modules["torch"] = saved
    d = _sharded_views(tmp_path / "d")
    ds = ns["KpdataDataset"](d, "train", seed=1)
    everything = sorted(r["key"] for r in ds)
    parts = []
    for i in range(2):
        worker["info"] = types.SimpleNamespace(id=i, num_workers=2)
        parts.append([r["key"] for r in ds])
    assert sorted(parts[0] + parts[1]) == everything and len(everything) == 6
    assert parts[0] and parts[1] and not set(parts[0]) & set(parts[1])


@pytest.mark.parametrize("n", [0, 1, 31, 51529])
def test_float_array_reads_the_packed_floats_exactly(n):
    from schemas import example_proto
    values = np.random.default_rng(n).normal(size=n).astype(np.float32)
    ex = example_proto.Example()
    ex.features.feature["x"].float_list.value.extend(values.tolist())
    parsed = example_proto.parse_example(ex.SerializeToString())
    got = example_proto.float_array(parsed.features.feature["x"].float_list)
    assert got.dtype == np.float32 and got.shape == (n,) and got.flags.writeable
    np.testing.assert_array_equal(got, np.asarray(parsed.features.feature["x"].float_list.value, np.float32))
    np.testing.assert_array_equal(got, values)


@pytest.mark.parametrize("name", ["caffe_datum", "clickhere_view", "clickhere_instance", "view"])
def test_fields_read_only_what_is_asked_and_the_same_values(datasets, name):
    full = list(reader.read(datasets[name]))
    wanted = {"key", "keypoint_pixel", "viewpoint_label"} if name != "view" else {"key", "keypoints/uv"}
    part = list(reader.read(datasets[name], fields=wanted))
    assert len(part) == len(full) and all(set(p) == wanted for p in part)
    for p, f in zip(part, full):
        for k in wanted:
            np.testing.assert_array_equal(np.asarray(p[k]), np.asarray(f[k]))
    assert [r["key"] for r in reader.read(datasets[name], fields={"key"})] == [r["key"] for r in full]
