"""`PiiStripper`: a model's PII policy compiled once, then applied to every extracted record.

It runs on every record of every run, so all the work that does not depend on a value (rule lookup,
regex compilation, key checks) happens in `__init__`; `apply` only walks a short list of per-column
transforms, and a model without rules or scanning just copies the kept columns.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from shared.config.models import Column, ColumnType
from shared.detect.column_names import scan_context
from shared.detect.scrub import json_column, scrubbers, text_column
from shared.pii.fields import compile_fields
from shared.pii.key_guard import KeyGuard, column_getter
from shared.pii.rules import DROP, PiiKeyMissing, Transform, compile_rule

SCAN_MODES = ("off", "redact", "hash")
# Values arrive converted to their column's type, so only these columns can hold free text.
_TEXT_TYPES = (ColumnType.string, ColumnType.text, ColumnType.json)


def _chain(transforms: list[Transform]) -> Transform | None:
    if not transforms:
        return None
    if len(transforms) == 1:
        return transforms[0]
    first, second = transforms

    def both(value: Any) -> Any:
        return second(first(value))
    return both


def scan_setup(scan: str, key: bytes | str | None, terms: Sequence[str]) -> tuple[bytes | None, dict[str, Any]]:
    """The key as bytes (None: no key) and the free-text scrubbers by mode (`hash` only with a key),
    after checking the scan mode: what every stripper builds first."""
    if scan not in SCAN_MODES:
        raise ValueError(f"pii scan must be one of {', '.join(SCAN_MODES)}, not '{scan}'")
    if isinstance(key, str):
        key = key.encode("utf-8")
    key = key or None
    return key, scrubbers(terms, key)


class PiiStripper:
    """Column rules win over scanning: a column with a `pii` rule is never scanned, since its rule
    already decides everything about its value. Primary key columns (`keys`) are never scanned
    either: a scan rewrites PII to a label, so ten distinct e-mail keys would become one `[EMAIL]`
    row; a key that holds PII carries `pii: hash` (validation insists), and a `KeyGuard` fails the
    model if two distinct keys ever become one. `where` names the model in that error."""

    __slots__ = ("scan", "_output", "_transforms", "_dropped", "_unscanned", "_scanned", "_scan_spec", "_guard",
                 "_unguarded", "_where", "_children")

    def __init__(self, columns: dict[str, Column], *, scan: str, key: bytes | None,
                 terms: Sequence[str] = (), redaction: str = "[REDACTED]", keys: Sequence[str] = (),
                 where: str = ""):
        key, scrubbers = scan_setup(scan, key, terms)
        self.scan = scan
        output: list[str] = []
        dropped: list[str] = []
        transforms: list[tuple[str, Transform]] = []
        scanned: list[tuple[str, str]] = []   # text columns whose only step is the free-text scan
        unguarded: list[tuple[str, str]] = []   # text columns nothing covers, and why (value_guard.py)
        for name, column in columns.items():
            transform: Transform | None
            if column.rule is not None:
                transform = compile_rule(column.rule, key=key, redaction=redaction, where=name)
                if transform is DROP:
                    dropped.append(name)
                    continue
            else:
                steps: list[Transform] = []
                if column.pii_fields:
                    steps.append(compile_fields(name, column.pii_fields, key=key, redaction=redaction))
                column_scan = column.pii_scan or scan   # a column may narrow or widen its model's scan
                if name in keys:
                    column_scan = "off"
                if column.pii is None and not column.pii_fields and column.type in _TEXT_TYPES and column_scan == "off":
                    unguarded.append((name, "keys are never scanned" if name in keys else "its pii_scan is off"))
                if column_scan != "off" and column.type in _TEXT_TYPES:
                    context = scan_context(name, column)
                    if context is not None:
                        column_scan = f"{column_scan}:{context}"
                    scrub = scrubbers.get(column_scan)
                    if scrub is None:
                        raise PiiKeyMissing(name)
                    steps.append(json_column(scrub) if column.type == ColumnType.json else text_column(scrub))
                    if len(steps) == 1 and column.type != ColumnType.json:
                        scanned.append((name, column_scan))
                transform = _chain(steps)
            output.append(name)
            if transform is not None:
                transforms.append((name, transform))
        self._output = tuple(output)
        self._transforms = tuple(transforms)
        self._dropped = tuple(dropped)
        self._scanned = tuple(scanned)
        plain = {name for name, _ in scanned}
        self._unscanned = tuple((name, t) for name, t in transforms if name not in plain)
        self._scan_spec = (tuple(terms), key)
        self._unguarded, self._where = tuple(unguarded), where
        changed = {name for name, _ in transforms}
        self._guard = KeyGuard(where, keys, column_getter(keys)) if any(k in changed for k in keys) else None
        self._children: tuple[tuple[str, PiiStripper], ...] = ()

    def with_children(self, children: tuple[tuple[str, PiiStripper], ...]) -> PiiStripper:
        """The strippers of the record's child tables, by their column (`child_strip.py`)."""
        self._children = children
        return self

    @property
    def output_columns(self) -> list[str]:
        return list(self._output)

    def apply(self, record: dict) -> dict:
        guard = self._guard
        if guard is not None:
            original = guard.before(record)
        get = record.get
        out = {name: get(name) for name in self._output}
        for name, transform in self._transforms:
            out[name] = transform(out[name])
        if guard is not None:
            guard.after(out, original)
        for name, child in self._children:
            if name in record:
                out[name] = [child.apply(item) for item in record[name]]
        return out

    def apply_owned(self, record: dict) -> dict:
        """Like `apply`, in place, for a record the caller owns that has exactly the model's columns
        (the record shaper's output): the extractor's hot path, without a copy per record."""
        guard = self._guard
        if guard is not None:
            original = guard.before(record)
        for name in self._dropped:
            del record[name]
        for name, transform in self._transforms:
            record[name] = transform(record[name])
        if guard is not None:
            guard.after(record, original)
        for name, child in self._children:
            if name in record:   # a CSV drop's rows carry no nested lists
                record[name] = [child.apply_owned(item) for item in record[name]]
        return record

    def check_first_page(self, records: list[dict]) -> None:
        """Stop the model (value_guard.UnguardedPii) when the first page's stripped `records` hold
        PII in a text column no rule or scan covers; nothing to do for most models."""
        unguarded = getattr(self, "_unguarded", ())   # a DocumentStripper scans whole documents
        if unguarded and records:
            from shared.pii.value_guard import check_page
            check_page(self._where, unguarded, records)
        for name, child in getattr(self, "_children", ()):
            child.check_first_page([item for record in records for item in record.get(name) or ()])

    @property
    def scanned_columns(self) -> tuple[tuple[str, str], ...]:
        """(column, scan mode) of the text columns whose only PII step is the free-text scan: the
        ones `apply_owned_unscanned` leaves for the scan process (`scan_process.py`)."""
        return self._scanned

    @property
    def scan_spec(self) -> tuple[tuple[str, ...], bytes | None]:
        """(terms, key): what the scan process needs to scan exactly as this stripper does."""
        return self._scan_spec

    def apply_owned_unscanned(self, record: dict) -> dict:
        """`apply_owned` except the `scanned_columns`, which the caller scans itself (keys are
        never among them, so the key guard sees the final keys here)."""
        guard = self._guard
        if guard is not None:
            original = guard.before(record)
        for name in self._dropped:
            del record[name]
        for name, transform in self._unscanned:
            record[name] = transform(record[name])
        if guard is not None:
            guard.after(record, original)
        for name, child in self._children:   # scanned here, whole: the scan process sees the parent's columns
            if name in record:
                record[name] = [child.apply_owned(item) for item in record[name]]
        return record

    def scan_values(self, name: str, values: list) -> list:
        """Scan one of the `scanned_columns` here, in this process: what the scan process does."""
        transform = dict(self._transforms)[name]
        return [transform(value) for value in values]

    @classmethod
    def for_model(cls, model: Any, settings_pii: Any, scan: str | None, *, documents: bool = False,
                  where: str = "") -> PiiStripper:
        """`model` is a ModelBase and `settings_pii` a PiiSettings; `scan` is the resolved mode
        (falls back to the model's, then the settings' when not given). `documents`: the model's
        records are whole documents (store: mongo), stripped and scanned whole. `where`: the
        model's qualified name, for errors."""
        key = settings_pii.key.encode("utf-8") if settings_pii.key else None
        if documents:
            from shared.pii.document import DocumentStripper  # lazy: document.py subclasses this class
            cls = DocumentStripper
        stripper = cls(model.columns, scan=scan or model.pii_scan or settings_pii.scan, key=key,
                       terms=model.pii_terms, redaction=settings_pii.redaction, keys=tuple(model.primary_key),
                       where=where)
        if documents or not model.tables:
            return stripper
        from shared.pii.child_strip import child_strippers
        return stripper.with_children(child_strippers(model, settings_pii, scan, where))
