"""gen_homography_pairs' MakePairs DoFn under Beam's TestPipeline (no GL): pairs keyed as planned,
each record what make_pair gives for its key, the HPatches export per photo, and an unreadable
photo on the dead-letter output."""
import os

import apache_beam as beam
import cv2
import numpy as np
from apache_beam.testing import test_pipeline
from apache_beam.testing.util import assert_that, equal_to

from kpdata.sources import photos
from pipelines import gen_homography_pairs as ghp
from schemas.kp2d import decode_pair

PAIRS = 3


def _photos(root):
    rng = np.random.default_rng(4)
    for name, (h, w) in (("a.png", (60, 80)), ("sub/b.png", (50, 90))):
        os.makedirs(os.path.join(root, os.path.dirname(name)), exist_ok=True)
        img = cv2.GaussianBlur(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), (5, 5), 0)
        cv2.imwrite(os.path.join(root, name), img)
    with open(os.path.join(root, "bad.jpg"), "wb") as f:
        f.write(b"\xff\xd8 not really a jpeg")
    rels = ["a.png", "bad.jpg", "sub/b.png"]
    names = ghp.sequence_names(rels)
    return [ghp.PhotoTask(r, os.path.join(root, *r.split("/")), "test" if r == "a.png" else "train", names[r])
            for r in rels]


def test_make_pairs(tmp_path):
    hp_out = str(tmp_path / "hpatches")
    os.makedirs(hp_out)
    config = ghp.PairsConfig(input_dir=str(tmp_path / "in"), image_size=(48, 40), pairs_per_image=PAIRS, seed=7,
                             hpatches_out=hp_out, hpatches_size=(32, 24))
    tasks = _photos(str(tmp_path / "in"))
    good = [t for t in tasks if t.rel != "bad.jpg"]

    def check_records(records):
        assert len(records) == PAIRS * len(good)
        for split, key, raw in records:
            task = next(t for t in good if key.startswith(t.rel + "/"))
            i = int(key.rsplit("/p", 1)[1])
            rec = decode_pair(raw)
            image = photos.resize(photos.read_image(task.path), config.image_size)
            img, aug, hn, hp = ghp.make_pair(image, key, config, config.params)
            assert (split, rec["key"], rec["image_path"], int(rec["pair_index"])) == (task.split, key, task.rel, i)
            np.testing.assert_array_equal(rec["image/encoded"], img)
            np.testing.assert_array_equal(rec["image_aug/encoded"], aug)
            np.testing.assert_allclose(rec["homography"], hn, rtol=1e-6, atol=1e-6)
            np.testing.assert_allclose(rec["homography/pixels"], hp, rtol=1e-5, atol=1e-4)

    with test_pipeline.TestPipeline() as p:
        made = (p | beam.Create(tasks)
                | "MakePairs" >> beam.ParDo(ghp.MakePairs(config)).with_outputs(
                    "failed", "timing", "exported", main="pairs"))
        assert_that(made.pairs | beam.Map(lambda r: (r[0], r[1])),
                    equal_to([(t.split, ghp.pair_key(t.rel, i)) for t in good for i in range(PAIRS)]), label="Keys")
        assert_that(made.pairs, check_records, label="Records")
        assert_that(made.failed | beam.Map(lambda f: (f["key"], f["stage"], f["error"], f["path"])),
                    equal_to([("bad.jpg", "read", "not_an_image", tasks[1].path)]), label="Failed")
        assert_that(made.exported, equal_to([f"{kind}_{t.seq_name}" for t in good for kind in "vi"]), label="Exported")
        assert_that(made.timing | beam.Map(lambda t: t[0]), equal_to(["pairs", "hpatches"] * len(good)), label="Timing")
    assert sorted(os.listdir(hp_out)) == sorted(f"{kind}_{t.seq_name}" for t in good for kind in "vi")
    img1 = cv2.imread(os.path.join(hp_out, f"v_{good[0].seq_name}", "1.ppm"))
    assert img1.shape == (24, 32, 3)
