"""HPatches layout: write / read round trip, KP2D's resize of pairs, export of one photo."""
import os

import cv2
import numpy as np
import pytest

from kpdata.kp2d import hpatches

from kpdata.sources import photos
from kpdata.errors import InputError
from kpdata.demo import photos as demo_photos


def _photo(w=400, h=300, seed=0):
    rng = np.random.default_rng(seed)
    return cv2.resize(rng.integers(0, 256, (h // 10, w // 10, 3)).astype(np.uint8), (w, h))


def test_round_trip_and_kp2d_resize(tmp_path):
    imgs = [_photo(seed=i) for i in range(6)]
    hs = [np.array([[1.0, 0.1 * k, 3.0], [0.0, 1.0, -2.0], [1e-4, 0.0, 1.0]]) for k in range(5)]
    hpatches.write_sequence(str(tmp_path), "v_x", imgs, hs)
    assert sorted(os.listdir(tmp_path / "v_x")) == sorted([f"{k}.ppm" for k in range(1, 7)]
                                                          + [f"H_1_{k}" for k in range(2, 7)])
    assert (tmp_path / "v_x" / "1.ppm").read_bytes()[:2] == b"P6"
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / "v_x").stat().st_mode & 0o777 == 0o777 & ~umask  # an ordinary folder, not mkdtemp's 0700
    for k in range(2, 7):
        np.testing.assert_allclose(np.loadtxt(tmp_path / "v_x" / f"H_1_{k}"), hs[k - 2], rtol=1e-11)
    (seq,) = hpatches.read_layout(str(tmp_path))
    img1, img3, h = hpatches.load_pair(seq, 3)
    np.testing.assert_array_equal(h, hs[1])
    np.testing.assert_array_equal(img1, imgs[0])
    np.testing.assert_array_equal(img3, imgs[2])
    # resized: H' maps scaled image-1 points to scaled image-3 points
    _, _, h2 = hpatches.load_pair(seq, 3, (200, 100))
    p = np.array([[10.0, 20.0], [300.0, 250.0]])
    q = cv2.perspectiveTransform(p[None], hs[1])[0]
    q_scaled = cv2.perspectiveTransform((p * [0.5, 1 / 3])[None], h2)[0]
    np.testing.assert_allclose(q_scaled, q * [0.5, 1 / 3], atol=1e-9)
    assert hpatches.read_layout(str(tmp_path), "i") == []


def test_read_layout_names_the_bad_file(tmp_path):
    hpatches.write_sequence(str(tmp_path), "i_y", [_photo()] * 6, [np.eye(3)] * 5)
    (tmp_path / "i_y" / "H_1_4").write_text("1 2\n3 4\n")
    with pytest.raises(InputError, match="H_1_4"):
        hpatches.read_layout(str(tmp_path))
    os.remove(tmp_path / "i_y" / "5.ppm")
    with pytest.raises(InputError, match="5.ppm"):
        hpatches.read_layout(str(tmp_path))


def test_export_photo_homographies_map_image_1_onto_image_k(tmp_path):
    d = demo_photos.demo_photo_dir(str(tmp_path / "cache"))
    photo = photos.read_image(os.path.join(d, "demo_01.png"))
    names = hpatches.export_photo(photo, str(tmp_path / "hp"), "demo 01", np.random.default_rng(0), (320, 240))
    assert names == ("v_demo_01", "i_demo_01")
    seqs = {s.name: s for s in hpatches.read_layout(str(tmp_path / "hp"))}
    for k in range(2, 7):
        img1, imgk, h = hpatches.load_pair(seqs["v_demo_01"], k)
        assert img1.shape == imgk.shape == (240, 320, 3)
        moved = cv2.warpPerspective(img1, h, (320, 240))  # image-1 point q lands on H q
        valid = cv2.erode(cv2.warpPerspective(np.ones((240, 320), np.uint8), h, (320, 240)), np.ones((5, 5))) > 0
        a, b = moved[valid].astype(float), imgk[valid].astype(float)
        a, b = a - a.mean(), b - b.mean()
        assert valid.all()  # a patch inside image 1: image k has no empty border
        assert (a * b).sum() / np.sqrt((a * a).sum() * (b * b).sum()) > 0.95
        _, lit, hi = hpatches.load_pair(seqs["i_demo_01"], k)
        np.testing.assert_array_equal(hi, np.eye(3))
        assert np.abs(lit.astype(int) - img1).mean() > 2
