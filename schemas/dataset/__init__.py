"""The written dataset folder: file names, metadata, reading any record kind without TensorFlow,
per-record checks, the preview registry.

Modules (imported by name; the package imports none of them):
* :mod:`~schemas.dataset.names`: every file name of a dataset folder;
* :mod:`~schemas.dataset.lmdb`: the one place an LMDB environment is opened;
* :mod:`~schemas.dataset.caffe_lmdb`: Click-Here's Caffe LMDB split folders;
* :mod:`~schemas.dataset.records`: ``dataset_info.json``, the serialized records of any split, the
  decoded items of each record kind, KeyPose sequence folders;
* :mod:`~schemas.dataset.checks`: cheap independent per-record checks;
* :mod:`~schemas.dataset.previews`: the contact sheet of each record kind.
"""

__all__ = ["caffe_lmdb", "checks", "lmdb", "names", "previews", "records"]
