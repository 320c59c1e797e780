"""Viewpoint sources: a uniform prior, or rows of a Render-for-CNN viewpoint file.

A viewpoint file (Render for CNN's ``view_distribution/<cls>.txt``) holds one viewpoint per line:
``azimuth elevation tilt distance`` (degrees, degrees, degrees, model units), whitespace
separated. Blank lines and lines starting with ``#`` are skipped.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from kpdata.errors import InputError
from kpdata.geometry import Viewpoint


@dataclasses.dataclass(frozen=True)
class UniformPrior:
    """Independent uniform draws: azimuth in [0, 360), elevation, tilt and distance in the given
    closed ranges (degrees; model units for distance: ShapeNet models have a unit diagonal)."""

    elevation: tuple[float, float] = (-10.0, 60.0)
    tilt: tuple[float, float] = (-5.0, 5.0)
    distance: tuple[float, float] = (2.0, 3.0)

    def sample(self, rng: np.random.Generator) -> Viewpoint:
        az = rng.uniform(0.0, 360.0)
        el = rng.uniform(*self.elevation)
        tilt = rng.uniform(*self.tilt)
        dist = rng.uniform(*self.distance)
        return Viewpoint(float(az), float(el), float(tilt), float(dist))


def read_viewpoint_file(path: str) -> np.ndarray:
    """(N, 4) float64 rows ``azimuth elevation tilt distance``; InputError names the file and
    line of any malformed row."""
    rows = []
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.readlines()
    except (OSError, UnicodeDecodeError) as e:
        raise InputError("bad_viewpoints", f"cannot read viewpoint file: {e}", path) from None
    for n, line in enumerate(lines, 1):
        s = line.strip()
        if not s or s.startswith("#"):
            continue
        parts = s.split()
        try:
            vals = [float(p) for p in parts]
        except ValueError:
            vals = []
        if len(vals) != 4 or not all(np.isfinite(vals)):
            raise InputError("bad_viewpoints", f"line {n}: expected 4 numbers 'azimuth elevation tilt distance', got {s!r}", path)
        if vals[3] <= 0:
            raise InputError("bad_viewpoints", f"line {n}: distance must be > 0, got {vals[3]}", path)
        rows.append(vals)
    if not rows:
        raise InputError("bad_viewpoints", "viewpoint file has no rows", path)
    return np.asarray(rows, dtype=np.float64)


@dataclasses.dataclass(frozen=True)
class ViewpointTable:
    """Rows of a viewpoint file; :meth:`sample` draws a row uniformly, :meth:`row` takes one."""

    rows: tuple

    @classmethod
    def from_file(cls, path: str) -> "ViewpointTable":
        return cls(tuple(map(tuple, read_viewpoint_file(path).tolist())))

    def __len__(self):
        return len(self.rows)

    def row(self, i: int) -> Viewpoint:
        return Viewpoint(*self.rows[i])

    def sample(self, rng: np.random.Generator) -> Viewpoint:
        return self.row(int(rng.integers(len(self.rows))))
