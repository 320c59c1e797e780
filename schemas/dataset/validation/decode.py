"""Strict decoding of a serialized ``tf.train.Example`` with its schema (:mod:`schemas.features`):
what ``Schema.decode`` takes on trust (the feature set, kinds, value counts, shapes, finite
floats, shared dimensions) checked and reported as problems instead of raised."""
from __future__ import annotations

import numpy as np

from schemas import example_proto
from schemas.features import PNGImage, SchemaError, Tensor, Text

__all__ = ["decode_strict"]

_KIND_ONEOF = {"bytes": "bytes_list", "int64": "int64_list", "float": "float_list"}


def decode_strict(schema, data: bytes, optional=()) -> tuple[dict, list[str]]:
    """Decode serialized Example ``data`` with ``schema``, checking what ``Schema.decode`` does not:
    no missing or unexpected features (``optional`` names may be absent), each stored as its
    kind, value counts and shapes as declared, decoded PNG sizes, finite floats, shared dimensions.
    Returns (decoded fields, problems: one line each)."""
    try:
        ex = example_proto.parse_example(data)
    except Exception as e:  # noqa: BLE001 - protobuf's DecodeError and friends
        return {}, [f"not a tf.train.Example ({type(e).__name__}: {e})"]
    feats = ex.features.feature
    names = {f.name for f in schema.fields}
    missing = [f.name for f in schema.fields if f.name not in feats and f.name not in optional]
    extra = sorted(set(feats) - names)
    problems = []
    if missing:
        problems.append(f"missing features {missing}")
    if extra:
        problems.append(f"unexpected features {extra}")
    out = {}
    for f in schema.fields:
        if f.name not in feats:
            continue
        feat = feats[f.name]
        want = _KIND_ONEOF[f.kind]
        kind = feat.WhichOneof("kind")
        if kind is not None and kind != want:
            problems.append(f"{f.name}: stored as {kind}, the schema says {want}")
            continue
        vals = list(getattr(feat, want).value)
        p = _count_problem(f, len(vals))
        if p:
            problems.append(p)
            continue
        try:
            v = f.decode(vals)
        except (SchemaError, ValueError) as e:
            problems.append(f"{f.name}: does not decode ({e})")
            continue
        p = _shape_problem(f, v)
        if p:
            problems.append(p)
            continue
        if f.kind == "float" and not np.all(np.isfinite(np.asarray(v, dtype=np.float64))):
            problems.append(f"{f.name}: non-finite values")
            continue
        out[f.name] = v
    if not problems:
        try:  # shared dimensions (K, N, H, W...) agree
            _check_dims(schema, out)
        except SchemaError as e:
            problems.append(str(e))
    return out, problems


def _count_problem(f, n: int) -> str | None:
    if isinstance(f, PNGImage) or not isinstance(f, (Tensor, Text)):
        return None if n == 1 else f"{f.name}: {n} values, expected 1 (an encoded image / bytes)"
    if f.shape == ():
        return None if n == 1 else f"{f.name}: {n} values, expected a scalar"
    fixed = int(np.prod([s for s in f.shape if s is not None]))
    if None not in f.shape:
        return None if n == fixed else f"{f.name}: {n} values, expected {fixed} (shape {tuple(f.shape)})"
    if n % (fixed * f.stride):
        return f"{f.name}: {n} values, not a multiple of {fixed * f.stride}"
    return None


def _shape_problem(f, v) -> str | None:
    if isinstance(f, Text) or not isinstance(f, (Tensor, PNGImage)) or f.shape == ():
        return None
    arr = np.asarray(v)
    if len(arr.shape) != len(f.shape) or any(s is not None and s != a for s, a in zip(f.shape, arr.shape)):
        return f"{f.name}: shape {arr.shape}, expected {tuple('?' if s is None else s for s in f.shape)}"
    return None


def _check_dims(schema, rec: dict) -> None:
    seen: dict = {}
    for f in schema.fields:
        if f.name not in rec or not f.dims:
            continue
        for dim, n in f.lengths(rec[f.name]).items():
            if dim in seen and seen[dim][0] != n:
                raise SchemaError(f"{f.name} has {dim}={n} but {seen[dim][1]} has {dim}={seen[dim][0]}")
            seen.setdefault(dim, (n, f.name))
