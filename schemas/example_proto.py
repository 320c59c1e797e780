"""``tf.train.Example`` message classes without importing TensorFlow.

TensorFlow's bundled LLVM clashes with Mesa's llvmpipe: a process that has imported TensorFlow
segfaults in its first software-rendered draw call. Renderers and pipelines therefore never
import TensorFlow; they serialise Examples with these classes, built from the same message
definitions as ``tensorflow/core/example/{feature,example}.proto`` (identical field numbers and
types, so the bytes are the wire format TensorFlow parses). They live in a private descriptor pool,
so they coexist with TensorFlow's own classes in a training process.
"""
from __future__ import annotations

import functools

import numpy as np
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

_F = descriptor_pb2.FieldDescriptorProto


def _file_descriptor() -> descriptor_pb2.FileDescriptorProto:
    fdp = descriptor_pb2.FileDescriptorProto(name="kpdata/tf_example.proto", package="tensorflow", syntax="proto3")

    def repeated(msg, name, ftype, packed):
        f = msg.field.add(name=name, number=1, type=ftype, label=_F.LABEL_REPEATED)
        if packed:
            f.options.packed = True

    repeated(fdp.message_type.add(name="BytesList"), "value", _F.TYPE_BYTES, False)
    repeated(fdp.message_type.add(name="FloatList"), "value", _F.TYPE_FLOAT, True)
    repeated(fdp.message_type.add(name="Int64List"), "value", _F.TYPE_INT64, True)

    feature = fdp.message_type.add(name="Feature")
    feature.oneof_decl.add(name="kind")
    for number, (name, type_name) in enumerate(
            (("bytes_list", "BytesList"), ("float_list", "FloatList"), ("int64_list", "Int64List")), 1):
        feature.field.add(name=name, number=number, type=_F.TYPE_MESSAGE, label=_F.LABEL_OPTIONAL,
                          type_name=f".tensorflow.{type_name}", oneof_index=0)

    features = fdp.message_type.add(name="Features")
    entry = features.nested_type.add(name="FeatureEntry")
    entry.options.map_entry = True
    entry.field.add(name="key", number=1, type=_F.TYPE_STRING, label=_F.LABEL_OPTIONAL)
    entry.field.add(name="value", number=2, type=_F.TYPE_MESSAGE, label=_F.LABEL_OPTIONAL,
                    type_name=".tensorflow.Feature")
    features.field.add(name="feature", number=1, type=_F.TYPE_MESSAGE, label=_F.LABEL_REPEATED,
                       type_name=".tensorflow.Features.FeatureEntry")

    example = fdp.message_type.add(name="Example")
    example.field.add(name="features", number=1, type=_F.TYPE_MESSAGE, label=_F.LABEL_OPTIONAL,
                      type_name=".tensorflow.Features")
    return fdp


@functools.lru_cache(maxsize=None)
def messages() -> dict:
    """{"Example", "Features", "Feature", "BytesList", "FloatList", "Int64List"} -> classes."""
    fdp = _file_descriptor()
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fdp)
    classes = message_factory.GetMessages([fdp], pool=pool)
    return {name.split(".")[-1]: cls for name, cls in classes.items()}


def Example():  # noqa: N802 - mirrors tf.train.Example
    return messages()["Example"]()


def parse_example(data: bytes):
    msg = messages()["Example"]()
    msg.ParseFromString(data)
    return msg


def float_array(float_list) -> np.ndarray:
    """The values of a ``FloatList`` message as a (N,) float32 array, read from its packed
    serialization (tag, length varint, little-endian floats): some hundred times faster than
    iterating the repeated field, which matters for the 227x227 maps of Click-Here instances."""
    b = float_list.SerializeToString()
    if not b:
        return np.zeros(0, np.float32)
    i, n, shift = 1, 0, 0  # b[0] is the tag of field 1, packed (0x0A)
    while True:
        c = b[i]
        n |= (c & 0x7F) << shift
        i += 1
        shift += 7
        if c < 0x80:
            break
    if b[0] != 0x0A or len(b) - i != n or n % 4:
        return np.asarray(float_list.value, np.float32)  # not the one packed run: the slow, general way
    return np.frombuffer(b, "<f4", offset=i).copy()
