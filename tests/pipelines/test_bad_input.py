"""Bad input never crashes a run or becomes silent bad data (issue 14): each case is built here;
the run finishes, one dead-letter line names the input and the real cause with its stage, every
good input is written, nothing bad is written as a record, and the output validates."""
import contextlib
import io
import json
import os
import shutil

import cv2
import numpy as np
import pytest

from kpdata import demo
from kpdata.keypose import proto as kpp
from pipelines import gen_homography_pairs, gen_tfrecords, render_shapenet, stream, validate
from schemas.dataset import names
from schemas.dataset.records import iter_records
from schemas.features import SchemaError
from schemas.view import decode_view

SMALL = ["--image_size", "160x90", "--focal", "175", "--views_per_model", "2", "--preview", "0"]
CAR = "02958343"


def dead_letters(out, file=names.FAILURES_FILE):
    with open(os.path.join(out, names.ERRORS_DIR, file), encoding="utf-8") as f:
        return [json.loads(line) for line in f.read().splitlines()]


def validates(out) -> bool:
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        rc = validate.run([str(out)])
    assert rc == 0, buf.getvalue()[-3000:]
    return True


def _copy_model(src, dst):
    shutil.copytree(src, dst)


def _obj(path, vertices, faces):
    with open(path, "w") as f:
        f.write("".join(f"v {x:.9g} {y:.9g} {z:.9g}\n" for x, y, z in vertices))
        f.write("".join(f"f {a + 1} {b + 1} {c + 1}\n" for a, b, c in faces))


def bad_tree(root, cache) -> tuple[list[str], dict]:
    """Two good demo cars and one model for each bad case: {dead-letter key: (stage, error, path part)}."""
    src = os.path.join(demo.demo_shapenet_dir(cache), CAR)
    good = sorted(os.listdir(src))
    car = os.path.join(root, CAR)
    os.makedirs(car)
    for g in good:
        _copy_model(os.path.join(src, g), os.path.join(car, g))
    textured = os.path.join(src, good[0])
    bad = {}
    # 1. a model folder whose name is not UTF-8 (with a texture: cv2.imread crashed on such paths)
    raw = os.path.join(os.fsencode(car), b"caf\xe9")
    shutil.copytree(os.fsencode(textured), raw)
    bad[f"{CAR}/caf\\xe9"] = ("load", "non_utf8_name", "caf\\xe9")
    # 1b. a texture whose name is not UTF-8
    d = os.path.join(car, "texname")
    _copy_model(textured, d)
    os.rename(os.path.join(d, "images", "texture0.png"), os.path.join(os.fsencode(d), b"images", b"t\xff.png"))
    with open(os.path.join(d, "model.mtl"), "rb") as f:
        mtl = f.read().replace(b"images/texture0.png", b"images/t\xff.png")
    with open(os.path.join(d, "model.mtl"), "wb") as f:
        f.write(mtl)
    bad[f"{CAR}/texname"] = ("load", "non_utf8_name", "t\\xff.png")
    # 2. a texture wider than the GL limit (it killed the run with a GLError at upload)
    d = os.path.join(car, "hugetexture")
    _copy_model(textured, d)
    cv2.imwrite(os.path.join(d, "images", "texture0.png"), np.full((2, 16385, 3), 200, np.uint8))
    bad[f"{CAR}/hugetexture"] = ("load", "texture_too_large", "texture0.png")
    # 6. many zero-area faces (rendered blank views that passed validate)
    d = os.path.join(car, "zeroarea")
    os.makedirs(d)
    n = 100_000
    verts = np.repeat(np.random.default_rng(0).uniform(-0.5, 0.5, (n, 3)), 3, axis=0)
    _obj(os.path.join(d, "model.obj"), verts, np.arange(3 * n).reshape(n, 3))
    bad[f"{CAR}/zeroarea"] = ("load", "degenerate_mesh", "model.obj")
    # 6b. a real but tiny triangle: no view shows a pixel of it
    d = os.path.join(car, "tiny")
    os.makedirs(d)
    _obj(os.path.join(d, "model.obj"), [(0, 0, 0), (1e-6, 0, 0), (0, 1e-6, 0)], [(0, 1, 2)])
    bad[f"{CAR}/tiny"] = ("render", "empty_view", "tiny")
    # 10. binary garbage (was "no faces")
    d = os.path.join(car, "garbage")
    os.makedirs(d)
    with open(os.path.join(d, "model.obj"), "wb") as f:
        f.write(bytes(np.random.default_rng(1).integers(0, 256, 5000, dtype=np.uint8)))
    bad[f"{CAR}/garbage"] = ("load", "corrupt_mesh", "model.obj")
    return good, bad


