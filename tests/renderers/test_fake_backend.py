"""The fake backend (no OpenGL): depth against trimesh ray casting, the OpenCV pixel convention
against kpdata.camera, coverage, shading, keypoint labels, backend selection, and that neither
importing nor using it loads an OpenGL module."""

import numpy as np
import pytest
import trimesh

from kpdata import camera, geometry, mesh
from kpdata.keypoints import Keypoints3D
from renderers import BACKENDS, FakeRenderer, Light, RenderRequest, create_renderer
from renderers.fake import intersect_box, intersect_sphere



def _mesh(tmp_path, tm: trimesh.Trimesh, name="m") -> mesh.LoadedMesh:
    path = str(tmp_path / f"{name}.obj")
    tm.export(path)
    return mesh.load_mesh(path)


def _request(intr, pose, **kw):
    return RenderRequest(intr, tuple(map(tuple, pose)), **kw)


def _ray_cast_depth(tm: trimesh.Trimesh, intr, cam_T_obj, step=1):
    """(rows, cols, z-depth) of trimesh's first hits of the rays through every ``step``-th pixel
    centre (built with kpdata.camera.unproject), 0 where they miss."""
    vv, uu = np.mgrid[0:intr.height:step, 0:intr.width:step]
    dirs_cam = camera.unproject(intr.K, np.stack([uu.ravel(), vv.ravel()], 1), np.ones(uu.size))
    obj_T_cam = geometry.invert_transform(cam_T_obj)
    origins = np.repeat(obj_T_cam[:3, 3][None], len(dirs_cam), 0)
    dirs = dirs_cam @ obj_T_cam[:3, :3].T
    locs, idx, _ = trimesh.ray.ray_triangle.RayMeshIntersector(tm).intersects_location(
        origins, dirs, multiple_hits=False)
    ref = np.zeros(len(dirs))
    ref[idx] = geometry.transform_points(cam_T_obj, locs)[:, 2]
    return vv.ravel(), uu.ravel(), ref


POSES = [geometry.viewpoint_to_cam_T_obj(geometry.Viewpoint(az, el, tilt, d))
         for az, el, tilt, d in ((30, 25, 2, 2.2), (200, -35, -10, 1.6), (95, 70, 30, 3.0))]


@pytest.mark.parametrize("pose", POSES)
def test_box_depth_equals_trimesh_ray_casting(tmp_path, pose):
    tm = trimesh.creation.box(extents=(0.5, 0.3, 0.8))
    tm.apply_translation([0.05, -0.1, 0.02])
    m = _mesh(tmp_path, tm)
    intr = camera.Intrinsics(165.0, 155.0, 80.3, 59.6, 160, 120)
    r = FakeRenderer(160, 120, shape="box")
    out = r.render(r.prepare(m), _request(intr, pose))
    rows, cols, ref = _ray_cast_depth(tm, intr, pose)
    got = out["depth"][rows, cols]
    assert (ref > 0).sum() > 500
    # the silhouettes agree but for rays grazing an edge
    assert np.sum((ref > 0) != (got > 0)) <= 2
    both = (ref > 0) & (got > 0)
    np.testing.assert_allclose(got[both], ref[both], rtol=1e-6)


def test_sphere_depth_equals_trimesh_ray_casting(tmp_path):
    """The bounding sphere of an icosphere is the sphere it is inscribed in: depths agree to the
    polyhedron's sagitta away from the rim, silhouettes but for rim pixels. (A small image: trimesh
    tests each ray against every triangle its bounding box meets.)"""
    center, radius = np.array([0.1, -0.05, 0.2]), 0.4
    tm = trimesh.creation.icosphere(subdivisions=4, radius=radius)
    tm.apply_translation(center)
    m = _mesh(tmp_path, tm)
    r = FakeRenderer(shape="sphere")
    handle = r.prepare(m)
    np.testing.assert_allclose(handle["center"], center, atol=1e-6)
    assert abs(handle["radius"] - radius) < 1e-6
    sagitta = radius - np.min(np.abs(np.einsum("ij,ij->i", tm.face_normals, tm.triangles_center - center)))
    assert 0 < sagitta < 2e-3 * radius
    intr = camera.Intrinsics.centered(64, 48, 64)
    for pose in POSES:
        out = r.render(handle, _request(intr, pose))
        rows, cols, ref = _ray_cast_depth(tm, intr, pose)
        got = out["depth"][rows, cols]
        assert (ref > 0).sum() > 200
        assert np.sum((ref > 0) != (got > 0)) <= 0.02 * (ref > 0).sum()
        # rays well inside the rim: the distance from the sphere's centre to the ray < 0.9 r
        dirs = camera.unproject(intr.K, np.stack([cols, rows], 1), np.ones(len(rows)))
        c_cam = geometry.transform_points(pose, center[None])[0]
        dist = np.linalg.norm(np.cross(dirs, c_cam), axis=1) / np.linalg.norm(dirs, axis=1)
        inner = (dist < 0.9 * radius) & (ref > 0)
        assert inner.sum() > 150 and np.all(got[inner] > 0)
        # the sphere is at most the sagitta in front of the polyhedron's surface, along a ray
        # meeting it at incidence cos >= sqrt(1 - 0.9^2)
        assert np.all(got[inner] <= ref[inner] * (1 + 1e-6))
        assert np.all(ref[inner] - got[inner] <= sagitta / np.sqrt(1 - 0.9 ** 2) + 1e-6)


