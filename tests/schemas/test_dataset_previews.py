"""schemas.dataset.previews: the kind of a folder, the registry of sheets, the selection of what
a sheet shows, and each kind's sheet on small folders written here (dataset_folders.py)."""
import json
import os

import pytest

from kpdata.clickhere import KeypointClassTable
from kpdata.preview import crop_to_content, write_contact_sheet
from kpdata.preview import keypointnet as keypointnet_sheet
from kpdata.preview import pairs as pairs_sheet
from kpdata.preview import stereo
from schemas import clickhere as chs
from schemas.dataset import names, previews, records
from tests.schemas.dataset_folders import (
    SYNSET, png_size, write_clickhere, write_dataset, write_keypointnet, write_keypose, write_kp2d, write_sequences,
    write_views,
)

KINDS = ["caffe_datum", "clickhere_instance", "clickhere_view", "hpatches", "keypointnet_pair", "keypose",
         "keypose_sequences", "kp2d_pair", "view", "viewpoint_distributions"]


def test_every_record_kind_has_a_sheet():
    assert previews.kinds() == KINDS
    with pytest.raises(ValueError, match="'view' already has a preview"):
        previews.register("view")(lambda d, n, p: p)
    assert previews.kinds() == KINDS


def test_dataset_kind(tmp_path, fixtures):
    assert previews.dataset_kind(write_views(tmp_path / "v")) == "view"
    assert previews.dataset_kind(write_kp2d(tmp_path / "k")) == "kp2d_pair"
    assert previews.dataset_kind(str(tmp_path / "nothing")) is None
    (tmp_path / "empty").mkdir()
    assert previews.dataset_kind(str(tmp_path / "empty")) is None
    seq = write_sequences(tmp_path / "seq", fixtures)
    assert previews.dataset_kind(seq) == "keypose_sequences"  # no kpdata_info.json
    assert previews.dataset_kind(os.path.join(seq, "bottle_0")) == "keypose_sequences"  # any tree of them
    with open(os.path.join(seq, names.KPDATA_INFO), "w") as f:
        json.dump({"name": "s", "splits": {}}, f)
    assert previews.dataset_kind(seq) == "keypose_sequences"  # an info without a record, over sequences
    d = write_dataset(tmp_path / "old", "view", {"train": []})
    info = json.loads((tmp_path / "old" / names.KPDATA_INFO).read_text())
    del info["record"]
    (tmp_path / "old" / names.KPDATA_INFO).write_text(json.dumps(info))
    assert previews.dataset_kind(d) == "view"  # the default record kind


def test_write_preview_errors_name_the_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match=r"empty/kpdata_info\.json: no kpdata_info\.json and no KeyPose"):
        previews.write_preview(str(tmp_path / "empty"), 4)
    d = write_dataset(tmp_path / "odd", "mystery", {"train": []})
    with pytest.raises(previews.UnknownKind, match=r"odd: no preview for record kind 'mystery' \(known: caffe_datum, "):
        previews.write_preview(d, 4)


def _recs(keys):
    return [{"key": k, "i": i} for i, k in enumerate(keys)]


def test_select_preview_round_robins_over_models():
    keys = [f"c/m{m}/v{v}" for m in range(3) for v in range(4)]
    got = [r["key"] for r in previews.select_preview(iter(_recs(keys)), 5)]
    assert got == ["c/m0/v0", "c/m1/v0", "c/m2/v0", "c/m0/v1", "c/m1/v1"]
    assert len(previews.select_preview(iter(_recs(keys)), 50)) == 12
    # only the first scan_limit records are looked at
    assert [r["key"] for r in previews.select_preview(iter(_recs(keys)), 5, scan_limit=3)] == keys[:3]
    assert [r["key"] for r in previews.select_preview(iter(_recs(keys)), 2, group=lambda k: k[-1])] == \
        ["c/m0/v0", "c/m0/v1"]


def test_select_instances_spreads_over_models_and_views_alternating_flips():
    def key(m, v, kp, r=False):
        return f"{10 * m + kp:08d}_{SYNSET}_m{m}_v{v:06d}_a000_e010_t000_d002_obj0_objc5_kp{kp}" + ("_r" if r else "")
    insts = [{"key": key(m, v, kp, r)} for m in range(2) for v in range(2) for kp in range(2) for r in (False, True)]
    got = [r["key"] for r in previews.select_instances(iter(insts), 6)]
    assert got == [key(0, 0, 0), key(1, 0, 0), key(0, 1, 1, True), key(1, 1, 1, True), key(0, 0, 1), key(1, 0, 1)]
    assert len(previews.select_instances(iter(insts), 100)) == 16
    assert len(previews.select_instances(iter(insts), 100, scan_limit=5)) == 5


def test_spread_takes_first_and_last():
    assert previews.spread(list(range(10)), 3) == [0, 4, 9]  # linspace(0, 9, 3) = 0, 4.5 -> 4, 9
    assert previews.spread([1, 2], 5) == [1, 2]


