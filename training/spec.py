"""What to read, without TensorFlow: a dataset's splits and record type, and the parsing plan of a
``schemas.Schema`` (the one place that turns field declarations into parse entries; ``readers.py``
maps them onto ``tf.io`` features).

A dataset is a kpdata dataset (``dataset_info.json`` beside the shards: record type, splits
with their TFRecord shards, LMDB environments or Click-Here LMDB folders), a KeypointNet folder
(``*.tfrecord`` with ``dev.txt`` / ``test.txt`` and ``projection.txt``, formats §1.1: training =
every file in neither list), or a KeyPose set (``tfset.pbtxt`` listing the train / val files, in
the folder or its ``tfrecords/``).
"""
from __future__ import annotations

import dataclasses
import functools
import glob
import importlib
import os
import pkgutil

import schemas
from schemas.features import Field, PNGImage, Schema, Tensor, Text

from schemas.dataset import names, records
from schemas.dataset.names import KPDATA_INFO

KEYPOINTNET_RECORD = "keypointnet"
KEYPOSE_RECORD = "keypose"
KEYPOSE_TFSET = names.KEYPOSE_TFSET


@dataclasses.dataclass(frozen=True)
class ParseEntry:
    """How one field is parsed.

    ``dtype``: 'string' | 'int64' | 'float32' (what the Example stores); ``shape``: the fixed
    shape, or None for a variable-length list (parsed as a VarLen feature and densified);
    ``stride``: values per element of a variable list (reshaped to (-1, stride) when > 1);
    ``image``: (channels, 'uint8' | 'uint16') for a PNG field, else None; ``reshape``: the shape of a
    variable list with fixed trailing dims (the variable one -1), e.g. (-1, 4).
    """

    name: str
    dtype: str
    shape: tuple | None
    stride: int = 1
    image: tuple | None = None
    reshape: tuple | None = None


def parse_plan(schema: Schema, fields=None) -> dict[str, ParseEntry]:
    """{field name: ParseEntry} for ``schema`` (only ``fields`` when given; an unknown name is
    an error naming the schema and its fields)."""
    fmap = schema.field_map
    names = list(fmap) if fields is None else list(fields)
    unknown = [n for n in names if n not in fmap]
    if unknown:
        raise KeyError(f"schema {schema.name!r} has no field(s) {unknown}; it has {sorted(fmap)}")
    return {n: _entry(fmap[n]) for n in names}


def _entry(f: Field) -> ParseEntry:
    if isinstance(f, PNGImage):
        return ParseEntry(f.name, "string", (), image=(f.channels, f.dtype))
    if isinstance(f, Text):
        return ParseEntry(f.name, "string", () if f.shape == () else None)
    if isinstance(f, Tensor):
        dtype = "int64" if f.kind == "int64" else "float32"
        if any(s is None for s in f.shape):
            if len(f.shape) == 1:
                return ParseEntry(f.name, dtype, None, stride=f.stride)
            if sum(s is None for s in f.shape) != 1:
                raise ValueError(f"{f.name}: only one variable dimension can be parsed, got {f.shape}")
            return ParseEntry(f.name, dtype, None, reshape=tuple(-1 if s is None else int(s) for s in f.shape))
        return ParseEntry(f.name, dtype, tuple(f.shape))
    raise TypeError(f"{f.name}: no parse rule for field type {type(f).__name__}")


@functools.cache
def all_schemas() -> dict[str, Schema]:
    """{record name: Schema} of every Schema declared at module level in the ``schemas``
    package: a new layout is readable once its schema module is there."""
    found: dict[str, Schema] = {}
    for mod in pkgutil.iter_modules(schemas.__path__):
        if mod.name.startswith("_"):
            continue
        module = importlib.import_module(f"schemas.{mod.name}")
        for value in vars(module).values():
            if isinstance(value, Schema):
                found.setdefault(value.name, value)
    return found


def find_schema(record: str) -> Schema:
    found = dict(all_schemas())
    if record not in found:
        raise KeyError(f"no schema for record type {record!r} in schemas/ (known: {sorted(found)})")
    return found[record]


@dataclasses.dataclass(frozen=True)
class Source:
    """A dataset on disk: its record type, format and the files of each split."""

    data_dir: str
    record: str
    format: str                      # 'tfrecord' | 'lmdb' | 'clickhere_lmdb' (a folder of LMDBs per split)
    splits: dict                     # {split: [paths]}
    num_examples: dict               # {split: int or None}
    info: dict                       # kpdata_info.json (records.load_info; {} for a KeypointNet folder)
    projection: tuple | None = None  # KeypointNet projection.txt, row-major 16 floats

    def files(self, split: str) -> list[str]:
        if split not in self.splits:
            raise KeyError(f"{self.data_dir}: no split {split!r} (splits: {sorted(self.splits)})")
        if not self.splits[split]:
            raise ValueError(f"{self.data_dir}: split {split!r} has no files")
        return self.splits[split]