def test_mask_is_depth_and_pixel_convention_matches_kpdata_camera(tmp_path):
    """A flat rectangle facing the camera: its mask is exactly the pixel centres inside the
    projection (kpdata.camera.project) of its corners, with an off-centre principal point; the
    rectangle's centre projects to the mask's centroid."""
    w, h = 160, 120
    intr = camera.Intrinsics(150.0, 140.0, 70.3, 66.8, w, h)
    plane = trimesh.Trimesh([[-0.3, -0.2, 0], [0.25, -0.2, 0], [0.25, 0.15, 0], [-0.3, 0.15, 0]], [[0, 1, 2], [0, 2, 3]])
    m = _mesh(tmp_path, plane)
    pose = geometry.make_transform(np.eye(3), [0.07, -0.04, 1.3])
    r = create_renderer(w, h, backend="fake")
    out = r.render(r.prepare(m), _request(intr, pose))
    np.testing.assert_array_equal(out["mask"], out["depth"] > 0)
    corners, _ = camera.project(intr.K, pose, np.array([[-0.3, -0.2, 0.0], [0.25, 0.15, 0.0]]))
    (u0, v0), (u1, v1) = corners
    vv, uu = np.mgrid[0:h, 0:w]
    expected = (uu >= u0) & (uu <= u1) & (vv >= v0) & (vv <= v1)
    np.testing.assert_array_equal(out["mask"], expected)
    np.testing.assert_allclose(out["depth"][expected], 1.3, rtol=1e-6)
    centre, _ = camera.project(intr.K, pose, np.array([[-0.025, -0.025, 0.0]]))
    v, u = np.nonzero(out["mask"])
    # the centroid of the pixel centres inside [u0, u1] is the middle of the first and last of them
    np.testing.assert_allclose([u.mean(), v.mean()], [(np.ceil(u0) + np.floor(u1)) / 2, (np.ceil(v0) + np.floor(v1)) / 2])
    assert np.all(np.abs([u.mean(), v.mean()] - centre[0]) <= 0.5)


def test_small_sphere_mask_and_depth_match_kpdata_camera_rays(tmp_path):
    """As the pyrender test does it: the mask equals the analytic one from kpdata.camera rays,
    the depth is where those rays meet the sphere, and the projected centre of a small off-axis
    sphere is the mask's centroid (up to the pixel grid)."""
    tm = trimesh.creation.icosphere(subdivisions=3, radius=0.05)
    m = _mesh(tmp_path, tm)
    intr = camera.Intrinsics(400.0, 380.0, 150.3, 110.7, 320, 240)
    r = FakeRenderer(shape="sphere")
    handle = r.prepare(m)
    radius = handle["radius"]
    rng = np.random.default_rng(0)
    vv, uu = np.mgrid[0:240, 0:320]
    rays = camera.unproject(intr.K, np.stack([uu.ravel(), vv.ravel()], 1), np.ones(uu.size))  # z = 1
    for _ in range(4):
        pose = geometry.make_transform(np.eye(3), [rng.uniform(-0.3, 0.3), rng.uniform(-0.2, 0.2), rng.uniform(1.5, 2.5)])
        out = r.render(handle, _request(intr, pose))
        c = pose[:3, 3]
        dist = np.linalg.norm(np.cross(rays, c), axis=1) / np.linalg.norm(rays, axis=1)
        analytic = (dist < radius).reshape(240, 320)
        assert np.sum(out["mask"] != analytic) <= 1
        # |t d - c| = r, nearer root: t = (d.c - sqrt((d.c)^2 - |d|^2 (|c|^2 - r^2))) / |d|^2 = z-depth
        dc, dd = rays @ c, np.einsum("ij,ij->i", rays, rays)
        with np.errstate(invalid="ignore"):
            t = (dc - np.sqrt(dc * dc - dd * (c @ c - radius ** 2))) / dd
        both = out["mask"].ravel() & analytic.ravel()
        np.testing.assert_allclose(out["depth"].ravel()[both], t[both], rtol=1e-6)
        (uc, vc), = camera.project(intr.K, pose, np.zeros((1, 3)))[0]
        v, u = np.nonzero(out["mask"])
        assert abs(u.mean() - uc) < 0.25 and abs(v.mean() - vc) < 0.25


