"""The pyrender backend on the real GL stack: pixel convention, depth, coverage, keypoints,
and conformance with Render for CNN's own render."""
import os
import threading

import cv2
import numpy as np
import trimesh

from kpdata import camera, geometry, mesh
from kpdata.keypoints import Keypoints3D
from renderers import RenderRequest


def _mesh(tmp_path, tm: trimesh.Trimesh, name="m") -> mesh.LoadedMesh:
    path = str(tmp_path / f"{name}.obj")
    tm.export(path)
    return mesh.load_mesh(path)


def _request(intr, pose):
    return RenderRequest(intr, tuple(map(tuple, pose)))


def test_pixel_convention_and_depth_of_a_small_sphere(tmp_path, renderer):
    """The rendered mask of a sphere equals the analytic one (a ray through each OpenCV pixel
    centre hits the sphere), for an off-centre principal point: a half-pixel slip would move the
    centroid by 0.5 px."""
    sphere = trimesh.creation.icosphere(subdivisions=5, radius=0.05)
    m = _mesh(tmp_path, sphere)
    intr = camera.Intrinsics(400.0, 380.0, 150.3, 110.7, 320, 240)
    rng = np.random.default_rng(0)
    for _ in range(5):
        pose = geometry.make_transform(np.eye(3), [rng.uniform(-0.3, 0.3), rng.uniform(-0.2, 0.2), rng.uniform(1.5, 2.5)])
        out = renderer.render(renderer.prepare(m), _request(intr, pose))
        vv, uu = np.mgrid[0:240, 0:320]
        rays = camera.unproject(intr.K, np.stack([uu.ravel(), vv.ravel()], 1), np.ones(uu.size))
        c = pose[:3, 3]
        # distance from the sphere's centre to each ray through the camera centre
        dist = np.linalg.norm(np.cross(rays, c), axis=1) / np.linalg.norm(rays, axis=1)
        analytic = (dist < 0.05).reshape(240, 320)
        v, u = np.nonzero(out["mask"])
        va, ua = np.nonzero(analytic)
        assert abs(u.mean() - ua.mean()) < 0.02 and abs(v.mean() - va.mean()) < 0.02
        assert np.sum(out["mask"] != analytic) <= 3  # the mesh is a polyhedron inscribed in the sphere
        # nearest depth is the sphere's front, z - r
        assert abs(out["depth"][out["mask"]].min() - (pose[2, 3] - 0.05)) < 2e-3


def test_depth_matches_trimesh_ray_casting(tmp_path, renderer, fixtures):
    obj = os.path.join(fixtures, "shapenet_core_v1/03001627/21bfb150cfc23accb01c58badc8bbc39/model.obj")
    m = mesh.load_mesh(obj)
    intr = camera.Intrinsics.centered(320, 240, 350)
    cam_T_obj = geometry.viewpoint_to_cam_T_obj(geometry.Viewpoint(30, 25, 2, 2.2))
    out = renderer.render(renderer.prepare(m), _request(intr, cam_T_obj))
    tm = trimesh.util.concatenate([g for g in m.scene.dump()])
    # rays through every 3rd pixel centre, in the object frame
    vv, uu = np.mgrid[1:240:3, 1:320:3]
    dirs_cam = camera.unproject(intr.K, np.stack([uu.ravel(), vv.ravel()], 1), np.ones(uu.size))
    obj_T_cam = geometry.invert_transform(cam_T_obj)
    origins = np.repeat(obj_T_cam[:3, 3][None], len(dirs_cam), 0)
    dirs = dirs_cam @ obj_T_cam[:3, :3].T
    locs, idx, _ = trimesh.ray.ray_triangle.RayMeshIntersector(tm).intersects_location(origins, dirs, multiple_hits=False)
    ref = np.zeros(len(dirs))
    ref[idx] = geometry.transform_points(cam_T_obj, locs)[:, 2]
    got = out["depth"][vv.ravel(), uu.ravel()]
    both = (ref > 0) & (got > 0)
    assert both.sum() > 500
    # silhouettes agree except at a few edge pixels
    assert np.mean((ref > 0) != (got > 0)) < 0.01
    # depth agrees within 0.5 % where both hit (the GL depth buffer is 24-bit)
    rel = np.abs(got[both] - ref[both]) / ref[both]
    assert np.quantile(rel, 0.98) < 0.005


def test_alpha_is_coverage_and_background_transparent(tmp_path, renderer):
    m = _mesh(tmp_path, trimesh.creation.box(extents=(0.4, 0.4, 0.4)))
    intr = camera.Intrinsics.centered(320, 240, 300)
    pose = geometry.viewpoint_to_cam_T_obj(geometry.Viewpoint(30, 30, 10, 2.0))
    out = renderer.render(renderer.prepare(m), _request(intr, pose))
    a = out["rgba"][..., 3]
    assert a[0, 0] == 0 and np.all(a[out["mask"] & (cv2.erode(out["mask"].astype(np.uint8), np.ones((3, 3))) > 0)] == 255)
    assert np.any((a > 0) & (a < 255))  # antialiased edge pixels carry partial coverage
    assert np.all(out["depth"][~out["mask"]] == 0)