def test_all_bad_meshes_beside_two_good_ones(tmp_path):
    """Acceptance: exit 0 with --max_failure_rate 1, one dead letter per bad model naming it and
    the real cause, both good models complete, nothing else written, the output validates."""
    root = str(tmp_path / "shapenet")
    good, bad = bad_tree(root, str(tmp_path / "cache"))
    out = tmp_path / "out"
    assert render_shapenet.run(["--shapenet_dir", root, *SMALL, "--max_failure_rate", "1",
                                "--output_dir", str(out)]) == 0
    lines = dead_letters(out)
    assert sorted(x["key"] for x in lines) == sorted(bad), lines
    for x in lines:
        stage, error, path_part = bad[x["key"]]
        assert (x["stage"], x["error"]) == (stage, error), x
        assert path_part in x["path"] and x["message"], x
    written = [decode_view(raw) for _, raw in iter_records(str(out))]
    assert sorted(r["key"] for r in written) == sorted(f"{CAR}/{g}/v{i:06d}" for g in good for i in range(2))
    assert all(r["depth"].max() > 0 for r in written)
    stats = json.loads((out / names.STATS).read_text())
    assert stats["counts"]["models_failed"] == len(bad) and stats["failures"]["total"] == len(bad)
    assert validates(out)


def test_views_that_show_nothing_are_dead_letters_not_records():
    """Issue 14.6: an empty view is one dead letter (never a record); a model none of whose views
    shows it is one dead letter for the model (the ``tiny`` model above, end to end)."""
    from pipelines.workers import EmptyViews
    full, empty = {"mask": np.eye(3, dtype=bool)}, {"mask": np.zeros((3, 3), bool)}
    some = EmptyViews("c/m", "/d/m")
    assert [some.shows(o, f"c/m/v{i}") for i, o in enumerate((full, empty, full, empty))] == [True, False, True, False]
    assert [(x.tag, x.value["key"], x.value["stage"], x.value["error"]) for x in some.letters()] == [
        ("failed", "c/m/v1", "render", "empty_view"), ("failed", "c/m/v3", "render", "empty_view")]
    none = EmptyViews("c/m", "/d/m")
    assert not none.shows(empty, "c/m/v0") and not none.shows(empty, "c/m/v1")
    (letter,) = none.letters()
    assert letter.value["key"] == "c/m" and "none of the model's 2 views" in letter.value["message"]
    assert EmptyViews("c/m", "/d/m").letters() == []


