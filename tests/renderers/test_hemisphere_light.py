"""The hemisphere light (Blender's HEMI lamp): a sphere's shading follows (1 + n . up) / 2.

The normal of every pixel comes from the sphere's geometry (the rendered depth unprojected, minus
the centre), independent of the renderer's lighting."""
import numpy as np
import pytest
import trimesh

from kpdata import camera, geometry
from kpdata.mesh import LoadedMesh
from renderers import Light, RenderRequest


def _sphere(material):
    s = trimesh.creation.icosphere(subdivisions=5, radius=1.0)
    s.visual = trimesh.visual.TextureVisuals(uv=np.zeros((len(s.vertices), 2)), material=material)
    scene = trimesh.Scene(s)
    return LoadedMesh("sphere", scene, np.array(scene.bounds), len(s.faces))


@pytest.mark.parametrize("elevation,intensity", [(-40.0, 1.0), (60.0, 0.7)])
def test_hemisphere_light_shades_like_blenders_hemi_lamp(renderer, elevation, intensity):
    albedo = 200 / 255
    # OBJ-style material: pyrender reads it as fully metallic; the light must still be diffuse.
    mat = trimesh.visual.material.SimpleMaterial(diffuse=[200, 200, 200, 255], glossiness=50)
    handle = renderer.prepare(_sphere(mat))
    try:
        intr = camera.Intrinsics.centered(320, 240, 1800.0)
        cam_T_world = geometry.viewpoint_to_cam_T_world(geometry.Viewpoint(30.0, elevation, 0.0, 30.0))
        down = cam_T_world[:3, :3] @ np.array([0.0, 0.0, -1.0])  # the sky light shines down
        light = Light("hemisphere", direction=tuple(down), intensity=intensity)
        out = renderer.render(handle, RenderRequest(intr, tuple(map(tuple, cam_T_world)), lights=(light,),
                                                    ambient=(0.0, 0.0, 0.0)))
    finally:
        renderer.release(handle)
    rgba, depth = out["rgba"], out["depth"]
    pts = camera.depth_to_points(intr.K, depth)
    n = pts - cam_T_world[:3, 3]
    n /= np.linalg.norm(n, axis=-1, keepdims=True) + 1e-12
    c = n @ -down
    inside = (depth > 0) & (rgba[..., 3] == 255)
    assert inside.sum() > 5000
    linear = (rgba[..., 0].astype(np.float64) / 255) ** 2.2  # pyrender writes gamma 2.2
    expected = intensity * albedo * (1 + c) / 2
    err = np.abs(linear[inside] - expected[inside])
    assert np.percentile(err, 95) < 0.02 and err.max() < 0.04
    # Lit from above, dark towards the ground; nothing else lights it.
    top, bottom = inside & (c > 0.8), inside & (c < -0.8)
    assert top.sum() > 100 if elevation > 0 else bottom.sum() > 100
    if top.any():
        assert linear[top].mean() > 0.85 * intensity * albedo
    if bottom.any():
        assert linear[bottom].mean() < 0.15 * intensity * albedo
    np.testing.assert_array_equal(rgba[..., 3][depth == 0] > 128, False)


def test_materials_are_restored_after_a_hemisphere_render(renderer):
    mat = trimesh.visual.material.SimpleMaterial(diffuse=[200, 200, 200, 255], glossiness=50)
    handle = renderer.prepare(_sphere(mat))
    try:
        prim = next(iter(handle["scene"].meshes)).primitives[0]
        before = (prim.material.metallicFactor, prim.material.roughnessFactor)
        intr = camera.Intrinsics.centered(320, 240, 1800.0)
        pose = geometry.viewpoint_to_cam_T_world(geometry.Viewpoint(0.0, 10.0, 0.0, 30.0))
        renderer.render(handle, RenderRequest(intr, tuple(map(tuple, pose)),
                                              lights=(Light("hemisphere", direction=(0.0, 1.0, 0.0)),)))
        assert (prim.material.metallicFactor, prim.material.roughnessFactor) == before
    finally:
        renderer.release(handle)


def test_unknown_light_kind_is_rejected():
    with pytest.raises(ValueError, match="unknown light kind 'hemi'.*hemisphere"):
        Light("hemi")
