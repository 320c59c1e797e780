"""Distribution plots (kpdata.preview.plots) and the sheets of HPatches exports and fit_viewpoints
folders: each written where its command writes it, readable as an image, matplotlib kept out of
the pipelines' imports; the numbers the plots are drawn from checked against what was written."""
import csv
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest

from kpdata.kp2d import hpatches
from kpdata.preview import hpatches as hpatches_sheet
from kpdata.preview import plots
from pipelines import fit_viewpoints, preview
from schemas import clickhere as chs
from schemas.dataset import previews, records
from tests.schemas.dataset_folders import write_clickhere, write_keypointnet, write_views

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def _png(path) -> np.ndarray:
    img = cv2.imread(str(path))
    assert img is not None, path
    return img


def test_fit_plot_has_a_row_per_class_and_rejects_nothing_to_plot(tmp_path):
    rng = np.random.default_rng(0)
    one = {"car": {"views": rng.normal(size=(50, 4)), "view_samples": rng.normal(size=(500, 4))}}
    two = {**one, "bus": {**one["car"], "truncations": rng.normal(size=(40, 4)) * 0.1,
                          "truncation_samples": rng.normal(size=(400, 4)) * 0.1}}
    h1 = _png(plots.write_fit_plot(str(tmp_path / "a.png"), one)).shape[0]
    h2 = _png(plots.write_fit_plot(str(tmp_path / "b.png"), two)).shape[0]
    assert h2 > 1.6 * h1
    with pytest.raises(ValueError, match="nothing to plot"):
        plots.write_error_plot(str(tmp_path / "e.png"))
    err = plots.write_error_plot(str(tmp_path / "e.png"), {"a": (0.5, 0.2, 10)}, {"model": rng.uniform(0, 90, 30)})
    assert _png(err).shape[1] > _png(plots.write_error_plot(str(tmp_path / "f.png"), {"a": (0.5, None, 3)})).shape[1]


def test_pipelines_do_not_import_matplotlib():
    code = ("import sys, pipelines.render_shapenet, pipelines.fit_viewpoints, pipelines.preview, schemas.dataset.previews;"
            "print(sorted(m for m in sys.modules if m.startswith('matplotlib')))")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and r.stdout.strip() == "[]", r.stderr[-2000:]


def test_fit_viewpoints_writes_its_plot_and_its_folder_previews(tmp_path, capsys):
    rng = np.random.default_rng(1)
    path = tmp_path / "v.csv"
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["class", "azimuth", "elevation", "tilt", "distance", "x1", "y1", "x2", "y2",
                    "cad_x1", "cad_y1", "cad_x2", "cad_y2"])
        for cls in ("car", "bus"):
            for _ in range(60):
                w.writerow([cls, rng.uniform(0, 360), rng.normal(10, 5), rng.normal(0, 2), rng.uniform(2, 3),
                            10, 20, 90, 80, 0, 20, 100, 80])
    out = tmp_path / "dist"
    assert fit_viewpoints.run(["--csv", str(path), "--num_samples", "300", "--output_dir", str(out)]) == 0
    assert f"plot {out / fit_viewpoints.FIT_PLOT}" in capsys.readouterr().out
    assert _png(out / fit_viewpoints.FIT_PLOT).shape[1] > 1000  # 8 columns
    assert previews.dataset_kind(str(out)) == previews.DISTRIBUTIONS_KIND
    assert preview.run([str(out)]) == 0
    assert _png(out / "preview.png").shape[0] > 200


def _sequence(root, name, zoom_k2: float):
    """An HPatches sequence whose image 2 is image 1 zoomed ``zoom_k2`` times about the origin
    (``H_1_2 = diag(z, z, 1)``), the others identical to image 1."""
    img = np.zeros((60, 80, 3), np.uint8)
    img[:, :, 0] = np.arange(80, dtype=np.uint8)[None] * 3
    hs = [np.diag([zoom_k2, zoom_k2, 1.0])] + [np.eye(3)] * 4
    return hpatches.write_sequence(str(root), name, [img] * 6, hs)


def test_hpatches_sheet_outlines_what_each_image_shows(tmp_path):
    _sequence(tmp_path / "hp", "v_zoom", 2.0)
    _sequence(tmp_path / "hp", "i_same", 1.0)
    seqs = hpatches.read_layout(str(tmp_path / "hp"))
    seq = [s for s in seqs if s.name == "v_zoom"][0]
    images = [cv2.cvtColor(cv2.imread(p), cv2.COLOR_BGR2RGB) for p in seq.images]
    row = hpatches_sheet.sequence_row(seq.name, images, list(seq.homographies))
    s = 130 / 60  # thumbnails are 130 px high
    # image 2 shows image 1's top-left quarter: its outline's right edge is at x = 39.75 of image 1
    x, y = round((39.5 + 0.5) * s - 0.5), round(15 * s)
    patch = row[y - 1:y + 2, x - 2:x + 3].reshape(-1, 3).astype(int)
    green = hpatches_sheet.COLORS[2]
    assert min(np.abs(p - green).sum() for p in patch) < 120, patch
    far = row[y, round(60 * s)].astype(int)  # nothing drawn across the middle of the right half
    assert np.abs(far - green).sum() > 200
    assert previews.dataset_kind(str(tmp_path / "hp")) == previews.HPATCHES_KIND
    assert preview.run([str(tmp_path / "hp"), "--output", str(tmp_path / "hp.png")]) == 0
    assert _png(tmp_path / "hp.png").shape[0] > 2 * row.shape[0]  # two rows under the legend


def test_rendered_viewpoints_are_read_from_every_render_layout(tmp_path):
    views = write_views(tmp_path / "v", models=2, views=3)
    vp, cats = previews.rendered_viewpoints(views)
    expected = sorted((30.0 * i, 10.0, 0.0, 2.0) for _ in range(2) for i in range(3))  # dataset_folders' views
    assert sorted(map(tuple, vp)) == expected and set(cats) == {"02958343"}
    for layout in (chs.CLICKHERE_VIEW.name, chs.CLICKHERE_INSTANCE.name, records.CAFFE_RECORD):
        d = write_clickhere(tmp_path / layout, layout)
        vp, _ = previews.rendered_viewpoints(d)
        assert len(vp) == 4, layout  # one per view, not per instance
        np.testing.assert_allclose(sorted(vp[:, 0]), [0, 0, 30, 30])  # azimuths 30 * index
        assert np.isnan(vp[:, 3]).all() == (layout == chs.CLICKHERE_INSTANCE.name)  # labels carry no distance
    vp, _ = previews.rendered_viewpoints(write_keypointnet(tmp_path / "k", models=2, pairs=1))
    assert sorted(vp[:, 0]) == [0, 0, 40, 40]
    path = previews.write_viewpoint_plot(views)
    assert path == os.path.join(views, previews.VIEWPOINT_PLOT) and _png(path).shape[1] > 600