def test_keypoint_visibility_against_ray_casting(tmp_path, renderer):
    """Keypoints on the near and far faces of a box: near ones visible, far ones occluded."""
    m = _mesh(tmp_path, trimesh.creation.box(extents=(0.5, 0.5, 0.5)))
    kp = Keypoints3D(("near", "far", "side_out"), np.array([[0.0, 0.0, 0.25], [0.0, 0.0, -0.25], [5.0, 0.0, 0.0]]))
    intr = camera.Intrinsics.centered(320, 240, 300)
    pose = geometry.make_transform(geometry.rot_x(np.pi), [0, 0, 2.0])  # camera looks at the +z face
    out = renderer.render(renderer.prepare(m), _request(intr, pose), kp)
    assert out["visible"].tolist() == [True, False, False]
    np.testing.assert_allclose(out["z"], [1.75, 2.25, 2.0], atol=1e-6)


def test_renders_from_another_thread(tmp_path, renderer):
    """Beam may call setup and process on different threads."""
    m = _mesh(tmp_path, trimesh.creation.box())
    intr = camera.Intrinsics.centered(64, 48, 60)
    pose = geometry.make_transform(np.eye(3), [0, 0, 4.0])
    handle = renderer.prepare(m)
    results = []
    t = threading.Thread(target=lambda: results.append(renderer.render(handle, _request(intr, pose))["mask"].sum()))
    t.start()
    t.join()
    assert results and results[0] == renderer.render(handle, _request(intr, pose))["mask"].sum() > 0


def test_conformance_with_render_for_cnn_reference(fixtures, renderer):
    """DESIGN §4: our silhouette of the v1 chair at viewpoint 120 40 3 2.5 (960x540, f = 1050)
    matches the alpha of Render for CNN's own Blender render with IoU >= 0.95."""
    ref = cv2.imread(os.path.join(fixtures, "r4cnn_demo", "render_chair_960x540.png"), cv2.IMREAD_UNCHANGED)
    m = mesh.load_mesh(os.path.join(fixtures, "shapenet_core_v1/03001627/21bfb150cfc23accb01c58badc8bbc39/model.obj"))
    intr = camera.Intrinsics.centered(960, 540, 1050)
    ious = {}
    for tilt in (3, -3):
        pose = geometry.viewpoint_to_cam_T_obj(geometry.Viewpoint(120, 40, tilt, 2.5))
        mask = renderer.render(renderer.prepare(m), _request(intr, pose))["mask"]
        ref_mask = ref[..., 3] > 127
        ious[tilt] = (mask & ref_mask).sum() / (mask | ref_mask).sum()
    assert ious[3] >= 0.95
    assert ious[-3] < 0.9  # the tilt sign is pinned down, not just tolerated


def test_own_passes_equal_pyrenders_passes(renderer, fixtures, monkeypatch):
    """renderers.gl_view draws the passes with the camera and lights given as uniforms (no scene
    nodes), the depth pass from indexed distinct positions, and keeps uniform locations; pyrender's
    own forward passes with camera and light nodes, drawn into the same framebuffers, give the same
    bytes: colour, depth and the flat coverage pass of 40 views of the real chair (views where
    triangles meet exactly at a pixel centre included: merging a mesh's draws moved one such pixel
    in 100 views), with the default lights and with a hemisphere light."""
    from renderers import gl_view
    from renderers.base import Light
    obj = os.path.join(fixtures, "shapenet_core_v1/03001627/21bfb150cfc23accb01c58badc8bbc39/model.obj")
    m = mesh.load_mesh(obj)
    intr = camera.Intrinsics.centered(227, 227, 1050.0 * 227 / 960)
    rng = np.random.default_rng(3)
    poses = [geometry.viewpoint_to_cam_T_obj(geometry.Viewpoint(rng.uniform(0, 360), rng.uniform(-10, 60),
                                                                rng.uniform(-5, 5), rng.uniform(2, 3)))
             for _ in range(40)]
    sky = (Light("hemisphere", intensity=0.8, direction=(0.2, 1.0, 0.3)), Light("point", intensity=30.0,
                                                                                 position=(1.0, -2.0, 0.5)))
    requests = [_request(intr, p) for p in poses[:30]] + [RenderRequest(intr, tuple(map(tuple, p)), lights=sky)
                                                          for p in poses[30:]]

    def passes():
        handle = renderer.prepare(m)
        out = [(*renderer._render(handle, q), renderer.coverage(handle, q)) for q in requests]
        renderer.release(handle)
        return out

    drawn = []
    monkeypatch.setattr(gl_view.ViewRenderer, "_color_pass",
                        lambda self, *a, _f=gl_view.ViewRenderer._color_pass: drawn.append(1) or _f(self, *a))
    ours = passes()
    assert len(drawn) == 80 and renderer._view._depth_meshes is not None
    monkeypatch.setattr(gl_view.ViewRenderer, "can_draw", lambda self, scene, view: False)
    monkeypatch.setattr(gl_view.ViewRenderer, "_depth_pass_meshes", lambda self, scene: None)

    def pyrenders_set_uniform(self, *args, **kwargs):  # and forget the values ours last sent
        self.__dict__.pop("_kpdata_uniforms", None)
        gl_view.ShaderProgram.set_uniform(self, *args, **kwargs)

    monkeypatch.setattr(gl_view._LocatedProgram, "set_uniform", pyrenders_set_uniform)
    theirs = passes()
    assert len(drawn) == 80  # pyrender's passes
    assert sum(int((o[1] > 0).sum()) for o in ours) > 40 * 500
    for got, ref in zip(ours, theirs):
        for a, b in zip(got, ref):
            assert np.array_equal(a, b)