def load_source(data_dir: str, record: str | None = None) -> Source:
    """Read the split lists of ``data_dir``; ``record`` overrides the detected record type."""
    info_path = records.info_file(data_dir) or os.path.join(data_dir, KPDATA_INFO)
    projection = _read_projection(data_dir)
    try:
        info = records.load_info(data_dir)
    except FileNotFoundError:
        info = None
    if info is not None:
        splits, counts, formats = {}, {}, set()
        for name, s in sorted(info.get("splits", {}).items()):
            formats.add(s.get("format", "tfrecord"))
            splits[name] = [os.path.join(data_dir, sh["file"]) for sh in s.get("shards", [])]
            counts[name] = s.get("num_examples")
        if not splits:
            raise ValueError(f"{info_path}: no splits")
        if len(formats) > 1:
            raise ValueError(f"{info_path}: splits mix formats {sorted(formats)}")
        for paths in splits.values():
            for p in paths:
                if not os.path.exists(p):
                    raise FileNotFoundError(f"{p}: listed in {info_path} but missing")
        return Source(data_dir, record or info.get("record", "view"), formats.pop(), splits, counts, info, projection)
    if os.path.exists(os.path.join(data_dir, names.split_list("test"))) and projection is not None:
        return _keypointnet_source(data_dir, record or KEYPOINTNET_RECORD, projection)
    for tfset in (os.path.join(data_dir, KEYPOSE_TFSET), os.path.join(data_dir, names.KEYPOSE_RECORDS_DIR, KEYPOSE_TFSET)):
        if os.path.exists(tfset):
            return _keypose_source(data_dir, tfset, record or KEYPOSE_RECORD)
    raise FileNotFoundError(f"{data_dir}: neither {KPDATA_INFO} (a kpdata dataset), test.txt + "
                            f"projection.txt (a KeypointNet folder) nor {KEYPOSE_TFSET} (a KeyPose set)")


def _keypose_source(data_dir: str, tfset_path: str, record: str) -> Source:
    """A KeyPose TFRecord set (KeyPose's ``dset_dir``): ``tfset.pbtxt`` lists the train and val
    record files, relative to its folder."""
    from kpdata import keypose

    tfset = keypose.read_tfset(tfset_path)
    folder = os.path.dirname(tfset_path)
    splits = {}
    for name, files in (("train", tfset.train), ("val", tfset.val)):
        paths = [os.path.join(folder, f) for f in files]
        missing = [p for p in paths if not os.path.exists(p)]
        if missing:
            raise FileNotFoundError(f"{tfset_path}: lists files that do not exist: {missing[:5]}")
        if paths:
            splits[name] = paths
    if not splits:
        raise ValueError(f"{tfset_path}: lists no train or val files")
    return Source(data_dir, record, "tfrecord", splits, {k: None for k in splits}, {}, None)


def _read_lines(path: str) -> list[str]:
    if not os.path.exists(path):
        return []
    with open(path, encoding="utf-8") as f:
        return [ln.strip() for ln in f if ln.strip()]


def _keypointnet_source(data_dir: str, record: str, projection) -> Source:
    files = sorted(glob.glob(os.path.join(data_dir, "*.tfrecord")))
    stem = {os.path.splitext(os.path.basename(p))[0]: p for p in files}
    dev, test = (set(_read_lines(os.path.join(data_dir, names.split_list("dev")))),
                 set(_read_lines(os.path.join(data_dir, names.split_list("test")))))
    missing = sorted((dev | test) - set(stem))
    if missing:
        raise FileNotFoundError(f"{data_dir}: dev.txt/test.txt name files that do not exist: {missing[:5]}")
    splits = {"train": [p for s, p in stem.items() if s not in dev and s not in test],
              "dev": [stem[s] for s in sorted(dev)], "test": [stem[s] for s in sorted(test)]}
    return Source(data_dir, record, "tfrecord", splits, {k: None for k in splits}, {}, projection)


def _read_projection(data_dir: str):
    path = os.path.join(data_dir, names.KEYPOINTNET_PROJECTION)
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as f:
        vals = [float(v) for v in f.read().split()]
    if len(vals) != 16:
        raise ValueError(f"{path}: expected a 4x4 matrix (16 numbers), got {len(vals)}")
    return tuple(vals)
