"""training/ with TensorFlow, always in subprocesses (TensorFlow never enters the pytest process):
the schema-built parser against the schema's own decoder, the task inputs against numpy, the
KeypointNet layout plug-in against the view records it was made from, and the three commands
(train with checkpoints / logs / resume after SIGTERM, evaluate, export with its checks) on a
tiny synthetic dataset."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from training_synthetic import write_keypointnet_folder, write_view_dataset

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": ROOT + os.pathsep + os.path.join(ROOT, "tests", "training")}


def _py(args, timeout=240, **kw):
    r = subprocess.run([sys.executable, *args], cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=timeout,
                       check=False, **kw)
    assert r.returncode == 0, f"{args}\nSTDOUT:\n{r.stdout[-3000:]}\nSTDERR:\n{r.stderr[-3000:]}"
    return r.stdout


def _json(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


@pytest.fixture(scope="module")
def datasets(tmp_path_factory):
    root = tmp_path_factory.mktemp("training")
    return (write_view_dataset(str(root / "views")), write_keypointnet_folder(str(root / "kn")),
            write_view_dataset(str(root / "lmdb"), fmt="lmdb"))


READERS = r"""
import json, sys
import numpy as np, tensorflow as tf
from schemas import tfrecord
from schemas.view import VIEW, decode_view
from training import data, layouts, readers, spec, tasks
from schemas.keypointnet import KEYPOINTNET_PAIR_CORE
from training_synthetic import SIZE

views, kn, lm = sys.argv[1], sys.argv[2], sys.argv[3]
out = {}
src = spec.load_source(views)
# 1. the parser generated from the schema equals the schema's own (protobuf) decoder, field by field
parse = readers.make_parser(VIEW)
n = 0
for path in src.files("train"):
    with open(path, "rb") as f:
        for raw in tfrecord.read_records(f, path):
            ref, got = decode_view(raw), parse(tf.constant(raw))
            for name, e in parse.plan.items():
                v = got[name].numpy()
                if e.image:
                    v = readers.decode_png(e, got[name]).numpy()
                    v = v[..., 0] if ref[name].ndim == 2 else v
                elif e.dtype == "string":
                    v = [s.decode() for s in v] if e.shape is None else v.decode()
                r = ref[name]
                if name in ("camera/K", "camera/cam_T_obj", "keypoints/xyz", "keypoints/uv"):
                    r = np.asarray(r).reshape(np.shape(v))
                dt = object if e.dtype == "string" else None
                assert np.array_equal(np.asarray(v, dtype=dt), np.asarray(r, dtype=dt)), name
            n += 1
out["parsed"] = n
# 2. keypoint task inputs: crop pixels map back to the record's keypoints
task = tasks.KeypointsTask.from_source(src, image_size=32)
out["classes"] = task.classes
recs = [decode_view(r) for p in src.files("test") for r in tfrecord.read_records(open(p, "rb"), p)]
ds = data.build(src, task, "test", batch_size=100, training=False)
inputs, labels = next(iter(ds))
img, uv, valid, box = inputs["image"].numpy(), labels["uv"].numpy(), labels["valid"].numpy(), labels["box"].numpy()
assert img.shape == (len(recs), 32, 32, 3) and img.dtype == np.float32 and 0 <= img.min() and img.max() <= 1
for i, r in enumerate(recs):
    m = r["mask/encoded"] > 0
    ys, xs = np.nonzero(m)
    tight = max(xs.max() - xs.min() + 1, ys.max() - ys.min() + 1)
    side = tight * 1.3
    origin = np.array([(xs.min() + xs.max()) / 2 + 0.5 - side / 2, (ys.min() + ys.max()) / 2 + 0.5 - side / 2])
    back = (uv[i] + 0.5) * side / 32 - 0.5 + origin
    assert np.allclose(back[valid[i] > 0], r["keypoints/uv"], atol=1e-3), (back, r["keypoints/uv"])
    assert abs(box[i] - tight * 32 / side) < 1e-4
    # the crop's centre pixel samples the image at the box centre
out["keypoint_examples"] = len(recs)
# 3. viewpoint labels: int() truncation mod 360
vt = tasks.ViewpointTask.from_source(src)
_, lab = next(iter(data.build(src, vt, "test", batch_size=100, training=False)))
exp = np.mod(np.trunc([r["viewpoint"][:3] for r in recs]).astype(int), 360)
assert np.array_equal(lab["bins"].numpy(), exp)
# 3b. Click-Here keypoint inputs: the chessboard map equals scipy's distance transform of one keypoint
from scipy.ndimage import distance_transform_cdt
km = tasks.ViewpointTask.from_source(src, keypoint_map=True, image_size=32)
kin, klab = next(iter(data.build(src, km, "test", batch_size=100, training=False)))
for i in range(len(recs)):
    cmap = kin["keypoint_map"].numpy()[i, ..., 0] * 32
    v, u = np.unravel_index(cmap.argmin(), cmap.shape)
    ref = distance_transform_cdt(np.arange(32 * 32).reshape(32, 32) != v * 32 + u, metric="chessboard")
    assert cmap.min() == 0 and np.array_equal(cmap, ref), i
    onehot = kin["keypoint_class"].numpy()[i]
    c = int(onehot.argmax())
    assert onehot.sum() == 1 and np.allclose(uv[i, c], [u, v], atol=0.5)  # the class of the keypoint at the map's zero
