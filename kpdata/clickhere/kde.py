"""Render for CNN's viewpoint and truncation distributions (formats.md §3.1, §3.2).

Both are Gaussian kernel density estimates with a per-dimension Silverman bandwidth
``1.06 * std * n**(-1/5)`` (``std`` with MATLAB's n-1 normalisation), sampled as Ihler's MATLAB KDE
toolbox does: pick a data point uniformly, add ``N(0, bw**2)`` noise per dimension. The samples are
then post-processed exactly as ``sample_viewpoints.m`` / ``sample_truncations.m`` do, and saved in
Render for CNN's text formats::

    view_distribution/<cls>.txt        "az el tilt dist" per line (degrees, degrees, degrees, units)
    truncation_distribution/<cls>.txt  "left right top bottom" per line (fractions of the box size)

A renderer then draws a random row of the file for each view (:class:`SampleTable`).

Viewpoint data are ``(azimuth, elevation, tilt, distance)`` rows in degrees, with PASCAL3D+'s
distances divided by 3 (``distance_divisor``; PASCAL3D+ overestimates them 3x, says R4CNN).
Truncation data are ``(left, right, top, bottom)`` rows: ``left = (x1_gt - x1_cad) / w_cad``,
``right = (x2_gt - x2_cad) / w_cad``, ``top``/``bottom`` likewise with the heights.
"""
from __future__ import annotations

import dataclasses
import os

import numpy as np

from kpdata.errors import InputError

# R4CNN's 12 PASCAL classes, in its order (the viewpoint label's object class index).
R4CNN_CLASSES: tuple[str, ...] = ("aeroplane", "bicycle", "boat", "bottle", "bus", "car", "chair",
                                  "diningtable", "motorbike", "sofa", "train", "tvmonitor")
# R4CNN's ShapeNet synset for each class (g_shape_synsets).
R4CNN_SYNSETS: dict[str, str] = {
    "02691156": "aeroplane", "02834778": "bicycle", "04530566": "boat", "02876657": "bottle",
    "02924116": "bus", "02958343": "car", "03001627": "chair", "04379243": "diningtable",
    "03790512": "motorbike", "04256520": "sofa", "04468005": "train", "03211117": "tvmonitor",
}

OUTLIER_RATIO = 0.2            # g_view_outlier_ratio / truncation outlier ratio
DISTANCE_RANGE = (1.0, 29.0)   # distances outside are replaced by a valid one + U(0, 1)
OUTLIER_SIGMA = 20.0           # elevation / tilt outliers: N(pooled mean, 20)
OUTLIER_ELEVATION_CLIP = 85.0
OUTLIER_TILT_CLIP = 45.0
TRUNCATION_SIGMA = 0.1         # truncation outliers: N(0, 0.1) clipped to +-0.5
TRUNCATION_CLIP = 0.5
VIEW_DISTRIBUTION_DIR = "view_distribution"
TRUNCATION_DISTRIBUTION_DIR = "truncation_distribution"


def silverman_bandwidth(points) -> np.ndarray:
    """Per-dimension Silverman bandwidth ``1.06 * std * n**(-1/5)`` of ``points`` (N, D),
    std with n-1 normalisation (MATLAB's ``std``). Returns (D,) float64."""
    points = np.asarray(points, dtype=np.float64)
    if points.ndim != 2 or len(points) < 2:
        raise ValueError(f"expected (N, D) points with N >= 2, got shape {points.shape}")
    return 1.06 * points.std(axis=0, ddof=1) * len(points) ** (-0.2)


@dataclasses.dataclass(frozen=True)
class GaussianKDE:
    """A Gaussian KDE with one diagonal bandwidth shared by all points.

    points: (N, D) float64 data; bandwidth: (D,) float64 standard deviations of the kernel.
    """

    points: np.ndarray
    bandwidth: np.ndarray

    @classmethod
    def fit(cls, points) -> GaussianKDE:
        points = np.asarray(points, dtype=np.float64)
        return cls(points, silverman_bandwidth(points))

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """(n, D) draws: a uniformly chosen data point plus N(0, bandwidth**2) noise."""
        idx = rng.integers(0, len(self.points), size=n)
        noise = rng.standard_normal((n, self.points.shape[1])) * self.bandwidth
        return self.points[idx] + noise


def _wrap_pm90(x):
    return np.mod(x + 90.0, 180.0) - 90.0


