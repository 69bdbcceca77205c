"""The steps of a child model: its parents' records walked depth first, and for each one (a lane)
the child's own pages, read with a fresh paginator of its own.

The walk is a stack of frames: a for_each model's items, then each ancestor's pages under one
record of the model above it. `WalkStep.next_scopes` takes the walk to the next parent page and
returns one scope per record (parent values, key, position); `WalkStep.lane` reads one scope's
child whole. The embedded run reads lanes `concurrency` at a time through the source's one client
(one rate bucket); a queue-chain Fetch takes one walk step and sends each lane as a Fetch job of
its own, the walk's state (`WalkPosition.state()`) and each lane's scope sealed in start blobs.
Parent values are read from the raw records, before PII stripping, and only the fields a template
or `include_from_parent` names; they reach rows only as the columns the child declares.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from shared.config.models import ApiModel, ApiSource
from shared.config.parents import ITEM_KEY, PARENT_KEY, field_path, for_each_items, lineage, model_texts
from shared.config.templates import Placeholder, TemplateValueError, fill, placeholders, substitute
from shared.errors import ExtractError, RateLimited
from shared.extract.http_client import HttpClient
from shared.extract.page_step import PageStep, Position
from shared.extract.paginators import dotted_get
from shared.extract.request_body import model_request

if TYPE_CHECKING:
    from shared.extract.parent_state import ParentCursors

STATE_VERSION = 1
MAX_FRAMES = 16
MAX_PENDING = 100_000
MAX_WARNINGS = 100


class ChildError(ExtractError):
    """A request made for one parent record (or for_each item) failed; names it by key or position."""


@dataclass(frozen=True)
class Scope:
    """What one model's requests are made for: a for_each item (by index) or a parent record."""

    item_index: int | None = None
    parent: ParentRecord | None = None

    def identity(self) -> tuple:
        """The parent keys (or item index) from the top down: where a per-parent cursor hangs."""
        if self.parent is not None:
            return (*self.parent.scope.identity(), (self.parent.model, tuple(self.parent.key or ())))
        return () if self.item_index is None else (("item", self.item_index),)

    def label(self) -> str:
        """How messages name the scope: parent key values, or a position when a key has a PII rule."""
        if self.parent is not None:
            above = self.parent.scope.label()
            return self.parent.label() + (f" of {above}" if above else "")
        return "" if self.item_index is None else f"for_each item {self.item_index + 1}"

    def to_json(self) -> dict[str, Any]:
        if self.parent is not None:
            return {"parent": self.parent.to_json()}
        return {} if self.item_index is None else {"item": self.item_index}

    @classmethod
    def from_json(cls, value: Any, depth: int = 0) -> Scope:
        if not isinstance(value, dict) or depth > MAX_FRAMES or set(value) - {"parent", "item"} or len(value) > 1:
            raise ValueError("expected a walk scope")
        if "item" in value:
            return cls(item_index=_index(value["item"]))
        if "parent" in value:
            return cls(parent=ParentRecord.from_json(value["parent"], depth + 1))
        return cls()


@dataclass(frozen=True)
class ParentRecord:
    """The values a parent record lends its children: the fields they name, its key, its position."""

    model: str
    position: int
    values: dict[str, Any]
    key: list | None            # its primary key's values, None when it has no key
    named_by_key: bool          # False: a key column has a PII rule, so messages give the position
    scope: Scope = field(default_factory=Scope)

    def label(self) -> str:
        if self.key and self.named_by_key:
            return f"{self.model} " + ", ".join(f"{v}" for v in self.key)
        return f"{self.model} record {self.position + 1}"

    def to_json(self) -> dict[str, Any]:
        return {"model": self.model, "position": self.position, "values": self.values, "key": self.key,
                "named": self.named_by_key, "scope": self.scope.to_json()}

    @classmethod
    def from_json(cls, value: Any, depth: int = 0) -> ParentRecord:
        if not isinstance(value, dict) or set(value) != {"model", "position", "values", "key", "named", "scope"}:
            raise ValueError("expected a parent record")
        if not isinstance(value["model"], str) or not isinstance(value["values"], dict):
            raise ValueError("expected a parent record")
        if value["key"] is not None and not isinstance(value["key"], list) or not isinstance(value["named"], bool):
            raise ValueError("expected a parent record")
        return cls(value["model"], _index(value["position"]), value["values"], value["key"], value["named"],
                   Scope.from_json(value["scope"], depth))


