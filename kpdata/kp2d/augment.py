"""Non-spatial (photometric) augmentations of KP2D, and illumination changes for HPatches-style
``i_`` sequences.

Images are ``(H, W, 3) uint8`` RGB unless said otherwise; every function returns a new array of the
same shape and dtype. Randomness comes from an explicit ``rng`` (``np.random.Generator``).

KP2D (``datasets/augmentations.py:ha_augment_sample``, formats §4.2) applies to the original and
the warped image: a channel permutation (p = 0.5) and a greyscale conversion (p = 0.5), both shared
by the two images; then per image Gaussian noise (p = 0.5, sigma = 0.05 * 255), a Gaussian blur
with a kernel drawn from {none, 1, 3, 5} and a colour jitter. KP2D builds its jitter as
``ColorJitter()`` and throws the drawn parameters away, so its jitter does nothing; here
:func:`color_jitter` really applies brightness 0.5, contrast 0.5, saturation 0.2 and hue 0.05
(torchvision's ``ColorJitter`` semantics: factors uniform in ``[max(0, 1 - a), 1 + a]``, hue shift
uniform in ``[-h, h]`` turns, the four operations in a random order).
"""
from __future__ import annotations

import dataclasses

import cv2
import numpy as np

__all__ = [
    "BLUR_KERNELS",
    "JITTER",
    "NonSpatialParams",
    "adjust_brightness",
    "adjust_contrast",
    "adjust_hue",
    "adjust_saturation",
    "color_jitter",
    "gaussian_blur",
    "gaussian_noise",
    "illumination_change",
    "non_spatial_pair",
    "shuffle_channels",
    "to_grey",
]

BLUR_KERNELS = (0, 1, 3, 5)  # 0 = no blur
JITTER = (0.5, 0.5, 0.2, 0.05)  # brightness, contrast, saturation, hue (KP2D's jittering)
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)  # ITU-R 601, as PIL's "L"


@dataclasses.dataclass(frozen=True)
class NonSpatialParams:
    """KP2D's non-spatial augmentation constants."""

    shuffle_p: float = 0.5
    grey_p: float = 0.5
    noise_p: float = 0.5
    noise_sigma: float = 0.05 * 255
    blur_kernels: tuple = BLUR_KERNELS
    jitter: tuple = JITTER  # brightness, contrast, saturation, hue; all 0 = no jitter


def _check_rgb(image: np.ndarray) -> None:
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected (H, W, 3) uint8 RGB image, got {image.shape} {image.dtype}")


def _to_uint8(x: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def grey_of(image: np.ndarray) -> np.ndarray:
    """(H, W) float32 luma of an RGB uint8 or float image (0.299 R + 0.587 G + 0.114 B)."""
    return image.astype(np.float32) @ _LUMA


def shuffle_channels(image: np.ndarray, order) -> np.ndarray:
    """``image[..., order]``; ``order`` a permutation of (0, 1, 2)."""
    _check_rgb(image)
    order = [int(i) for i in order]
    if sorted(order) != [0, 1, 2]:
        raise ValueError(f"expected a permutation of (0, 1, 2), got {order}")
    return np.ascontiguousarray(image[..., order])


def to_grey(image: np.ndarray) -> np.ndarray:
    """RGB -> grey -> RGB (three equal channels)."""
    _check_rgb(image)
    g = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    return cv2.cvtColor(g, cv2.COLOR_GRAY2RGB)


def gaussian_noise(image: np.ndarray, rng: np.random.Generator, sigma: float = 0.05 * 255) -> np.ndarray:
    """Add N(0, sigma) per pixel and channel (grey levels), clip to [0, 255]."""
    _check_rgb(image)
    return _to_uint8(image.astype(np.float32) + rng.normal(0.0, sigma, image.shape).astype(np.float32))


def gaussian_blur(image: np.ndarray, ksize: int) -> np.ndarray:
    """OpenCV Gaussian blur with a ``ksize x ksize`` kernel and sigma from the size; 0 = none."""
    _check_rgb(image)
    if ksize == 0:
        return image.copy()
    if ksize < 0 or ksize % 2 == 0:
        raise ValueError(f"blur kernel must be 0 or odd and positive, got {ksize}")
    return cv2.GaussianBlur(image, (ksize, ksize), sigmaX=0)


def adjust_brightness(image: np.ndarray, factor: float) -> np.ndarray:
    """``image * factor``, clipped (0 = black, 1 = unchanged)."""
    _check_rgb(image)
    return _to_uint8(image.astype(np.float32) * factor)


def adjust_contrast(image: np.ndarray, factor: float) -> np.ndarray:
    """Blend with the image's mean grey level: ``factor * image + (1 - factor) * mean``."""
    _check_rgb(image)
    mean = float(grey_of(image).mean())
    return _to_uint8(image.astype(np.float32) * factor + (1.0 - factor) * mean)


def adjust_saturation(image: np.ndarray, factor: float) -> np.ndarray:
    """Blend with the grey image: ``factor * image + (1 - factor) * grey`` (0 = grey)."""
    _check_rgb(image)
    g = grey_of(image)[..., None]
    return _to_uint8(image.astype(np.float32) * factor + (1.0 - factor) * g)


def adjust_hue(image: np.ndarray, shift: float) -> np.ndarray:
    """Rotate the hue by ``shift`` turns (``[-0.5, 0.5]``; 1/3 turns red into green)."""
    _check_rgb(image)
    if not -0.5 <= shift <= 0.5:
        raise ValueError(f"hue shift must be in [-0.5, 0.5] turns, got {shift}")
    hsv = cv2.cvtColor(image.astype(np.float32) / 255.0, cv2.COLOR_RGB2HSV)  # H in [0, 360)
    hsv[..., 0] = np.mod(hsv[..., 0] + 360.0 * shift, 360.0)
    return _to_uint8(cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB) * 255.0)


