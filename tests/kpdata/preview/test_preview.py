"""Tests for kpdata.preview: layout arithmetic, marker/mask placement, edge cases, file output.

Exact properties only (sizes, positions, colours at computed places), no golden images.
"""

import math

import cv2
import numpy as np
import pytest

from kpdata.preview import sheet as preview
from kpdata.preview import (
    CAPTION_HEIGHT,
    CHECKER_COLORS,
    GAP,
    MASK_COLOR,
    MIN_LABEL_TILE_WIDTH,
    VISIBLE_COLOR,
    caption_lines,
    contact_sheet,
    render_tile,
    sheet_layout,
    write_contact_sheet,
)

OBJECT_RGB = (90, 110, 150)  # neither green, red, magenta nor cyan
OBJECT_BGR = OBJECT_RGB[::-1]


def make_view(h=100, w=200, key="02958343/1a2b/v000000", uv=(), visible=(), names=None,
              mask=None, viewpoint=(120.0, 40.0, 3.0, 2.5)):
    """An opaque uniform RGBA image with optional keypoints and mask."""
    image = np.zeros((h, w, 4), np.uint8)
    image[..., :3] = OBJECT_RGB
    image[..., 3] = 255
    uv = np.asarray(uv, np.float32).reshape(-1, 2)
    view = {
        "key": key,
        "image": image,
        "keypoints/names": names if names is not None else [f"kp{i}" for i in range(len(uv))],
        "keypoints/uv": uv,
        "keypoints/visible": np.asarray(visible, np.int64).reshape(-1),
        "viewpoint": viewpoint,
    }
    if mask is not None:
        view["mask"] = mask
    return view


def tile_image(sheet, box):
    """The image part (no caption) of a tile."""
    return sheet[box.y : box.y + box.image_height, box.x : box.x + box.width]


def is_red(px):
    b, g, r = (int(c) for c in px)
    return r >= 200 and g <= 80 and b <= 80


def is_green(px):
    b, g, r = (int(c) for c in px)
    return g >= 150 and r <= 80 and b <= 80


def is_magenta(px):
    b, g, r = (int(c) for c in px)
    return r >= 200 and b >= 200 and g <= 80


def count(window, pred):
    return sum(pred(px) for px in window.reshape(-1, 3))


# --------------------------------------------------------------------------- layout (cardinality)


def test_shape_arithmetic_known_layout():
    tw = 160
    views = [make_view(100, 200, key=f"c/m/v{i:06d}") for i in range(5)]  # tile height 80
    sheet = contact_sheet(views, columns=2, tile_width=tw)
    layout = sheet_layout(views, columns=2, tile_width=tw)

    assert sheet.dtype == np.uint8
    assert sheet.ndim == 3 and sheet.shape[2] == 3
    assert (layout.columns, layout.rows) == (2, 3)
    assert sheet.shape[1] == 2 * tw + 3 * GAP
    assert sheet.shape[0] == layout.legend_height + 3 * (80 + CAPTION_HEIGHT) + 4 * GAP
    assert sheet.shape[:2] == (layout.height, layout.width)
    assert layout.legend_height > 0
    for i, box in enumerate(layout.tiles):
        r, c = divmod(i, 2)
        assert box.x == GAP + c * (tw + GAP)
        assert box.y == layout.legend_height + GAP + r * (80 + CAPTION_HEIGHT + GAP)
        assert (box.width, box.image_height) == (tw, 80)
        # the tile's interior shows the (opaque, uniform) object colour
        assert tuple(tile_image(sheet, box)[40, 80]) == OBJECT_BGR
    # the legend is drawn above the first row
    legend = sheet[: layout.legend_height]
    assert np.any(np.any(legend != preview.BACKGROUND_COLOR, axis=2))
    # the unused sixth cell stays background
    empty = sheet[layout.tiles[4].y :, GAP + tw + GAP : -GAP]
    assert np.all(empty == preview.BACKGROUND_COLOR)


