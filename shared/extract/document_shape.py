"""Records of a `store: mongo` model are kept whole: the document is the record as the source sent
it, not a row of declared columns.

Declared columns still mean something: each names a field (its `path`, default its name) whose
value is converted to the column's type in place, where it sits in the document, and carries the
column's PII rule (see `shared/pii/document.py`). Fields no column declares are kept as they are.
A column whose field is absent is not added. Errors name the model, the record and the column,
never a value.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from shared.config.models import Column
from shared.errors import BadValue, ConversionError
from shared.extract.records import converter_for


def field_parts(name: str, column: Column | None) -> tuple[str, ...]:
    """The path of a declared column, or of an undeclared key field, as its parts."""
    return tuple(((column.path if column is not None else None) or name).split("."))


def get_at(node: Any, parts: tuple[str, ...]) -> Any:
    for part in parts:
        if isinstance(node, dict):
            node = node.get(part)
        elif isinstance(node, list) and part.lstrip("-").isdigit() and -len(node) <= int(part) < len(node):
            node = node[int(part)]
        else:
            return None
    return node


def update_at(node: Any, parts: tuple[str, ...], change: Callable[[Any], Any]) -> None:
    """Replace the value at `parts` with `change(value)`, in place; an absent field stays absent.
    A `*` part stands for every key of a mapping or every item of a list (as in `pii_fields`)."""
    part, rest = parts[0], parts[1:]
    if isinstance(node, dict):
        keys = list(node) if part == "*" else [part] if part in node else []
    elif isinstance(node, list):
        if part == "*":
            keys = list(range(len(node)))
        elif part.lstrip("-").isdigit() and -len(node) <= int(part) < len(node):
            keys = [int(part)]
        else:
            keys = []
    else:
        return
    for key in keys:
        if rest:
            update_at(node[key], rest, change)
        else:
            node[key] = change(node[key])


def _keeping_none(convert: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """`convert` for present values; a null stays null."""
    return lambda value: value if value is None else convert(value)


class DocumentShaper:
    """Raw record -> document with the declared columns' values converted in place."""

    def __init__(self, source: str, model: str, columns: dict[str, Column], primary_key: list[str]):
        self.source, self.model = source, model
        self._columns = [(name, field_parts(name, col), _keeping_none(converter_for(col)), col.on_error == "null")
                         for name, col in columns.items()]
        self._keys = [(k, field_parts(k, columns.get(k))) for k in primary_key]

    def shape(self, raw: Any, position: int) -> dict[str, Any]:
        if not isinstance(raw, dict):
            raise ConversionError(f"{self.source}.{self.model}: record #{position} is a {type(raw).__name__}, "
                                  "expected an object")
        document = dict(raw)
        for name, parts, convert, null_on_error in self._columns:
            try:
                update_at(document, parts, convert)
            except BadValue as exc:
                if null_on_error:
                    update_at(document, parts, lambda _value: None)
                    continue
                where = self._describe(document, position)
                raise ConversionError(f"{self.source}.{self.model}: record {where}, column '{name}': {exc}"
                                      " (set on_error: null on the column to store null instead)") from None
        for name, parts in self._keys:
            if get_at(document, parts) is None:
                raise ConversionError(f"{self.source}.{self.model}: record #{position} has no value for "
                                      f"primary key '{name}' (every document needs one: it becomes the _id)")
        return document

    def _describe(self, document: dict, position: int) -> str:
        """The record's position: a key is a value too (an e-mail kept as key), so never printed."""
        return f"#{position}"
