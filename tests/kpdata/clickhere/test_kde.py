"""Viewpoint / truncation KDEs, PASCAL3D+ .mat reading and fit_viewpoints (issue 3)."""
import csv
import json
import os

import numpy as np
import pytest
from scipy import stats
from scipy.io import loadmat

from kpdata.clickhere import kde

from kpdata.sources import pascal3d
from kpdata.viewpoints import read_viewpoint_file
from kpdata.demo import pascal3d as demo_pascal3d
from pipelines import fit_viewpoints


@pytest.fixture(scope="module")
def p3d(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("pascal3d"))
    ids = demo_pascal3d.write_demo_annotations(root, images_per_class=350, seed=1)
    return root, ids


def _independent_viewpoints(root, cls, ids):
    """Read the .mat files directly with scipy (record-style structs), outside kpdata."""
    rows = []
    for image_id in ids:
        path = os.path.join(root, "Annotations", f"{cls}_pascal", image_id + ".mat")
        objs = loadmat(path)["record"]["objects"][0, 0][0]
        for o in objs:
            vp = o["viewpoint"]
            if o["class"][0] != cls or vp.size == 0:
                continue
            v = vp[0, 0]
            row = [float(v[k][0, 0]) for k in ("azimuth", "elevation", "theta", "distance")]
            if row[3] != 0:
                rows.append(row)
    return np.array(rows)


def test_reader_restricts_to_the_image_set(p3d):
    root, ids = p3d
    train = pascal3d.read_image_set(os.path.join(root, "ImageSets", "Main", "train.txt"))
    assert train == set(ids["train"])
    ours = pascal3d.viewpoints(pascal3d.read_objects(root, "car", train))
    ref = _independent_viewpoints(root, "car", sorted(i for i in ids["train"] if i.startswith("2009")))
    assert len(ours) == len(ref) > 200
    np.testing.assert_allclose(np.sort(ours, axis=0), np.sort(ref, axis=0))
    everything = pascal3d.viewpoints(pascal3d.read_objects(root, "car", None))
    assert len(everything) > len(ours)


def test_project_3d_conventions():
    class VP:
        azimuth, elevation, theta, distance, focal, px, py, viewport = 30.0, 10.0, 0.0, 5.0, 1.0, 250.0, 180.0, 2000.0
    # the object's origin projects to the principal point; "up" (+z) goes up in the image (smaller y)
    x = pascal3d.project_3d([[0, 0, 0], [0, 0, 0.1]], VP)
    np.testing.assert_allclose(x[0], [250, 180], atol=1e-9)
    assert x[1, 1] < 180
    VP.theta = 90.0
    y = pascal3d.project_3d([[0, 0, 0.1]], VP)
    # in-plane rotation about the principal point keeps the distance
    assert abs(np.hypot(*(y[0] - [250, 180])) - np.hypot(*(x[1] - [250, 180]))) < 1e-9


def test_truncations_recover_cut_boxes(p3d):
    root, _ = p3d
    objs = pascal3d.read_objects(root, "bus", None)
    t = pascal3d.truncations(objs, pascal3d.load_cad(root, "bus"))
    assert len(t) > 200
    # the demo cut a side with probability 0.3 by U(0, 0.35), inwards
    assert 0.2 < np.mean(t[:, 0] > 1e-9) < 0.4 and np.all(t[:, 0] > -1e-9) and np.all(t[:, 1] < 1e-9)
    assert t.max() < 0.36 and t.min() > -0.36


def test_viewpoint_kde_matches_input_marginals(p3d):
    """Acceptance: fitted from the .mat files, sampled 100k times, two-sample KS < 0.05 per
    dimension (outliers excluded)."""
    root, _ = p3d
    views, _, _ = fit_viewpoints.read_pascal3d(root, "", ["car", "bus"])
    data = {c: v * [1, 1, 1, 1 / 3] for c, v in views.items()}
    models = kde.fit_viewpoints(data)
    for cls, model in models.items():
        s, outliers = model.sample(100_000, np.random.default_rng(0), return_outliers=True)
        assert outliers.sum() == 20_000
        for d in range(4):
            ks = stats.ks_2samp(s[~outliers, d], data[cls][:, d]).statistic
            assert ks < 0.05, (cls, d, ks)
        np.testing.assert_allclose(model.kde.bandwidth,
                                   1.06 * data[cls].std(axis=0, ddof=1) * len(data[cls]) ** -0.2)
        pooled = np.concatenate(list(data.values()))
        assert model.pooled_elevation == pytest.approx(pooled[:, 1].mean())
        # outliers: az uniform, el / tilt around the pooled means, clipped
        assert np.all(np.abs(s[outliers, 1]) <= 85) and np.all(np.abs(s[outliers, 2]) <= 45)
        assert stats.kstest(s[outliers, 0] / 360, "uniform").statistic < 0.02
        assert np.all((s[:, 0] >= 0) & (s[:, 0] < 360)) and np.all((s[:, 1] >= -90) & (s[:, 1] < 90))
        assert np.all((s[:, 3] >= 1) & (s[:, 3] <= 30))


