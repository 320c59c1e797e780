"""TensorFlow Datasets metadata over kpdata's TFRecord shards, without TensorFlow or TFDS.

``tfds.builder_from_directory(DIR)`` reads two JSON files beside the shards:

* ``features.json`` (:func:`features_json`): TFDS's ``FeaturesDict`` JSON (the form
  ``FeatureConnector.to_json()`` writes), generated from the record's :class:`~schemas.features.Schema`:

  ====================================  ========================================================
  our field                             TFDS feature (decoded as)
  ====================================  ========================================================
  ``Text`` scalar                       ``Text`` (a string scalar)
  ``Text`` list (``shape=(None,)``)     ``Tensor(shape=(None,), dtype=string)``
  ``Tensor``                            ``Tensor`` of the field's *array shape* and dtype, e.g. a
                                        flat ``keypoints/uv`` (2K,) -> (K, 2), ``camera/K`` (9,)
                                        -> (3, 3); one ``None`` at most (TFDS parses it as a
                                        ``FixedLenSequenceFeature``, our flat list unchanged)
  ``PNGImage`` (H, W, C) / (H, W)       ``Image(shape=(H, W, C|1), dtype, encoding_format=png)``;
                                        a 2-D field decodes with a trailing channel of 1
  opaque bytes (Click-Here's            ``Tensor(shape=(), dtype=string)``: the JPEG file
  compact ``image/jpeg``)               unchanged (see below)
  ====================================  ========================================================

  The record bytes are untouched: TFDS's parser reads our ``tf.train.Example`` features under the
  same names (``image/encoded`` stays a flat key), int64 lists as the declared integer dtype,
  float lists as float32, PNG bytes through ``tf.io.decode_png``. Click-Here's compact JPEG is
  declared as bytes, not as a TFDS ``Image``: TFDS decodes JPEG with TensorFlow's default
  ``INTEGER_FAST`` IDCT, about 1 grey level (mean) from our reader's OpenCV decode;
  ``tf.io.decode_jpeg(x, channels=3, dct_method="INTEGER_ACCURATE")`` equals it exactly.
* ``dataset_info.json`` (:func:`dataset_info_json`): TFDS's ``DatasetInfo`` proto as JSON (name,
  version, file format, and per split ``shardLengths``, ``numBytes``, ``filepathTemplate``; proto
  JSON writes int64 values as strings).

Only datasets whose shards follow TFDS's default file template
``{DATASET}-{SPLIT}.{FILEFORMAT}-{SHARD_X_OF_Y}`` (:func:`tfds_compatible`: every split a
``tfrecord`` split of :func:`names.shard_name` files) get these files; kpdata's own metadata is in
``kpdata_info.json`` (``names.KPDATA_INFO``) for every dataset. LMDB splits, KeyPose's
``tfrecords/0000.tfrecord`` and KeypointNet's per-model files cannot be described by a TFDS
template and get ``kpdata_info.json`` only.
"""
from __future__ import annotations

from schemas.dataset import names
from schemas.features import PNGImage, Schema, Tensor, Text

__all__ = ["FILEPATH_TEMPLATE", "FILE_FORMAT", "feature_json", "features_json", "dataset_info_json",
           "tfds_compatible"]

FILEPATH_TEMPLATE = "{DATASET}-{SPLIT}.{FILEFORMAT}-{SHARD_X_OF_Y}"  # TFDS's default (names.shard_name)
FILE_FORMAT = "tfrecord"
_PKG = "tensorflow_datasets.core.features"


def _shape(dims) -> dict:
    """A TFDS ``Shape`` proto as JSON: ``None`` -> ``"-1"``, every entry a string (int64)."""
    return {"dimensions": [str(-1 if d is None else int(d)) for d in dims]} if dims else {}


def feature_json(field) -> dict:
    """The TFDS feature JSON of one field (see the module docstring's table). ValueError naming
    the field when TFDS cannot parse it from our bytes (more than one varying dimension)."""
    if isinstance(field, Text):
        if field.shape == ():
            return {"pythonClassName": f"{_PKG}.text_feature.Text", "text": {}}
        return {"pythonClassName": f"{_PKG}.tensor_feature.Tensor",
                "tensor": {"shape": _shape(field.shape), "dtype": "string", "encoding": "none"}}
    if isinstance(field, Tensor):
        shape = field.array_shape
        if shape.count(None) > 1:
            raise ValueError(f"{field.name}: shape {shape} has more than one varying dimension; TFDS stores such "
                             "a tensor with its shape beside it, which our record does not")
        return {"pythonClassName": f"{_PKG}.tensor_feature.Tensor",
                "tensor": {"shape": _shape(shape), "dtype": field.dtype, "encoding": "none"}}
    if isinstance(field, PNGImage):
        shape = field.shape if len(field.shape) == 3 else (*field.shape, 1)
        return {"pythonClassName": f"{_PKG}.image_feature.Image",
                "image": {"shape": _shape(shape), "dtype": field.dtype, "encodingFormat": "png"}}
    if field.kind == "bytes" and field.shape == ():  # opaque bytes (Click-Here's JPEG): unchanged
        return {"pythonClassName": f"{_PKG}.tensor_feature.Tensor",
                "tensor": {"shape": {}, "dtype": "string", "encoding": "none"}}
    raise ValueError(f"{field.name}: no TFDS feature for a {type(field).__name__} field")


def features_json(schema: Schema) -> dict:
    """``features.json``: the TFDS ``FeaturesDict`` of ``schema``'s fields, by field name."""
    return {"type": f"{_PKG}.features_dict.FeaturesDict",
            "content": {"features": {f.name: feature_json(f) for f in schema.fields}},
            "proto_cls": "tensorflow_datasets.FeaturesDict"}


def tfds_compatible(name: str, splits: dict) -> bool:
    """Whether the splits ({split: {format, shards: [{file, ...}]}}, as kpdata_info.json lists
    them) are TFRecord shards named by TFDS's default template for dataset ``name``."""
    if not splits:
        return False
    for split, s in splits.items():
        shards = s.get("shards") or []
        if s.get("format", FILE_FORMAT) != FILE_FORMAT or not shards:
            return False
        if [sh.get("file") for sh in shards] != [names.shard_name(name, split, i, len(shards)) for i in range(len(shards))]:
            return False
    return True


def dataset_info_json(name: str, schema: Schema, splits: dict, description: str = "") -> dict:
    """``dataset_info.json``: TFDS's ``DatasetInfo`` JSON for dataset ``name`` of ``schema``'s
    records in ``splits`` ({split: {shards: [{file, examples, bytes}]}}, :func:`tfds_compatible`)."""
    return {
        "name": name,
        "version": schema.version,
        "description": description or f"kpdata {schema.name} records (kpdata_info.json holds the configuration).",
        "fileFormat": FILE_FORMAT,
        "moduleName": "",
        "splits": [{"name": split,
                    "numBytes": str(sum(int(sh["bytes"]) for sh in s["shards"])),
                    "shardLengths": [str(int(sh["examples"])) for sh in s["shards"]],
                    "filepathTemplate": FILEPATH_TEMPLATE}
                   for split, s in sorted(splits.items())],
    }