@dataclasses.dataclass(frozen=True)
class ViewpointKDE:
    """The 4-D viewpoint distribution of one class (formats.md §3.1).

    kde: over ``(az, el, tilt, distance / divisor)`` rows; pooled_elevation / pooled_tilt: the
    means of elevation and tilt pooled over every class of the fit (the outliers' centres);
    outlier_ratio: the fraction of samples replaced by outliers.
    """

    kde: GaussianKDE
    pooled_elevation: float
    pooled_tilt: float
    outlier_ratio: float = OUTLIER_RATIO

    @classmethod
    def fit(cls, viewpoints, pooled_elevation: float | None = None, pooled_tilt: float | None = None,
            outlier_ratio: float = OUTLIER_RATIO) -> ViewpointKDE:
        """``viewpoints``: (N, 4) ``az el tilt dist`` rows (distance already divided)."""
        v = np.asarray(viewpoints, dtype=np.float64)
        if v.ndim != 2 or v.shape[1] != 4:
            raise ValueError(f"expected (N, 4) viewpoints (az, el, tilt, dist), got {v.shape}")
        return cls(GaussianKDE.fit(v),
                   float(v[:, 1].mean()) if pooled_elevation is None else float(pooled_elevation),
                   float(v[:, 2].mean()) if pooled_tilt is None else float(pooled_tilt),
                   float(outlier_ratio))

    def sample(self, n: int, rng: np.random.Generator, return_outliers: bool = False):
        """(n, 4) float64 ``az el tilt dist`` samples, post-processed as ``sample_viewpoints.m``:
        az mod 360; el and tilt wrapped into [-90, 90); distances outside [1, 29] replaced by a
        random valid sample's distance + U(0, 1); then a random ``outlier_ratio`` of the rows get
        az ~ U(0, 360), el ~ N(pooled el, 20) clipped to +-85, tilt ~ N(pooled tilt, 20) clipped
        to +-45 (distance kept). With ``return_outliers`` also returns the (n,) bool outlier mask.
        """
        s = self.kde.sample(n, rng)
        s[:, 0] = np.mod(s[:, 0], 360.0)
        s[:, 1] = _wrap_pm90(s[:, 1])
        s[:, 2] = _wrap_pm90(s[:, 2])
        lo, hi = DISTANCE_RANGE
        bad = (s[:, 3] < lo) | (s[:, 3] > hi)
        good = np.flatnonzero(~bad)
        if bad.any():
            if not len(good):
                raise ValueError(f"no sampled distance lies in {DISTANCE_RANGE}: is the data's distance scaled?")
            s[bad, 3] = s[rng.choice(good, size=int(bad.sum())), 3] + rng.uniform(0.0, 1.0, int(bad.sum()))
        outliers = np.zeros(n, dtype=bool)
        outliers[rng.permutation(n)[:round(self.outlier_ratio * n)]] = True
        m = int(outliers.sum())
        s[outliers, 0] = rng.uniform(0.0, 360.0, m)
        s[outliers, 1] = np.clip(rng.normal(self.pooled_elevation, OUTLIER_SIGMA, m),
                                 -OUTLIER_ELEVATION_CLIP, OUTLIER_ELEVATION_CLIP)
        s[outliers, 2] = np.clip(rng.normal(self.pooled_tilt, OUTLIER_SIGMA, m),
                                 -OUTLIER_TILT_CLIP, OUTLIER_TILT_CLIP)
        return (s, outliers) if return_outliers else s


def _truncation_noise(rng, shape):
    return np.clip(rng.normal(0.0, TRUNCATION_SIGMA, shape), -TRUNCATION_CLIP, TRUNCATION_CLIP)


