"""Caffe's ``Datum`` message (``caffe/proto/caffe.proto``) without Caffe, and the array codec of
``caffe.io.array_to_datum`` / ``datum_to_array``.

    message Datum {                       // proto2, package caffe
      optional int32 channels = 1;
      optional int32 height = 2;
      optional int32 width = 3;
      optional bytes data = 4;            // uint8 arrays, C x H x W
      optional int32 label = 5;
      repeated float float_data = 6;      // every other dtype (unpacked, as proto2 writes it)
      optional bool encoded = 7 [default = false];
    }

The class lives in a private descriptor pool, like :mod:`schemas.example_proto`.
"""
from __future__ import annotations

import functools

import numpy as np
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

_F = descriptor_pb2.FieldDescriptorProto


@functools.cache
def datum_class():
    fdp = descriptor_pb2.FileDescriptorProto(name="kpdata/caffe_datum.proto", package="caffe", syntax="proto2")
    m = fdp.message_type.add(name="Datum")
    for name, number, ftype, label in (
            ("channels", 1, _F.TYPE_INT32, _F.LABEL_OPTIONAL), ("height", 2, _F.TYPE_INT32, _F.LABEL_OPTIONAL),
            ("width", 3, _F.TYPE_INT32, _F.LABEL_OPTIONAL), ("data", 4, _F.TYPE_BYTES, _F.LABEL_OPTIONAL),
            ("label", 5, _F.TYPE_INT32, _F.LABEL_OPTIONAL), ("float_data", 6, _F.TYPE_FLOAT, _F.LABEL_REPEATED),
            ("encoded", 7, _F.TYPE_BOOL, _F.LABEL_OPTIONAL)):
        f = m.field.add(name=name, number=number, type=ftype, label=label)
        if name == "encoded":
            f.default_value = "false"
    pool = descriptor_pool.DescriptorPool()
    return message_factory.GetMessages([fdp], pool=pool)["caffe.Datum"]


def _varint(v: int) -> bytes:
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _varint_field(number: int, value: int) -> bytes:
    return bytes([(number << 3) | 0]) + _varint(int(value))


def _length_delimited(number: int, payload: bytes) -> bytes:
    return bytes([(number << 3) | 2]) + _varint(len(payload)) + payload


_FLOAT_TAG = np.uint8((6 << 3) | 5)  # field 6, wire type 5 (32-bit)


def array_to_datum(arr) -> bytes:
    """Serialise a (C, H, W) array as ``caffe.io.array_to_datum`` does: uint8 -> ``data`` bytes,
    anything else -> ``float_data`` (float32, unpacked). Byte-identical to the protobuf encoding
    of that Datum (fields in number order), written directly because the float list is large."""
    arr = np.asarray(arr)
    if arr.ndim != 3:
        raise ValueError(f"expected a (C, H, W) array, got shape {arr.shape}")
    c, h, w = arr.shape
    head = _varint_field(1, c) + _varint_field(2, h) + _varint_field(3, w)
    if arr.dtype == np.uint8:
        return head + _length_delimited(4, np.ascontiguousarray(arr).tobytes())
    rec = np.empty(arr.size, dtype=[("tag", "u1"), ("value", "<f4")])
    rec["tag"] = _FLOAT_TAG
    rec["value"] = arr.reshape(-1)
    return head + rec.tobytes()


def datum_to_array(data: bytes) -> np.ndarray:
    """Parse Datum bytes (with the protobuf class) into a (C, H, W) array: uint8 from ``data``,
    float32 from ``float_data`` (``caffe.io.datum_to_array``)."""
    d = datum_class()()
    d.ParseFromString(data)
    if d.data:
        return np.frombuffer(d.data, dtype=np.uint8).reshape(d.channels, d.height, d.width)
    return np.asarray(d.float_data, dtype=np.float32).reshape(d.channels, d.height, d.width)
