"""Non-spatial augmentations (formats §4.2) and illumination changes."""
import cv2
import numpy as np
import pytest

from kpdata.kp2d import augment
def _img(seed=0, h=60, w=80):
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (h // 10, w // 10, 3)).astype(np.uint8)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


def _hue(rgb):
    return cv2.cvtColor(rgb.astype(np.float32) / 255, cv2.COLOR_RGB2HSV)[..., 0]


def test_hue_shift_turns_red_into_green_and_blue():
    red = np.zeros((4, 4, 3), np.uint8)
    red[..., 0] = 255
    np.testing.assert_array_equal(augment.adjust_hue(red, 1 / 3)[0, 0], [0, 255, 0])
    np.testing.assert_array_equal(augment.adjust_hue(red, -1 / 3)[0, 0], [0, 0, 255])
    with pytest.raises(ValueError):
        augment.adjust_hue(red, 0.7)


def test_brightness_contrast_saturation_follow_their_definitions():
    img = _img()
    f = img.astype(np.float64)
    np.testing.assert_allclose(augment.adjust_brightness(img, 0.5), np.rint(f * 0.5), atol=0.51)
    grey = f @ [0.299, 0.587, 0.114]
    flat = augment.adjust_contrast(img, 0.0)
    assert np.ptp(flat) <= 1 and abs(flat.mean() - grey.mean()) < 1
    desat = augment.adjust_saturation(img, 0.0)
    np.testing.assert_allclose(desat, np.repeat(np.rint(grey)[..., None], 3, axis=2), atol=1)
    np.testing.assert_array_equal(augment.adjust_saturation(img, 1.0), img)


def test_color_jitter_really_changes_the_colours():
    """KP2D's jitter is a no-op; ours changes brightness and hue over draws."""
    img = _img(1)
    rng = np.random.default_rng(0)
    means, hue_moves = [], []
    for _ in range(20):
        out = augment.color_jitter(img, rng)
        assert out.shape == img.shape and out.dtype == np.uint8
        means.append(out.mean())
        hue_moves.append(np.median(np.abs(_hue(out) - _hue(img))))
    assert np.ptp(means) > 30  # brightness / contrast factors in [0.5, 1.5]
    assert max(hue_moves) > 5  # degrees of hue: up to 0.05 turn = 18 degrees
    # amplitudes of zero do nothing
    np.testing.assert_array_equal(augment.color_jitter(img, rng, (0, 0, 0, 0)), img)


def test_noise_blur_grey_shuffle():
    img = np.full((200, 200, 3), 128, np.uint8)
    noisy = augment.gaussian_noise(img, np.random.default_rng(0))
    assert abs(noisy.astype(float).std() - 0.05 * 255) < 0.3
    pic = _img(2)
    np.testing.assert_array_equal(augment.gaussian_blur(pic, 5), cv2.GaussianBlur(pic, (5, 5), 0))
    np.testing.assert_array_equal(augment.gaussian_blur(pic, 0), pic)
    g = augment.to_grey(pic)
    assert np.array_equal(g[..., 0], g[..., 1]) and np.array_equal(g[..., 1], g[..., 2])
    np.testing.assert_array_equal(augment.shuffle_channels(pic, [2, 0, 1]), pic[..., [2, 0, 1]])
    with pytest.raises(ValueError):
        augment.shuffle_channels(pic, [0, 0, 1])
    with pytest.raises(ValueError, match="uint8 RGB"):
        augment.to_grey(pic[..., 0])


def test_pair_shares_permutation_and_greyscale_and_is_seeded():
    img = _img(3)
    greys = 0
    for seed in range(40):
        a, b = augment.non_spatial_pair(img, img, np.random.default_rng(seed))
        a2, b2 = augment.non_spatial_pair(img, img, np.random.default_rng(seed))
        assert np.array_equal(a, a2) and np.array_equal(b, b2)
        ga = np.ptp(a.astype(int), axis=2).max() == 0
        gb = np.ptp(b.astype(int), axis=2).max() == 0
        # grey is a shared decision (a jitter after grey keeps channels nearly equal: hue of grey is nothing)
        assert ga == gb
        greys += ga
    assert 8 < greys < 32  # p = 0.5


def test_illumination_change_keeps_geometry_changes_light():
    img = _img(4, 120, 160)
    np.testing.assert_allclose(augment.illumination_change(img, np.random.default_rng(0), 0.0), img, atol=1)
    out = augment.illumination_change(img, np.random.default_rng(0), 1.0)
    assert np.abs(out.astype(int) - img).mean() > 10
    # edges stay where they were: gradient magnitudes correlate strongly
    def grad(x):
        g = cv2.cvtColor(x, cv2.COLOR_RGB2GRAY).astype(np.float32)
        return np.hypot(cv2.Sobel(g, cv2.CV_32F, 1, 0), cv2.Sobel(g, cv2.CV_32F, 0, 1)).ravel()
    assert np.corrcoef(grad(img), grad(out))[0, 1] > 0.8
