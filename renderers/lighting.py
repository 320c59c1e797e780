"""Render for CNN's Blender lights as pyrender lights (:class:`kpdata.clickhere.lighting.R4CNNLighting`).

The mapping, chosen so that a Lambertian surface gets the light Blender Internal gives it:

* Blender's environment light (energy ``E``, plain white) adds ``E * albedo``; pyrender's ambient
  term adds ``ambient * base_color``. So ``ambient = (E, E, E)``.
* A Blender point lamp (energy ``E``, default inverse-square falloff with its default distance
  ``D = 25``) at ``r`` units gives a diffuse ``albedo * E * D^2 / (D^2 + r^2) * cos``. pyrender's
  diffuse term is ``base_color / pi * radiance * cos``, so the irradiance factor is
  ``pi * E * D^2 / (D^2 + r^2)`` (before the correction below). Lamps sit 8 to 20 units from a model of unit diagonal, where
  Blender's falloff varies by under 2 % and the direction by under 4 degrees, so a lamp becomes
  a pyrender *directional* light with that intensity, shining from the lamp towards the origin.
  pyrender binds at most 4 lights of a kind; lamps 5 and 6 become *point* lights at the lamp's
  position with ``intensity = pi * E * D^2 / (D^2 + r^2) * r^2`` (pyrender divides by the squared
  distance), which is the same irradiance at the object's centre.
* pyrender's dielectric material keeps ``c_diff = 0.96 base`` and weights its diffuse term by
  ``1 - F`` (``F = 0.04`` head-on), so lamp intensities are divided by ``0.96 * 0.96``
  (:data:`PYRENDER_DIFFUSE`) to keep Blender's balance between lamps and the environment light.
* Negative energies stay negative (Blender subtracts light; so does pyrender's shader, before it
  clamps the final colour).
"""
from __future__ import annotations

import numpy as np

from kpdata import geometry
from kpdata.clickhere.lighting import R4CNNLighting
from renderers.base import Light

BLENDER_LAMP_DISTANCE = 25.0
MAX_DIRECTIONAL = 4  # pyrender's MAX_N_LIGHTS per kind
PYRENDER_DIFFUSE = 0.96 * 0.96  # (1 - F0) * (1 - min_roughness) of pyrender's dielectric diffuse


def lamp_irradiance(energy: float, distance: float) -> float:
    """pyrender radiance factor equivalent to a Blender inverse-square lamp at ``distance``."""
    d2 = BLENDER_LAMP_DISTANCE ** 2
    return float(np.pi * energy * d2 / (d2 + distance ** 2) / PYRENDER_DIFFUSE)


def to_render_lights(lighting: R4CNNLighting, cam_T_world) -> tuple[tuple[Light, ...], tuple[float, float, float]]:
    """(lights in the view's OpenCV camera frame, ambient RGB) for a RenderRequest.
    cam_T_world: (4, 4) OpenCV camera pose of the view (Z-up world)."""
    cam_T_world = np.asarray(cam_T_world, dtype=np.float64)
    lights = []
    for i, lamp in enumerate(lighting.lamps):
        p_cam = geometry.transform_points(cam_T_world, lamp.position()[None])[0]
        origin_cam = cam_T_world[:3, 3]
        irr = lamp_irradiance(lamp.energy, lamp.distance)
        if i < MAX_DIRECTIONAL:
            direction = origin_cam - p_cam
            lights.append(Light("directional", intensity=irr, direction=tuple(direction / np.linalg.norm(direction))))
        else:
            lights.append(Light("point", intensity=irr * lamp.distance ** 2, position=tuple(p_cam)))
    e = float(lighting.environment_energy)
    return tuple(lights), (e, e, e)
