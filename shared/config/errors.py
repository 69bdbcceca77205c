"""Configuration errors that point at a file, a line and a key path.

All problems found in one validation pass are collected and raised together, so a user fixes
their manifests in one edit instead of one error per run.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class ConfigIssue:
    file: str
    line: int | None
    key_path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        key = f" {self.key_path}:" if self.key_path else ""
        return f"{where}{key} {self.message}"


class ConfigError(Exception):
    """One or more configuration issues; `str()` lists every one, one per line."""

    def __init__(self, issues: list[ConfigIssue]):
        self.issues = sorted(set(issues), key=lambda i: (i.file, i.line or 0, i.key_path, i.message))
        super().__init__("\n".join(str(i) for i in self.issues))


def format_path(path: tuple) -> str:
    """`('sources', 'shop', 'columns', 0)` -> `sources.shop.columns[0]`."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out