def test_view_sheet_is_the_cropped_views_of_the_selection(tmp_path):
    d = write_views(tmp_path / "d", models=3, views=3)
    tiles = previews.view_tiles(d, 4)
    assert [t["key"] for t in tiles] == [f"{SYNSET}/m{m}/v{v:06d}" for m, v in ((0, 0), (1, 0), (2, 0), (0, 1))]
    assert tiles[0]["image"].shape == (24, 24, 4) and list(tiles[0]["keypoints/visible"]) == [1, 0]
    path = previews.write_preview(d, 4)
    assert path == os.path.join(d, names.PREVIEW)
    expected = write_contact_sheet(str(tmp_path / "e.png"), [crop_to_content(t) for t in tiles])
    assert open(path, "rb").read() == open(expected, "rb").read()


@pytest.mark.parametrize("layout", [chs.CLICKHERE_VIEW.name, chs.CLICKHERE_INSTANCE.name, records.CAFFE_RECORD])
def test_clickhere_tiles_of_every_layout(tmp_path, layout):
    d = write_clickhere(tmp_path / layout, layout)
    tiles = previews.clickhere_tiles(d, 3)
    assert len(tiles) == 3 and all(t["image"].shape == (227, 227, 3) for t in tiles)
    assert {t["key"].split("_")[1] for t in tiles} == {"m0", "m1"}
    assert all(t["caption"].startswith("label az ") for t in tiles)
    table = KeypointClassTable.clickhere34().names  # the keypoint named by its class in Click-Here's 34
    # the key names the original class; an _r copy's one-hot (what the tile shows) is the swapped one
    for t in tiles:
        kp, flipped = int(t["key"].split("_kp")[1].split("_")[0]), t["key"].endswith("_r")
        want = table[kp].replace("left", "#").replace("right", "left").replace("#", "right") if flipped else table[kp]
        assert t["keypoints/names"] == [want + ("  (_r)" if flipped else "")]
    assert {t["keypoints/names"][0] for t in tiles} <= {"car_left_front_wheel", "car_right_front_wheel  (_r)",
                                                      "car_right_back_trunk", "car_left_back_trunk  (_r)"}


def test_clickhere_layouts_draw_identical_sheets(tmp_path):
    sheets = []
    for layout in (chs.CLICKHERE_VIEW.name, chs.CLICKHERE_INSTANCE.name, records.CAFFE_RECORD):
        d = write_clickhere(tmp_path / layout, layout)
        sheets.append(open(previews.write_preview(d, 5), "rb").read())
    assert sheets[0] == sheets[1] == sheets[2]


def test_keypointnet_sheet(tmp_path):
    d = write_keypointnet(tmp_path / "d", models=3, pairs=2)
    pairs = previews.keypointnet_pairs(d, 3)
    assert [p["view0"]["key"] for p in pairs] == [f"{SYNSET}/m{m}/p0000 view 0" for m in range(3)]
    assert pairs[0]["view1"]["keypoints/uv"].shape == (1, 2) and pairs[0]["mv1"].shape == (4, 4)
    core = previews.keypointnet_pairs(write_keypointnet(tmp_path / "core", models=2, extras=False), 2)
    assert [p["view0"]["key"] for p in core] == ["record/000000 view 0", "record/000001 view 0"]  # one group
    assert "keypoints/uv" not in core[0]["view0"]
    path = previews.write_preview(d, 3)
    expected = keypointnet_sheet.write_pair_sheet(str(tmp_path / "e.png"), pairs)
    assert open(path, "rb").read() == open(expected, "rb").read()


def test_kp2d_sheet(tmp_path):
    d = write_kp2d(tmp_path / "d", photos=3, pairs=2)
    pairs = previews.kp2d_pairs(d, 4)
    assert [p["key"] for p in pairs] == ["photos/p0.jpg/p0", "photos/p1.jpg/p0", "photos/p2.jpg/p0", "photos/p0.jpg/p1"]
    assert pairs[0]["homography"].shape == (3, 3)
    path = previews.write_preview(d, 4, str(tmp_path / "s.png"))
    expected = pairs_sheet.write_pair_sheet(str(tmp_path / "e.png"), pairs)
    assert open(path, "rb").read() == open(expected, "rb").read()


def test_keypose_sheets(tmp_path, fixtures):
    d = write_keypose(tmp_path / "recs", fixtures)
    tiles = previews.keypose_record_tiles(d, 2)
    assert [t["key"] for t in tiles] == ["train/0000", "val/0002"]
    seq = write_sequences(tmp_path / "seq", fixtures)
    os.remove(os.path.join(seq, "bottle_0", "texture_5_pose_0", "000002_L.png"))  # left out of the sheet
    frames = previews.sequence_tiles(seq, 8)
    assert [t["key"] for t in frames] == ["bottle_0/texture_5_pose_0/000001", "bottle_0/texture_5_pose_0/000003"]
    for folder, views in ((d, tiles), (seq, frames)):
        path = previews.write_preview(folder, 8 if folder == seq else 2)
        expected = write_contact_sheet(str(tmp_path / "e.png"), views, columns=2, tile_width=480, legend=stereo.LEGEND)
        assert open(path, "rb").read() == open(expected, "rb").read()
        assert png_size(path)[0] > 900  # two 480 px columns


def test_sheet_of_an_empty_selection_is_drawn(tmp_path):
    d = write_views(tmp_path / "d", models=0)
    path = previews.write_preview(d, 4)
    assert png_size(path)[0] > 0
    assert previews.view_tiles(d, 4) == []