def test_view_poses_are_the_ones_pyrenders_scene_gives_back():
    """gl_view.node_pose (what the shaders get for a camera or light pose) equals, byte for byte,
    the pose pyrender's scene gives back for a node added with that pose (decomposed into
    translation, quaternion and scale, recomposed): 3,000 random rigid and scaled poses, the
    camera poses of views at the poles and on the axes, and axis-aligned rotations with exact
    and negative zeros."""
    import itertools

    import pyrender
    from scipy.spatial.transform import Rotation

    from renderers import gl_view
    rng = np.random.default_rng(11)
    poses = []
    for i, r in enumerate(Rotation.random(3000, random_state=5).as_matrix()):
        p = np.eye(4)
        p[:3, :3] = r * (rng.uniform(0.1, 10, 3) if i % 3 == 1 else 1.0)
        p[:3, 3] = rng.normal(size=3) * (0.0, 1.0, 100.0)[i % 3]
        poses.append(p)
    for az, el, tilt in itertools.product((0, 90, 180, 270, 33.3), (0, 45, 90, -90), (0, 5)):
        cam_T_obj = geometry.viewpoint_to_cam_T_obj(geometry.Viewpoint(az, el, tilt, 2.0))
        poses.append(geometry.cv_pose_to_gl_pose(geometry.invert_transform(cam_T_obj)))
    for perm, signs, zero in itertools.product(itertools.permutations(range(3)),
                                               itertools.product((1.0, -1.0), repeat=3), (0.0, -0.0)):
        p = np.full((4, 4), zero)
        p[3] = (0.0, 0.0, 0.0, 1.0)
        p[range(3), perm] = signs
        p[:3, 3] = (zero, 1.5, -2.0)
        poses.append(p)
    scene = pyrender.Scene()
    for p in poses:
        node = scene.add(pyrender.DirectionalLight(), pose=p)
        assert gl_view.node_pose(p).tobytes() == scene.get_pose(node).tobytes(), p
        scene.remove_node(node)


def test_linear_depth_is_pyrenders_linearisation():
    """gl_view.linear_depth gives pyrender's depth linearisation's float32 bytes (its formula,
    applied to the hit pixels only as in ``Renderer._read_main_framebuffer``), with near and far
    planes as Python floats and as numpy float64 scalars; 0 where the buffer holds 1.0."""
    from renderers import gl_view

    def pyrenders(depth_im, z_near, z_far):
        inf_inds = depth_im == 1.0
        depth_im = 2.0 * depth_im - 1.0
        noninf = np.logical_not(inf_inds)
        depth_im[noninf] = (2.0 * z_near * z_far) / (z_far + z_near - depth_im[noninf] * (z_far - z_near))
        depth_im[inf_inds] = 0.0
        return depth_im

    rng = np.random.default_rng(2)
    for i in range(40):
        d = rng.uniform(0.0, 1.0, (61, 47)).astype(np.float32)
        d[rng.uniform(size=d.shape) < 0.4] = 1.0
        d[0, :5] = (0.0, np.nextafter(np.float32(1.0), np.float32(0.0)), 0.5, 1.0, 1e-7)
        near, far = rng.uniform(0.01, 2.0), rng.uniform(2.5, 50.0)
        if i % 2:
            near, far = float(near), float(far)
        got, want = gl_view.linear_depth(d.copy(), near, far), pyrenders(d.copy(), near, far)
        assert got.dtype == want.dtype == np.float32
        assert got.tobytes() == want.tobytes()