def test_alpha_is_coverage_and_background_transparent(tmp_path):
    import cv2
    m = _mesh(tmp_path, trimesh.creation.box(extents=(0.4, 0.4, 0.4)))
    intr = camera.Intrinsics.centered(160, 120, 150)
    pose = geometry.viewpoint_to_cam_T_obj(geometry.Viewpoint(30, 30, 10, 2.0))
    r = FakeRenderer(samples=4)
    out = r.render(r.prepare(m), _request(intr, pose))
    alpha, mask = out["rgba"][..., 3], out["mask"].astype(np.uint8)
    kernel = np.ones((3, 3), np.uint8)
    assert np.all(alpha[cv2.erode(mask, kernel) > 0] == 255)
    assert np.all(out["rgba"][cv2.dilate(mask, kernel) == 0] == 0)
    edge = (alpha > 0) & (alpha < 255)
    assert edge.sum() > 20  # partial coverage along the silhouette
    assert abs(alpha.sum() / 255.0 - mask.sum()) < 0.02 * mask.sum()


def test_flat_shading_follows_the_lights_and_is_deterministic(tmp_path):
    """A box seen from a corner shows three faces; each gets ambient plus the Lambert term of a
    directional light from behind the camera, by its own normal."""
    m = _mesh(tmp_path, trimesh.creation.box(extents=(0.5, 0.5, 0.5)))
    intr = camera.Intrinsics.centered(160, 120, 150)
    pose = geometry.make_transform(geometry.rot_x(0.5) @ geometry.rot_y(-0.6), [0.0, 0.0, 2.0])
    r = FakeRenderer(color=(0.5, 0.5, 0.5), samples=1)
    handle = r.prepare(m)
    base = r.render(handle, _request(intr, pose, lights=(), ambient=(0.4, 0.4, 0.4)))
    lit = np.unique(base["rgba"][base["mask"]][:, :3], axis=0)
    np.testing.assert_array_equal(lit, [[51, 51, 51]])  # 0.4 * 0.5 * 255, every face
    light_dir = np.array([0.3, -0.5, 1.0]) / np.linalg.norm([0.3, -0.5, 1.0])  # from behind the camera
    one = r.render(handle, _request(intr, pose, lights=(Light("directional", intensity=np.pi, direction=tuple(light_dir)),),
                                    ambient=(0.4, 0.4, 0.4)))
    again = r.render(handle, _request(intr, pose, lights=(Light("directional", intensity=np.pi, direction=tuple(light_dir)),),
                                      ambient=(0.4, 0.4, 0.4)))
    np.testing.assert_array_equal(one["rgba"], again["rgba"])
    # per face: the camera-frame normal of the object's axes, and the expected grey value
    normals_cam = pose[:3, :3]  # columns: object +x, +y, +z in the camera frame
    values = set(np.unique(one["rgba"][one["mask"]][:, 0]).tolist())
    expected = set()
    for axis in range(3):
        for sign in (-1.0, 1.0):
            n = sign * normals_cam[:, axis]
            if n[2] < 0:  # faces the camera
                expected.add(int(np.round(np.clip(0.5 * (0.4 + max(float(n @ -light_dir), 0.0)), 0, 1) * 255)))
    assert values == expected and len(values) == 3


