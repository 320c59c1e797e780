"""Photos that are not whole 8-bit images: each refused with its reason, or converted and said so
(issue 14, items 1 and 5). Independent references: OpenCV encodes the files; the expected pixels
are computed from the arrays written."""
import os

import cv2
import numpy as np
import pytest

from kpdata.clickhere import imageops
from kpdata.errors import InputError
from kpdata.sources import photos


def _jpeg(h=64, w=80) -> bytes:
    y, x = np.mgrid[0:h, 0:w]
    return cv2.imencode(".jpg", np.dstack([x % 256, y % 256, (x + y) % 256]).astype(np.uint8))[1].tobytes()


def test_truncated_jpeg_and_png_are_refused_not_grey_filled(tmp_path):
    data = _jpeg(240, 320)
    assert photos.check_image_bytes(data) == "jpeg"
    (tmp_path / "cut.jpg").write_bytes(data[:len(data) // 2])
    grey = cv2.imread(str(tmp_path / "cut.jpg"))  # what the old reader did: the missing half flat grey
    assert grey is not None and (grey[-10:] == 128).all()
    png = cv2.imencode(".png", np.full((20, 20, 3), 9, np.uint8))[1].tobytes()
    (tmp_path / "cut.png").write_bytes(png[:-20])
    for name in ("cut.jpg", "cut.png"):
        with pytest.raises(InputError) as e:
            photos.read_image(str(tmp_path / name))
        assert e.value.error == "truncated_image" and e.value.path.endswith(name) and "truncated" in e.value.message


def test_16_bit_png_is_scaled_not_clipped():
    ramp = np.linspace(0, 65535, 64 * 3).astype(np.uint16).reshape(8, 8, 3)
    data = cv2.imencode(".png", ramp)[1].tobytes()
    img, notes = photos.decode_unchanged(data, "ramp.png")
    want = np.round(ramp[..., ::-1].astype(np.float64) / 257).astype(np.uint8)  # BGR file -> RGB
    assert img.dtype == np.uint8 and np.array_equal(img, want) and notes == ["16-bit scaled to 8-bit"]
    assert 0 < np.mean(img == 255) < 0.05  # not clipped to white
    assert np.abs(photos.decode_image(data).astype(int) - want).max() <= 1


def test_a_non_utf8_file_name_is_read_and_printable(tmp_path):
    raw = os.path.join(os.fsencode(str(tmp_path)), b"caf\xe9.jpg")
    with open(raw, "wb") as f:
        f.write(_jpeg())
    (name,) = photos.list_images(str(tmp_path))
    assert photos.read_image(os.path.join(str(tmp_path), name)).shape == (64, 80, 3)  # no crash, no error
    assert photos.printable(name) == "caf\\xe9.jpg"
    photos.printable(name).encode("utf-8")


def test_background_picker_names_every_rejected_and_converted_photo(tmp_path):
    big = np.random.default_rng(1).integers(0, 255, (100, 120, 3), dtype=np.uint8)
    cv2.imwrite(str(tmp_path / "good.jpg"), big)
    (tmp_path / "cut.jpg").write_bytes(cv2.imencode(".jpg", big)[1].tobytes()[:900])
    (tmp_path / "empty.jpg").write_bytes(b"")
    (tmp_path / "text.png").write_bytes(b"hello, not a picture")
    cv2.imwrite(str(tmp_path / "grey.png"), big[..., 0])
    cv2.imwrite(str(tmp_path / "small.png"), big[:10, :10])
    cv2.imwrite(str(tmp_path / "deep.png"), big.astype(np.uint16) * 257)
    with open(os.path.join(os.fsencode(str(tmp_path)), b"\xff\xfe.jpg"), "wb") as f:
        f.write(cv2.imencode(".jpg", big)[1].tobytes()[:900])
    picker = imageops.BackgroundPicker(str(tmp_path), ratio=1.0, max_tries=50)
    rng = np.random.default_rng(0)
    reports, sources = [], []
    for _ in range(60):
        r = picker.pick(64, 48, rng)
        sources.append(r.source)
        reports += picker.reports()
    kinds = {name: kind for name, kind, _, _ in reports}
    assert len(kinds) == len(reports)  # once per photo
    assert kinds == {"cut.jpg": "truncated_image", "empty.jpg": "empty_image", "text.png": "not_an_image",
                     "grey.png": "greyscale", "small.png": "too_small", "deep.png": "converted",
                     os.fsdecode(b"\xff\xfe.jpg"): "truncated_image"}
    for name, _, message, path in reports:
        assert message and path.endswith(photos.printable(name)) and path.encode("utf-8")
    used = {s.split("@")[0] for s in sources if not s.startswith("gray:")}
    assert used == {"good.jpg", "deep.png"}
    # the 16-bit photo's crop is the 8-bit photo's (exact: v * 257 / 257)
    r = next(picker.pick(64, 48, np.random.default_rng(s)) for s in range(100)
             if picker.pick(64, 48, np.random.default_rng(s)).source.startswith("deep.png"))
    x, y = (int(v) for v in r.source.split("@")[1].split(","))
    assert np.array_equal(r.image, big[y:y + 48, x:x + 64, ::-1])
