"""PII rules over whole documents (`store: mongo` models).

A document lands whole, including fields nobody declared, so the scan cannot be limited to
declared text columns: every string value of the document is scanned (nested mappings and lists
included; keys are schema, not data, and are left alone). Declared columns keep their meaning at
their field's path: a `pii` rule decides that value (it is then not scanned), `pii_fields`
rewrite nested paths under it, and a column's own `pii_scan` replaces the model's mode for its
subtree (`off` leaves it unscanned). Primary key fields are never scanned (they become the `_id`:
a scan would turn distinct e-mail keys into one `[EMAIL]` document); one that holds PII carries
`pii: hash`, and the key guard fails the model if two distinct keys become one.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from shared.config.models import Column
from shared.detect.scrub import json_column
from shared.pii.fields import _rewrite, compile_fields
from shared.pii.key_guard import KeyGuard, path_getter
from shared.pii.rules import DROP, PiiKeyMissing, Transform, compile_rule
from shared.pii.stripper import PiiStripper, scan_setup

WHOLE_DOCUMENT = "(whole document)"
_CLAIMED = None   # marks a path in the claim tree whose value the scan leaves to its column


class DocumentStripper(PiiStripper):
    """`apply_owned` / `apply` take a whole document and return it stripped (a new document: the
    rewrites copy what they change)."""

    __slots__ = ("_rules", "_claims", "_scrub")

    def __init__(self, columns: dict[str, Column], *, scan: str, key: bytes | None,
                 terms: Sequence[str] = (), redaction: str = "[REDACTED]", keys: Sequence[str] = (),
                 where: str = ""):
        key, scrubbers = scan_setup(scan, key, terms)
        self.scan = scan
        rules: list[tuple[tuple[str, ...], Transform]] = []
        claims: dict = {}
        output: list[str] = []
        dropped: list[str] = []
        for name, column in columns.items():
            parts = tuple((column.path or name).split("."))
            if column.rule is not None:
                rules.append((parts, compile_rule(column.rule, key=key, redaction=redaction, where=name)))
                _claim(claims, parts)
                (dropped if rules[-1][1] is DROP else output).append(name)
                continue
            output.append(name)
            if column.pii_fields:
                rules.append((parts, compile_fields(name, column.pii_fields, key=key, redaction=redaction)))
            if column.pii_scan is not None:
                _claim(claims, parts)
                if column.pii_scan != "off":
                    if column.pii_scan not in scrubbers:
                        raise PiiKeyMissing(name)
                    rules.append((parts, json_column(scrubbers[column.pii_scan])))
        key_paths = [tuple(((columns[k].path or k) if k in columns else k).split(".")) for k in keys]
        for name, parts in zip(keys, key_paths, strict=True):
            if name not in columns or columns[name].rule is None:
                _claim(claims, parts)   # a key is never scanned; its rule, if any, is applied above
        ruled = any(k in columns and columns[k].rule is not None for k in keys)
        self._guard = KeyGuard(where, keys, path_getter(key_paths)) if ruled else None
        if scan != "off" and scan not in scrubbers:
            raise PiiKeyMissing(WHOLE_DOCUMENT)
        self._rules = tuple(rules)
        self._claims = claims
        self._scrub = scrubbers.get(scan) if scan != "off" else None
        self._output, self._dropped, self._transforms = tuple(output), tuple(dropped), ()
        self._scanned, self._unscanned, self._scan_spec = (), (), ((), None)   # documents scan whole, here

    def apply(self, record: dict) -> dict:
        guard = self._guard
        if guard is not None:
            original = guard.before(record)
        document: Any = record
        for parts, action in self._rules:   # first, as for a json column: pii_fields see the raw values
            document = _rewrite(document, parts, 0, action)
        if self._scrub is not None:
            document = _scan(document, self._claims, self._scrub)
        if guard is not None:
            guard.after(document, original)
        stripped: dict = document   # _rewrite and _scan return a document of the shape they were given
        return stripped

    apply_owned = apply_owned_unscanned = apply


def _claim(tree: dict, parts: tuple[str, ...]) -> None:
    node = tree
    for part in parts[:-1]:
        child = node.get(part, {})
        if child is _CLAIMED:
            return   # an enclosing path is already claimed whole
        node = node.setdefault(part, child)
    node[parts[-1]] = _CLAIMED


def _scan(value: Any, claims: dict | None, scrub: Callable[[str], str]) -> Any:
    """Every string scrubbed, except under claimed paths (`claims` mirrors the document: a
    mapping per level, `*` matching every key or list index, `_CLAIMED` at a claimed leaf)."""
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, dict):
        if not claims:
            return {k: _scan(v, None, scrub) for k, v in value.items()}
        return {k: v if (sub := _sub(claims, k)) is _CLAIMED else _scan(v, sub, scrub) for k, v in value.items()}
    if isinstance(value, list):
        if not claims:
            return [_scan(v, None, scrub) for v in value]
        return [v if (sub := _sub(claims, str(i))) is _CLAIMED else _scan(v, sub, scrub) for i, v in enumerate(value)]
    return value


def _sub(claims: dict, key: str) -> Any:
    if key in claims:
        return claims[key]
    return claims.get("*", {})
