"""Feature declarations that encode, decode and validate one field of a record.

A :class:`Schema` is an ordered list of fields. The same declaration gives the record maker
``record`` (numpy/python values -> the values the Example stores: each cast to its field's dtype
and stored shape, a missing, unknown, wrongly shaped or wrongly typed value rejected with a message
naming the field, the expected and the given shape and dtype), the writer's ``encode`` (a record
-> deterministic ``tf.train.Example`` bytes), the reader's ``decode`` (bytes -> numpy, in the
stored shapes or, with ``arrays=True``, the array shapes), the ``tf.io`` parsing spec
``training/`` uses, our schema description (``describe``, in ``kpdata_info.json``) and TFDS's
``features.json`` (:mod:`schemas.dataset.tfds`).

Shapes use ``None`` for a dimension that varies per record (e.g. the keypoint count K); fields
that share the name of a dimension in ``dims`` must agree within one record. A :class:`Tensor` is
stored flat or in its declared ``shape``; its *array shape* is the shape the value has in memory:
``array`` where declared (a row-major 3x3 stored as ``(9,)`` has ``array=(3, 3)``), ``(K, stride)``
for a flat list of ``stride`` values per element, else ``shape``. The maker takes either shape.
"""
from __future__ import annotations

import abc
import dataclasses
import math
from collections.abc import Mapping
from typing import Any

import cv2
import numpy as np

from schemas import example_proto


class SchemaError(ValueError):
    """A value does not match its field's declaration."""


def _fits(shape: tuple, declared: tuple) -> bool:
    """Whether ``shape`` matches ``declared`` (``None`` entries match any length)."""
    return len(shape) == len(declared) and all(d is None or d == s for d, s in zip(declared, shape))


@dataclasses.dataclass(frozen=True)
class Field(abc.ABC):
    """Base field. ``shape``: tuple, ``None`` entries vary; ``dims``: names of those entries
    (a shared name means a shared length, e.g. ``"K"``)."""

    name: str
    shape: tuple = ()
    dims: tuple = ()
    doc: str = ""
    stride: int = 1  # a flat field holding ``stride`` values per element of its dimension

    kind = ""  # bytes | int64 | float

    def _check_shape(self, arr: np.ndarray) -> None:
        if not _fits(arr.shape, self.shape):
            raise SchemaError(f"{self.name}: expected shape {self._shape_str()}, got {arr.shape}")

    def _shape_str(self, shape: tuple | None = None) -> str:
        """``shape`` (default: the stored one) with its variable entries named by ``dims``."""
        shape = self.shape if shape is None else shape
        names = iter(self.dims)
        return "(" + ", ".join(str(s) if s is not None else next(names, "?") for s in shape) + ")"

    def describe(self) -> dict:
        return {"name": self.name, "kind": self.kind, "shape": [s if s is not None else -1 for s in self.shape],
                "dims": list(self.dims), "stride": self.stride, "encoding": type(self).__name__, "doc": self.doc}

    @abc.abstractmethod
    def cast(self, value):
        """``value`` as this field stores it (the maker's step): cast to the field's dtype and
        stored shape; SchemaError naming the field, the expected and the given value otherwise."""

    @abc.abstractmethod
    def values(self, value) -> list:
        """The flat list stored in the Example for ``value``."""

    @abc.abstractmethod
    def decode(self, values: list):
        """Inverse of :meth:`values`."""

    def to_array(self, value):
        """A decoded value in its in-memory shape (only a :class:`Tensor` may differ)."""
        return value

    def lengths(self, value) -> dict:
        """Lengths of the named variable dimensions of ``value``."""
        if not self.dims:
            return {}
        if isinstance(value, (list, tuple)) and self.kind == "bytes":
            arr = np.empty(len(value))  # a list of strings: only its length matters
        else:
            arr = np.asarray(value)
        var = [i for i, s in enumerate(self.shape) if s is None]
        out = {}
        for d, i in zip(self.dims, var):
            n = int(arr.shape[i])
            if n % self.stride:
                raise SchemaError(f"{self.name}: length {n} is not a multiple of {self.stride}")
            out[d] = n // self.stride
        return out


