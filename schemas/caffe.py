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

A layout of Caffe LMDBs (one LMDB per field, Datum values, identical key sets) is declared once as
a :class:`DatumLayout` of :class:`DatumField` declarations (LMDB name, Datum shape and dtype, how the
record's array maps to ``(C, H, W)``); writers, readers and the validator all derive from it.
"""
from __future__ import annotations

import dataclasses
import functools

import numpy as np
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

__all__ = ["datum_class", "array_to_datum", "datum_to_array", "DatumField", "DatumLayout", "IMAGE", "PLANE",
           "VECTOR"]

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


# How a record's array maps to a Datum's (C, H, W):
IMAGE = "image"  # (H, W, 3) RGB  <->  (3, H, W) BGR (caffe.io / OpenCV channel order)
PLANE = "plane"  # (H, W)         <->  (1, H, W)
VECTOR = "vector"  # (C,)         <->  (C, 1, 1)
_STORAGE = {"uint8": "data (uint8)", "float32": "float_data"}


@dataclasses.dataclass(frozen=True)
class DatumField:
    """One array of a record stored as Caffe Datums in its own LMDB (``<name>_lmdb``).

    ``shape``: the Datum's (C, H, W), C None where the dataset decides it (a class count).
    ``dtype``: what is stored: ``"uint8"`` (``data`` bytes) or ``"float32"`` (``float_data``);
    the record's array is cast to it (integer and float64 maps are exact in, or rounded to, float32).
    ``arrangement``: :data:`IMAGE`, :data:`PLANE` or :data:`VECTOR`.
    ``value_dtype``: the dtype of the array :meth:`from_datum` returns; None: the stored dtype.
    """

    name: str
    shape: tuple
    dtype: str
    arrangement: str
    value_dtype: str | None = None
    doc: str = ""

    def __post_init__(self):
        if self.dtype not in _STORAGE or self.arrangement not in (IMAGE, PLANE, VECTOR) or len(self.shape) != 3:
            raise ValueError(f"{self.name}: expected a (C, H, W) shape, dtype uint8 or float32 and an arrangement "
                             f"image / plane / vector, got {self.shape} {self.dtype} {self.arrangement}")

    @property
    def lmdb(self) -> str:
        """The field's LMDB folder name, ``<name>_lmdb``."""
        return f"{self.name}_lmdb"

    def pack(self, value) -> np.ndarray:
        """The record's array -> the Datum's (C, H, W) array of the stored dtype."""
        a = np.asarray(value)
        if self.arrangement == IMAGE:
            a = np.ascontiguousarray(a[..., ::-1].transpose(2, 0, 1))
        elif self.arrangement == PLANE:
            a = a[None]
        else:
            a = a.reshape(-1, 1, 1)
        return a.astype(self.dtype, copy=False)

    def unpack(self, arr: np.ndarray) -> np.ndarray:
        """A Datum's (C, H, W) array -> the record's arrangement, values as stored (no cast)."""
        if self.arrangement == IMAGE:
            return np.ascontiguousarray(arr.transpose(1, 2, 0)[..., ::-1])
        if self.arrangement == PLANE:
            return arr[0]
        return arr.reshape(-1)

    def to_datum(self, value) -> bytes:
        """The record's array as serialized Datum bytes."""
        return array_to_datum(self.pack(value))

    def from_datum(self, data: bytes) -> np.ndarray:
        """Serialized Datum bytes -> the record's array (of ``value_dtype`` where declared)."""
        a = self.unpack(datum_to_array(data))
        return a if self.value_dtype is None else a.astype(self.value_dtype)

    def problem(self, arr: np.ndarray, channels: int | None = None) -> str | None:
        """Why a decoded Datum array is not this field's (shape, dtype), or None. ``channels``: the
        dataset's C where the declaration leaves it open."""
        c, h, w = self.shape
        want_c = channels if (c is None and channels) else c
        if arr.dtype != np.dtype(self.dtype) or arr.shape[1:] != (h, w) or (want_c is not None and arr.shape[0] != want_c):
            return f"Datum {arr.shape} {arr.dtype}, expected ({want_c or 'C'}, {h}, {w}) {self.dtype}"
        return None

    def describe(self) -> dict:
        """``{"lmdb", "shape", "storage"}`` as features.json lists the field (C as ``"C"``)."""
        return {"lmdb": self.lmdb, "shape": ["C" if s is None else s for s in self.shape],
                "storage": _STORAGE[self.dtype]}


@dataclasses.dataclass(frozen=True)
class DatumLayout:
    """A record stored as one LMDB per field (Caffe Datum values, identical key sets); ``name`` is
    the record name dataset_info.json gives it."""

    name: str
    fields: tuple
    doc: str = ""

    @property
    def names(self) -> tuple:
        return tuple(f.name for f in self.fields)

    def __getitem__(self, name: str) -> DatumField:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(f"{name!r} is not a field of the {self.name} LMDB layout ({self.names})")

    def encode(self, record: dict) -> dict[str, bytes]:
        """{field: serialized Datum} of one record (every field)."""
        return {f.name: f.to_datum(record[f.name]) for f in self.fields}

    def decode(self, datums: dict) -> dict:
        """{field: serialized Datum} (any subset) -> {field: the record's array}."""
        return {name: self[name].from_datum(data) for name, data in datums.items()}

    def describe(self) -> dict:
        """The layout as features.json describes it."""
        return {"name": self.name, "format": "caffe.Datum (one LMDB per field, identical key sets)",
                "fields": [f.describe() for f in self.fields]}
