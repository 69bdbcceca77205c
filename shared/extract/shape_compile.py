"""A model's record shaper as one straight-line function, generated once per run.

`RecordShaper.shape_each` walks the model's columns for every record, unpacking each column's
settings from a tuple; for a model of a dozen columns that interpretive overhead costs as much as
the conversions themselves. Here the same steps are written out once, column after column, the way
`dataclasses` writes `__init__`: the generated text holds only local names made from column
positions (`v3`, `convert3`); every key, path getter, type, limit and converter reaches it as a
value of the namespace it is compiled in, never as text, so no manifest string becomes code.

The fast function does exactly what `shape_each` does for a record that converts cleanly. At the
first `BadValue` it hands the record to `shape_each`, which then raises the error with its record
and column, or loads NULL for an `on_error: null` column (converters have no side effects, so
running them again is harmless). A record that is not an object goes there straight away.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC
from typing import Any

Shape = Callable[[Any, int], dict]
# What a value of the column's own type must also satisfy to pass unconverted, as code over `v{i}`
# (fixed text, never from a manifest): a datetime already in UTC, a finite decimal.
GUARDS = {"utc": "v{i}.tzinfo is not UTC", "finite": "not v{i}.is_finite()"}


class ColumnPlan:
    """What the generated code needs of one column (as `RecordShaper` compiled it)."""

    __slots__ = ("name", "key", "get", "convert", "same_type", "keep", "max_len", "nested", "guard")

    def __init__(self, name: str, key: str | None, get: Callable[[Any], Any], convert: Callable[[Any], Any],
                 same_type: type | None, keep: bool, max_len: int | None, nested: tuple[str, str] | None = None,
                 guard: str | None = None):
        self.name, self.key, self.get, self.convert = name, key, get, convert
        self.same_type, self.keep, self.max_len = same_type, keep, max_len
        self.nested = nested   # (outer, inner) of a two-part path without list indexes: read inline
        self.guard = guard     # a key of GUARDS: what a value of `same_type` must also hold to pass as it is


def compile_shape(columns: Sequence[ColumnPlan], shape_each: Shape, bad_value: type[Exception]) -> Shape:
    """The fast `shape(raw, position)`; `shape_each` is the reference it falls back to."""
    namespace: dict[str, Any] = {"shape_each": shape_each, "BadValue": bad_value, "dict": dict, "UTC": UTC}
    body = []
    outers: dict[str, int] = {}   # outer key -> the column that first read it into `node{i}`
    for i, column in enumerate(columns):
        if column.key is not None:
            namespace[f"key{i}"] = column.key
            body.append(f"        v{i} = get(key{i})")
        elif column.nested is not None:   # compile_path's two-part getter, with the outer node read once
            outer, inner = column.nested
            if outer not in outers:
                outers[outer] = i
                namespace[f"outer{i}"] = outer
                body.append(f"        node{i} = get(outer{i})")
                body.append(f"        node{i} = node{i}.get if isinstance(node{i}, dict) else None")
            namespace[f"inner{i}"] = inner
            node = f"node{outers[outer]}"
            body.append(f"        v{i} = None if {node} is None else {node}(inner{i})")
        else:
            namespace[f"path{i}"] = column.get
            body.append(f"        v{i} = path{i}(raw)")
        if column.keep:
            continue
        namespace[f"convert{i}"] = column.convert
        if column.same_type is None:
            test = f"v{i} is not None"
        else:
            namespace[f"type{i}"] = column.same_type
            test = f"v{i} is not None and type(v{i}) is not type{i}"
            if column.max_len is not None:
                namespace[f"limit{i}"] = column.max_len
                test = f"v{i} is not None and (type(v{i}) is not type{i} or len(v{i}) > limit{i})"
            elif column.guard is not None:
                test = f"v{i} is not None and (type(v{i}) is not type{i} or {GUARDS[column.guard].format(i=i)})"
        body.append(f"        if {test}:")
        body.append(f"            v{i} = convert{i}(v{i})")
    for i, column in enumerate(columns):
        namespace[f"name{i}"] = column.name
    result = ", ".join(f"name{i}: v{i}" for i in range(len(columns)))
    source = "\n".join([
        "def shape(raw, position):",
        "    if not isinstance(raw, dict):",
        "        return shape_each(raw, position)",
        "    get = raw.get",
        "    try:",
        *(body or ["        pass"]),
        "    except BadValue:",
        "        return shape_each(raw, position)",
        f"    return {{{result}}}",
    ])
    exec(compile(source, "<kspyder generated shaper>", "exec"), namespace)   # noqa: S102 - positions only, see above
    shape: Callable[[Any, int], dict] = namespace["shape"]
    return shape