@pytest.mark.parametrize("n, cols", [(1, 1), (2, 2), (4, 2), (5, 3), (9, 3), (10, 4)])
def test_default_columns_is_ceil_sqrt(n, cols):
    views = [make_view(20, 40) for _ in range(n)]
    layout = sheet_layout(views, tile_width=40)
    assert layout.columns == cols == math.ceil(math.sqrt(n))
    assert layout.rows == math.ceil(n / cols)
    assert contact_sheet(views, tile_width=40).shape[:2] == (layout.height, layout.width)


def test_columns_capped_at_number_of_views():
    views = [make_view(20, 40) for _ in range(2)]
    sheet = contact_sheet(views, columns=5, tile_width=40)
    assert sheet.shape[1] == 2 * 40 + 3 * GAP


def test_differing_sizes_row_height_is_tallest_tile():
    rgba = make_view(100, 200)  # tile height 60 at width 120
    rgb = {"key": "rgb", "image": np.full((300, 100, 3), 40, np.uint8)}  # 360
    gray = {"key": "gray", "image": np.full((50, 50), 100, np.uint8)}  # 120
    views = [rgba, rgb, gray]

    one_row = contact_sheet(views, columns=3, tile_width=120)
    lay1 = sheet_layout(views, columns=3, tile_width=120)
    assert one_row.shape == (lay1.legend_height + 360 + CAPTION_HEIGHT + 2 * GAP, 3 * 120 + 4 * GAP, 3)
    assert [b.image_height for b in lay1.tiles] == [60, 360, 120]

    two_rows = contact_sheet(views, columns=2, tile_width=120)
    lay2 = sheet_layout(views, columns=2, tile_width=120)
    assert two_rows.shape[0] == lay2.legend_height + (360 + 120) + 2 * CAPTION_HEIGHT + 3 * GAP
    assert lay2.tiles[2].y == lay2.legend_height + GAP + 360 + CAPTION_HEIGHT + GAP
    assert tuple(tile_image(two_rows, lay2.tiles[2])[60, 60]) == (100, 100, 100)


# --------------------------------------------------------------------------- pixels (feature)


def test_rgb_and_gray_inputs_channel_order():
    red_rgb = {"key": "red", "image": np.tile(np.array([255, 0, 0], np.uint8), (40, 80, 1))}
    gray3d = {"key": "g", "image": np.full((40, 80, 1), 77, np.uint8)}
    gray_alpha = {"key": "ga", "image": np.dstack([np.full((40, 80), 150, np.uint8),
                                                   np.full((40, 80), 255, np.uint8)])}
    views = [red_rgb, gray3d, gray_alpha]
    sheet = contact_sheet(views, columns=3, tile_width=80)
    boxes = sheet_layout(views, columns=3, tile_width=80).tiles
    assert tuple(tile_image(sheet, boxes[0])[20, 40]) == (0, 0, 255)  # BGR red
    assert tuple(tile_image(sheet, boxes[1])[20, 40]) == (77, 77, 77)
    assert tuple(tile_image(sheet, boxes[2])[20, 40]) == (150, 150, 150)


def test_transparent_pixels_show_checkerboard():
    view = make_view(64, 64)
    view["image"][..., 3] = 0
    view["image"][:, 32:, 3] = 128  # right half: half coverage
    sheet = contact_sheet([view], tile_width=64)
    img = tile_image(sheet, sheet_layout([view], tile_width=64).tiles[0])
    light, dark = CHECKER_COLORS
    assert tuple(img[0, 0]) == (light,) * 3
    assert tuple(img[0, 8]) == (dark,) * 3
    assert tuple(img[8, 8]) == (light,) * 3
    # half alpha: halfway between the object colour and the checkerboard
    expected = [(128 / 255) * c + (1 - 128 / 255) * light for c in OBJECT_BGR]
    assert np.allclose(img[0, 48].astype(float), expected, atol=1.0)