def test_keypointnet_annotations_bad_entries_and_absent_models(tmp_path, capsys):
    """Issue 14.7: a malformed entry is one dead letter, the good entries are used, entries naming
    absent models are counted in the summary; the run is not refused."""
    src = os.path.join(demo.demo_shapenet_dir(str(tmp_path / "cache")), CAR)
    model = sorted(os.listdir(src))[0]
    root = tmp_path / "shapenet"
    shutil.copytree(os.path.join(src, model), root / CAR / model)
    os.remove(root / CAR / model / "keypoints.json")  # the annotation file is the only source
    entry = {"class_id": CAR, "model_id": model, "keypoints": [
        {"semantic_id": 0, "xyz": [0.1, 0.0, 0.0]}, {"semantic_id": 1, "xyz": [-0.1, 0.05, 0.0]}]}
    absent = [{"class_id": CAR, "model_id": f"absent{i}", "keypoints": [{"semantic_id": 0, "xyz": [0, 0, 0]}]}
              for i in range(3)]
    malformed = {"class_id": CAR, "model_id": "broken", "keypoints": [{"semantic_id": 0, "xyz": [0, "nan?", 0]}]}
    ann = tmp_path / "car.json"
    ann.write_text(json.dumps([*absent, malformed, entry]))
    out = tmp_path / "out"
    assert render_shapenet.run(["--shapenet_dir", str(root), "--keypoints", str(ann), *SMALL,
                                "--output_dir", str(out)]) == 0
    (line,) = dead_letters(out)
    assert (line["key"], line["stage"], line["error"]) == (f"{CAR}/broken", "keypoints", "bad_keypoints")
    assert line["path"] == str(ann) and "entry 3" in line["message"]
    recs = [decode_view(raw) for _, raw in iter_records(str(out))]
    assert len(recs) == 2 and all(list(r["keypoints/names"]) == ["0", "1"] for r in recs)
    stats = json.loads((out / names.STATS).read_text())
    assert stats["counts"]["models_with_keypoints"] == 1 and stats["counts"]["annotations_unmatched"] == 3
    assert "keypoints: 1 of 1 models annotated; 3 annotation entries name no model" in capsys.readouterr().out
    assert validates(out)


def test_only_absent_models_annotated_says_so(tmp_path, capsys):
    src = os.path.join(demo.demo_shapenet_dir(str(tmp_path / "cache")), CAR)
    model = sorted(os.listdir(src))[0]
    root = tmp_path / "shapenet"
    shutil.copytree(os.path.join(src, model), root / CAR / model)
    os.remove(root / CAR / model / "keypoints.json")
    ann = tmp_path / "car.json"
    ann.write_text(json.dumps([{"class_id": CAR, "model_id": "elsewhere",
                                "keypoints": [{"semantic_id": 0, "xyz": [0, 0, 0]}]}]))
    out = tmp_path / "out"
    assert render_shapenet.run(["--shapenet_dir", str(root), "--keypoints", str(ann), *SMALL,
                                "--output_dir", str(out)]) == 0
    assert "keypoints: 0 of 1 models annotated; 1 annotation entries name no model" in capsys.readouterr().out


