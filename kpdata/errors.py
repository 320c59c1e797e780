"""Errors for bad input data.

A data problem (unreadable mesh, empty mesh, NaN vertices, missing texture, corrupt image, ...)
raises :class:`InputError`, which names the file and what is wrong. Pipelines catch exactly this
class and turn it into a dead-letter line; anything else is a bug and propagates.
"""
from __future__ import annotations

import os

__all__ = ["InputError", "printable", "is_utf8"]


class InputError(Exception):
    """Bad input data. ``error`` is a short machine-readable kind (``empty_mesh``,
    ``missing_texture``, ...); ``path`` the offending file."""

    def __init__(self, error: str, message: str, path: str = ""):
        self.error = error
        self.message = message
        self.path = path
        super().__init__(f"{path}: {message}" if path else message)

    def __reduce__(self):  # keep the fields (and a ``key`` or ``stage`` set on it) across worker processes
        return (type(self), (self.error, self.message, self.path), dict(self.__dict__))


def printable(path: str) -> str:
    """A file name or path as text that encodes to UTF-8, for messages, keys and dead letters: the
    bytes of a non-UTF-8 name (the surrogate escapes ``os.listdir`` gives) written ``\\xNN``."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def is_utf8(name: str) -> bool:
    """Whether a file name (as ``os.listdir`` gives it) is valid UTF-8."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
