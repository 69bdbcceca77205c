"""Several URLs of one API drafted as one source, and, with `--parents`, a `parent:` model proposed
where one URL's path takes segments from another URL's records: after `/orgs/acme/repos`, the path
`/repos/acme/widgets/issues` reads `/repos/{parent.owner_login}/{parent.name}/issues`.

A segment matched by chance would make a wrong model, so a relation is checked with a second parent
record: its values go into the template, and the child URL they make must answer with a record list.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from pydantic import ValidationError

from shared.config.models import ConnectorModels
from shared.config.parents import with_parent_columns
from shared.errors import ExtractError
from shared.extract.api import records_at
from shared.extract.paginators import dotted_get
from shared.probe.naming import unique
from shared.probe.probe import ColumnDraft, ProbeOptions, ProbeResult, pagination_spec, probe_url
from shared.probe.walk import ProbeError, open_client, request

Report = Callable[[str], None]
# Column names whose values are the usual path segments, tried before any other column.
KEY_NAMES = ("id", "uuid", "key", "slug", "name", "login", "code", "number", "handle")


@dataclass(frozen=True)
class Relation:
    parent: str                         # the parent model's name
    path: str                           # the child's path with {parent.<column>} placeholders
    fields: tuple[str, ...]             # the parent columns it takes, in path order
    checked: bool                       # a second parent record made a URL that answered


@dataclass(frozen=True)
class SourceDraft:
    results: list[ProbeResult]
    names: list[str]                    # the models' names, unique within the source
    relations: dict[str, Relation] = field(default_factory=dict)   # by child model name

    @property
    def source(self) -> str:
        return self.results[0].source

    def manifest(self) -> dict[str, Any]:
        """The source as plain data: each model with its own pagination, a child with its parent."""
        source = self.results[0].manifest()["sources"][self.source]
        models: dict[str, Any] = {}
        for name, result in zip(self.names, self.results, strict=True):
            model = {"pagination": pagination_spec(result.pagination), **result.model_spec()}
            relation = self.relations.get(name)
            if relation is not None:
                model = {"parent": relation.parent, **model, "path": relation.path, **self.joined(name)}
            models[name] = model
        del source["pagination"]
        return {"sources": {self.source: {**source, "models": models}}}


    def joined(self, name: str) -> dict[str, Any]:
        """A child's `include_from_parent` (the parent's key, to join on) and its key made unique
        across parents: the probe saw one parent's children, so their key is only known unique there."""
        relation = self.relations[name]
        parent = self.results[self.names.index(relation.parent)]
        child = self.results[self.names.index(name)]
        stored = f"{relation.parent}_{parent.primary_key}"
        if parent.primary_key is None or stored in {c.name for c in child.columns}:
            return {}
        if child.primary_key is None:
            return {"include_from_parent": [parent.primary_key]}
        return {"include_from_parent": [parent.primary_key], "primary_key": [stored, child.primary_key]}


def probe_urls(options: list[ProbeOptions], parents: bool, report: Report = lambda line: None) -> SourceDraft:
    """Probe every URL (one API: the same scheme, host and port) into one source; with `parents`,
    look for and check the parent of each model among the others."""
    results = [probe_url(o, report) for o in options]
    bases = {r.target.base_url for r in results}
    if len(bases) > 1:
        raise ProbeError(f"the URLs are not of one API ({', '.join(sorted(bases))}): probe each on its own")
    taken: set[str] = set()
    names = [unique(r.model, taken) for r in results]
    draft = SourceDraft(results, names)
    if parents:
        draft = SourceDraft(results, names, _relations(draft, options[0], report))
    _check(draft)
    return draft


def _relations(draft: SourceDraft, options: ProbeOptions, report: Report) -> dict[str, Relation]:
    found: dict[str, Relation] = {}
    for child, child_name in zip(draft.results, draft.names, strict=True):
        for parent, parent_name in zip(draft.results, draft.names, strict=True):
            if parent is child or _ancestor(found, parent_name, child_name):
                continue
            relation = relate(parent, parent_name, child)
            if relation is None:
                continue
            relation = _checked(relation, parent, child, options, report)
            if relation is not None:
                found[child_name] = relation
                break
        else:
            report(f"probe: {child_name}: no parent among the other URLs (no path segment is a value of their records)")
    return found


