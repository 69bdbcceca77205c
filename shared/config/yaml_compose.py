"""Build plain data from a YAML event stream, bounded, remembering the line of every key path.

PyYAML's composer recurses once per nesting level (100,000 levels end in a RecursionError) and
expands aliases without limit (a "billion laughs" file of a few hundred bytes expands to
gigabytes); resolving every scalar's tag in Python also left the C parser barely faster than the
pure-Python one. So data is built here straight from the parser's events, in one loop over an
explicit stack: nesting and alias expansion are counted as they happen and refused past a limit,
and a plain scalar's type is resolved once per distinct text.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import yaml
from yaml.events import AliasEvent, MappingEndEvent, MappingStartEvent, ScalarEvent, SequenceEndEvent, StreamEndEvent

from shared.config.errors import ConfigIssue, format_path

MAX_DEPTH = 100                 # nesting levels; a manifest needs a handful
MAX_ALIAS_NODES = 200_000       # nodes that aliases may add to one file by expansion
NESTING_MESSAGE = f"nesting deeper than {MAX_DEPTH} levels (the limit for a manifest file)"

_STR = "tag:yaml.org,2002:str"
_MERGE = "tag:yaml.org,2002:merge"
_VALUE = "tag:yaml.org,2002:value"    # a plain `=`: text, as PyYAML reads it as a key
_ASIDE = object()               # a path part no lookup matches: non-scalar keys, merged values, dropped duplicates
_MERGE_ROLE, _DROP_ROLE = 1, 2  # what the value after a mapping's pending key is for (None: the mapping's own)

# What a mark records. Marks are kept, in document order, only inside anchored nodes and merged
# values: the marks of such a subtree are one contiguous run that an alias (or the merge) records
# again under another path, as if the subtree had been written there.
_LINE, _FROM_ENV, _MISSING = 0, 1, 2

Resolve = Callable[[str], "tuple[str, list[str]]"]   # text with placeholders -> (value, missing names)


class Refused(Exception):
    """Over a limit, or a rule of YAML that composing enforces (anchors, merges, one document)."""

    def __init__(self, line: int, message: str):
        super().__init__(message)
        self.line = line
        self.message = message


class _Anchor:
    __slots__ = ("value", "path", "start", "end", "nodes", "height", "line")

    def __init__(self, value: Any, path: tuple, start: int, end: int, nodes: int, height: int, line: int):
        self.value, self.path, self.start, self.end = value, path, start, end
        self.nodes, self.height, self.line = nodes, height, line


class _Frame:
    """An open mapping or sequence; for a mapping also its pending key and that key's role."""

    __slots__ = ("data", "path", "virtual", "anchor", "line", "mark0", "node0", "height", "records",
                 "is_map", "has_key", "key", "role", "key_lines", "merges")

    def __init__(self, data: dict | list, path: tuple, virtual: bool, anchor: str | None, line: int,
                 mark0: int, node0: int, records: bool, is_map: bool):
        self.data: Any = data
        self.path, self.virtual, self.anchor, self.line = path, virtual, anchor, line
        self.mark0, self.node0, self.height, self.records, self.is_map = mark0, node0, 0, records, is_map
        self.has_key = False
        self.key: str | None = None
        self.role: int | None = None
        self.key_lines: dict = {}
        self.merges: list | None = None