@dataclasses.dataclass(frozen=True)
class Text(Field):
    """A UTF-8 string (scalar) or a list of strings (``shape=(None,)``)."""

    kind = "bytes"

    def cast(self, value):
        """A ``str`` for a scalar field, a list of ``str`` for a list field."""
        if self.shape == ():
            if not isinstance(value, str):
                raise SchemaError(f"{self.name}: expected a string, got {type(value).__name__}")
            return value
        if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
            raise SchemaError(f"{self.name}: expected {self._shape_str()} strings, got {type(value).__name__}")
        items = list(value)
        bad = [type(v).__name__ for v in items if not isinstance(v, str)]
        if bad:
            raise SchemaError(f"{self.name}: expected {self._shape_str()} strings, got {bad[0]} items")
        return items

    def values(self, value) -> list:
        items = [value] if self.shape == () else list(value)
        if self.shape == () and not isinstance(value, (str, bytes)):
            raise SchemaError(f"{self.name}: expected a string, got {type(value).__name__}")
        return [v.encode("utf-8") if isinstance(v, str) else bytes(v) for v in items]

    def decode(self, values):
        out = [v.decode("utf-8") for v in values]
        return out[0] if self.shape == () else out


@dataclasses.dataclass(frozen=True)
class Tensor(Field):
    """A numeric array stored row-major, as an int64 or float list. ``array``: the shape of the
    value in memory when it differs from the stored ``shape`` (see the module docstring)."""

    dtype: str = "float32"
    array: tuple | None = None

    def __post_init__(self):
        a, s = self.array_shape, self.shape
        if a != s and (s.count(None) > 1 or (None in a) != (None in s) or (None not in a and math.prod(a) != math.prod(s))):
            raise ValueError(f"{self.name}: array shape {a} does not hold the values of stored shape {s}")

    @property
    def kind(self):  # type: ignore[override]
        return "int64" if np.dtype(self.dtype).kind in "iub" else "float"

    @property
    def array_shape(self) -> tuple:
        """The shape of the value in memory: ``array``, ``(K, stride)`` or ``shape``."""
        if self.array is not None:
            return tuple(self.array)
        if self.stride > 1 and self.shape == (None,):
            return (None, self.stride)
        return self.shape

    def _expected(self) -> str:
        a = self.array_shape
        flat = "" if a == self.shape else f" (or stored {self._flat_str()})"
        return f"{self._shape_str(a)} {self.dtype}{flat}"

    def _flat_str(self) -> str:
        if self.stride > 1 and self.shape == (None,):
            return f"({self.dims[0] if self.dims else '?'}*{self.stride})"
        return self._shape_str()

    def cast(self, value) -> np.ndarray:
        """An array of the field's dtype and stored shape (a 0-d value as a numpy scalar).

        Accepts the stored or the array shape; floats for an int64 field, and anything but
        numbers, are rejected (an empty list may have any dtype)."""
        arr = np.asarray(value)
        kinds = "iub" if self.kind == "int64" else "fiub"
        dtype_ok = arr.dtype.kind in kinds or (arr.size == 0 and arr.dtype.kind in "fiub")
        if not dtype_ok or not (_fits(arr.shape, self.shape) or _fits(arr.shape, self.array_shape)):
            raise SchemaError(f"{self.name}: expected {self._expected()}, got {arr.shape} {arr.dtype}")
        out = arr.astype(self.dtype, copy=False)
        if not _fits(out.shape, self.shape):
            out = out.reshape([-1 if s is None else s for s in self.shape])
        return out[()] if out.ndim == 0 else out

    def to_array(self, value):
        """A decoded (stored-shape) value reshaped to :attr:`array_shape`."""
        if self.array_shape == self.shape:
            return value
        return np.asarray(value).reshape([-1 if s is None else s for s in self.array_shape])

    def values(self, value) -> list:
        arr = np.asarray(value)
        if self.kind == "float" and arr.dtype.kind not in "fiu":
            raise SchemaError(f"{self.name}: expected {self._shape_str()} {self.dtype}, got {arr.dtype}")
        if self.kind == "int64" and arr.dtype.kind not in "iub":
            raise SchemaError(f"{self.name}: expected {self._shape_str()} {self.dtype}, got {arr.shape} {arr.dtype}")
        self._check_shape(arr)
        if self.kind == "float" and not np.all(np.isfinite(arr)):
            raise SchemaError(f"{self.name}: non-finite values")
        return arr.astype(self.dtype).ravel().tolist()

    def decode(self, values):
        arr = np.asarray(values, dtype=self.dtype)
        if self.shape == ():
            return arr.reshape(()).item() if arr.size == 1 else arr
        shape = [s if s is not None else -1 for s in self.shape]
        return arr.reshape(shape) if arr.size else arr.reshape([s if s is not None else 0 for s in self.shape])

    def describe(self) -> dict:
        d = super().describe()
        d["dtype"] = self.dtype
        return d


