"""KP2D homography sampler, normalised <-> pixel conversion, OpenCV warping (formats §4.2)."""
import math

import cv2
import numpy as np
import pytest
from scipy import ndimage

from kpdata.kp2d import homography as hg
from kpdata.sources import photos
from kpdata.demo import photos as demo_photos
W, H = 320, 240


def _norm(points, w=W, h=H):
    """Pixels -> KP2D normalised coordinates, written out (not through normalize_matrix)."""
    p = np.asarray(points, dtype=np.float64)
    return np.stack([2 * p[:, 0] / (w - 1) - 1, 2 * p[:, 1] / (h - 1) - 1], axis=1)


def _denorm(points, w=W, h=H):
    p = np.asarray(points, dtype=np.float64)
    return np.stack([(p[:, 0] + 1) / 2 * (w - 1), (p[:, 1] + 1) / 2 * (h - 1)], axis=1)


def _grid(w=W, h=H, step=7):
    ys, xs = np.mgrid[0:h:step, 0:w:step]
    return np.stack([xs.ravel(), ys.ravel()], axis=1).astype(np.float64)


def test_patch_never_leaves_the_image_over_100k_draws():
    """Acceptance: the image of the unit square under every sampled H lies inside [-1, 1]^2."""
    hs = hg.sample_homographies(np.random.default_rng(7), 100_000, (H, W))
    assert hs.shape == (100_000, 3, 3) and np.all(hs[:, 2, 2] == 1.0)
    c = np.einsum("nij,kj->nki", hs, np.c_[hg.CORNERS, np.ones(4)])
    c = c[..., :2] / c[..., 2:]
    assert np.all(np.abs(c) <= 1.0 + 1e-9), np.abs(c).max()
    # the draws really vary: rotation, scale and perspective all appear
    d1, d2 = c[:, 3] - c[:, 0], c[:, 1] - c[:, 2]
    areas = 0.5 * np.abs(d1[:, 0] * d2[:, 1] - d1[:, 1] * d2[:, 0])
    assert areas.min() < 0.5 * 4 * 0.7 ** 2 < areas.max()
    assert np.abs(np.arctan2(c[:, 2, 1] - c[:, 0, 1], c[:, 2, 0] - c[:, 0, 0])).max() > math.radians(30)
    assert np.abs(hs[:, 2, :2]).max() > 0.05  # perspective terms


def test_dlt_matches_opencv_and_constants_give_known_patches():
    rng = np.random.default_rng(3)
    for hn in hg.sample_homographies(rng, 5, (H, W)):
        ref = cv2.getPerspectiveTransform(hg.CORNERS.astype(np.float32), hg.patch_corners(hn).astype(np.float32))
        np.testing.assert_allclose(hn, ref, atol=1e-5)
    # everything off: the patch is the centred rectangle at patch_ratio
    off = hg.HomographyParams(perspective=False, scaling=False, translation=False, rotation=False)
    np.testing.assert_allclose(hg.sample_homography(rng, (H, W), off), np.diag([0.7, 0.7, 1.0]), atol=1e-12)
    # rotation only: a rectangle of 0.7 x 0.7 hw turned by one of KP2D's angles in aspect-true units
    rot = hg.HomographyParams(perspective=False, scaling=False, translation=False)
    angles = np.concatenate([[0.0], np.linspace(-math.pi / 4, math.pi / 4, 100)])
    for hn in hg.sample_homographies(rng, 20, (H, W), rot):
        c = hg.patch_corners(hn) * [1.0, H / W]
        a = math.atan2(c[2, 1] - c[0, 1], c[2, 0] - c[0, 0])
        assert np.min(np.abs(angles + a)) < 1e-9 or np.min(np.abs(angles - a)) < 1e-9
        np.testing.assert_allclose(np.linalg.norm(c[2] - c[0]), 1.4, atol=1e-9)


def test_sampler_is_seeded():
    a = hg.sample_homography(np.random.default_rng(5), (H, W))
    b = hg.sample_homography(np.random.default_rng(5), (H, W))
    c = hg.sample_homography(np.random.default_rng(6), (H, W))
    assert np.array_equal(a, b) and not np.allclose(a, c)


def test_bad_constants_are_rejected():
    with pytest.raises(ValueError, match="outside the image"):
        hg.HomographyParams(patch_ratio=0.95)
    with pytest.raises(ValueError):
        hg.HomographyParams(patch_ratio=0.0)


def test_pixel_and_normalised_homographies_agree_with_perspective_transform():
    """Acceptance (kpdata side): mapping a pixel grid through the normalised H equals
    cv2.perspectiveTransform through the pixel H within 1e-3 px; round trips are exact."""
    for hn in hg.sample_homographies(np.random.default_rng(11), 10, (H, W)):
        hp = hg.to_pixels(hn, W, H)
        assert hp[2, 2] == 1.0
        np.testing.assert_allclose(hg.to_normalized(hp, W, H), hn, atol=1e-12)
        grid = _grid()
        ours = _denorm(hg.apply(hn, _norm(grid)))
        ref = cv2.perspectiveTransform(grid[None].astype(np.float64), hp)[0]
        assert np.abs(ours - ref).max() < 1e-3


def test_warp_matches_a_grid_sample_reference():
    """warp_image == bilinear sampling of image at H p (PyTorch grid_sample, align_corners=True),
    computed with scipy's map_coordinates in normalised coordinates."""
    rng = np.random.default_rng(2)
    img = ndimage.gaussian_filter(rng.random((H, W)), 2).astype(np.float32)
    hn = hg.sample_homography(rng, (H, W))
    ours = hg.warp_image(img, hn)
    q = _denorm(hg.apply(hn, _norm(_grid(step=1))))
    ref = ndimage.map_coordinates(img.astype(np.float64), [q[:, 1], q[:, 0]], order=1, mode="nearest").reshape(H, W)
    # OpenCV's bilinear weights are 5-bit fixed point: 1/32 of the local step at worst
    assert np.abs(ours - ref).max() < 0.01 * np.ptp(img)
    assert np.abs(ours - ref).mean() < 1e-3 * np.ptp(img)


def ncc(a, b, mask):
    a, b = a[mask].astype(np.float64), b[mask].astype(np.float64)
    a, b = a - a.mean(), b - b.mean()
    return float((a * b).sum() / np.sqrt((a * a).sum() * (b * b).sum()))


def test_warping_back_gives_the_source(tmp_path):
    """Acceptance (kpdata side): the warped photo warped back by the pixel H matches the photo
    inside the patch with NCC > 0.95."""
    d = demo_photos.demo_photo_dir(str(tmp_path))
    img = photos.resize(photos.read_image(f"{d}/demo_00.jpg"), (W, H))
    for hn in hg.sample_homographies(np.random.default_rng(4), 5, (H, W)):
        warped = hg.warp_image(img, hn)
        hp = hg.to_pixels(hn, W, H)
        back = cv2.warpPerspective(warped, hp, (W, H))  # warped pixel p lands on H p
        valid = cv2.warpPerspective(np.ones((H, W), np.uint8), hp, (W, H)) > 0
        valid = cv2.erode(valid.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
        assert valid.mean() > 0.3
        assert ncc(back, img, valid) > 0.95
