"""The PII guard on values: the first page of a run, checked where no rule or scan looks.

Validation judges columns by their names (shared/detect/column_names.py); a column named `notes` or `ref` says
nothing. So a run looks at what actually arrives in the columns that escape every rule: text
columns whose scan is off and text keys (never scanned), which no `pii` rule and no `pii: none`
statement covers. When the detectors find PII there, the model stops before its first page is
written, naming the model, the column and the kinds found, never a value.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from shared.detect.detectors import find_pii
from shared.errors import ExtractError

_KINDS = {"email": "e-mail addresses", "phone": "phone numbers", "iban": "IBANs", "card": "payment card numbers",
          "ipv4": "IP addresses", "ipv6": "IP addresses", "national_id": "national identifiers"}


class UnguardedPii(ExtractError):
    """PII found on the first page in a column nothing covers: the model stops before writing."""


def _texts(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _texts(item)
    elif isinstance(value, list):
        for item in value:
            yield from _texts(item)


def check_page(where: str, columns: Sequence[tuple[str, str]], records: list[dict]) -> None:
    """Raise UnguardedPii when a value of one of `columns` ((name, why nothing covers it)) holds PII."""
    problems = []
    for name, why in columns:
        kinds: dict[str, None] = {}
        holding = 0
        for record in records:
            found = [d.kind for text in _texts(record.get(name)) for d in find_pii(text)]
            if found:
                holding += 1
                kinds.update(dict.fromkeys(_KINDS.get(kind, kind) for kind in found))
        if holding:
            problems.append(f"column '{name}' holds {' and '.join(kinds)} in {holding} of {len(records)} records "
                            f"of the first page, and nothing covers it ({why})")
    if problems:
        raise UnguardedPii(f"model {where}: " + "; ".join(problems) + ": nothing was written; give the column a "
                           "pii rule or a scan, or pii: none with a reason")
