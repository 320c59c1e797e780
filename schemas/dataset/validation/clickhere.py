"""Click-Here datasets in shards (``render_shapenet --layout clickhere``): compact ``clickhere_view``
records (TFRecord or LMDB) and full ``clickhere_instance`` TFRecords; the Click-Here key rule and
class count the Caffe LMDB layout (:mod:`schemas.dataset.validation.caffe`) shares."""
from __future__ import annotations

from kpdata.clickhere import KeypointClassTable
from kpdata.clickhere.keypoint_maps import swap_left_right
from kpdata.seeding import bucket
from schemas import clickhere as chs
from schemas.dataset import checks
from schemas.dataset.names import KPDATA_INFO
from schemas.dataset.validation.kinds import assigned_split, config_splits
from schemas.dataset.validation.shards import ShardedKind
from schemas.dataset.validation.view import view_key_problem

__all__ = ["ClickHereViewKind", "ClickHereInstanceKind", "instance_key_problem", "num_classes", "flip_classes",
           "dropped_views"]


def num_classes(config: dict) -> int | None:
    """The keypoint-class count of the dataset's ``--keypoint_classes`` (None: a user file, the
    records say)."""
    if config.get("keypoint_classes", "clickhere34") == "clickhere34":
        return len(KeypointClassTable.clickhere34())
    return None


def flip_classes(config: dict) -> dict[int, int] | None:
    """{class index: its left/right-swapped class index} of the dataset's ``--keypoint_classes``
    (the one-hot class of an ``_r`` copy whose key names the original class); None for a user
    file (not stored with the dataset)."""
    if config.get("keypoint_classes", "clickhere34") != "clickhere34":
        return None
    names = KeypointClassTable.clickhere34().names
    return {i: names.index(swap_left_right(n)) for i, n in enumerate(names) if swap_left_right(n) in names}


def dropped_views(stats: dict | None) -> int:
    """Views the run dropped for having no keypoint (stats.json), the lines errors/dropped.jsonl holds."""
    return ((stats or {}).get("counts") or {}).get("views_dropped_no_keypoint", 0)


def instance_key_problem(key, split, info, flip_splits, shard_index, num_shards, lmdb) -> str | None:
    """A Click-Here instance key: its format, its model in the split kpdata_info.json's
    ``split_assignment`` (``info``) gives it, ``_r``
    copies only in ``flip_splits``, and (TFRecords) in the shard its model's key hashes to."""
    m = checks.CLICKHERE_KEY.match(key)
    if not m:
        return f"key {key!r} is not <8 digits>_<synset>_<model>_v<i>_a_e_t_d_obj0_objc<c>_kp<k>[_r]"
    want = assigned_split(info, f"{m['synset']}/{m['model_id']}")
    if want is None:
        return f"model {m['synset']}/{m['model_id']} is not in kpdata_info.json's split_assignment"
    if want != split:
        return f"model {m['synset']}/{m['model_id']} belongs in split {want!r} (seed, --splits), found in {split!r}"
    if m["r"] and split not in flip_splits:
        return f"a flipped _r copy in split {split!r}, which --flip_splits does not flip"
    if not lmdb:
        model = f"{m['synset']}/{m['model_id']}"
        if bucket(model, num_shards) != shard_index:
            return f"its model {model} hashes to shard {bucket(model, num_shards)} of {num_shards}, " \
                   f"found in shard {shard_index}"
    return None


class _ClickHereShards(ShardedKind):
    """What the two sharded Click-Here records share: the run's render config and flips, the
    class count, the split totals of instances, the dropped views."""

    def __init__(self, info, report):
        super().__init__(info, report)
        self.render = self.config.get("render") or {}
        self.flip_splits = set(self.config.get("flip_splits") or [])
        self.num_classes = num_classes(self.config)
        self.flip_class = flip_classes(self.config)

    def title(self):
        return f"clickhere {self.record}"

    def validate(self, root, stats, max_records, hpatches=None):
        super().validate(root, stats, max_records)
        decoded_all = not self.report.check("framing").defects and not self.report.check("records").defects
        self.check_instance_counts(decoded_all and max_records is None)
        return dropped_views(stats)

    def check_instance_counts(self, complete: bool) -> None:
        """Each split's num_instances in kpdata_info.json against the records (``complete``:
        every record was decoded)."""

    def instance_count_defect(self, split: str, message: str) -> None:
        self.report.check("files").defect(KPDATA_INFO, f"split {split!r}: num_instances {message}")


class ClickHereViewKind(_ClickHereShards):
    """Compact clickhere records (one per view)."""

    record = chs.CLICKHERE_VIEW.name
    schema = chs.CLICKHERE_VIEW

    def __init__(self, info, report):
        super().__init__(info, report)
        self.instances: dict = {}  # split -> instance count (all records checked in full)
        self.instance_keys: dict = {}

    def key_problem(self, key, split, shard_index, num_shards, lmdb, file):
        return view_key_problem(self, key, config_splits(self.render), split, shard_index, num_shards, lmdb)

    def invariants(self, rec, split):
        out = checks.check_clickhere_view(rec, split in self.flip_splits, self.num_classes)
        keys = list(rec["instances/key"]) + list(rec["instances/flip_key"])
        self.instances[split] = self.instances.get(split, 0) + len(keys)
        for k in keys:
            if k in self.instance_keys:
                out.append(f"instance key {k} also in view {self.instance_keys[k]}")
            self.instance_keys[k] = rec["key"]
        return out

    def check_instance_counts(self, complete):
        if not complete:
            return
        for split, s in self.info["splits"].items():
            if s.get("num_instances") is not None and s["num_instances"] != self.instances.get(split, 0):
                self.instance_count_defect(split, f"{s['num_instances']}, the views hold {self.instances.get(split, 0)}")


class ClickHereInstanceKind(_ClickHereShards):
    """Full clickhere instances as TFRecords."""

    record = chs.CLICKHERE_INSTANCE.name
    schema = chs.CLICKHERE_INSTANCE

    def key_problem(self, key, split, shard_index, num_shards, lmdb, file):
        return instance_key_problem(key, split, self.info, self.flip_splits,
                                    shard_index, num_shards, lmdb)

    def invariants(self, rec, split):
        inst = dict(rec)
        inst["image"] = inst.pop("image/encoded")
        out = checks.check_clickhere_instance(inst, self.num_classes, self.flip_class)
        m = checks.CLICKHERE_KEY.match(rec["key"])
        vm = checks.VIEW_KEY.match(rec["view_key"])
        if m and (not vm or (vm["synset"], vm["model_id"], vm["index"]) != (m["synset"], m["model_id"], m["index"])):
            out.append(f"view_key {rec['view_key']!r} is not the view the key names")
        return out

    def check_instance_counts(self, complete):
        for split, s in self.info["splits"].items():
            if s.get("num_instances") is not None and s["num_instances"] != s["num_examples"]:
                self.instance_count_defect(split, f"{s['num_instances']} != num_examples {s['num_examples']}")