def test_visible_keypoint_is_green_at_scaled_position():
    # 200 x 100 image into a 400 px tile: scale 2; (u, v) -> ((u + .5) * 2 - .5, (v + .5) * 2 - .5)
    view = make_view(100, 200, uv=[(50.0, 30.0)], visible=[1], names=["left_front_wheel"])
    sheet = contact_sheet([view], tile_width=400)
    box = sheet_layout([view], tile_width=400).tiles[0]
    img = tile_image(sheet, box)
    assert img.shape[:2] == (200, 400)
    for y in (60, 61):  # the centre 100.5, 60.5 lies between four pixels
        for x in (100, 101):
            assert tuple(img[y, x]) == VISIBLE_COLOR
    # and it is the marker, not the image: no keypoint -> object colour there
    bare = contact_sheet([make_view(100, 200)], tile_width=400)
    assert tuple(tile_image(bare, box)[60, 100]) == OBJECT_BGR
    # nothing green far from it
    assert count(img[150:, 250:], is_green) == 0


def test_occluded_keypoint_is_red_at_scaled_position():
    view = make_view(100, 200, uv=[(150.0, 70.0)], visible=[0], names=["right_back_wheel"])
    sheet = contact_sheet([view], tile_width=400)
    img = tile_image(sheet, sheet_layout([view], tile_width=400).tiles[0])
    cx, cy = 300, 140  # (150.5 * 2 - .5, 70.5 * 2 - .5) = (300.5, 140.5)
    window = img[cy - 7 : cy + 9, cx - 7 : cx + 9]
    assert count(window, is_red) >= 10
    assert count(window, is_green) == 0
    assert not is_red(img[cy, cx])  # hollow: the image shows through the middle
    assert count(img[:100, :200], is_red) == 0  # nothing red elsewhere


def test_visible_flag_counts_and_outside_keypoint_clamped_to_edge():
    view = make_view(
        100, 200, uv=[(-40.0, 50.0), (20.0, 20.0), (180.0, 80.0)], visible=[0, 1, 0],
        names=["mirror", "a", "b"],
    )
    sheet = contact_sheet([view], tile_width=400)
    img = tile_image(sheet, sheet_layout([view], tile_width=400).tiles[0])
    # u = -40 is left of the image: the marker sits at the left edge, at the scaled v (100.5)
    assert count(img[92:110, 0:14], is_magenta) >= 10
    assert count(img, is_magenta) == count(img[92:110, 0:14], is_magenta)
    assert caption_lines(view, 400)[2] == "kp 1/3 visible, 1 outside"


def test_mask_outline_exact_at_scale_one():
    h, w = 60, 80
    mask = np.zeros((h, w), np.uint8)
    mask[10:40, 20:60] = 255
    view = make_view(h, w, mask=mask)
    sheet = contact_sheet([view], tile_width=w)
    img = tile_image(sheet, sheet_layout([view], tile_width=w).tiles[0])
    cyan = np.all(img == MASK_COLOR, axis=2)
    boundary = mask > 0
    boundary[11:39, 21:59] = False  # keep the 1 px perimeter of the rectangle
    assert np.array_equal(cyan, boundary)


@pytest.mark.parametrize("h, w, rows, cols, tile_width, expected_rows, expected_cols", [
    # 100 x 50 -> 300 x 150 (scale 3). Mask rows 10..29, cols 20..69: pixel edges 9.5/29.5 and
    # 19.5/69.5 map to 29.5/89.5 and 59.5/209.5, i.e. tile rows 30..89 and cols 60..209.
    (50, 100, (10, 30), (20, 70), 300, (30, 90), (60, 210)),
    # 200 x 100 -> 100 x 50 (scale 1/2): mask rows 20..59, cols 40..159 -> rows 10..29, cols 20..79
    (100, 200, (20, 60), (40, 160), 100, (10, 30), (20, 80)),
])
def test_mask_outline_rescaled(h, w, rows, cols, tile_width, expected_rows, expected_cols):
    mask = np.zeros((h, w), np.uint8)
    mask[rows[0]:rows[1], cols[0]:cols[1]] = 255
    view = make_view(h, w, mask=mask)
    sheet = contact_sheet([view], tile_width=tile_width)
    img = tile_image(sheet, sheet_layout([view], tile_width=tile_width).tiles[0])
    cyan = np.all(img == MASK_COLOR, axis=2)
    expected = np.zeros_like(cyan)
    (r0, r1), (c0, c1) = expected_rows, expected_cols
    expected[r0:r1, c0:c1] = True
    expected[r0 + 1:r1 - 1, c0 + 1:c1 - 1] = False
    assert np.array_equal(cyan, expected)


