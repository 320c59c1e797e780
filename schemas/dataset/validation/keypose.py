"""KeyPose record sets (``gen_tfrecords``): ``keypose`` records in ``tfrecords/0000.tfrecord``...
(or LMDBs) with ``tfset.pbtxt`` and ``data_params.pbtxt`` beside them, ``tfset_def.pbtxt`` above."""
from __future__ import annotations

import os

from kpdata import keypose
from kpdata.errors import InputError
from kpdata.keypose import proto as kpp
from schemas.dataset import checks
from schemas.dataset.names import (KPDATA_INFO, KEYPOSE_RECORDS_DIR, KEYPOSE_TFSET, KEYPOSE_TFSET_DEF,
                                   keypose_record_file)
from schemas.dataset.validation.kinds import formats
from schemas.dataset.validation.shards import ShardedKind
from schemas.keypose import KEYPOSE

__all__ = ["KeyPoseKind"]


class KeyPoseKind(ShardedKind):
    """``data_params.pbtxt`` (read by :meth:`validate`) gives the records' num_kp and baseline;
    ``--image_size`` their size and focal."""

    record = KEYPOSE.name
    schema = KEYPOSE
    shard_folders = ("", KEYPOSE_RECORDS_DIR)

    def __init__(self, info, report):
        super().__init__(info, report)
        self.dp = None
        try:
            s = keypose.ImageSize.parse(self.config.get("image_size", ""))
            self.size = (s.width, s.height, s.focal)
        except ValueError:
            self.size = None

    def title(self):
        return f"keypose records, {formats(self.info)}"

    def layout_files(self):
        return (KEYPOSE_TFSET_DEF, f"{KEYPOSE_RECORDS_DIR}/{KEYPOSE_TFSET}", f"{KEYPOSE_RECORDS_DIR}/{keypose.DATA_PARAMS}")

    def validate(self, root, stats, max_records, hpatches=None):
        """The set's pbtxt files, then the shards."""
        info = self.info
        c = self.report.check("keypose")
        rec_dir = os.path.join(root, KEYPOSE_RECORDS_DIR)
        dp_rel = f"{KEYPOSE_RECORDS_DIR}/{keypose.DATA_PARAMS}"
        try:
            self.dp = dp = keypose.read_data_params(os.path.join(rec_dir, keypose.DATA_PARAMS))
        except InputError as e:
            c.defect(dp_rel, e.message)
        else:
            if self.size is not None and (dp.resx, dp.resy) != self.size[:2]:
                c.defect(dp_rel, f"resx, resy = {dp.resx}, {dp.resy}; --image_size is "
                                 f"{info['config'].get('image_size')}")
        tfset_rel = f"{KEYPOSE_RECORDS_DIR}/{KEYPOSE_TFSET}"
        tfrecords = info["config"].get("format", "tfrecord") == "tfrecord"
        try:
            tfset = kpp.read_text(os.path.join(rec_dir, KEYPOSE_TFSET), "TfSet")
            if tfset.name != info.get("name"):
                c.defect(tfset_rel, f"name {tfset.name!r}, kpdata_info.json's name is {info.get('name')!r}")
            for split in ("train", "val"):
                want = [os.path.basename(d["file"]) for d in info["splits"].get(split, {}).get("shards", [])]
                got = list(getattr(tfset, split))
                if tfrecords and got != want:
                    c.defect(tfset_rel, f"{split} lists {got[:4]}..., kpdata_info.json has {want[:4]}...")
        except InputError as e:
            c.defect(tfset_rel, e.message)
        try:
            kpp.read_text(os.path.join(root, KEYPOSE_TFSET_DEF), "TfSet")
        except InputError as e:
            c.defect(KEYPOSE_TFSET_DEF, e.message)
        if tfrecords:
            names = [os.path.basename(d["file"]) for split in ("train", "val")
                     for d in info["splits"].get(split, {}).get("shards", [])]
            if names != [keypose_record_file(i) for i in range(len(names))]:
                c.defect(KPDATA_INFO, f"record files are not {keypose_record_file(0)}, {keypose_record_file(1)}, "
                                       f"... train first, then val")
        super().validate(root, stats, max_records)
        c.note(f"{KEYPOSE_TFSET}, {keypose.DATA_PARAMS}, {KEYPOSE_TFSET_DEF}")
        return None

    def key_problem(self, key, split, shard_index, num_shards, lmdb, file):
        if not checks.KEYPOSE_KEY.match(key):
            return f"key {key!r} is not <object>/<sequence>/<frame>"
        folder = key.rsplit("/", 1)[0]
        folders = (self.info.get("folders") or {}).get(split)
        if folders is not None and folder not in folders:
            return f"folder {folder} is not one of split {split!r}'s folders in kpdata_info.json"
        return None

    def invariants(self, rec, split):
        dp = self.dp
        return checks.check_keypose(rec, dp.num_kp if dp else None, self.size, dp.camera.baseline if dp else None)