# PNG encoder settings (cv2.imencode parameters). PNG_SMALL: zlib level 3, libpng's adaptive
# filter per row. The fast ones, zlib level 1, chosen per kind of image by time and size on rendered
# views (the chair at 227x227 framed small and large, the demo set at 227x227 and 960x540):
# PNG_FAST, the Sub filter on every row (16-bit depth: half the bytes of no filter; run-length
# matches were up to 15 % faster for up to 30 % more bytes); PNG_FAST_NONE, no filter (RGBA renders: 10-19 % faster and
# 6-22 % smaller than Sub); PNG_FAST_RLE, no filter and run-length matches only (0/255 masks: 10-27 %
# faster, 1.6-3.9x smaller than Sub). A view's three PNGs: 2.3-3.0x less encoding time than with
# PNG_SMALL for 0-9 % more bytes (Sub on all three: 8-13 % slower, 5-17 % bigger than this). All
# are deterministic: the same array gives the same bytes.
PNG_SMALL = (cv2.IMWRITE_PNG_COMPRESSION, 3)
PNG_FAST = (cv2.IMWRITE_PNG_COMPRESSION, 1, cv2.IMWRITE_PNG_FILTER, cv2.IMWRITE_PNG_FILTER_SUB)
PNG_FAST_NONE = (cv2.IMWRITE_PNG_COMPRESSION, 1, cv2.IMWRITE_PNG_FILTER, cv2.IMWRITE_PNG_FILTER_NONE)
PNG_FAST_RLE = PNG_FAST_NONE + (cv2.IMWRITE_PNG_STRATEGY, cv2.IMWRITE_PNG_STRATEGY_RLE)


@dataclasses.dataclass(frozen=True)
class PNGImage(Field):
    """An image stored as PNG bytes; ``shape`` is (H, W, C) or (H, W), ``dtype`` uint8/uint16.
    Decoded arrays are RGB(A) order (PNG's own), not OpenCV's BGR. ``png``: the encoder's
    settings, :data:`PNG_SMALL` (the default) or :data:`PNG_FAST`; any decoder reads both."""

    dtype: str = "uint8"
    png: tuple = ()
    kind = "bytes"

    @property
    def channels(self) -> int:
        return self.shape[2] if len(self.shape) == 3 else 1

    def cast(self, value):
        """An (H, W[, C]) array of exactly the field's dtype (images are not converted), or
        ``bytes`` already PNG-encoded."""
        if isinstance(value, bytes):
            return value
        arr = np.asarray(value)
        if arr.dtype != np.dtype(self.dtype) or not _fits(arr.shape, self.shape):
            raise SchemaError(f"{self.name}: expected {self._shape_str()} {self.dtype} image, got {arr.shape} {arr.dtype}")
        return arr

    def encode_array(self, value) -> bytes:
        arr = np.asarray(value)
        if arr.dtype != np.dtype(self.dtype):
            raise SchemaError(f"{self.name}: expected {self._shape_str()} {self.dtype} image, got {arr.shape} {arr.dtype}")
        self._check_shape(arr)
        if arr.ndim == 3 and arr.shape[2] in (3, 4):
            arr = cv2.cvtColor(arr, cv2.COLOR_RGB2BGR if arr.shape[2] == 3 else cv2.COLOR_RGBA2BGRA)
        ok, buf = cv2.imencode(".png", arr, list(self.png or PNG_SMALL))
        if not ok:
            raise SchemaError(f"{self.name}: PNG encoding failed")
        return buf.tobytes()

    def values(self, value) -> list:
        return [value if isinstance(value, bytes) else self.encode_array(value)]

    def decode(self, values):
        buf = np.frombuffer(values[0], dtype=np.uint8)
        arr = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
        if arr is None:
            raise SchemaError(f"{self.name}: corrupt PNG ({len(values[0])} bytes)")
        if arr.ndim == 3 and arr.shape[2] in (3, 4):
            arr = cv2.cvtColor(arr, cv2.COLOR_BGR2RGB if arr.shape[2] == 3 else cv2.COLOR_BGRA2RGBA)
        if arr.dtype != np.dtype(self.dtype) or (arr.ndim == 3) != (len(self.shape) == 3):
            raise SchemaError(f"{self.name}: decoded {arr.shape} {arr.dtype}, expected {self._shape_str()} {self.dtype}")
        return arr

    def describe(self) -> dict:
        d = super().describe()
        d["dtype"] = self.dtype
        return d


