"""Request templates of parent-child models: `{parent.owner}`, `{parent.parent.id}`, `{item}` in a
path, a parameter, a header or a body value replaced by one function over strings (`substitute`;
`fill` applies it to every string of a body).

Pure: validation reads the placeholders a model uses, extraction fills them from a parent record
read before PII stripping. Other braces (`{"a": 1}` in a parameter) are left as they are.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

PLACEHOLDER = re.compile(r"\{(item|(?:parent\.)+item|(?:parent\.)+[^{}\s]+)\}")


class TemplateValueError(ValueError):
    """A placeholder whose value is missing or not a scalar: names the placeholder, never a value."""


@dataclass(frozen=True)
class Placeholder:
    """`{parent.parent.name}`: `depth` 2 (grandparent), `field` 'name'; `{item}`: depth 0, field 'item'."""

    text: str
    depth: int
    field: str

    @property
    def is_item(self) -> bool:
        return self.field == "item"


def parse(name: str) -> Placeholder:
    depth = 0
    rest = name
    while rest.startswith("parent."):
        depth, rest = depth + 1, rest[len("parent."):]
    return Placeholder("{" + name + "}", depth, rest)


def placeholders(text: str) -> Iterator[Placeholder]:
    for match in PLACEHOLDER.finditer(text):
        yield parse(match.group(1))


def request_texts(path: str, params: dict[str, Any], headers: dict[str, str]) -> Iterator[tuple[tuple[str, ...], str]]:
    """Every template string of a request, with its key path in the model: (('path',), '/repos/{parent.id}')."""
    yield ("path",), path
    for name, value in params.items():
        if isinstance(value, str):
            yield ("params", name), value
    for name, value in headers.items():
        yield ("headers", name), value


def substitute(text: str, lookup: Callable[[Placeholder], Any], encode: Callable[[str], str] = str) -> str:
    """`text` with each placeholder replaced by `encode` of its value as text (a path quotes it)."""
    if "{" not in text:
        return text

    def value(match: re.Match) -> str:
        placeholder = parse(match.group(1))
        found = lookup(placeholder)
        if found is None or isinstance(found, (dict, list)):
            what = "no value" if found is None else f"a {type(found).__name__}, not a scalar"
            raise TemplateValueError(f"placeholder {placeholder.text} has {what}")
        if isinstance(found, bool):
            found = "true" if found else "false"
        return encode(str(found))

    return PLACEHOLDER.sub(value, text)


def fill(value: Any, lookup: Callable[[Placeholder], Any]) -> Any:
    """`value` (a body: mappings, lists, scalars) with `substitute` applied to every string in it."""
    if isinstance(value, str):
        return substitute(value, lookup)
    if isinstance(value, dict):
        return {key: fill(item, lookup) for key, item in value.items()}
    if isinstance(value, list):
        return [fill(item, lookup) for item in value]
    return value


def strings(value: Any, at: tuple[str, ...]) -> Iterator[tuple[tuple[str, ...], str]]:
    """Every string of a body with its key path, for validation to read the placeholders."""
    if isinstance(value, str):
        yield at, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from strings(item, (*at, str(key)))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from strings(item, (*at, str(index)))