def test_unreadable_synset_folder_is_a_clear_error(tmp_path, monkeypatch, capsys):
    """Issue 14.3. The tests run as root, which ignores permissions: os.listdir is made to fail
    as it does for a non-root user on a chmod 000 folder."""
    root = tmp_path / "shapenet"
    os.makedirs(root / CAR / "m1")
    real = os.listdir

    def listdir(path="."):
        if os.path.basename(str(path)) == CAR:
            raise PermissionError(13, "Permission denied", str(path))
        return real(path)
    monkeypatch.setattr(os, "listdir", listdir)
    assert render_shapenet.run(["--shapenet_dir", str(root), *SMALL, "--output_dir", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert f"error: {root / CAR}: cannot list synset folder {CAR}: Permission denied" in err


# --------------------------------------------------------------------- other pipelines


def test_keypose_nan_keypoint_is_a_dead_letter(fixtures, tmp_path):
    """Issue 14.2: one ``u: nan`` in a KeyPose pbtxt killed gen_tfrecords with a SchemaError."""
    from tests.pipelines.test_gen_tfrecords import make_sequence
    seq = make_sequence(fixtures, str(tmp_path / "data" / "bottle_0" / "texture_5_pose_0"))
    path = os.path.join(seq, "000002_L.pbtxt")
    text = open(path).read()
    i = text.index(" u: ")
    j = text.index("\n", i)
    with open(path, "w") as f:
        f.write(text[:i] + " u: nan" + text[j:])
    out = tmp_path / "out"
    assert gen_tfrecords.run(["--input", str(tmp_path / "data" / "bottle_0" / "texture_*_pose_*"),
                              "--image_size", "192x112_fl100", "--preview", "0", "--max_failure_rate", "1",
                              "--output_dir", str(out)]) == 0
    (line,) = dead_letters(out)
    assert line["key"].endswith("000002") and line["stage"] == "convert" and line["error"] == "bad_pbtxt"
    assert line["path"] == path and "NaN" in line["message"]
    assert len(list(iter_records(str(out)))) == 2
    assert validates(out)


def test_bad_photos_for_homography_pairs(tmp_path):
    """Issue 14.1 and 14.5: a photo whose name is not UTF-8 and a truncated one are dead letters;
    the good photos are written."""
    from kpdata.demo import photos as demo_photos
    src = demo_photos.demo_photo_dir(str(tmp_path / "cache"))
    d = tmp_path / "photos"
    os.makedirs(d)
    for n in ("demo_00.jpg", "demo_01.png"):
        shutil.copy(os.path.join(src, n), d / n)
    data = open(os.path.join(src, "demo_02.jpg"), "rb").read()
    with open(os.path.join(os.fsencode(str(d)), b"\xe9t\xe9.jpg"), "wb") as f:
        f.write(data)
    (d / "cut.jpg").write_bytes(data[:len(data) // 2])
    out = tmp_path / "out"
    assert gen_homography_pairs.run(["--input_dir", str(d), "--pairs_per_image", "1", "--image_size", "64x48",
                                     "--preview", "0", "--max_failure_rate", "1", "--output_dir", str(out)]) == 0
    lines = {x["key"]: x for x in dead_letters(out)}
    assert set(lines) == {"\\xe9t\\xe9.jpg", "cut.jpg"}
    assert (lines["cut.jpg"]["stage"], lines["cut.jpg"]["error"]) == ("read", "truncated_image")
    assert lines["\\xe9t\\xe9.jpg"]["error"] == "non_utf8_name"
    from schemas.kp2d import decode_pair
    keys = sorted(decode_pair(raw)["key"] for _, raw in iter_records(str(out)))
    assert keys == ["demo_00.jpg/p0000", "demo_01.png/p0000"]
    assert validates(out)


def test_clickhere_names_every_rejected_background(fixtures, tmp_path, capsys):
    """Issue 14.5: truncated, 0-byte, non-image, greyscale and too small photos each get a line
    in errors/backgrounds.jsonl; a 16-bit photo is used after scaling, and said so."""
    bg = tmp_path / "bg"
    os.makedirs(bg)
    sun = os.path.join(fixtures, "sun2012_sample")
    photo = sorted(f for f in os.listdir(sun) if f.endswith(".jpg"))[0]
    shutil.copy(os.path.join(sun, photo), bg / "good.jpg")
    data = open(os.path.join(sun, photo), "rb").read()
    (bg / "cut.jpg").write_bytes(data[:len(data) // 2])
    (bg / "empty.jpg").write_bytes(b"")
    (bg / "text.png").write_bytes(b"not a picture")
    img = cv2.imread(os.path.join(sun, photo))
    cv2.imwrite(str(bg / "grey.png"), img[..., 0])
    cv2.imwrite(str(bg / "small.png"), img[:20, :20])
    cv2.imwrite(str(bg / "deep.png"), img.astype(np.uint16) * 257)
    out = tmp_path / "out"
    args = ["--layout", "clickhere", "--image_size", "240x135", "--focal", "260", "--views_per_model", "12",
            "--synsets", "car", "--preview", "0", "--backgrounds", str(bg), "--format", "tfrecord", "--compact",
            "--output_dir", str(out)]
    assert render_shapenet.run(args) == 0
    lines = dead_letters(out, names.BACKGROUNDS_FILE)
    kinds = {x["key"]: x["error"] for x in lines}
    assert len(kinds) == len(lines)
    want = {"cut.jpg": "truncated_image", "empty.jpg": "empty_image", "text.png": "not_an_image",
            "grey.png": "greyscale", "small.png": "too_small", "deep.png": "converted"}
    assert set(kinds.items()) <= set(want.items()) and len(kinds) >= 4, kinds
    assert all(x["stage"] == "background" and x["path"].endswith(x["key"]) for x in lines)
    assert "errors/backgrounds.jsonl" in capsys.readouterr().out
    assert validates(out)


# --------------------------------------------------------------------- the one mechanism


class _Worker:
    """A pipeline DoFn stand-in: task 'schema' yields one record then raises a SchemaError (a NaN
    that reached encoding inside the worker); 'input' raises an InputError mid-way; 'encode'
    yields an item whose encoding fails; 'bug' raises a KeyError."""

    stage = "convert"

    def setup(self):
        pass

    def teardown(self):
        pass

    def source(self, task):
        return f"k/{task}", f"/data/{task}"

    def process(self, task):
        from kpdata.errors import InputError
        yield ("s", f"k/{task}/0", b"ok")
        if task == "schema":
            raise SchemaError("keys_uvd_L: non-finite values")
        if task == "input":
            raise InputError("corrupt_image", "cannot be decoded", f"/data/{task}/x.png")
        if task == "encode":
            yield ("s", f"k/{task}/1", None)
        if task == "bug":
            raise KeyError("ours")


def _records(item):
    if item[2] is None:
        raise SchemaError("image: expected bytes")
    return [(item[1], item[2])]


def test_write_units_turns_any_data_error_into_a_dead_letter_and_lets_bugs_raise(tmp_path):
    from pipelines import journal
    out = str(tmp_path)
    os.makedirs(journal.journal_dir(out))
    w = stream.WriteUnits(out, _Worker(), _records)
    failed = {}
    for task in ("schema", "input", "encode"):
        unit = stream.Unit(f"k/{task}", "train", (task,), 2)
        assert list(w.process(unit)) == [unit.id]
        rec = journal.read_record(journal.unit_record(out, unit.id))
        failed[task] = rec["outputs"]["failed"]
        assert rec["part"]["examples"] == 1  # the record made before the failure stays (whole and good)
    assert failed["schema"] == [{"key": "k/schema", "stage": "convert", "error": "invalid_record",
                                 "message": "record does not fit its schema: keys_uvd_L: non-finite values",
                                 "path": "/data/schema"}]
    assert failed["input"] == [{"key": "k/input", "stage": "convert", "error": "corrupt_image",
                                "message": "cannot be decoded", "path": "/data/input/x.png"}]
    assert failed["encode"][0]["key"] == "k/encode/1" and failed["encode"][0]["stage"] == "encode"
    with pytest.raises(KeyError):
        list(w.process(stream.Unit("k/bug", "train", ("bug",), 1)))
    leftovers = [n for r, ds, fs in os.walk(out) for n in ds + fs if names.TEMP_NAME.search(n)]
    assert leftovers == []  # the failed unit's part was removed


def test_keypose_pbtxt_text_is_what_the_parser_reads(fixtures):
    """The NaN case above edits the text format; the parser does take 'nan' as a float."""
    src = os.path.join(fixtures, "keypose_sample", "bottle_0", "texture_5_pose_0", "000001_L.pbtxt")
    text = open(src).read()
    i = text.index(" u: ")
    kt = kpp.parse_text(text[:i] + " u: nan" + text[text.index("\n", i):], "KeyTargets")
    assert np.isnan(kt.kp_target.keypoints[0].u)


def test_input_error_keeps_its_key_and_stage_across_processes():
    import pickle
    from kpdata.errors import InputError
    e = InputError("bad_keypoints", "entry 3: malformed", "/a.json")
    e.key, e.stage = "c/m", "keypoints"
    f = pickle.loads(pickle.dumps(e))
    assert (f.error, f.message, f.path, f.key, f.stage) == ("bad_keypoints", "entry 3: malformed", "/a.json", "c/m",
                                                            "keypoints")
