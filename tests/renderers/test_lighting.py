"""Render for CNN's random lights and their mapping to pyrender (environment -> ambient, lamps ->
directional / point lights with Blender's irradiance)."""
import numpy as np
import trimesh

from kpdata import geometry
from kpdata.camera import Intrinsics
from kpdata.clickhere.lighting import PointLamp, R4CNNLighting
from kpdata.mesh import load_mesh
from renderers import RenderRequest
from renderers.lighting import lamp_irradiance, to_render_lights


def test_sampling_follows_render_for_cnn():
    draws = [R4CNNLighting.sample(np.random.default_rng(i)) for i in range(2000)]
    counts = np.bincount([len(d.lamps) for d in draws], minlength=7)
    assert len(counts) == 7 and counts.min() > 200  # randint(0, 6): 0..6 inclusive
    lamps = np.concatenate([d.as_array() for d in draws])
    assert lamps[:, 0].min() >= 8 and lamps[:, 0].max() <= 20
    assert abs(lamps[:, 3].mean() - 2) < 0.1 and abs(lamps[:, 3].std() - 2) < 0.1 and lamps[:, 3].min() < 0
    env = [d.environment_energy for d in draws]
    assert 0 <= min(env) and max(env) <= 1


def test_mapping_kinds_and_directions():
    vp = geometry.Viewpoint(30, 20, 0, 2.5)
    cam_T_world = geometry.viewpoint_to_cam_T_world(vp)
    lamps = tuple(PointLamp(10 + i, 30, 20, 1.0) for i in range(6))
    lights, ambient = to_render_lights(R4CNNLighting(0.4, lamps), cam_T_world)
    assert ambient == (0.4, 0.4, 0.4)
    assert [lt.kind for lt in lights] == ["directional"] * 4 + ["point"] * 2
    # a lamp behind the camera shines along the optical axis (+z in the OpenCV camera frame)
    np.testing.assert_allclose(lights[0].direction, [0, 0, 1], atol=1e-9)
    assert np.isclose(lights[0].intensity, np.pi * 625 / (625 + 100) / 0.96 ** 2)
    assert np.isclose(lights[4].intensity, lamp_irradiance(1.0, 14) * 14 ** 2)
    np.testing.assert_allclose(lights[4].position, [0, 0, -(14 - 2.5)], atol=1e-9)


def _box(tmp_path):
    """A box with an OBJ/MTL material, as ShapeNet models have (pyrender would make it metallic)."""
    box = trimesh.creation.box(extents=(0.5, 0.5, 0.5))
    box.visual = trimesh.visual.TextureVisuals(
        uv=np.zeros((len(box.vertices), 2)),
        material=trimesh.visual.material.SimpleMaterial(diffuse=(200, 180, 160, 255)))
    path = tmp_path / "box.obj"
    box.export(str(path))
    assert "mtllib" in path.read_text()
    return load_mesh(str(path))


def _linear(rgba):
    # pyrender writes colour ** (1 / 2.2)
    return (rgba[..., :3].astype(np.float64) / 255.0) ** 2.2


def test_rendered_light_follows_the_blender_mapping(renderer, tmp_path):
    """A face looking at the camera, lit (a) by the environment only and (b) by one lamp right
    behind the camera: linear radiance ratio = E D^2/(D^2 + r^2) / E_env, as Blender's Lambert
    shading gives (up to pyrender's small specular term)."""
    handle = renderer.prepare(_box(tmp_path))
    vp = geometry.Viewpoint(0, 0, 0, 3.0)  # camera on +X, the box's +X face towards it
    intr = Intrinsics.centered(320, 240, 300)
    pose = tuple(map(tuple, geometry.viewpoint_to_cam_T_obj(vp)))
    cam_T_world = geometry.viewpoint_to_cam_T_world(vp)

    def render(lighting):
        lights, ambient = to_render_lights(lighting, cam_T_world)
        return renderer.render(handle, RenderRequest(intr, pose, lights=lights, ambient=ambient))["rgba"]

    env = _linear(render(R4CNNLighting(0.3, ())))[110:130, 150:170]
    lamp = _linear(render(R4CNNLighting(0.0, (PointLamp(10.0, 0.0, 0.0, 0.5),))))[110:130, 150:170]
    half = _linear(render(R4CNNLighting(0.15, ())))[110:130, 150:170]
    renderer.release(handle)
    assert env.min() > 0.05
    expected = 0.5 * 625 / (625 + 100) / 0.3
    np.testing.assert_allclose(lamp / env, expected, rtol=0.03)
    np.testing.assert_allclose(half / env, 0.5, rtol=0.02)
