"""The page step of a child model: its parents' records walked depth first, and for each one the
child's own pages, each child with a fresh paginator of its own.

A stack of frames: a for_each model's items, then each ancestor's pages under one record of the
model above it, then the child's pages under one parent record. `WalkStep.step` returns the next
child page (an empty one when the walk ends), so the embedded run loops over it and a queue-chain
Fetch takes one step and saves `WalkPosition.state()`: the frames with their paginator states, the
parent values not yet walked and the warnings, sealed in a start blob like any paginator state.
Parent values are read from the raw records, before PII stripping, and only the fields a template
or `include_from_parent` names; they are stored on rows only as the columns the child declares.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar
from urllib.parse import quote

from shared.config.models import ApiModel, ApiSource
from shared.config.parents import ITEM_KEY, PARENT_KEY, field_path, for_each_items, lineage
from shared.config.templates import Placeholder, TemplateValueError, placeholders, request_texts, substitute
from shared.errors import ExtractError, RateLimited
from shared.extract.http_client import HttpClient
from shared.extract.page_step import PageStep, Position, StepPage
from shared.extract.paginators import Paginator, dotted_get
from shared.extract.types import PageRequest, PageResponse

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


@dataclass
class Frame:
    level: int                  # -1: a for_each model's items; else an index into the lineage
    scope: Scope
    position: Position | None = None    # None: its first page not asked for yet
    pending: list = field(default_factory=list)   # item indexes, or parent records to walk into
    exhausted: bool = False
    seen: int = 0


class WalkPaginator(Paginator):
    """Stands where a model's paginator stands for the chain: a walk is sequential, states no total."""

    type_name: ClassVar[str] = "walk"

    def _advance(self, response: PageResponse, records: list) -> bool:
        raise AssertionError("unreachable: a walk takes pages through its levels' own paginators")

    def _point_at_next(self, request: PageRequest) -> None:
        raise AssertionError("unreachable: a walk takes pages through its levels' own paginators")


class WalkPosition(Position):
    """Where a walk stands: its frames (top first) and the children it skipped."""

    def __init__(self, frames: list[Frame], warnings: list[str] | None = None):
        super().__init__(None, WalkPaginator(None))
        self.frames = frames
        self.skipped = warnings or []   # warnings: children skipped, children cut by max_pages
        self.scope = Scope()    # the scope of the page the last step returned

    @property
    def done(self) -> bool:
        return not self.frames

    def run_warnings(self, model: str) -> list[str]:
        return list(self.skipped)

    def state(self) -> dict[str, Any] | None:
        if self.done:
            return None
        frames = []
        for frame in self.frames:
            started = frame.position is not None
            pending = [p.to_json() if isinstance(p, ParentRecord) else p for p in frame.pending]
            frames.append({"level": frame.level, "scope": frame.scope.to_json(), "started": started,
                           "position": frame.position.state() if frame.position is not None else None,
                           "pending": pending, "exhausted": frame.exhausted, "seen": frame.seen})
        return {"type": "walk", "v": STATE_VERSION, "frames": frames, "warnings": list(self.skipped)}


