"""Seeded demo-set variants (``count`` > 4): the base set stays byte-identical, variants are
deterministic, distinct, and keep their keypoints on the stretched mesh surface."""
import json

import numpy as np
import pytest
import trimesh

from kpdata import demo



from kpdata.sources import shapenet
def test_default_set_unchanged_and_variants_deterministic(tmp_path):
    base = demo.demo_files()
    grown = demo.demo_files(10)
    assert {k: grown[k] for k in base} == base
    assert demo.demo_files(4) == base
    assert demo.demo_files(10) == grown
    assert demo.demo_files(10, seed=1) != grown
    models = demo.demo_models(10)
    assert len({m[2] for m in models}) == 10 and sorted(models, key=lambda m: (m[0], m[2])) == models
    assert sum(m[1].startswith("bus") for m in models) == 3  # indices 0 (base), 4, 8 cycle through the base models
    dirs = demo.write_demo_set(str(tmp_path), 10)
    assert len(dirs) == len(shapenet.scan(str(tmp_path))) == 10
    with pytest.raises(ValueError, match="count must be >= 4"):
        demo.demo_models(3)


def test_variant_keypoints_on_surface_and_shape_differs():
    files = demo.demo_files(6)
    names = {m[2]: m[1] for m in demo.demo_models(6)}
    extents = {}
    for mid, name in names.items():
        synset = next(m[0] for m in demo.demo_models(6) if m[2] == mid)
        obj = files[f"{synset}/{mid}/model.obj"].decode()
        verts = np.array([[float(x) for x in ln.split()[1:4]] for ln in obj.splitlines() if ln.startswith("v ")])
        faces = np.array([[int(c.split("/")[0]) - 1 for c in ln.split()[1:4]] for ln in obj.splitlines() if ln.startswith("f ")])
        mesh = trimesh.Trimesh(verts, faces, process=False)
        kps = np.array(list(json.loads(files[f"{synset}/{mid}/keypoints.json"]).values()))
        _, dist, _ = trimesh.proximity.closest_point(mesh, kps)
        assert dist.max() < 1e-5, (name, dist.max())
        assert np.linalg.norm(mesh.bounds[1] - mesh.bounds[0]) == pytest.approx(1.0, abs=1e-5)
        extents[name] = mesh.extents / mesh.extents.max()
    assert not np.allclose(extents["bus"], extents["bus-v4"], atol=0.01)
