"""KeyPose's text protos (``keypose/data.proto``, proto2, package ``keypose``) as protobuf classes.

The message definitions are written out in ``kpdata/keypose/data.proto``; this module builds the
same descriptor in Python (protoc is not needed) in a private descriptor pool, and
:func:`proto_source` renders a descriptor back to ``.proto`` syntax, which a test compares with
that file. Messages: ``Transform``, ``Camera``, ``Target`` (with the nested ``Target.KeyPoint``),
``KeyTargets``, ``DataParams``, ``TfSet``. Text files are read and written with protobuf's own
``text_format``.
"""
from __future__ import annotations

import functools

from google.protobuf import (
    descriptor_pb2,
    descriptor_pool,
    message_factory,
    text_format,
)

from kpdata.errors import InputError

_F = descriptor_pb2.FieldDescriptorProto
PACKAGE = "keypose"
FILE_NAME = "keypose/data.proto"

_OPT, _REP = _F.LABEL_OPTIONAL, _F.LABEL_REPEATED
_TYPE_NAMES = {_F.TYPE_FLOAT: "float", _F.TYPE_INT32: "int32", _F.TYPE_BOOL: "bool", _F.TYPE_STRING: "string"}


def _add(msg, name, number, ftype, label=_OPT, type_name="", default=None):
    f = msg.field.add(name=name, number=number, type=ftype, label=label)
    if type_name:
        f.type_name = type_name
    if default is not None:
        f.default_value = default
    return f


def file_descriptor() -> descriptor_pb2.FileDescriptorProto:
    """The FileDescriptorProto of KeyPose's data.proto (field names, numbers, types, defaults)."""
    fdp = descriptor_pb2.FileDescriptorProto(name=FILE_NAME, package=PACKAGE, syntax="proto2")
    m = fdp.message_type.add(name="Transform")
    _add(m, "element", 1, _F.TYPE_FLOAT, _REP)

    m = fdp.message_type.add(name="Camera")
    for i, n in enumerate(("fx", "fy", "cx", "cy", "baseline", "resx", "resy"), 1):
        _add(m, n, i, _F.TYPE_FLOAT)

    m = fdp.message_type.add(name="Target")
    _add(m, "transform", 1, _F.TYPE_MESSAGE, type_name=".keypose.Transform")
    _add(m, "camera", 2, _F.TYPE_MESSAGE, type_name=".keypose.Camera")
    kp = m.nested_type.add(name="KeyPoint")
    for i, n in enumerate(("u", "v", "x", "y", "z"), 1):
        _add(kp, n, i, _F.TYPE_FLOAT)
    _add(kp, "visible", 6, _F.TYPE_FLOAT, default="1.0")
    _add(m, "keypoints", 3, _F.TYPE_MESSAGE, _REP, ".keypose.Target.KeyPoint")

    m = fdp.message_type.add(name="KeyTargets")
    _add(m, "kp_target", 1, _F.TYPE_MESSAGE, type_name=".keypose.Target")
    _add(m, "proj_targets", 2, _F.TYPE_MESSAGE, _REP, ".keypose.Target")
    _add(m, "mirrored", 3, _F.TYPE_BOOL, default="false")

    m = fdp.message_type.add(name="DataParams")
    for i, n in enumerate(("resx", "resy", "num_kp"), 1):
        _add(m, n, i, _F.TYPE_INT32)
    _add(m, "camera", 4, _F.TYPE_MESSAGE, type_name=".keypose.Camera")

    m = fdp.message_type.add(name="TfSet")
    _add(m, "name", 1, _F.TYPE_STRING)
    _add(m, "common_dir", 2, _F.TYPE_STRING)
    for i, n in enumerate(("train", "val", "exclude"), 3):
        _add(m, n, i, _F.TYPE_STRING, _REP)
    _add(m, "image_size", 6, _F.TYPE_STRING)
    return fdp


@functools.cache
def messages() -> dict:
    """{"Transform", "Camera", "Target", "KeyPoint", "KeyTargets", "DataParams", "TfSet"} -> classes."""
    fdp = file_descriptor()
    pool = descriptor_pool.DescriptorPool()
    classes = message_factory.GetMessages([fdp], pool=pool)
    out = {name.split(".")[-1]: cls for name, cls in classes.items()}
    out["KeyPoint"] = out["Target"].KeyPoint
    return out


def new(name: str):
    """A new, empty message of type ``name`` (e.g. ``new("KeyTargets")``)."""
    return messages()[name]()


def parse_text(text: str, name: str, path: str = ""):
    """Parse a text-format message of type ``name``; InputError("bad_pbtxt") names the file."""
    msg = new(name)
    try:
        text_format.Parse(text, msg)
    except text_format.ParseError as e:
        raise InputError("bad_pbtxt", f"not a valid keypose.{name} text proto: {e}", path) from None
    return msg


def read_text(path: str, name: str):
    """Read a ``.pbtxt`` file holding one message of type ``name``."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise InputError("missing_file", f"keypose.{name} file does not exist", path) from None
    except OSError as e:
        raise InputError("unreadable_file", f"cannot read: {e.strerror}", path) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise InputError("bad_pbtxt", f"not UTF-8 text: {e}", path) from None
    return parse_text(text, name, path)


def to_text(msg) -> str:
    """Text format, as KeyPose writes it (``text_format.MessageToString``, one field a line)."""
    return text_format.MessageToString(msg)


# --------------------------------------------------------------------------- .proto rendering


def _type_str(field, scope: str) -> str:
    if field.type == _F.TYPE_MESSAGE:
        name = field.type_name
        for prefix in (f"{scope}.", f".{PACKAGE}."):
            if name.startswith(prefix):
                return name[len(prefix):]
        return name
    return _TYPE_NAMES[field.type]


def _render_message(msg, scope: str, indent: str) -> list[str]:
    lines = [f"{indent}message {msg.name} {{"]
    scope = f"{scope}.{msg.name}"
    nested = {f"{scope}.{n.name}": n for n in msg.nested_type}
    emitted = set()
    for f in msg.field:
        # A nested type is written just before the first field that uses it (as data.proto does).
        if f.type_name in nested and f.type_name not in emitted:
            lines += _render_message(nested[f.type_name], scope, indent + "  ")
            lines.append("")
            emitted.add(f.type_name)
        label = "repeated" if f.label == _REP else "optional"
        default = f" [default = {f.default_value}]" if f.HasField("default_value") else ""
        lines.append(f"{indent}  {label} {_type_str(f, scope)} {f.name} = {f.number}{default};")
    lines.append(f"{indent}}}")
    return lines


def proto_source(fdp: descriptor_pb2.FileDescriptorProto | None = None) -> str:
    """``.proto`` source of a file descriptor (no comments): ``syntax``, ``package``, messages."""
    fdp = fdp or file_descriptor()
    lines = [f'syntax = "{fdp.syntax}";', "", f"package {fdp.package};", ""]
    for msg in fdp.message_type:
        lines += _render_message(msg, f".{fdp.package}", "")
        lines.append("")
    return "\n".join(lines)
