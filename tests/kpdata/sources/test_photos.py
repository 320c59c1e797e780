"""Photo folders: listing, decoding any JPEG / PNG flavour, bad files, the demo photos."""
import os

import cv2
import numpy as np
import pytest

from kpdata.sources import photos
from kpdata.errors import InputError
from kpdata.demo import photos as demo_photos


def test_listing_and_decoding(tmp_path):
    rgb = np.zeros((30, 40, 3), np.uint8)
    rgb[..., 0] = 200  # red
    cv2.imwrite(str(tmp_path / "a.JPG"), rgb[..., ::-1])
    cv2.imwrite(str(tmp_path / "b.png"), np.full((20, 10), 77, np.uint8))  # greyscale
    cv2.imwrite(str(tmp_path / "c.png"), np.full((8, 8, 4), 255, np.uint8))  # RGBA
    cv2.imwrite(str(tmp_path / "d.png"), np.full((8, 8), 65535, np.uint16))  # 16-bit grey
    (tmp_path / "notes.txt").write_text("x")
    os.makedirs(tmp_path / "sub")
    cv2.imwrite(str(tmp_path / "sub" / "e.jpeg"), rgb)
    assert photos.list_images(str(tmp_path)) == ["a.JPG", "b.png", "c.png", "d.png"]
    assert photos.list_images(str(tmp_path), recursive=True)[-1] == "sub/e.jpeg"
    a = photos.read_image(str(tmp_path / "a.JPG"))
    assert a.shape == (30, 40, 3) and a[..., 0].mean() > 190 and a[..., 2].mean() < 10  # RGB order
    b = photos.read_image(str(tmp_path / "b.png"))
    assert b.shape == (20, 10, 3) and (b == 77).all()
    assert photos.read_image(str(tmp_path / "c.png")).shape == (8, 8, 3)
    assert (photos.read_image(str(tmp_path / "d.png")) == 255).all()
    assert photos.resize(b, (320, 240)).shape == (240, 320, 3)


def test_bad_files_name_the_file(tmp_path):
    (tmp_path / "empty.jpg").write_bytes(b"")
    (tmp_path / "junk.png").write_bytes(b"this is not a png at all")
    for name, kind in (("empty.jpg", "empty_image"), ("junk.png", "not_an_image"), ("missing.jpg", "unreadable_image")):
        with pytest.raises(InputError) as e:
            photos.read_image(str(tmp_path / name))
        assert e.value.error == kind and e.value.path.endswith(name)
    with pytest.raises(InputError, match="not a folder"):
        photos.list_images(str(tmp_path / "nope"))


def test_demo_photos_are_deterministic_and_regenerated(tmp_path):
    d = demo_photos.demo_photo_dir(str(tmp_path))
    assert photos.list_images(d) == [f"demo_0{i}.{e}" for i, e in enumerate(["jpg", "png"] * 3)]
    assert photos.list_images(d, recursive=True)[-1] == "more/demo_06.jpg"
    assert photos.read_image(os.path.join(d, "demo_02.jpg")).shape == (600, 800, 3)
    with open(os.path.join(d, "demo_00.jpg"), "wb") as f:
        f.write(b"broken")
    assert demo_photos.demo_photo_dir(str(tmp_path)) == d
    assert photos.read_image(os.path.join(d, "demo_00.jpg")).shape == (480, 640, 3)