class Composer:
    """One file's single document, from `loader`'s events. `doc` gets `lines`, `from_env` and
    `missing_env`; problems that let the rest of the file be read (duplicate keys, unset
    variables, keys that are not text) go to `issues`, exactly once per place they occur."""

    def __init__(self, loader: Any, doc: Any, resolve_env: Resolve, issues: list[ConfigIssue]):
        self.loader, self.doc, self.resolve_env, self.issues = loader, doc, resolve_env, issues
        self.marks: list[tuple] = []          # (kind, path, payload)
        self.recording = 0                    # > 0 inside an anchored node or a merged value
        self.anchors: dict[str, _Anchor] = {}
        self.open_anchors: dict[str, int] = {}
        self.nodes = 0                        # nodes so far, aliases counted expanded
        self.expanded = 0                     # nodes added by aliases
        self.plain: dict[str, tuple[str, Any]] = {}   # plain scalar text -> (tag, value)

    def compose(self) -> Any:
        """The document's data; `{}` for an empty file. Raises Refused or yaml.YAMLError."""
        get = self.loader.get_event
        get()                                  # StreamStart
        if isinstance(get(), StreamEndEvent):  # else DocumentStart
            return {}
        data = self._document(get)
        get()                                  # DocumentEnd
        event = get()
        if not isinstance(event, StreamEndEvent):
            raise Refused(event.start_mark.line + 1,
                          "invalid YAML: expected a single document in the stream, but found another document")
        return data

    # ------------------------------------------------------------------ the event loop
    def _document(self, get: Callable[[], Any]) -> Any:
        stack: list[_Frame] = []
        marks, lines = self.marks, self.doc.lines
        while True:
            event = get()
            cls = event.__class__
            parent = stack[-1] if stack else None
            if cls is MappingEndEvent or cls is SequenceEndEvent:
                frame = stack.pop()
                parent = stack[-1] if stack else None
                value = self._merge(frame) if frame.merges else frame.data
                if frame.anchor is not None:
                    self._anchor(frame.anchor, value, frame.path, frame.mark0, self.nodes - frame.node0,
                                 frame.height + 1, frame.line)
                if frame.records:
                    self.recording -= 1
                value_mark0, height, line = frame.mark0, frame.height + 1, frame.line
            elif parent is not None and parent.is_map and not parent.has_key and cls is ScalarEvent:
                self._key(parent, event)       # the usual key: a scalar
                continue
            else:
                line = event.start_mark.line + 1
                if parent is None:
                    path, virtual, as_key, merging = (), False, False, False
                elif not parent.is_map:
                    path, virtual, as_key, merging = parent.path + (len(parent.data),), parent.virtual, False, False
                elif not parent.has_key:       # a mapping, sequence or alias as a key
                    path, virtual, as_key, merging = parent.path + (_ASIDE,), True, True, False
                elif parent.role is None:
                    path, virtual, as_key, merging = parent.path + (parent.key,), parent.virtual, False, False
                else:
                    path, virtual, as_key, merging = parent.path + (_ASIDE,), True, False, parent.role == _MERGE_ROLE
                records = merging or (event.anchor is not None and cls is not AliasEvent)
                if records:
                    self.recording += 1
                value_mark0 = len(marks)
                if not as_key:
                    if self.recording:
                        marks.append((_LINE, path, line))
                    if path not in lines:
                        lines[path] = line
                if cls is ScalarEvent:
                    self.nodes += 1
                    value, height = self._scalar(event, path, virtual), 0
                    if event.anchor is not None:
                        self._check_new_anchor(event.anchor, line)
                        self._anchor(event.anchor, value, path, value_mark0, 1, 0, line)
                    if records:
                        self.recording -= 1
                elif cls is AliasEvent:
                    value, height = self._alias(event.anchor, path, len(stack), line)
                    if records:
                        self.recording -= 1
                else:
                    if len(stack) >= MAX_DEPTH:
                        raise Refused(line, NESTING_MESSAGE)
                    if event.anchor is not None:
                        self._check_new_anchor(event.anchor, line)
                        self.open_anchors[event.anchor] = line
                    is_map = cls is MappingStartEvent
                    stack.append(_Frame({} if is_map else [], path, virtual, event.anchor, line, value_mark0,
                                        self.nodes, records, is_map))
                    self.nodes += 1
                    continue
            if parent is None:
                return value
            if parent.height < height:         # a frame's height: its children's greatest, until it closes
                parent.height = height
            if not parent.is_map:
                parent.data.append(value)
            elif not parent.has_key:
                self._take_key(parent, value, line)
            else:
                if parent.role is None:
                    parent.data[parent.key] = value
                elif parent.role == _MERGE_ROLE:
                    if parent.merges is None:
                        parent.merges = []
                    parent.merges.append((value, value_mark0, len(marks), len(parent.path) + 1, line))
                parent.has_key, parent.key, parent.role = False, None, None

    # ------------------------------------------------------------------ keys and scalars
    def _key(self, frame: _Frame, event: Any) -> None:
        line = event.start_mark.line + 1
        tag, key = self._typed(event)
        self.nodes += 1
        if event.anchor is not None:
            self._check_new_anchor(event.anchor, line)
            self._anchor(event.anchor, key, frame.path + (_ASIDE,), len(self.marks), 1, 0, line)
        if tag == _MERGE:
            frame.has_key, frame.key, frame.role = True, None, _MERGE_ROLE
        else:
            self._take_key(frame, key, line)

    def _take_key(self, frame: _Frame, key: Any, line: int) -> None:
        frame.has_key, frame.key, frame.role = True, None, _DROP_ROLE
        if not isinstance(key, (str, int)):
            if not frame.virtual:
                self.issues.append(ConfigIssue(self.doc.file, line, format_path(frame.path),
                                               f"keys must be text, got {type(key).__name__}"))
            return
        key = str(key)
        child = frame.path + (key,)
        first = frame.key_lines.get(key)
        if first is not None:
            if not frame.virtual:
                self.issues.append(ConfigIssue(self.doc.file, line, format_path(child),
                                               f"duplicate key '{key}' (first defined on line {first})"))
            return
        frame.key_lines[key] = line
        frame.key, frame.role = key, None
        if self.recording:
            self.marks.append((_LINE, child, line))
        self.doc.lines.setdefault(child, line)

    def _scalar(self, event: Any, path: tuple, virtual: bool) -> Any:
        value = self._typed(event)[1]
        if value.__class__ is str and "__kspyder_env_" in value:
            resolved, missing = self.resolve_env(value)
            for name in missing:
                self._record(_MISSING, path, name, virtual)
            if resolved != value:
                self._record(_FROM_ENV, path, None, virtual)
            value = resolved
        return value

    def _typed(self, event: Any) -> tuple[str, Any]:
        """(tag, value) as PyYAML's SafeLoader constructs them; each plain text resolved once."""
        tag, text = event.tag, event.value
        if tag is None or tag == "!":
            if not event.implicit[0]:
                return _STR, text
            hit = self.plain.get(text)
            if hit is None:
                tag = self.loader.resolve(yaml.ScalarNode, text, (True, False))
                hit = self.plain[text] = (tag, text if tag in (_STR, _MERGE, _VALUE) else self._construct(tag, event))
            return hit
        return tag, self._construct(tag, event)

    def _construct(self, tag: str, event: Any) -> Any:
        node = yaml.ScalarNode(tag, event.value, event.start_mark, event.end_mark, event.style)
        try:
            return self.loader.construct_object(node, deep=True)
        except (ValueError, TypeError, OverflowError):   # `!!int abc`: never echo the value
            name = "!!" + tag.rsplit(":", 1)[-1] if tag.startswith("tag:yaml.org,2002:") else tag
            raise Refused(event.start_mark.line + 1, f"invalid YAML: the value is not a valid {name}") from None

    def _record(self, kind: int, path: tuple, payload: Any, virtual: bool) -> None:
        if self.recording:
            self.marks.append((kind, path, payload))
        if kind == _LINE:
            self.doc.lines.setdefault(path, payload)
        elif kind == _FROM_ENV:
            self.doc.from_env.add(path)
        else:
            self.doc.missing_env.add(path)
            if not virtual:
                message = f"environment variable {payload} is not set (referenced as ${{{payload}}})"
                self.issues.append(self.doc.issue(path, message))

    # ------------------------------------------------------------------ anchors, aliases, merges
    def _check_new_anchor(self, name: str, line: int) -> None:
        first = self.anchors[name].line if name in self.anchors else self.open_anchors.get(name)
        if first is not None:
            raise Refused(line, f"invalid YAML: anchor '&{name}' is defined twice (first on line {first})")

    def _anchor(self, name: str, value: Any, path: tuple, start: int, nodes: int, height: int, line: int) -> None:
        self.open_anchors.pop(name, None)
        self.anchors[name] = _Anchor(value, path, start, len(self.marks), nodes, height, line)

    def _alias(self, name: str, path: tuple, depth: int, line: int) -> tuple[Any, int]:
        anchor = self.anchors.get(name)
        if anchor is None:
            problem = ("refers to the node that holds it" if name in self.open_anchors
                       else f"has no anchor '&{name}' before it")
            raise Refused(line, f"invalid YAML: alias '*{name}' {problem}")
        self.expanded += anchor.nodes
        if self.expanded > MAX_ALIAS_NODES:
            raise Refused(line, f"aliases expand to more than {MAX_ALIAS_NODES:,} nodes "
                                "(the limit for a manifest file)")
        if depth + anchor.height > MAX_DEPTH:
            raise Refused(line, NESTING_MESSAGE)
        self.nodes += anchor.nodes
        # the anchor's own line mark is left out: the alias's place has its own
        self._replay(anchor.start + 1, anchor.end, len(anchor.path), path)
        return _copy(anchor.value), anchor.height

    def _replay(self, start: int, end: int, cut: int, root: tuple,
                keys: set | None = None, item: int | None = None) -> None:
        """Record the marks [start, end) again with their first `cut` path parts replaced by `root`;
        with `item`, only those of that item of a sequence at `cut`; with `keys`, only those under
        one of these keys."""
        for kind, path, payload in self.marks[start:end]:
            if item is not None:
                if len(path) <= cut or path[cut] != item:
                    continue
                rest = path[cut + 1:]
            else:
                rest = path[cut:]
            if keys is not None and (not rest or rest[0] not in keys):
                continue
            path = root + rest
            self._record(kind, path, payload, _ASIDE in path)

    def _merge(self, frame: _Frame) -> dict:
        """`<<: *base` or `<<: [*a, *b]`: the mapping's own keys win, then those of earlier merges."""
        merged: dict = {}
        for value, start, end, cut, line in frame.merges or ():
            parts: list[tuple[dict, int | None]]
            if isinstance(value, dict):
                parts = [(value, None)]
            elif isinstance(value, list) and all(isinstance(v, dict) for v in value):
                parts = [(item, index) for index, item in enumerate(value)]
            else:
                found = "a list holding other values" if isinstance(value, list) else "a single value"
                raise Refused(line, "invalid YAML: expected a mapping or list of mappings for merging, "
                                    f"but found {found}")
            for mapping, item in parts:
                keys = {k for k in mapping if k not in frame.data and k not in merged}
                if keys:
                    merged.update((k, v) for k, v in mapping.items() if k in keys)
                    self._replay(start, end, cut, frame.path, keys, item)
        merged.update(frame.data)
        return merged


def _copy(value: Any) -> Any:
    """An alias's own copy of its anchor's value, so that changing one place never changes another."""
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value
