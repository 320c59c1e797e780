"""The written dataset folder: file names, metadata, reading any record kind without TensorFlow,
per-record checks, the preview registry.

Modules (imported by name, ``from schemas.dataset import names``):
* :mod:`~schemas.dataset.names`: every file name of a dataset folder, the layouts' own files included;
* :mod:`~schemas.dataset.lmdb`: the one place LMDB environments are opened;
* :mod:`~schemas.dataset.caffe_lmdb`: Click-Here's Caffe LMDB split folders, written and read;
* :mod:`~schemas.dataset.records`: ``kpdata_info.json`` (``load_info``), the serialized records of
  any split, the decoded items of each record kind, KeyPose sequence folders;
* :mod:`~schemas.dataset.tfds`: TFDS's ``dataset_info.json`` / ``features.json`` over TFRecord shards;
* :mod:`~schemas.dataset.checks`: per-record invariants (pure functions of one decoded record);
* :mod:`~schemas.dataset.previews`: the contact sheet of each record kind (a registry);
* :mod:`~schemas.dataset.validation`: validating a whole folder (``python -m pipelines.validate``).
"""

__all__ = ["names", "lmdb", "caffe_lmdb", "records", "tfds", "checks", "previews", "validation"]
