"""PII stripping, applied to every record right after extraction and before anything is written.

Column rules (`pii`, `pii_fields`) say what to do with known PII columns; `pii_scan` finds PII in
free text that no rule covers.

The names below are imported on first use (PEP 562): the scan process (`scan_process.py`) imports
only the detectors, and importing the package must not pull in the manifest models for it.
"""
from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:   # the same names, typed for mypy; at run time __getattr__ below imports them
    from shared.pii.detectors import Detection as Detection
    from shared.pii.detectors import Scanner as Scanner
    from shared.pii.detectors import find_pii as find_pii
    from shared.pii.rules import PiiKeyMissing as PiiKeyMissing
    from shared.pii.stripper import PiiStripper as PiiStripper

_WHERE = {"Detection": "detectors", "Scanner": "detectors", "find_pii": "detectors",
          "PiiKeyMissing": "rules", "PiiStripper": "stripper"}
__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value