# 4. the KeypointNet folder layout against the views it was made from
ksrc = spec.load_source(kn)
assert ksrc.record == "keypointnet"
kt = tasks.KeypointNetTask(image_size=SIZE, z_bias=2.5)
adapt = layouts.get("keypointnet").adapter("keypointnet", ksrc)
kparse = readers.make_parser(KEYPOINTNET_PAIR_CORE, ["img0", "img1", "mv0", "mv1"])
from training_synthetic import _view
raw = next(iter(tf.data.TFRecordDataset(ksrc.files("test"))))
pair = adapt(kparse(raw))
for i in (0, 1):
    v = _view(0, i)
    assert np.allclose(pair[f"K{i}"].numpy(), v["camera/K"].reshape(3, 3), atol=1e-4), pair[f"K{i}"]
    assert np.allclose(pair[f"T{i}"].numpy(), v["camera/cam_T_obj"].reshape(4, 4), atol=1e-5)
    assert np.array_equal(pair[f"mask{i}"].numpy(), v["mask/encoded"] > 0)
# view-layout pairs: two views of one model, both ways of building them give the same geometry
pv = next(iter(data.build(src, kt, "test", batch_size=1, training=False)))
pk = next(iter(data.build(ksrc, kt, "test", batch_size=1, training=False)))
for name in ("K0", "T0", "K1", "T1", "mask0"):
    assert np.allclose(pv[1][name].numpy(), pk[1][name].numpy(), atol=1e-4), name
out["pairs_ok"] = True
# 4b. the same records from LMDB: identical batches in a pass; a training stream is seeded and shuffled
lsrc = spec.load_source(lm)
assert lsrc.format == "lmdb"
a = next(iter(data.build(src, task, "test", batch_size=100, training=False)))
b = next(iter(data.build(lsrc, task, "test", batch_size=100, training=False)))
assert np.array_equal(a[0]["image"].numpy(), b[0]["image"].numpy()) and np.array_equal(a[1]["uv"].numpy(), b[1]["uv"].numpy())
def keys_of(source, seed):
    ds = readers.records(source, "train", shuffle=True, seed=seed, repeat=True).take(40)
    return [VIEW.decode(r.numpy(), ["key"])["key"] for r in ds]
