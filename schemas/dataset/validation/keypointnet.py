"""KeypointNet's layout (``render_shapenet --layout keypointnet``): one ``<synset>_<model_id>.tfrecord``
of ``keypointnet_pair`` records per model, the split lists, ``job.txt`` and ``projection.txt``."""
from __future__ import annotations

import os

from kpdata import keypointnet
from schemas.dataset import checks
from schemas.dataset.names import (KEYPOINTNET_JOB, KEYPOINTNET_PROJECTION, KEYPOINTNET_SPLITS, TFRECORD_EXT,
                                   split_list)
from schemas.dataset.validation.files import read_lines
from schemas.dataset.validation.shards import ShardedKind
from schemas.keypointnet import KEYPOINTNET_PAIR, KEYPOINTNET_PAIR_CORE

__all__ = ["KeypointNetKind"]


class KeypointNetKind(ShardedKind):
    record = KEYPOINTNET_PAIR.name

    def __init__(self, info, report):
        super().__init__(info, report)
        self.schema = KEYPOINTNET_PAIR if self.config.get("extras", True) else KEYPOINTNET_PAIR_CORE
        intr = info.get("intrinsics")
        self.intrinsics = (intr["fx"], intr["fy"], intr["cx"], intr["cy"]) if intr else None

    def title(self):
        return "keypointnet pairs"

    def validate(self, root, stats, max_records, hpatches=None):
        super().validate(root, stats, max_records)
        check_layout_files(root, self.report, self.info)
        return None

    def layout_files(self):
        return (*(f"{s}.txt" for s in KEYPOINTNET_SPLITS), KEYPOINTNET_JOB, KEYPOINTNET_PROJECTION)

    def key_problem(self, key, split, shard_index, num_shards, lmdb, file):
        m = checks.PAIR_KEY.match(key)
        if not m:
            return f"key {key!r} is not <synset>/<model_id>/p<index:06d>"
        if os.path.basename(file) != f"{m['synset']}_{m['model_id']}{TFRECORD_EXT}":
            return f"a pair of model {m['synset']}/{m['model_id']} in another model's record file"
        return None

    def invariants(self, rec, split):
        out = checks.check_keypointnet_pair(rec, self.config.get("image_size"), self.intrinsics)
        if "key" in rec:
            m = checks.PAIR_KEY.match(rec["key"])
            if m and (rec["synset"], rec["model_id"]) != (m["synset"], m["model_id"]):
                out.append(f"synset / model_id {rec['synset']}/{rec['model_id']} differ from the key's")
            if int(rec["seed"]) != int(self.info.get("seed", rec["seed"])):
                out.append(f"seed {rec['seed']} differs from the dataset's {self.info.get('seed')}")
        return out


def check_layout_files(root: str, report, info: dict) -> None:
    """``train.txt`` / ``dev.txt`` / ``test.txt`` list the split's record files (no extension),
    ``job.txt`` has one ``<name> <synset> <model_id>`` line per file, ``projection.txt`` is a 4x4
    with p00 = p11 = cot(fov / 2)."""
    c = report.check("keypointnet")
    files = sorted(d["file"] for s in info["splits"].values() for d in s.get("shards", []))
    by_split = {split: [d["file"] for d in s.get("shards", [])] for split, s in info["splits"].items()}
    for split in KEYPOINTNET_SPLITS:
        name = split_list(split)
        lines = read_lines(os.path.join(root, name), c, name)
        if lines is None:
            continue
        want = [f[:-len(TFRECORD_EXT)] for f in by_split.get(split, [])]
        if [ln for ln in lines if ln.strip()] != want:
            c.defect(name, f"lists {len(lines)} record file(s), kpdata_info.json has {len(want)} in "
                           f"split {split!r} ({', '.join(want[:3])}{'...' if len(want) > 3 else ''})")
    lines = read_lines(os.path.join(root, KEYPOINTNET_JOB), c, KEYPOINTNET_JOB)
    if lines is not None:
        want = [f"{n} {n.split('_', 1)[0]} {n.split('_', 1)[1]}" for n in (f[:-len(TFRECORD_EXT)] for f in files)]
        if lines != want:
            c.defect(KEYPOINTNET_JOB, f"is not one '<name> <synset> <model_id>' line per record file ({len(lines)} "
                                      f"lines, {len(want)} files)")
    lines = read_lines(os.path.join(root, KEYPOINTNET_PROJECTION), c, KEYPOINTNET_PROJECTION)
    if lines is not None:
        try:
            p = keypointnet.parse_projection("\n".join(lines))
            if p.shape != (4, 4):
                raise ValueError(f"shape {p.shape}")
            f = keypointnet.focal_ndc(float(info["config"]["fov"]))
            if abs(p[0, 0] - f) > 1e-6 * f or abs(p[1, 1] - f) > 1e-6 * f:
                c.defect(KEYPOINTNET_PROJECTION, f"p00, p11 = {p[0, 0]:.8g}, {p[1, 1]:.8g}; --fov "
                                                 f"{info['config']['fov']} needs cot(fov/2) = {f:.8g}")
        except (ValueError, KeyError, TypeError) as e:
            c.defect(KEYPOINTNET_PROJECTION, f"is not a 4x4 matrix of single-space separated numbers ({e})")
    c.note(f"{'/'.join(KEYPOINTNET_SPLITS)}.txt, {KEYPOINTNET_JOB}, {KEYPOINTNET_PROJECTION}")
