"""`pii_fields`: rules for nested paths inside `json` column values.

Rewrites copy only the dicts and lists on the way to a match, so the extracted record (and any
structure it shares with other records) is never changed in place. A path that does not exist in a
value is not an error: JSON payloads are ragged.
"""
from __future__ import annotations

from typing import Any

from shared.config.models import PiiSpec
from shared.pii.rules import DROP, Transform, compile_rule


def _rewrite(node: Any, parts: tuple[str, ...], depth: int, action: Transform) -> Any:
    part = parts[depth]
    leaf = depth + 1 == len(parts)
    if isinstance(node, dict):
        if part == "*":
            keys = list(node)
        elif part in node:
            keys = [part]
        else:
            return node
        copy = dict(node)
        for k in keys:
            if not leaf:
                copy[k] = _rewrite(copy[k], parts, depth + 1, action)
            elif action is DROP:
                del copy[k]
            else:
                copy[k] = action(copy[k])
        return copy
    if isinstance(node, list):
        if part == "*":
            indexes = range(len(node))
        elif part.isdigit() and int(part) < len(node):
            indexes = range(int(part), int(part) + 1)
        else:
            return node
        if leaf and action is DROP:
            return [item for i, item in enumerate(node) if i not in indexes]
        items = list(node)
        for i in indexes:
            items[i] = action(items[i]) if leaf else _rewrite(items[i], parts, depth + 1, action)
        return items
    return node


def compile_fields(column: str, fields: dict[str, PiiSpec], *, key: bytes | None, redaction: str) -> Transform:
    """One transform applying every nested rule of a json column, in declared order."""
    steps: list[tuple[tuple[str, ...], Transform]] = []
    for path, spec in fields.items():
        parts = tuple(path.split("."))
        if not path or "" in parts:
            raise ValueError(f"column '{column}': pii_fields path '{path}' has an empty part")
        steps.append((parts, compile_rule(spec, key=key, redaction=redaction, where=f"{column}.{path}")))

    def apply(value: Any) -> Any:
        for parts, action in steps:
            value = _rewrite(value, parts, 0, action)
        return value
    return apply