k1, k2, k3 = keys_of(lsrc, 5), keys_of(lsrc, 5), keys_of(lsrc, 6)
assert k1 == k2 and k1 != k3 and k1 != sorted(k1) and len(set(k1)) > 12
out["lmdb_ok"] = True
# 5. a training batch: shuffled, whole, deterministic for a seed
b1 = next(iter(data.build(src, task, "train", batch_size=4, training=True, seed=3)))
b2 = next(iter(data.build(src, task, "train", batch_size=4, training=True, seed=3)))
assert np.array_equal(b1[0]["image"].numpy(), b2[0]["image"].numpy()) and b1[0]["image"].shape[0] == 4
print(json.dumps(out))
"""


def test_readers_parse_like_the_schema_and_prepare_tasks(datasets):
    views, kn, lm = datasets
    out = json.loads(_py(["-c", READERS, views, kn, lm]).strip().splitlines()[-1])
    assert out["parsed"] == 24 and out["keypoint_examples"] == 12 and out["pairs_ok"] and out["lmdb_ok"]
    assert out["classes"] == [f"02958343/c{i}" for i in range(8)]


def test_train_resume_evaluate_export(datasets, tmp_path):
    views = datasets[0]
    m = str(tmp_path / "kp")
    common = ["--data", views, "--model_dir", m, "--batch_size", "4", "--image_size", "32"]
    # an interrupted run checkpoints at the step it reached ...
    p = subprocess.Popen([sys.executable, "-m", "training.train", "--task", "keypoints", *common, "--steps", "100000",
                          "--log_every", "1"], cwd=ROOT, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    lines = []
    t = time.time()
    while time.time() - t < 120:
        line = p.stdout.readline()
        lines.append(line)
        if " 3/100000" in line:
            break
    p.send_signal(signal.SIGTERM)
    rest, _ = p.communicate(timeout=60)
    assert p.returncode == 130, "".join(lines) + rest
    stopped = _json(os.path.join(m, "train_stats.json"))["step"]
    assert stopped >= 3 and os.path.exists(os.path.join(m, "ckpt", f"ckpt-{stopped}.index"))
    # ... and the same command resumes from it
    out = _py(["-m", "training.train", "--task", "keypoints", *common, "--steps", str(stopped + 2)])
    assert f"(step {stopped})" in out and f"step {stopped + 2}," in out
    stats = _json(os.path.join(m, "train_stats.json"))
    assert stats["start_step"] == stopped and stats["step"] == stopped + 2 and stats["step_examples_per_s"] is None
    events = os.listdir(os.path.join(m, "logs", "train"))
    assert events and all(e.startswith("events.out.tfevents") for e in events)
    # a model dir of another task is refused
    r = subprocess.run([sys.executable, "-m", "training.train", "--task", "viewpoint", *common], cwd=ROOT, env=ENV,
                       capture_output=True, text=True, timeout=120, check=False)
    assert r.returncode != 0 and "holds a 'keypoints' model" in r.stderr
    out = _py(["-m", "training.evaluate", "--model_dir", m, "--split", "test"])
    metrics = _json(os.path.join(m, "metrics.json"))
    assert metrics["step"] == stopped + 2 and metrics["model"]["keypoints_evaluated"] == 96
    assert {"pck@0.05", "pck@0.1", "mean_px_error"} <= set(metrics["baseline"]) and "pck@0.1" in metrics["difference"]
    assert os.path.getsize(os.path.join(m, "errors.png")) > 1000  # the error distributions beside metrics.json
    out = _py(["-m", "training.export", "--model_dir", m, "--format", "tflite"])
    check = _json(os.path.join(m, "export", "check.json"))
    assert check["ok"] and check["saved_model_vs_keras_max_abs"] <= 1e-4 and check["tflite_vs_saved_model"]["heatmaps"] <= 1e-3
    assert os.path.getsize(os.path.join(m, "export", "model.tflite")) > 10000


@pytest.mark.parametrize("task,train_flags,extra,keys", [
    ("viewpoint", ["--keypoint_map"], ["--r4cnn_distance"], {"acc_pi6", "med_err"}),
    ("keypointnet", [], [], {"angular_error_mean", "angular_error_median"}),
])
def test_other_tasks_train_evaluate_export(datasets, tmp_path, task, train_flags, extra, keys):
    views = datasets[0]
    m = str(tmp_path / task)
    _py(["-m", "training.train", "--task", task, "--data", views, "--model_dir", m, "--steps", "2", "--batch_size", "4",
         "--image_size", "32", *train_flags])
    _py(["-m", "training.evaluate", "--model_dir", m, "--split", "test", *extra])
    if task == "viewpoint":  # a model with three inputs exports and checks too
        _py(["-m", "training.export", "--model_dir", m, "--format", "tflite"])
        assert _json(os.path.join(m, "export", "check.json"))["ok"]
    metrics = _json(os.path.join(m, "metrics.json"))
    assert keys <= set(metrics["model"]) and keys <= set(metrics["baseline"])
    assert os.path.getsize(os.path.join(m, "errors.png")) > 1000  # the angle-error distributions
    if task == "viewpoint":
        assert metrics["model"]["distance"] == "r4cnn_matrix_2norm"
    else:
        assert metrics["model"]["pairs"] == 6


USER_ERRORS = r"""
import json, sys
from training import evaluate, train
views, other, empty_test, m = sys.argv[1:5]
common = ["--model_dir", m, "--batch_size", "4", "--image_size", "32", "--steps", "2"]
assert train.run(["--data", views, *common]) == 0
out = {}
def message(fn, argv):
    try:
        fn(argv)
    except SystemExit as e:
        return str(e)
    return None
out["other_data"] = message(train.run, ["--data", other, *common[:-1], "4"])
out["other_data_forced"] = message(train.run, ["--data", other, *common[:-1], "4", "--resume_other_data"])
out["kp2d"] = message(train.run, ["--data", views, "--record", "kp2d_pair", "--model_dir", m + "_kp2d"])
out["empty_split"] = message(evaluate.run, ["--data", empty_test, "--model_dir", m, "--split", "test"])
print(json.dumps(out))
"""


def test_user_errors_and_a_quiet_start(datasets, tmp_path):
    """train on other data is refused unless --resume_other_data; a record no task reads and an
    empty split are one ``error:`` line; TensorFlow's start-up lines stay off the terminal."""
    other = write_view_dataset(str(tmp_path / "other"), models=5, views=4)
    empty_test = write_view_dataset(str(tmp_path / "empty_test"), models=4, views=4, test_models=0)
    env = {k: v for k, v in ENV.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    r = subprocess.run([sys.executable, "-c", USER_ERRORS, datasets[0], other, empty_test, str(tmp_path / "m")],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["other_data"].startswith("error: ") and "trained on other data" in out["other_data"]
    assert "--resume_other_data" in out["other_data"] and out["other_data_forced"] is None
    assert out["kp2d"].startswith("error: ") and "kp2d_pair" in out["kp2d"] and "Traceback" not in r.stderr
    assert out["empty_split"].startswith("error: ") and "'test'" in out["empty_split"]
    for noise in ("cuInit", "cudart_stub", "E0000", "absl::InitializeLog"):
        assert noise not in r.stderr, r.stderr[-2000:]