def _ancestor(found: dict[str, Relation], name: str, of: str) -> bool:
    """Whether `of` is `name` or one of its ancestors: making it `name`'s parent would close a cycle."""
    current: str | None = name
    while current is not None:
        if current == of:
            return True
        relation = found.get(current)
        current = relation.parent if relation is not None else None
    return False


def relate(parent: ProbeResult, parent_name: str, child: ProbeResult) -> Relation | None:
    """The child's path as a template over one parent record, when some of its segments (not the
    last, which names the collection) are values of that record; the record matching most wins."""
    segments = child.target.path.split("/")
    best: dict[int, str] = {}
    for record in parent.seen:
        matched: dict[int, str] = {}
        for index, segment in enumerate(segments[:-1]):
            column = _column_with(parent, record, segment) if segment else None
            if column is not None:
                matched[index] = column.name
        if len(matched) > len(best):
            best = matched
    if not best:
        return None
    path = "/".join(f"{{parent.{best[i]}}}" if i in best else s for i, s in enumerate(segments))
    return Relation(parent_name, path, tuple(best[i] for i in sorted(best)), False)


def _column_with(parent: ProbeResult, record: dict, segment: str) -> ColumnDraft | None:
    for column in _key_columns_first(parent):
        value = dotted_get(record, column.path or column.name, None)
        if isinstance(value, (str, int)) and not isinstance(value, bool) and str(value) == segment:
            return column
    return None


def _key_columns_first(parent: ProbeResult) -> list[ColumnDraft]:
    def rank(column: ColumnDraft) -> int:
        last = column.name.rsplit("_", 1)[-1]
        return 0 if column.name == parent.primary_key else 1 if last in KEY_NAMES else 2
    return sorted((c for c in parent.columns if c.type != "json"), key=rank)


def _checked(relation: Relation, parent: ProbeResult, child: ProbeResult, options: ProbeOptions,
             report: Report) -> Relation | None:
    """The relation once another parent record's URL answers; None (reported) when it does not."""
    columns = {c.name: c for c in parent.columns}
    used = dict.fromkeys(tuple(_value(r, columns[f]) for f in relation.fields) for r in parent.seen)
    others = [values for values in used if None not in values and
              _filled(relation.path, relation.fields, values) != child.target.path]
    what = ", ".join(f"{relation.parent}.{f}" for f in relation.fields)
    if not others:
        report(f"probe: parent {what} proposed from one record only: check the path template")
        return relation
    path = _filled(relation.path, relation.fields, others[0])
    try:
        with open_client(child.target, child.source, options.throttle) as client:
            response = client.fetch(request(child.target, url=child.target.base_url + path))
            records_at(response.body, child.records_path, response.url)
    except ExtractError as exc:
        message = str(exc)   # it names the URL, made of another record's values: shown as the template
        for form in {path, quote(path, safe="/"), quote(path, safe="/:@")}:
            message = message.replace(form, relation.path)
        report(f"probe: parent {what} not proposed: the path made from another {relation.parent} record "
               f"failed: {child.target.redact(message)}")
        return None
    report(f"probe: parent {relation.parent}: the path takes {', '.join(relation.fields)} from its records "
           f"(checked with a second record)")
    return Relation(relation.parent, relation.path, relation.fields, True)


def _value(record: dict, column: ColumnDraft) -> str | None:
    value = dotted_get(record, column.path or column.name, None)
    return None if value is None or isinstance(value, (dict, list, bool)) else str(value)


def _filled(template: str, fields: tuple[str, ...], values: tuple[str | None, ...]) -> str:
    for name, value in zip(fields, values, strict=True):
        template = template.replace(f"{{parent.{name}}}", str(value))
    return template


def _check(draft: SourceDraft) -> None:
    """The draft must load: a probe bug should fail here, not in the user's manifest folder."""
    try:
        ConnectorModels.model_validate(with_parent_columns(draft.manifest()))
    except ValidationError as exc:
        raise ProbeError(f"internal error: the drafted manifest does not validate: {exc}") from None