class WalkStep(PageStep):
    """The page step of a model with a parent or for_each items (`parent_walk` module docstring)."""

    def __init__(self, source_name: str, source: ApiSource, name: str, client: HttpClient, url: Any):
        self.qualified = f"{source_name}.{name}"
        chain = lineage(source, name)
        self.levels = [self._level(source, chain, i) for i in range(len(chain))]
        self.leaf = len(self.levels) - 1
        leaf = self.levels[self.leaf]
        self.items = for_each_items(self.levels[0].model)
        self._url = url   # (source, model) -> the model's URL template
        super().__init__(source, leaf.model, leaf.pagination, client, PageRequest(url(source, leaf.model)))

    @staticmethod
    def _level(source: ApiSource, chain: list[tuple[str, ApiModel]], index: int) -> Level:
        name, model = chain[index]
        needed: dict[str, str] = {}
        for depth, (_, below) in enumerate(chain[index + 1:], start=1):
            wanted = [p.field for p in _placeholders(below) if p.depth == depth and not p.is_item]
            if depth == 1:
                wanted += below.include_from_parent
            for name_ in wanted:
                path = field_path(model, name_)
                if path is not None:
                    needed[name_] = path
        key_paths = [field_path(model, key) or key for key in model.primary_key]
        named = all(model.columns[key].rule is None for key in model.primary_key if key in model.columns)
        return Level(name, model, source.pagination_for(model), needed, key_paths, named)

    # ------------------------------------------------------------ the PageStep interface
    def start(self) -> WalkPosition:
        if self.levels[0].model.for_each is not None:
            return WalkPosition([Frame(-1, Scope(), pending=list(range(len(self.items))), exhausted=True)])
        return WalkPosition([Frame(0, Scope())])

    def resume(self, state: dict[str, Any]) -> WalkPosition:
        """ValueError for a state this walk did not write (it is read back from storage)."""
        if (not isinstance(state, dict) or state.get("type") != "walk" or state.get("v") != STATE_VERSION
                or not isinstance(state.get("frames"), list) or not isinstance(state.get("warnings"), list)):
            raise ValueError("expected a walk state")
        if not 0 < len(state["frames"]) <= MAX_FRAMES or len(state["warnings"]) > MAX_WARNINGS:
            raise ValueError("expected a walk state")
        frames = [self._frame(value) for value in state["frames"]]
        return WalkPosition(frames, [str(w) for w in state["warnings"]])

    def _frame(self, value: Any) -> Frame:
        if not isinstance(value, dict) or not isinstance(value.get("pending"), list):
            raise ValueError("expected a walk frame")
        level = value.get("level")
        if not isinstance(level, int) or isinstance(level, bool) or not -1 <= level <= self.leaf:
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
        if value.get("started") is True and level >= 0 and not frame.exhausted:
            if not isinstance(value.get("position"), dict):
                raise ValueError("expected a walk frame")
            frame.position = self._step_for(level, scope).resume(value["position"])
        elif value.get("started") not in (True, False):
            raise ValueError("expected a walk frame")
        elif value.get("started") and level >= 0:
            frame.position = Position(None, WalkPaginator(None))   # started and done
        return frame

    def planned(self, request: PageRequest, index: int) -> Position:
        raise ValueError("a child model's pages are walked one after another, never planned ahead")

    def step(self, at: Position) -> StepPage:
        """The next child page; `at` moves past it. An empty page when the walk is over."""
        if not isinstance(at, WalkPosition):
            raise TypeError("a walk steps from a walk position")
        while at.frames:
            frame = at.frames[-1]
            if frame.level == self.leaf:
                page = self._leaf_page(at, frame)
                if page is not None:
                    return page
            elif frame.pending:
                following = frame.pending.pop(0)
                scope = Scope(item_index=following) if frame.level == -1 else Scope(parent=following)
                at.frames.append(Frame(frame.level + 1, scope))
            elif frame.exhausted:
                at.frames.pop()
            else:
                self._parent_page(at, frame)
        at.scope = Scope()
        return StepPage([], self.first_request().url)

    def take(self, at: Position, response: PageResponse) -> StepPage:
        raise ValueError("a child model's pages are taken in by its walk (`step`)")

    # ------------------------------------------------------------ levels
    def _step_for(self, level: int, scope: Scope) -> PageStep:
        """The page step of the level's model for one scope: its request with the placeholders filled."""
        config = self.levels[level]
        model = config.model

        def lookup(placeholder: Placeholder) -> Any:
            return _lookup(scope, placeholder, self.items)

        url = substitute(self._url(self.source, model), lookup, lambda text: quote(text, safe=""))   # never climbs
        params = {k: substitute(v, lookup) if isinstance(v, str) else v for k, v in model.params.items()}
        headers = {k: substitute(v, lookup) for k, v in model.headers.items()}
        return PageStep(self.source, model, config.pagination, self.client, PageRequest(url, params, headers))

    def _leaf_page(self, at: WalkPosition, frame: Frame) -> StepPage | None:
        try:
            step = self._step_for(frame.level, frame.scope)
            if frame.position is None:
                frame.position = step.start()
            page = step.step(frame.position)
        except RateLimited:
            raise
        except (ExtractError, TemplateValueError) as exc:
            self._failed(at, frame, exc)
            return None
        if frame.position.done:
            warning = frame.position.paginator.cap_warning(self._where(frame.scope))
            if warning is not None:
                self._warn(at, warning)
            at.frames.pop()
        at.scope = frame.scope
        return StepPage(self._marked(page.records, frame.scope), page.url)

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
            self._failed(at, frame, exc)
            return
        records = self._marked(page.records, frame.scope)
        for record in records:
            values = {name: _plain(dotted_get(record, path, None)) for name, path in config.needed.items()}
            key = [_plain(dotted_get(record, path, None)) for path in config.key_paths] or None
            frame.pending.append(ParentRecord(config.name, frame.seen, values, key, config.named_by_key, frame.scope))
            frame.seen += 1
        frame.exhausted = frame.position.done

    def _marked(self, records: list, scope: Scope) -> list:
        """Raw records with what their columns read from the walk: the item, the included parent fields."""
        if scope.item_index is not None:
            item = self.items[scope.item_index]
            for record in records:
                if isinstance(record, dict):
                    record[ITEM_KEY] = item
        elif scope.parent is not None and scope.parent.values:
            for record in records:
                if isinstance(record, dict):
                    record[PARENT_KEY] = scope.parent.values
        return records

    def _failed(self, at: WalkPosition, frame: Frame, exc: Exception) -> None:
        """A request for one parent record failed: the model fails, or (`on_child_error: skip`) the
        record's subtree is skipped with a warning. The top model's own failure is the model's."""
        if frame.scope.parent is None and frame.scope.item_index is None:
            raise exc
        message = f"{self.qualified}: the request for {frame.scope.label()} failed: {exc}"
        if self.levels[self.leaf].model.on_child_error != "skip":
            raise ChildError(message) from exc
        self._warn(at, f"{message} (skipped: on_child_error is skip)")
        at.frames.pop()

    def _warn(self, at: WalkPosition, warning: str) -> None:
        if len(at.skipped) < MAX_WARNINGS:
            at.skipped.append(str(ExtractError(warning)))   # scrubbed like an error

    def _where(self, scope: Scope) -> str:
        return f"{self.qualified} ({scope.label()})"


def _placeholders(model: ApiModel) -> list[Placeholder]:
    return [p for _, text in request_texts(model.path, model.params, model.headers) for p in placeholders(text)]


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
    """The paginator states a saved state holds: itself, or a walk's frames' (to scrub before storing)."""
    if state.get("type") != "walk":
        return [state]
    frames = state.get("frames")
    return [f["position"] for f in frames if isinstance(f, dict) and isinstance(f.get("position"), dict)] \
        if isinstance(frames, list) else []