def test_names_drawn_only_on_large_tiles():
    def sheet(name, tw):
        v = make_view(100, 200, uv=[(100.0, 50.0)], visible=[1], names=[name])
        return contact_sheet([v], tile_width=tw)

    small = MIN_LABEL_TILE_WIDTH - 1
    assert np.array_equal(sheet("a", small), sheet("front_left_light", small))
    assert not np.array_equal(sheet("a", 320), sheet("front_left_light", 320))


# --------------------------------------------------------------------------- captions


def test_caption_lines():
    view = make_view(uv=[(1, 1), (2, 2), (3, 3)], visible=[1, 0, 1])
    assert caption_lines(view, 320) == [
        "02958343/1a2b/v000000",
        "az 120.0 el 40.0 tilt 3.0 d 2.50",
        "kp 2/3 visible",
    ]
    no_vp = make_view(viewpoint=None)
    assert caption_lines(no_vp)[1] == "viewpoint n/a"
    nan = make_view(uv=[(np.nan, 1.0), (3, 3)], visible=[0, 1])
    assert caption_lines(nan)[2] == "kp 1/2 visible, 1 nan"
    contact_sheet([nan])  # a non-finite uv is not drawn, and does not crash


def test_long_key_wrapped_whole_at_its_slashes():
    key = "02958343/1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b/v000017"
    lines = caption_lines(make_view(key=key), 160)
    n = len(lines) - 2  # the key's lines, then viewpoint and keypoint count
    assert n >= 2 and "".join(lines[:n]) == key and "..." not in "".join(lines[:n])
    assert lines[0] == "02958343/" and lines[n - 1] == "v000017" and lines[n - 2].endswith("/")
    for line in lines[:n]:
        (width, _), _ = cv2.getTextSize(line, preview.FONT, preview.CAPTION_SCALE, 1)
        assert width <= 160 - 8
    # the tile grows by the extra lines, and the sheet layout knows it
    view = make_view(key=key)
    assert render_tile(view, 160).shape[0] == 80 + CAPTION_HEIGHT + (n - 1) * 15
    assert sheet_layout([view], tile_width=160).height == contact_sheet([view], tile_width=160).shape[0]


def test_crowded_keypoints_are_numbered_with_a_legend_of_names():
    """Twelve keypoints in a row on a flat tile (a bus seen from the side) cannot all carry their
    names: each marker gets its number, the names are listed under the tile; three far-apart ones
    keep their names."""
    names = [f"body_front_left_upper_{i}" for i in range(12)]
    crowded = make_view(h=60, w=400, uv=[(20 + 30 * i, 30) for i in range(12)], visible=[1] * 12, names=names)
    tile = render_tile(crowded, 320)
    lines = caption_lines(crowded, 320)
    legend = tile.shape[0] - 48 - (len(lines) * 15 + 4)  # 60x400 image -> 48 px at 320
    assert legend >= 4 * 15  # 12 long names need several legend lines
    layout = sheet_layout([crowded], tile_width=320)
    assert layout.height == contact_sheet([crowded], tile_width=320).shape[0]
    from kpdata.preview import labels
    lines_ = labels.legend_lines(list(enumerate(names)), 312, preview.CAPTION_SCALE)
    assert " ".join(lines_).split() == [t for i, n in enumerate(names) for t in (str(i + 1), n)]
    sparse = make_view(h=200, w=400, uv=[(40, 40), (200, 100), (360, 160)], visible=[1, 1, 1], names=names[:3])
    assert render_tile(sparse, 320).shape[0] == 160 + CAPTION_HEIGHT  # names beside the markers, no legend


# --------------------------------------------------------------------------- edge cases (smoke)


def test_no_views():
    for views in ([], iter([])):
        sheet = contact_sheet(views)
        assert sheet.dtype == np.uint8 and sheet.ndim == 3 and sheet.shape[2] == 3
        assert sheet.shape[0] > 0 and sheet.shape[1] > 0
        assert np.any(np.any(sheet != preview.BACKGROUND_COLOR, axis=2))  # the "no views" text


