"""The validation report: checks by name, each with its notes and defects; text and JSON forms.

A :class:`Defect` names the check, the file (relative to the dataset folder), the record's key
where there is one, and what is wrong. Checks appear in the report in the order they were first
asked for (:meth:`Report.check`).
"""
from __future__ import annotations

import dataclasses
import os

__all__ = ["SHOW_DEFECTS", "UsageError", "Defect", "Check", "Report"]

SHOW_DEFECTS = 50  # defects printed per check in the text report (the JSON form lists all)


class UsageError(Exception):
    """Not a folder, or not a kpdata dataset (the command exits 2)."""


@dataclasses.dataclass
class Defect:
    check: str
    file: str
    message: str
    key: str | None = None

    def as_dict(self) -> dict:
        return {"check": self.check, "file": self.file, "key": self.key, "message": self.message}

    def __str__(self):
        where = self.file + (f" [{self.key}]" if self.key else "")
        return f"{where}: {self.message}"


@dataclasses.dataclass
class Check:
    """One named check: ``ok`` without defects, ``FAIL`` with any, ``skip`` when it could not run."""

    name: str
    notes: list = dataclasses.field(default_factory=list)
    defects: list = dataclasses.field(default_factory=list)
    skipped: bool = False

    def defect(self, file: str, message: str, key: str | None = None) -> None:
        self.defects.append(Defect(self.name, file, message, key))

    def note(self, text: str) -> None:
        self.notes.append(text)

    @property
    def status(self) -> str:
        return "FAIL" if self.defects else ("skip" if self.skipped else "ok")


class Report:
    """The checks of one dataset folder ``root``; ``kind`` says what the folder was read as;
    ``listed`` holds the shard paths kpdata_info.json lists (for the stray-file check)."""

    def __init__(self, root: str):
        self.root = root
        self.kind = "?"
        self.checks: dict[str, Check] = {}
        self.listed: set = set()

    def check(self, name: str) -> Check:
        if name not in self.checks:
            self.checks[name] = Check(name)
        return self.checks[name]

    def rel(self, path: str) -> str:
        return os.path.relpath(path, self.root) if not os.path.relpath(path, self.root).startswith("..") else path

    @property
    def defects(self) -> list[Defect]:
        return [d for c in self.checks.values() for d in c.defects]

    def as_dict(self) -> dict:
        return {"dir": self.root, "kind": self.kind, "ok": not self.defects,
                "checks": [{"name": c.name, "status": c.status, "notes": c.notes, "defects": len(c.defects)}
                           for c in self.checks.values()],
                "defects": [d.as_dict() for d in self.defects]}

    def text(self) -> str:
        lines = [f"== validate {self.root} ({self.kind})"]
        for c in self.checks.values():
            lines.append(f"   {c.status:<5} {c.name:<12} {'; '.join(c.notes)}"
                         + (f"  [{len(c.defects)} defect(s)]" if c.defects else ""))
        defects = self.defects
        if defects:
            lines.append(f"   DEFECTS {len(defects)}:")
            for c in self.checks.values():
                for d in c.defects[:SHOW_DEFECTS]:
                    lines.append(f"   - {c.name}: {d}")
                if len(c.defects) > SHOW_DEFECTS:
                    lines.append(f"   - {c.name}: ... and {len(c.defects) - SHOW_DEFECTS} more (see --json)")
            lines.append("   exit 1")
        else:
            lines.append("   no defects")
        return "\n".join(lines)
