"""Truncation crop against Render for CNN's own output; background choice and compositing."""
import os

import cv2
import numpy as np
import pytest

from kpdata import clickhere as ch
from kpdata.clickhere import imageops
from kpdata.errors import InputError


def test_truncation_crop_equals_render_for_cnns(fixtures):
    """Render for CNN cropped its chair render with the truncation row '0 0 0.2 0' of
    sample_truncations.txt: our crop of the same render is identical, pixel for pixel."""
    d = os.path.join(fixtures, "r4cnn_demo")
    render = cv2.imread(os.path.join(d, "render_chair_960x540.png"), cv2.IMREAD_UNCHANGED)
    theirs = cv2.imread(os.path.join(d, "cropped_chair.png"), cv2.IMREAD_UNCHANGED)
    rows = np.loadtxt(os.path.join(d, "sample_truncations.txt"))
    assert [0, 0, 0.2, 0] in rows.tolist()
    box = imageops.truncated_box(imageops.alpha_box(render[..., 3]), (0, 0, 0.2, 0), 960, 540)
    assert np.array_equal(imageops.crop(render, box), theirs)


def test_truncated_box_clamps_and_reverts():
    assert imageops.truncated_box((100, 100, 199, 149), (-0.5, 0.5, 0, 0), 220, 300) == (50, 100, 219, 149)
    assert imageops.truncated_box((100, 100, 199, 149), (0.8, -0.8, 0, 0), 300, 300) == (100, 100, 199, 149)
    assert imageops.alpha_box(np.zeros((4, 4))) is None


def test_composite_is_alpha_blending():
    rgba = np.zeros((2, 2, 4), np.uint8)
    rgba[..., :3] = 200
    rgba[..., 3] = [[0, 255], [128, 64]]
    bg = np.full((2, 2, 3), 10, np.uint8)
    out = imageops.composite(rgba, bg)
    a = rgba[..., 3:] / 255.0
    expected = np.floor(200 * a + 10 * (1 - a) + 0.5).astype(np.uint8)
    assert out.shape == (2, 2, 3) and np.array_equal(out, np.broadcast_to(expected, out.shape))
    assert out[0, 0].tolist() == [10] * 3 and out[0, 1].tolist() == [200] * 3


def _photo(path, h, w, gray=False):
    img = np.random.default_rng(h * w).integers(0, 255, (h, w) if gray else (h, w, 3)).astype(np.uint8)
    cv2.imwrite(str(path), img)


def test_background_picker(tmp_path):
    _photo(tmp_path / "big.png", 60, 80)
    _photo(tmp_path / "small.png", 20, 20)
    _photo(tmp_path / "gray.png", 100, 100, gray=True)
    picker = imageops.BackgroundPicker(str(tmp_path), ratio=0.8)
    assert picker.names == ["big.png", "gray.png", "small.png"]
    rng = np.random.default_rng(0)
    sources, skipped = [], []
    for _ in range(400):
        r = picker.pick(50, 40, rng)
        assert r.image.shape == (40, 50, 3) and r.image.dtype == np.uint8
        sources.append(r.source)
        skipped += r.skipped
    photos = [s for s in sources if not s.startswith("gray:")]
    assert all(s.startswith("big.png@") for s in photos)
    assert 0.72 < len(photos) / 400 < 0.88
    assert {n for n, _ in skipped} == {"small.png", "gray.png"}
    big = cv2.cvtColor(cv2.imread(str(tmp_path / "big.png")), cv2.COLOR_BGR2RGB)
    r = picker.pick(50, 40, np.random.default_rng(5))
    while r.source.startswith("gray:"):
        r = picker.pick(50, 40, np.random.default_rng(len(r.source)))
    x, y = map(int, r.source.split("@")[1].split(","))
    assert np.array_equal(r.image, big[y:y + 40, x:x + 50])
    # a filelist.txt decides which files count
    (tmp_path / "filelist.txt").write_text("small.png\n")
    assert imageops.BackgroundPicker(str(tmp_path)).names == ["small.png"]


def test_compose_view_drops_views_without_keypoints():
    rgba = np.zeros((60, 80, 4), np.uint8)
    rgba[10:50, 20:60] = 255
    picker = imageops.BackgroundPicker("", ratio=0.8)
    uv = np.array([[25.0, 15.0], [55.0, 45.0]])
    s = ch.compose_view(rgba, uv, [True, True], ("a", "b"), (0.5, 0, 0, 0), picker, np.random.default_rng(0))
    assert s.box == (40, 10, 59, 49) and s.names == ("b",)
    np.testing.assert_allclose(s.uv, [[15.0, 35.0]])
    assert imageops.decode_jpeg(s.jpeg).shape == (40, 20, 3)
    assert ch.compose_view(rgba, uv, [False, False], ("a", "b"), None, picker, np.random.default_rng(0)) is None
    with pytest.raises(InputError, match="does not exist"):
        imageops.BackgroundPicker("/nonexistent/folder")
