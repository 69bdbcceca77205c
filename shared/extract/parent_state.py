"""Per-parent cursors of an incremental child (or for_each) model: each parent record (or item) is a
partition of `_kspyder_state`, read before its child's requests and committed with the child's rows.

The partition names the parent chain top-down (`Scope.identity`): each ancestor's key values, and a
for_each model's item. A key column with a PII rule is named by the value the parent's table stores
(its rule applied, a keyed hash), never by the raw value; a name longer than the column holds is
replaced by its SHA-256.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shared.config.incremental import ApiIncremental
from shared.extract.cursor import Cursor
from shared.extract.incremental import ApiWalk
from shared.extract.page_step import PageStep, Position
from shared.extract.parent_walk import Scope, WalkStep
from shared.extract.partition_cursor import PartitionCursor
from shared.pii.rules import DROP, Transform, canonical_text, compile_rule

PARTITION_LENGTH = 255   # `_kspyder_state.partition`


@dataclass
class LaneRead:
    records: list
    url: str
    position: Position
    checkpoint: PartitionCursor | None


class Partitions:
    """The partition text of a scope, with the ruled key values in their stored form."""

    def __init__(self, walk: WalkStep, pii_key: bytes | str | None, redaction: str = "[REDACTED]"):
        self.items = walk.items
        key = pii_key.encode("utf-8") if isinstance(pii_key, str) else pii_key
        self._levels = {level.name: level for level in walk.levels}
        self._rules: dict[str, dict[str, Transform]] = {}
        for level in walk.levels:
            rules: dict[str, Transform] = {}
            for name, column in level.model.columns.items():
                if column.rule is not None and (name in level.model.primary_key or name in level.needed):
                    rule = compile_rule(column.rule, key=key, redaction=redaction, where=f"{level.name}.{name}")
                    rules[name] = rule
            self._rules[level.name] = rules

    def of(self, scope: Scope) -> str:
        text = json.dumps(self._parts(scope), ensure_ascii=False, separators=(",", ":"), default=canonical_text)
        if len(text) > PARTITION_LENGTH:
            return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()
        return text

    def _parts(self, scope: Scope) -> list:
        record = scope.parent
        if record is None:
            return [] if scope.item_index is None else [["item", self.items[scope.item_index]]]
        level, rules = self._levels[record.model], self._rules.get(record.model, {})
        if record.key is not None:
            named = dict(zip(level.model.primary_key, record.key, strict=False))
        else:   # a keyless parent: the values its children's requests are made of
            named = dict(sorted(record.values.items()))
        return [*self._parts(record.scope), [record.model, [_stored(rules.get(n), v) for n, v in named.items()]]]


def _stored(rule: Transform | None, value: Any) -> Any:
    if rule is None:
        return value
    return None if rule is DROP else rule(value)


class ParentCursors:
    """The committed cursor of every partition of a model, and the walk of one lane from its own."""

    def __init__(self, spec: ApiIncremental, committed: dict[str, Cursor], partitions: Partitions,
                 qualified: str, now: datetime | None = None):
        self.spec, self.committed, self.partitions = spec, committed, partitions
        self.qualified, self.now = qualified, now

    def read(self, step: PageStep, scope: Scope) -> LaneRead:
        """Every page of one lane, each window's first request carrying the partition's cursor (a new
        parent: `initial_value`); the checkpoint is the cursor once all of them are loaded."""
        partition = self.partitions.of(scope)
        walk = ApiWalk(self.spec, self.committed.get(partition), self.qualified, self.now)
        records: list = []
        url, seen = "", 0
        at: Position | None = None
        for window in walk.windows:
            walk.stopped = False
            window_step = PageStep(step.source, step.model, step.pagination, step.client,
                                   walk.request(step.first_request(), window))
            at = window_step.start()
            url = at.request.url if at.request is not None else url
            while not at.done:
                page = window_step.step(at)
                records.extend(walk.take(page.records, seen))
                seen += len(page.records)
                url = page.url
                if walk.stopped:
                    break
        if at is None:
            raise ValueError(f"{self.qualified}: an incremental walk without a window")
        cursor = walk.checkpoint(walk.windows[-1], window_done=True)
        return LaneRead(records, url, at, PartitionCursor(partition, cursor) if cursor is not None else None)