def test_zero_keypoints():
    k0 = make_view(uv=np.zeros((0, 2)), visible=[], names=[])
    absent = {"key": "no/kp", "image": np.zeros((30, 40, 4), np.uint8)}
    sheet = contact_sheet([k0, absent], tile_width=100)
    layout = sheet_layout([k0, absent], tile_width=100)
    assert sheet.shape == (layout.height, layout.width, 3)
    assert caption_lines(k0)[2] == "kp 0/0 visible"
    assert caption_lines(absent)[2] == "kp 0/0 visible"


def test_flat_uv_as_in_tf_example():
    v = make_view(uv=[(10, 20), (30, 40)], visible=[1, 0])
    flat = dict(v, **{"keypoints/uv": v["keypoints/uv"].reshape(-1)})
    assert np.array_equal(contact_sheet([v]), contact_sheet([flat]))


def test_deterministic():
    views = [make_view(uv=[(10, 20), (30, 40)], visible=[1, 0]), make_view(50, 50)]
    assert np.array_equal(contact_sheet(views, tile_width=200), contact_sheet(views, tile_width=200))


# --------------------------------------------------------------------------- bad input (exception)


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="columns"):
        contact_sheet([make_view()], columns=0)
    with pytest.raises(ValueError, match="tile_width"):
        contact_sheet([make_view()], tile_width=4)


def test_bad_views_raise_naming_the_key():
    v = make_view(key="bad/mask", mask=np.zeros((10, 10), np.uint8))
    with pytest.raises(ValueError, match="bad/mask"):
        contact_sheet([v])
    v = make_view(key="bad/uv")
    v["keypoints/uv"] = np.zeros((3, 3), np.float64)
    v["keypoints/names"] = ["a", "b", "c"]
    v["keypoints/visible"] = np.ones(3)
    with pytest.raises(ValueError, match=r"bad/uv.*\(K, 2\)"):
        contact_sheet([v])
    v = make_view(key="bad/vis", uv=[(1, 1), (2, 2)], visible=[1])
    with pytest.raises(ValueError, match="bad/vis"):
        contact_sheet([v])
    with pytest.raises(ValueError, match="bad/img"):
        contact_sheet([{"key": "bad/img", "image": np.zeros((4, 4, 5), np.uint8)}])


# --------------------------------------------------------------------------- file output (round trip)


def test_write_contact_sheet_round_trip(tmp_path):
    views = [make_view(uv=[(10, 20)], visible=[1]), make_view(60, 60)]
    path = str(tmp_path / "sheet.png")
    assert write_contact_sheet(path, views, columns=1, tile_width=120) == path
    assert np.array_equal(cv2.imread(path), contact_sheet(views, columns=1, tile_width=120))


def test_write_contact_sheet_failure_names_the_path(tmp_path):
    path = str(tmp_path / "missing_dir" / "sheet.png")
    with pytest.raises(IOError, match="missing_dir"):
        write_contact_sheet(path, [make_view()])


def test_crop_to_content_keeps_pixels_under_keypoints():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (100, 200, 4), dtype=np.uint8)
    mask = np.zeros((100, 200), np.uint8)
    mask[20:41, 50:71] = 255
    uv = np.array([[80.0, 30.0], [55.0, 25.0], [-10.0, 30.0], [250.0, 30.0]], np.float32)
    view = {"key": "k", "image": image, "mask": mask, "keypoints/uv": uv,
            "keypoints/visible": np.array([1, 1, 0, 0]), "keypoints/names": list("abcd")}
    out = preview.crop_to_content(view, margin=0.1)
    crop, cuv = out["image"], out["keypoints/uv"]
    assert crop.shape[0] < 100 and crop.shape[1] < 200
    assert out["mask"].sum() == mask.sum()  # the whole mask is kept
    for (u, v), (cu, cv) in zip(uv[:2], cuv[:2]):  # in-image keypoints point at the same pixels
        np.testing.assert_array_equal(crop[int(cv), int(cu)], image[int(v), int(u)])
    assert cuv[2, 0] < 0 and cuv[3, 0] > crop.shape[1]  # outside stays outside
    empty = dict(view, mask=np.zeros_like(mask), **{"keypoints/uv": np.zeros((0, 2))})
    assert preview.crop_to_content(empty)["image"].shape == image.shape
