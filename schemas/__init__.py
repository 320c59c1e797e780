"""Record declarations shared by writers, readers, the LMDB codec and the validator (no TensorFlow).

One :class:`~schemas.features.Schema` per record type declares each field once (name, dtype,
stored and array shape, encoding); from it come the record maker ``Schema.record`` (casts and
checks every value), ``encode`` (deterministic ``tf.train.Example`` bytes), ``decode`` and
the schema description in ``kpdata_info.json`` and TFDS's ``features.json`` (:mod:`schemas.dataset.tfds`);
``training/`` builds its ``tf.io`` spec from the same declaration.

Modules:
* :mod:`~schemas.features`: the field types (``Text``, ``Tensor``, ``PNGImage``) and ``Schema``;
* :mod:`~schemas.view`: ``VIEW``, one rendered view (``render_shapenet``'s default layout);
* :mod:`~schemas.clickhere`: ``CLICKHERE_VIEW`` (compact) and ``CLICKHERE_INSTANCE``, the
  instances rebuilt from a compact record, their Caffe ``Datum`` encoding;
* :mod:`~schemas.keypointnet`: ``KEYPOINTNET_PAIR`` (and its six-feature core);
* :mod:`~schemas.kp2d`: ``KP2D_PAIR``, a homography-adapted pair;
* :mod:`~schemas.keypose`: ``KEYPOSE``, one stereo frame as KeyPose's parser reads it;
* :mod:`~schemas.caffe`, :mod:`~schemas.example_proto`, :mod:`~schemas.tfrecord`: Caffe's
  ``Datum``, ``tf.train.Example`` and the TFRecord container without Caffe or TensorFlow;
* :mod:`schemas.dataset`: the written dataset folder (file names, LMDB, reading, checks).

The package exports the field types, ``Schema``/``SchemaError`` and the ``view`` record; the
other record modules are imported by name.
"""
from schemas.features import Field, PNGImage, Schema, SchemaError, Tensor, Text
from schemas.view import VIEW, decode_view, make_view_record

__all__ = ["Field", "PNGImage", "Schema", "SchemaError", "Tensor", "Text", "VIEW", "decode_view", "make_view_record"]
