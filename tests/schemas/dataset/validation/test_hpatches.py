"""An HPatches-layout folder: complete sequences, identity homographies of i_ sequences, image k =
image 1 warped by H_1_k in v_ sequences; the count the KP2D run exported."""
import os

import cv2
import numpy as np

from kpdata.kp2d import hpatches
from schemas.dataset.validation.hpatches import looks_like_hpatches, validate_hpatches
from schemas.dataset.validation.report import Report


def _photo(seed=0, w=160, h=120):
    rng = np.random.default_rng(seed)
    return cv2.resize(rng.integers(0, 256, (h // 8, w // 8, 3)).astype(np.uint8), (w, h))


def write_layout(root):
    """One v_ sequence (image k = image 1 shifted by H_1_k) and one i_ sequence."""
    img = _photo()
    hs = [np.array([[1.0, 0.0, 2.0 * k], [0.0, 1.0, -1.0 * k], [0.0, 0.0, 1.0]]) for k in range(1, 6)]
    imgs = [img] + [cv2.warpPerspective(img, h, (img.shape[1], img.shape[0]), flags=cv2.INTER_LINEAR) for h in hs]
    hpatches.write_sequence(str(root), "v_a", imgs, hs)
    hpatches.write_sequence(str(root), "i_a", [_photo(1)] * 6, [np.eye(3)] * 5)


def _check(root, **kw):
    report = Report(str(root))
    validate_hpatches(str(root), report, None, label=".", **kw)
    return report, [(d.file, d.message) for d in report.defects]


def test_clean_layout(tmp_path):
    write_layout(tmp_path)
    assert looks_like_hpatches(str(tmp_path)) and not looks_like_hpatches(str(tmp_path / "v_a"))
    report, defects = _check(tmp_path, expect=2)
    assert defects == [] and report.checks["hpatches"].notes == [".: 2 sequences, 2 checked in full"]


def test_wrong_homography_missing_image_and_count(tmp_path):
    write_layout(tmp_path)
    np.savetxt(tmp_path / "v_a" / "H_1_3", np.eye(3))
    np.savetxt(tmp_path / "i_a" / "H_1_2", np.diag([2.0, 1.0, 1.0]))
    (tmp_path / "i_a" / "H_1_4").write_text("1 2\n3 4\n")
    os.remove(tmp_path / "i_a" / "5.ppm")
    (tmp_path / "notes").mkdir()
    _, defects = _check(tmp_path, expect=4)
    files = [f for f, _ in defects]
    assert files == ["./i_a/H_1_4", "./i_a/5.ppm", "./i_a/H_1_2", "./notes", "./v_a/H_1_3", "."]
    assert defects[1][1] == "missing"
    assert defects[2][1] == "an illumination sequence's homography must be the identity"
    assert defects[3][1] == "a folder that is not an i_ or v_ sequence"
    assert defects[4][1].startswith("3.ppm is not 1.ppm warped by H_1_k (mean difference")
    assert defects[5][1] == "3 sequences, stats.json counts 4 exported"  # a stray folder counts
