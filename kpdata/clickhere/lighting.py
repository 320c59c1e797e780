"""Render for CNN's random lights (formats.md §3.3, ``render_model_views.py``).

Per image: the world's environment light with energy U(0, 1) and a plain white colour, and
``randint(0, 6)`` (0 to 6 inclusive) point lamps, each at distance U(8, 20), azimuth U(0, 360),
elevation U(-90, 90) degrees around the object (placed like the camera, in the Z-up world) with
energy N(2, 2) (which can be negative: Blender lets a lamp remove light).
"""
from __future__ import annotations

import dataclasses

import numpy as np

from kpdata.geometry import camera_center

ENVIRONMENT_ENERGY = (0.0, 1.0)
MAX_POINT_LIGHTS = 6
LIGHT_DISTANCE = (8.0, 20.0)
LIGHT_AZIMUTH = (0.0, 360.0)
LIGHT_ELEVATION = (-90.0, 90.0)
LIGHT_ENERGY = (2.0, 2.0)  # mean, std


@dataclasses.dataclass(frozen=True)
class PointLamp:
    """A Blender point lamp: distance (model units), azimuth, elevation (degrees), energy."""

    distance: float
    azimuth: float
    elevation: float
    energy: float

    def position(self) -> np.ndarray:
        """(3,) position in the Z-up world."""
        return camera_center(self.azimuth, self.elevation, self.distance)


@dataclasses.dataclass(frozen=True)
class R4CNNLighting:
    """One image's lights: the environment energy and 0-6 point lamps."""

    environment_energy: float
    lamps: tuple[PointLamp, ...]

    @classmethod
    def sample(cls, rng: np.random.Generator) -> R4CNNLighting:
        env = float(rng.uniform(*ENVIRONMENT_ENERGY))
        n = int(rng.integers(0, MAX_POINT_LIGHTS + 1))
        lamps = tuple(PointLamp(float(rng.uniform(*LIGHT_DISTANCE)), float(rng.uniform(*LIGHT_AZIMUTH)),
                                float(rng.uniform(*LIGHT_ELEVATION)), float(rng.normal(*LIGHT_ENERGY)))
                      for _ in range(n))
        return cls(env, lamps)

    def as_array(self) -> np.ndarray:
        """(L, 4) float32 rows ``distance azimuth elevation energy``."""
        return np.array([[lp.distance, lp.azimuth, lp.elevation, lp.energy] for lp in self.lamps],
                        dtype=np.float32).reshape(-1, 4)
