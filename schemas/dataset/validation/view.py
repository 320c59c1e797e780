"""``view`` records (``render_shapenet``'s default layout) in TFRecord or LMDB shards."""
from __future__ import annotations

from schemas.dataset import checks
from schemas.dataset.validation.kinds import config_splits, formats
from schemas.dataset.validation.shards import ShardedKind
from schemas.view import VIEW

__all__ = ["ViewKind", "view_key_problem"]


class ViewKind(ShardedKind):
    record = VIEW.name
    schema = VIEW

    def title(self):
        return f"view, {formats(self.info)}"

    def key_problem(self, key, split, shard_index, num_shards, lmdb, file):
        return view_key_problem(self, key, config_splits(self.config), split, shard_index, num_shards, lmdb)

    def invariants(self, rec, split):
        out = checks.check_view(rec, float(self.config.get("visibility_tolerance", 0.01)))
        m = checks.VIEW_KEY.match(rec["key"])
        if m and (rec["synset"], rec["model_id"]) != (m["synset"], m["model_id"]):
            out.append(f"synset / model_id {rec['synset']}/{rec['model_id']} differ from the key's")
        if int(rec["seed"]) != int(self.info.get("seed", rec["seed"])):
            out.append(f"seed {rec['seed']} differs from the dataset's {self.info.get('seed')}")
        size = self.config.get("image_size")
        if size and rec["image/encoded"].shape[:2] != (size[1], size[0]):
            out.append(f"image is {rec['image/encoded'].shape[1]}x{rec['image/encoded'].shape[0]}, the dataset's "
                       f"--image_size is {size[0]}x{size[1]}")
        return out


def view_key_problem(kind: ShardedKind, key, splits, split, shard_index, num_shards, lmdb) -> str | None:
    """A view key ``<synset>/<model_id>/v<index:06d>`` whose model the seed and ``splits`` put in
    ``split`` (and, in TFRecords, in the shard the key hashes to)."""
    m = checks.VIEW_KEY.match(key)
    if not m:
        return f"key {key!r} is not <synset>/<model_id>/v<index:06d>"
    return kind.placement_problem(key, "model", f"{m['synset']}/{m['model_id']}", splits, split, shard_index,
                                  num_shards, lmdb)