@dataclasses.dataclass(frozen=True)
class Schema:
    """A record type: a name, a version and its fields in order."""

    name: str
    version: str
    fields: tuple

    def __post_init__(self):
        names = [f.name for f in self.fields]
        if len(set(names)) != len(names):
            raise ValueError(f"schema {self.name}: duplicate field names")

    @property
    def field_map(self) -> dict[str, Field]:
        return {f.name: f for f in self.fields}

    def record(self, values: Mapping[str, Any] | None = None, /, **named) -> dict[str, Any]:
        """The record maker: ``values`` (a mapping by field name; names without a ``/`` may also
        come as keywords) -> a record for :meth:`encode`, each value cast by its field
        (:meth:`Field.cast`: the field's dtype, the stored shape from the stored or array shape).

        SchemaError for a missing or unknown field (naming them), a value of the wrong shape or
        dtype (naming the field, the expected and the given shape and dtype) and variable
        dimensions that disagree between fields."""
        given = dict(values or {})
        twice = sorted(set(given) & set(named))
        if twice:
            raise SchemaError(f"{self.name} record: fields given twice {twice}")
        given.update(named)
        self._check_names(given)
        rec = {f.name: f.cast(given[f.name]) for f in self.fields}
        self.validate(rec)
        return rec

    def _check_names(self, record: Mapping[str, Any]) -> None:
        missing = [f.name for f in self.fields if f.name not in record]
        extra = sorted(set(record) - {f.name for f in self.fields})
        if missing or extra:
            raise SchemaError(f"{self.name} record: missing fields {missing}, unexpected fields {extra}")

    def validate(self, record: dict[str, Any]) -> None:
        """Raise SchemaError unless ``record`` has exactly the schema's fields with matching
        shapes and consistent variable dimensions."""
        self._check_names(record)
        seen: dict[str, tuple[int, str]] = {}
        for f in self.fields:
            value = record[f.name]
            if isinstance(f, PNGImage) and isinstance(value, bytes):
                continue
            for dim, n in f.lengths(value).items():
                if dim in seen and seen[dim][0] != n:
                    raise SchemaError(f"{self.name} record: {f.name} has {dim}={n} but {seen[dim][1]} has {dim}={seen[dim][0]}")
                seen.setdefault(dim, (n, f.name))

    def encode(self, record: dict[str, Any]) -> bytes:
        """Validate and serialise ``record`` (values in the stored shapes, as :meth:`record`
        makes them) as a ``tf.train.Example``. Deterministic bytes."""
        self.validate(record)
        ex = example_proto.Example()
        feats = ex.features.feature
        for f in self.fields:
            vals = f.values(record[f.name])
            if f.kind == "bytes":
                feats[f.name].bytes_list.value.extend(vals)
            elif f.kind == "int64":
                feats[f.name].int64_list.value.extend(vals)
            else:
                feats[f.name].float_list.value.extend(vals)
        return ex.SerializeToString(deterministic=True)

    def decode(self, data: bytes, fields=None, *, arrays: bool = False) -> dict[str, Any]:
        """Parse serialised Example bytes into numpy values (optionally only ``fields``), in the
        stored shapes (the inverse of :meth:`record`) or, with ``arrays``, in the array shapes
        (:meth:`Field.to_array`: e.g. a camera matrix (3, 3), keypoints (K, 2))."""
        ex = example_proto.parse_example(data)
        feats = ex.features.feature
        out = {}
        for f in self.fields:
            if fields is not None and f.name not in fields:
                continue
            if f.name not in feats:
                raise SchemaError(f"{self.name} record: field {f.name} is missing")
            feat = feats[f.name]
            if f.kind == "float":
                value = f.decode(example_proto.float_array(feat.float_list))
            else:
                value = f.decode(list(feat.bytes_list.value if f.kind == "bytes" else feat.int64_list.value))
            out[f.name] = f.to_array(value) if arrays else value
        return out

    def describe(self) -> dict:
        return {"name": self.name, "version": self.version, "format": "tf.train.Example",
                "fields": [f.describe() for f in self.fields]}