@dataclasses.dataclass(frozen=True)
class TruncationKDE:
    """The two 2-D truncation distributions of one class (formats.md §3.2): (left, right) and
    (top, bottom), each a Silverman-bandwidth Gaussian KDE."""

    horizontal: GaussianKDE
    vertical: GaussianKDE
    outlier_ratio: float = OUTLIER_RATIO

    @classmethod
    def fit(cls, truncations, outlier_ratio: float = OUTLIER_RATIO) -> TruncationKDE:
        """``truncations``: (N, 4) ``left right top bottom`` rows."""
        t = np.asarray(truncations, dtype=np.float64)
        if t.ndim != 2 or t.shape[1] != 4:
            raise ValueError(f"expected (N, 4) truncations (left, right, top, bottom), got {t.shape}")
        return cls(GaussianKDE.fit(t[:, :2]), GaussianKDE.fit(t[:, 2:]), float(outlier_ratio))

    def sample(self, n: int, rng: np.random.Generator, return_outliers: bool = False):
        """(n, 4) ``left right top bottom`` samples post-processed as ``sample_truncations.m``:
        a pair with ``right - left > 1`` (``bottom - top > 1``) is replaced by N(0, 0.1) clipped to
        +-0.5; then a random ``outlier_ratio`` of the rows get all four values so replaced."""
        out = np.empty((n, 4))
        for j, kde in ((0, self.horizontal), (2, self.vertical)):
            pair = kde.sample(n, rng)
            bad = pair[:, 1] - pair[:, 0] > 1.0
            pair[bad] = _truncation_noise(rng, (int(bad.sum()), 2))
            out[:, j:j + 2] = pair
        outliers = np.zeros(n, dtype=bool)
        outliers[rng.permutation(n)[:round(self.outlier_ratio * n)]] = True
        out[outliers] = _truncation_noise(rng, (int(outliers.sum()), 4))
        return (out, outliers) if return_outliers else out


def fit_viewpoints(data_by_class: dict[str, np.ndarray], outlier_ratio: float = OUTLIER_RATIO
                   ) -> dict[str, ViewpointKDE]:
    """One :class:`ViewpointKDE` per class; the outliers' elevation / tilt centres are pooled over
    every class given (R4CNN pools over its 12 classes)."""
    rows = [np.asarray(v, dtype=np.float64).reshape(-1, 4) for v in data_by_class.values()]
    pooled = np.concatenate(rows) if rows else np.zeros((0, 4))
    if not len(pooled):
        raise ValueError("no viewpoints to fit")
    el, tilt = float(pooled[:, 1].mean()), float(pooled[:, 2].mean())
    return {c: ViewpointKDE.fit(v, el, tilt, outlier_ratio) for c, v in sorted(data_by_class.items())}


def write_table(path: str, rows) -> None:
    """Write (N, 4) rows as Render for CNN does: space-separated, 6 significant digits."""
    rows = np.asarray(rows, dtype=np.float64)
    if rows.ndim != 2 or rows.shape[1] != 4:
        raise ValueError(f"expected (N, 4) rows, got {rows.shape}")
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + ".incomplete"
    np.savetxt(tmp, rows, fmt="%.6g", delimiter=" ")
    os.replace(tmp, path)


def read_table(path: str, what: str = "truncation", columns: str = "left right top bottom") -> np.ndarray:
    """(N, 4) float64 rows of a Render-for-CNN distribution file; InputError names the file and
    line of a malformed row. (Viewpoint files: :func:`kpdata.viewpoints.read_viewpoint_file`.)"""
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.readlines()
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"bad_{what}s", f"cannot read {what} file: {e}", path) from None
    rows = []
    for n, line in enumerate(lines, 1):
        s = line.strip()
        if not s or s.startswith("#"):
            continue
        try:
            vals = [float(p) for p in s.split()]
        except ValueError:
            vals = []
        if len(vals) != 4 or not all(np.isfinite(vals)):
            raise InputError(f"bad_{what}s", f"line {n}: expected 4 numbers '{columns}', got {s!r}", path)
        rows.append(vals)
    if not rows:
        raise InputError(f"bad_{what}s", f"{what} file has no rows", path)
    return np.asarray(rows, dtype=np.float64)


@dataclasses.dataclass(frozen=True)
class SampleTable:
    """Rows of a distribution file; :meth:`draw` picks a uniformly random row (as R4CNN does per
    rendered image). rows: (N, 4) float64."""

    rows: np.ndarray

    def __len__(self):
        return len(self.rows)

    def draw(self, rng: np.random.Generator) -> np.ndarray:
        return self.rows[int(rng.integers(len(self.rows)))].copy()


def class_of_synset(synset: str) -> str:
    """R4CNN class name of a ShapeNet synset; InputError for synsets outside the 12 classes."""
    try:
        return R4CNN_SYNSETS[synset]
    except KeyError:
        raise InputError("unknown_class", f"synset {synset} is not one of Render for CNN's 12 classes "
                         f"({', '.join(f'{s}={c}' for s, c in sorted(R4CNN_SYNSETS.items()))})", "") from None