def color_jitter(image: np.ndarray, rng: np.random.Generator, jitter=JITTER) -> np.ndarray:
    """torchvision-style ``ColorJitter(brightness, contrast, saturation, hue)`` that is applied.

    Each factor is drawn uniformly from ``[max(0, 1 - a), 1 + a]`` (hue: shift in ``[-h, h]``
    turns); the four adjustments run in a random order. An amplitude of 0 skips its adjustment.
    """
    _check_rgb(image)
    b, c, s, h = (float(v) for v in jitter)
    ops = []
    if b > 0:
        ops.append((adjust_brightness, rng.uniform(max(0.0, 1 - b), 1 + b)))
    if c > 0:
        ops.append((adjust_contrast, rng.uniform(max(0.0, 1 - c), 1 + c)))
    if s > 0:
        ops.append((adjust_saturation, rng.uniform(max(0.0, 1 - s), 1 + s)))
    if h > 0:
        ops.append((adjust_hue, rng.uniform(-h, h)))
    out = image
    for i in rng.permutation(len(ops)):
        fn, value = ops[i]
        out = fn(out, value)
    return out.copy() if out is image else out


def _per_image(image: np.ndarray, rng: np.random.Generator, p: NonSpatialParams, order, grey: bool) -> np.ndarray:
    out = shuffle_channels(image, order)
    if rng.random() < p.noise_p:
        out = gaussian_noise(out, rng, p.noise_sigma)
    out = gaussian_blur(out, int(p.blur_kernels[rng.integers(len(p.blur_kernels))]))
    if grey:
        out = to_grey(out)
    return color_jitter(out, rng, p.jitter)


def non_spatial_pair(image: np.ndarray, image_aug: np.ndarray, rng: np.random.Generator,
                     params: NonSpatialParams = NonSpatialParams()) -> tuple[np.ndarray, np.ndarray]:
    """KP2D's non-spatial augmentation of an (original, warped) pair, in KP2D's order: channel
    permutation, noise, blur, greyscale, jitter. The permutation and the greyscale decision are
    shared; noise, blur and jitter are drawn per image."""
    order = rng.permutation(3) if rng.random() < params.shuffle_p else np.arange(3)
    grey = bool(rng.random() < params.grey_p)
    return (_per_image(image, rng, params, order, grey), _per_image(image_aug, rng, params, order, grey))


def illumination_change(image: np.ndarray, rng: np.random.Generator, strength: float) -> np.ndarray:
    """A photometric change of the whole scene with no geometric change, for ``i_`` sequences.

    ``strength`` in [0, 1] scales every component: a gamma curve (``exp(N(0, 0.5 s))``), a global
    gain (``exp(U(-0.6 s, 0.6 s))``), a colour cast (per-channel gains ``exp(N(0, 0.15 s))``) and a
    smooth shading field (a random linear ramp plus a Gaussian light spot, amplitude ``0.5 s``).
    """
    _check_rgb(image)
    if not 0.0 <= strength <= 1.0:
        raise ValueError(f"strength must be in [0, 1], got {strength}")
    h, w = image.shape[:2]
    x = image.astype(np.float32) / 255.0
    gamma = float(np.exp(rng.normal(0.0, 0.5 * strength)))
    gain = float(np.exp(rng.uniform(-0.6 * strength, 0.6 * strength)))
    cast = np.exp(rng.normal(0.0, 0.15 * strength, 3)).astype(np.float32)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    u, v = xx / max(w - 1, 1) - 0.5, yy / max(h - 1, 1) - 0.5
    theta = rng.uniform(0, 2 * np.pi)
    ramp = np.cos(theta) * u + np.sin(theta) * v  # in [-0.71, 0.71]
    cx, cy, r = rng.uniform(-0.5, 0.5), rng.uniform(-0.5, 0.5), rng.uniform(0.2, 0.6)
    spot = np.exp(-((u - cx) ** 2 + (v - cy) ** 2) / (2 * r * r)) - 0.5
    shading = np.exp(0.5 * strength * (ramp + rng.uniform(-1, 1) * spot)).astype(np.float32)
    y = np.power(x, gamma) * gain * cast * shading[..., None]
    return _to_uint8(y * 255.0)
