"""``kp2d_pair`` records (``gen_homography_pairs``) and the HPatches-layout folder the run exported."""
from __future__ import annotations

import os

from schemas.dataset import checks
from schemas.dataset.validation.hpatches import validate_hpatches
from schemas.dataset.validation.kinds import config_splits, formats
from schemas.dataset.validation.shards import ShardedKind
from schemas.kp2d import KP2D_PAIR

__all__ = ["KP2DKind"]


class KP2DKind(ShardedKind):
    record = KP2D_PAIR.name
    schema = KP2D_PAIR
    exports_hpatches = True

    def title(self):
        return f"kp2d pairs, {formats(self.info)}"

    def layout_files(self):
        hp = self.config.get("hpatches_out") or ""
        return (os.path.abspath(hp),) if hp else ()  # the run's HPatches export, when it went inside the folder

    def validate(self, root, stats, max_records, hpatches=None):
        """The shards, then the HPatches folder: ``hpatches`` or the run's ``--hpatches_out``
        (then as many sequences as stats.json counts exported); skipped when not found here."""
        super().validate(root, stats, max_records)
        report = self.report
        hp = hpatches or self.config.get("hpatches_out")
        if hp:
            if os.path.isdir(hp):
                expect = None if hpatches else ((stats or {}).get("counts") or {}).get("hpatches_sequences")
                validate_hpatches(hp, report, max_records, expect, label=hp)
            elif hpatches:
                report.check("hpatches").defect(hp, "no such folder")
            else:
                report.check("hpatches").skipped = True
                report.check("hpatches").note(f"{hp} (the run's --hpatches_out) not found here; pass --hpatches DIR")
        return None

    def key_problem(self, key, split, shard_index, num_shards, lmdb, file):
        m = checks.KP2D_KEY.match(key)
        if not m:
            return f"key {key!r} is not <image path>/p<index:04d>"
        return self.placement_problem(key, "photo", m["image_path"], config_splits(self.config),
                                      split, shard_index, num_shards, lmdb)

    def invariants(self, rec, split):
        out = checks.check_kp2d_pair(rec, self.config.get("image_size"))
        if int(rec["seed"]) != int(self.info.get("seed", rec["seed"])):
            out.append(f"seed {rec['seed']} differs from the dataset's {self.info.get('seed')}")
        return out