def test_keypoint_labels_use_the_fake_depth(tmp_path):
    """render() labels keypoints against the fake depth: the centre of the face towards the
    camera is visible at its own depth, the centre of the far face is hidden behind it."""
    m = _mesh(tmp_path, trimesh.creation.box(extents=(0.4, 0.4, 0.4)))
    intr = camera.Intrinsics.centered(160, 120, 150)
    pose = geometry.make_transform(geometry.rot_y(0.3), [0.02, -0.03, 1.5])
    kps = Keypoints3D(("front", "back", "outside"), np.array([[0.0, 0.0, -0.2], [0.0, 0.0, 0.2], [5.0, 0.0, 0.0]]))
    r = FakeRenderer()
    out = r.render(r.prepare(m), _request(intr, pose), kps)
    uv, z = camera.project(intr.K, pose, kps.xyz)
    np.testing.assert_allclose(out["uv"], uv, atol=1e-4)
    np.testing.assert_array_equal(out["visible"], [True, False, False])
    u, v = np.floor(uv[0] + 0.5).astype(int)
    assert abs(out["depth"][v, u] - z[0]) <= 0.01 * z[0]
    u, v = np.floor(uv[1] + 0.5).astype(int)
    assert out["depth"][v, u] < z[1] * 0.99


def test_prepare_applies_scene_transforms_and_flat_boxes_render(tmp_path):
    m = _mesh(tmp_path, trimesh.creation.box(extents=(1.0, 2.0, 3.0)))
    m.scene.apply_transform(geometry.make_transform(np.diag([1.0, 1.0, 1.0]), [1.0, 0.0, 0.0]))
    handle = FakeRenderer().prepare(m)
    np.testing.assert_allclose(handle["lo"], [0.5, -1.0, -1.5])
    np.testing.assert_allclose(handle["hi"], [1.5, 1.0, 1.5])
    # rays parallel to a slab, and a zero-thickness slab seen face on
    t, n = intersect_box(np.zeros(3), np.array([[0.0, 0.4], [0.0, 0.0], [1.0, 1.0]]), [-1, -1, 2], [1, 1, 2])
    np.testing.assert_allclose(t, [2.0, 2.0])
    np.testing.assert_allclose(n, [[0.0, 0.0], [0.0, 0.0], [-1.0, -1.0]])
    t, _ = intersect_box(np.zeros(3), np.array([[1.0], [0.0], [0.0]]), [-1, 2, -1], [1, 3, 1])
    assert np.isinf(t[0])
    # from inside, the far side is hit
    t, n = intersect_sphere(np.zeros(3), np.array([[0.0], [0.0], [2.0]]), np.zeros(3), 1.0)
    np.testing.assert_allclose(t, [0.5])
    np.testing.assert_allclose(n[:, 0], [0.0, 0.0, -1.0])


def test_backend_names():
    assert BACKENDS == ("pyrender", "fake")
    assert isinstance(create_renderer(8, 6, backend="fake"), FakeRenderer)
    with pytest.raises(ValueError, match="pyrender, fake"):
        create_renderer(8, 6, backend="blender")
    with pytest.raises(ValueError, match="box, sphere"):
        FakeRenderer(shape="cone")


def test_the_fake_backend_loads_no_opengl(run_without_gl):
    """In a process where importing OpenGL, pyrender or pyglet fails, the fake backend imports,
    renders and labels; none of those modules is loaded afterwards."""
    code = (
        "import numpy as np, trimesh\n"
        "from kpdata import camera, geometry\n"
        "from kpdata.keypoints import Keypoints3D\n"
        "from kpdata.mesh import LoadedMesh\n"
        "from renderers import RenderRequest, create_renderer\n"
        "scene = trimesh.Scene(trimesh.creation.box(extents=(0.4, 0.4, 0.4)))\n"
        "m = LoadedMesh('box', scene, np.array(scene.bounds), 12)\n"
        "r = create_renderer(64, 48, backend='fake')\n"
        "pose = geometry.make_transform(np.eye(3), [0, 0, 1.5])\n"
        "out = r.render(r.prepare(m), RenderRequest(camera.Intrinsics.centered(64, 48, 60), tuple(map(tuple, pose))),\n"
        "               Keypoints3D(('a',), np.array([[0.0, 0.0, -0.2]])))\n"
        "assert out['mask'].sum() > 100 and out['visible'].tolist() == [True], out['visible']\n"
        "r.close()\n"
        "try:\n"
        "    create_renderer(64, 48)\n"
        "except Exception as e:\n"
        "    assert 'blocked' in str(e), e\n"
        "else:\n"
        "    raise SystemExit('the pyrender backend imported with OpenGL blocked')\n")
    res = run_without_gl(code)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "gl modules []" in res.stdout