def _index(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError("expected a position")
    return value


@dataclass
class Level:
    """One model of the lineage: how its requests are made and what its records lend below."""

    name: str
    model: ApiModel
    pagination: Any
    needed: dict[str, str]      # field named by a descendant -> its path in this model's raw records
    key_paths: list[str]
    named_by_key: bool
    ruled: frozenset[str] = frozenset()   # needed fields whose column has a PII rule: kept out of messages


@dataclass
class Frame:
    level: int                  # -1: a for_each model's items; else an index into the lineage
    scope: Scope
    position: Position | None = None    # None: its first page not asked for yet
    pending: list = field(default_factory=list)   # item indexes, or parent records to walk into
    exhausted: bool = False
    seen: int = 0


@dataclass
class Lane:
    """One child's records (all its pages), the URL of its last page, and its warnings."""

    scope: Scope
    records: list
    url: str
    warnings: list[str]
    checkpoint: Any = None   # an incremental child: its partition's cursor (`parent_state.PartitionCursor`)


class WalkPosition:
    """Where a walk over the parents stands: its frames (top first) and the parents it skipped."""

    def __init__(self, frames: list[Frame], skipped: list[str] | None = None):
        self.frames = frames
        self.skipped = skipped or []

    @property
    def done(self) -> bool:
        return not self.frames

    def state(self) -> dict[str, Any] | None:
        """Everything `WalkStep.resume` needs, JSON-able; None when the walk is over."""
        if self.done:
            return None
        frames = []
        for frame in self.frames:
            position = frame.position.state() if frame.position is not None and not frame.exhausted else None
            pending = [p.to_json() if isinstance(p, ParentRecord) else p for p in frame.pending]
            frames.append({"level": frame.level, "scope": frame.scope.to_json(), "position": position,
                           "pending": pending, "exhausted": frame.exhausted, "seen": frame.seen})
        return {"type": "walk", "v": STATE_VERSION, "frames": frames, "skipped": list(self.skipped)}


class WalkStep:
    """The steps of a model with a parent or for_each items (see the module docstring)."""

    def __init__(self, source_name: str, source: ApiSource, name: str, client: HttpClient,
                 url_of: Callable[[ApiSource, ApiModel], str]):
        self.qualified = f"{source_name}.{name}"
        self.source, self.client, self._url_of = source, client, url_of
        chain = lineage(source, name)
        self.levels = [self._level(source, chain, i) for i in range(len(chain))]
        self.leaf = len(self.levels) - 1
        self.model = self.levels[self.leaf].model
        self.items = for_each_items(self.levels[0].model)
        self.cursors: ParentCursors | None = None   # an incremental model's per-parent cursors

    @staticmethod
    def _level(source: ApiSource, chain: list[tuple[str, ApiModel]], index: int) -> Level:
        name, model = chain[index]
        needed: dict[str, str] = {}
        for depth, (_, below) in enumerate(chain[index + 1:], start=1):
            wanted = [p.field for p in _placeholders(below) if p.depth == depth and not p.is_item]
            if depth == 1:
                wanted += below.include_from_parent
            for wanted_field in wanted:
                path = field_path(model, wanted_field)
                if path is not None:
                    needed[wanted_field] = path
        key_paths = [field_path(model, key) or key for key in model.primary_key]
        named = all(model.columns[key].rule is None for key in model.primary_key if key in model.columns)
        ruled = frozenset(f for f, path in needed.items()
                          if any(c.rule is not None for n, c in model.columns.items() if (c.path or n) == path))
        return Level(name, model, source.pagination_for(model), needed, key_paths, named, ruled)

    # ------------------------------------------------------------ the parents' walk
    def start(self) -> WalkPosition:
        if self.levels[0].model.for_each is not None:
            return WalkPosition([Frame(-1, Scope(), pending=list(range(len(self.items))), exhausted=True)])
        return WalkPosition([Frame(0, Scope())])

    def resume(self, state: Any) -> WalkPosition:
        """ValueError for a state this walk did not write (it is read back from storage)."""
        if (not isinstance(state, dict) or state.get("type") != "walk" or state.get("v") != STATE_VERSION
                or not isinstance(state.get("frames"), list) or not isinstance(state.get("skipped"), list)):
            raise ValueError("expected a walk state")
        if not 0 < len(state["frames"]) <= MAX_FRAMES or len(state["skipped"]) > MAX_WARNINGS:
            raise ValueError("expected a walk state")
        frames = [self._frame(value) for value in state["frames"]]
        return WalkPosition(frames, [str(w) for w in state["skipped"]])

    def _frame(self, value: Any) -> Frame:
        if not isinstance(value, dict) or not isinstance(value.get("pending"), list):
            raise ValueError("expected a walk frame")
        level = value.get("level")
        if not isinstance(level, int) or isinstance(level, bool) or not -1 <= level < self.leaf:
            raise ValueError("expected a walk frame")
        if len(value["pending"]) > MAX_PENDING or not isinstance(value.get("exhausted"), bool):
            raise ValueError("expected a walk frame")
        scope = Scope.from_json(value.get("scope"))
        if level == -1:
            pending: list = [_index(i) for i in value["pending"]]
            if any(i >= len(self.items) for i in pending):
                raise ValueError("expected a walk frame")
        else:
            pending = [ParentRecord.from_json(p) for p in value["pending"]]
        frame = Frame(level, scope, None, pending, value["exhausted"], _index(value.get("seen")))
        position = value.get("position")
        if position is not None and level >= 0 and not frame.exhausted:
            if not isinstance(position, dict):
                raise ValueError("expected a walk frame")
            frame.position = self._step_for(level, scope).resume(position)
        return frame

    def next_scopes(self, at: WalkPosition) -> list[Scope]:
        """The scopes of the next parent page that has records (one request or more); [] once the walk is over."""
        while at.frames:
            frame = at.frames[-1]
            if frame.pending and frame.level + 1 == self.leaf:
                scopes = [self._scope(frame, p) for p in frame.pending]
                frame.pending = []
                while at.frames and at.frames[-1].exhausted and not at.frames[-1].pending:
                    at.frames.pop()   # so that `done` says at once whether another parent page follows
                return scopes
            if frame.pending:
                at.frames.append(Frame(frame.level + 1, self._scope(frame, frame.pending.pop(0))))
            elif frame.exhausted:
                at.frames.pop()
            else:
                self._parent_page(at, frame)
        return []

    def checked_scope(self, value: Any) -> Scope:
        """A lane's scope read back from storage (ValueError when this walk cannot have made it)."""
        scope = Scope.from_json(value)
        depth, inner = 0, scope
        while inner.parent is not None:
            depth, inner = depth + 1, inner.parent.scope
        has_items = self.levels[0].model.for_each is not None
        if depth != self.leaf or (inner.item_index is not None) != has_items:
            raise ValueError("expected a scope of this model's parents")
        if inner.item_index is not None and inner.item_index >= len(self.items):
            raise ValueError("expected a scope of this model's parents")
        return scope

    @staticmethod
    def _scope(frame: Frame, pending: Any) -> Scope:
        return Scope(item_index=pending) if frame.level == -1 else Scope(parent=pending)

    def _parent_page(self, at: WalkPosition, frame: Frame) -> None:
        config = self.levels[frame.level]
        try:
            step = self._step_for(frame.level, frame.scope)
            if frame.position is None:
                frame.position = step.start()
            page = step.step(frame.position)
        except RateLimited:
            raise
        except (ExtractError, TemplateValueError) as exc:
            if len(at.skipped) < MAX_WARNINGS:
                at.skipped.append(self._skipped(frame.scope, exc))   # raises unless on_child_error: skip
            at.frames.pop()
            return
        for record in self._marked(page.records, frame.scope, frame.level):
            values = {name: _plain(dotted_get(record, path, None)) for name, path in config.needed.items()}
            key = [_plain(dotted_get(record, path, None)) for path in config.key_paths] or None
            frame.pending.append(ParentRecord(config.name, frame.seen, values, key, config.named_by_key, frame.scope))
            frame.seen += 1
        frame.exhausted = frame.position.done
        if frame.exhausted:
            warning = frame.position.paginator.cap_warning(self._where(frame.scope, config.name))
            if warning is not None and len(at.skipped) < MAX_WARNINGS:
                at.skipped.append(warning)

    # ------------------------------------------------------------ one child
    def lane(self, scope: Scope) -> Lane:
        """Every page of the child under `scope`, with a fresh paginator. A failed child keeps no
        records (it fails the model, or is skipped with a warning); `RateLimited` propagates."""
        step = None
        try:
            step = self._step_for(self.leaf, scope)
            checkpoint = None
            if self.cursors is not None:
                read = self.cursors.read(step, scope)
                records, url, at, checkpoint = read.records, read.url, read.position, read.checkpoint
            else:
                at = step.start()
                records = []
                url = at.request.url if at.request is not None else ""
                while not at.done:
                    page = step.step(at)
                    records.extend(page.records)
                    url = page.url
        except RateLimited:
            raise
        except (ExtractError, TemplateValueError) as exc:
            return Lane(scope, [], step.first_request().url if step is not None else "", [self._skipped(scope, exc)])
        warning = at.paginator.cap_warning(self._where(scope, self.levels[self.leaf].name))
        return Lane(scope, self._marked(records, scope, self.leaf), url, [warning] if warning else [], checkpoint)

    # ------------------------------------------------------------ helpers
    def _step_for(self, level: int, scope: Scope) -> PageStep:
        """The page step of the level's model for one scope: its request with the placeholders filled."""
        config = self.levels[level]
        model = config.model

        def lookup(placeholder: Placeholder) -> Any:
            return _lookup(scope, placeholder, self.items)

        url = substitute(self._url_of(self.source, model), lookup, lambda text: quote(text, safe=""))   # never climbs
        request = model_request(url, model)
        request.params = {k: substitute(v, lookup) if isinstance(v, str) else v for k, v in request.params.items()}
        request.headers = {k: substitute(v, lookup) for k, v in request.headers.items()}
        body = request.body
        if body is not None and model.graphql is not None:   # its variables only: the query's braces are GraphQL's
            request.body = replace(body, base={**body.base, "variables": fill(body.base.get("variables", {}), lookup)})
        elif body is not None:
            request.body = replace(body, base=fill(dict(body.base), lookup))
        return PageStep(self.source, model, config.pagination, self.client, request)

    def _marked(self, records: list, scope: Scope, level: int) -> list:
        """Raw records with what their columns read from the walk: the item, the included parent
        fields (only those: a value a template alone uses is never on a record, so a `store: mongo`
        document cannot keep it)."""
        if scope.item_index is not None:
            item = self.items[scope.item_index]
            for record in records:
                if isinstance(record, dict):
                    record[ITEM_KEY] = item
        elif scope.parent is not None and (included := self.levels[level].model.include_from_parent):
            values = {name: scope.parent.values.get(name) for name in included}
            for record in records:
                if isinstance(record, dict):
                    record[PARENT_KEY] = values
        return records

    def _skipped(self, scope: Scope, exc: Exception) -> str:
        """A request for one parent record failed: the model fails (`ChildError`), or with
        `on_child_error: skip` the record's subtree is skipped and this warning says so. The top
        model's own failure is the model's."""
        if scope.parent is None and scope.item_index is None:
            raise exc
        message = f"{self.qualified}: the request for {scope.label()} failed: {self._unruled(scope, str(exc))}"
        if self.model.on_child_error != "skip":
            raise ChildError(message) from exc
        return str(ExtractError(f"{message} (skipped: on_child_error is skip)"))   # scrubbed like an error

    def _unruled(self, scope: Scope, text: str) -> str:
        """`text` without the parent values that have a PII rule (a URL path may carry them)."""
        levels = {level.name: level for level in self.levels}
        record = scope.parent
        while record is not None:
            level = levels.get(record.model)
            for name in level.ruled if level is not None else ():
                value = record.values.get(name)
                if value is not None and str(value):
                    text = text.replace(quote(str(value), safe=""), "…").replace(str(value), "…")
            record = record.scope.parent
        return text

    def _where(self, scope: Scope, model: str) -> str:
        label = scope.label()
        return f"{self.qualified} ({model}{' of ' + label if label else ''})"


def _placeholders(model: ApiModel) -> list[Placeholder]:
    return [p for _, text in model_texts(model) for p in placeholders(text)]


def _lookup(scope: Scope, placeholder: Placeholder, items: list[Any]) -> Any:
    record: ParentRecord | None = None
    for _ in range(placeholder.depth):
        record = scope.parent
        if record is None:
            raise TemplateValueError(f"placeholder {placeholder.text} has no parent record")
        scope = record.scope
    if placeholder.is_item:
        return None if scope.item_index is None else items[scope.item_index]
    return None if record is None else record.values.get(placeholder.field)


def _plain(value: Any) -> Any:
    """A parent value as JSON keeps it (it may wait in a sealed start blob between two Fetches)."""
    return value if value is None or isinstance(value, (str, int, float, bool, list, dict)) else str(value)


def paginator_states(state: dict[str, Any]) -> list[dict[str, Any]]:
    """The paginator states a walk's saved state holds (to scrub before it is stored)."""
    frames = state.get("frames")
    return [f["position"] for f in frames if isinstance(f, dict) and isinstance(f.get("position"), dict)] \
        if isinstance(frames, list) else []