def test_sampling_is_seeded_and_distances_are_repaired():
    data = np.column_stack([np.linspace(0, 350, 50), np.zeros(50), np.zeros(50), np.linspace(0.2, 40, 50)])
    m = kde.ViewpointKDE.fit(data)
    a = m.sample(5000, np.random.default_rng(4))
    assert np.array_equal(a, m.sample(5000, np.random.default_rng(4)))
    assert np.all((a[:, 3] >= 1) & (a[:, 3] <= 30))


def test_truncation_kde_post_processing():
    rng = np.random.default_rng(0)
    data = np.column_stack([rng.normal(0.0, 0.05, 300), rng.normal(1.5, 0.05, 300),  # right - left > 1
                            rng.normal(0.1, 0.05, 300), rng.normal(-0.1, 0.05, 300)])
    s, outliers = kde.TruncationKDE.fit(data).sample(20_000, np.random.default_rng(1), return_outliers=True)
    assert outliers.sum() == 4000
    assert np.all(np.abs(s[:, :2]) <= 0.5)  # every (left, right) pair was replaced by N(0, 0.1) clipped
    assert np.all(np.abs(s[outliers]) <= 0.5)
    assert abs(s[~outliers, 2].mean() - 0.1) < 0.01 and abs(s[~outliers, 3].mean() + 0.1) < 0.01


def test_fit_viewpoints_command_writes_r4cnn_files(p3d, tmp_path):
    root, ids = p3d
    out = tmp_path / "dist"
    assert fit_viewpoints.run(["--pascal3d", root, "--num_samples", "2000", "--output_dir", str(out)]) == 0
    for cls in demo_pascal3d.DEMO_CLASSES:
        rows = read_viewpoint_file(str(out / "view_distribution" / f"{cls}.txt"))
        assert rows.shape == (2000, 4)
        lines = (out / "view_distribution" / f"{cls}.txt").read_text().splitlines()
        assert all(len(ln.split(" ")) == 4 for ln in lines)
        t = kde.read_table(str(out / "truncation_distribution" / f"{cls}.txt"))
        assert t.shape == (2000, 4)
    info = json.loads((out / "fit_info.json").read_text())
    assert info["config"]["distance_divisor"] == 3.0
    assert info["classes"]["car"]["viewpoints"] == len(
        _independent_viewpoints(root, "car", sorted(i for i in ids["train"] if i.startswith("2009"))))
    # same command, same seed -> identical files
    out2 = tmp_path / "dist2"
    assert fit_viewpoints.run(["--pascal3d", root, "--num_samples", "2000", "--output_dir", str(out2)]) == 0
    assert (out / "view_distribution" / "car.txt").read_bytes() == (out2 / "view_distribution" / "car.txt").read_bytes()


def test_fit_viewpoints_from_csv_and_bad_input(tmp_path, capsys):
    rng = np.random.default_rng(0)
    path = tmp_path / "v.csv"
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["class", "azimuth", "elevation", "tilt", "distance", "x1", "y1", "x2", "y2",
                    "cad_x1", "cad_y1", "cad_x2", "cad_y2"])
        for _ in range(100):
            w.writerow(["car", rng.uniform(0, 360), rng.normal(10, 5), rng.normal(0, 2), rng.uniform(2, 3),
                        10, 20, 90, 80, 0, 20, 100, 80])
    out = tmp_path / "o"
    assert fit_viewpoints.run(["--csv", str(path), "--num_samples", "500", "--output_dir", str(out)]) == 0
    t = kde.read_table(str(out / "truncation_distribution" / "car.txt"))
    assert t.shape == (500, 4)
    rows = read_viewpoint_file(str(out / "view_distribution" / "car.txt"))
    assert 1.0 <= np.median(rows[:, 3]) <= 3.5  # distances not divided for CSV
    bad = tmp_path / "bad.csv"
    bad.write_text("class,azimuth\ncar,3\n")
    assert fit_viewpoints.run(["--csv", str(bad), "--output_dir", str(tmp_path / "b")]) == 2
    assert "bad.csv" in capsys.readouterr().err
    broken = tmp_path / "p3d" / "Annotations" / "car_pascal"
    broken.mkdir(parents=True)
    (broken / "2008_000001.mat").write_bytes(b"not a mat file")
    assert fit_viewpoints.run(["--pascal3d", str(tmp_path / "p3d"), "--image_set", "all",
                               "--output_dir", str(tmp_path / "c")]) == 2
    assert "2008_000001.mat" in capsys.readouterr().err
