"""A model's primary key after its PII rules must still tell records apart: two records whose keys
differ before the rules and agree after them would be merged into one row by the upsert, silently.
Only a `pii: hash` rule may touch a key, and a keyed SHA-256 does not collide in practice; the
guard makes the promise checked rather than assumed, and fails the model instead of merging."""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from shared.errors import ExtractError

WINDOW = 100_000   # keys remembered at once (per model run): memory stays bounded on long runs


class KeyCollision(ExtractError):
    """Two distinct records mapped to one key: the model fails (as an extraction error, so the run
    reports it per model). Names columns and positions, never the values."""

    def __init__(self, where: str, columns: Sequence[str], first: int, second: int):
        self.columns, self.positions = tuple(columns), (first, second)
        prefix = f"{where}: " if where else ""
        super().__init__(f"{prefix}records #{first} and #{second} have different keys that become the same "
                         f"key ({', '.join(columns)}) after their PII rules; refusing to merge them into one row")


class KeyGuard:
    """`before(record)` takes the key as extracted; `after(record, key)` checks the key as stripped
    against the keys seen so far in this run (a window of `WINDOW` keys)."""

    __slots__ = ("where", "columns", "_get", "_seen", "_position")

    def __init__(self, where: str, columns: Sequence[str], get: Callable[[dict], tuple]):
        self.where, self.columns, self._get = where, tuple(columns), get
        self._seen: dict[tuple, tuple[tuple, int]] = {}
        self._position = 0   # records through this stripper so far: the run's record position

    def before(self, record: dict) -> tuple:
        return self._get(record)

    def after(self, record: dict, original: tuple) -> None:
        position, self._position = self._position, self._position + 1
        stripped = self._get(record)
        seen = self._seen.get(stripped)
        if seen is None:
            if len(self._seen) >= WINDOW:
                self._seen.clear()
            self._seen[stripped] = (original, position)
        elif seen[0] != original:
            raise KeyCollision(self.where, self.columns, seen[1], position)


def column_getter(names: Sequence[str]) -> Callable[[dict], tuple]:
    return lambda record: tuple(_hashable(record.get(name)) for name in names)


def path_getter(paths: Sequence[tuple[str, ...]]) -> Callable[[dict], tuple]:
    """For whole documents: each key at its dotted path."""
    def get(document: Any) -> tuple:
        values = []
        for parts in paths:
            node = document
            for part in parts:
                node = node.get(part) if isinstance(node, dict) else None
            values.append(_hashable(node))
        return tuple(values)
    return get


def _hashable(value: Any) -> Any:
    if isinstance(value, (dict, list)):
        return repr(value)
    return value
