"""Turn pydantic's validation errors into messages a manifest author can act on.

Pydantic reports a location tuple that includes union tags (`sources.shop.api.base_url`) and
messages written for programmers; here we map each error back to the YAML key path and line,
list the valid choices, and never echo a secret value.
"""
from __future__ import annotations

import difflib
import types
import typing
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from shared.config.errors import ConfigIssue
from shared.config.models import SECRET_KEYS
from shared.config.yaml_source import YamlDocument

_MISSING = object()


def issues_from_validation(exc: ValidationError, doc: YamlDocument, root: type[BaseModel]) -> list[ConfigIssue]:
    issues = [_issue(err, doc, root) for err in exc.errors(include_url=False)]
    # A value left empty by a missing ${VAR} is already reported as such; don't report it twice.
    missing = {".".join(map(str, p)) for p in doc.missing_env}
    return [i for i in issues if i.key_path not in missing]


def _issue(err: ErrorDetails, doc: YamlDocument, root: type[BaseModel]) -> ConfigIssue:
    path, annotation = _resolve(err["loc"], doc.data, root)
    kind, ctx, value = err["type"], err.get("ctx", {}), err.get("input")
    shown = _show(value, path, doc)
    if kind == "extra_forbidden":
        allowed = _field_names(_resolve(err["loc"][:-1], doc.data, root)[1])
        hint = difflib.get_close_matches(str(path[-1]), allowed, n=1)
        msg = f"unknown key '{path[-1]}'" + (f" (did you mean '{hint[0]}'?)" if hint else "")
        if allowed:
            msg += f"; expected one of: {', '.join(allowed)}"
        return doc.issue(path, msg)
    if kind == "missing":
        return doc.issue(path, "required key is missing")
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        path = path + (ctx.get("discriminator", "'type'").strip("'"),)
        tags = ", ".join(_tags(annotation))
        if kind == "union_tag_not_found":
            return doc.issue(path, f"required key is missing (one of {tags})")
        return doc.issue(path, f"{_show(ctx.get('tag'), path, doc)} is not one of {tags}")
    if kind in ("literal_error", "enum"):
        expected = ctx.get("expected", "").replace("'", "").replace(" or ", ", ")
        return doc.issue(path, f"{shown} is not one of {expected}")
    if kind == "value_error":
        return doc.issue(path, str(ctx.get("error", err["msg"])))
    if kind.endswith("_type") or kind.endswith("_parsing"):
        expected = err["msg"].replace("Input should be ", "").split(",")[0]
        return doc.issue(path, f"expected {expected}, got {shown}")
    msg = err["msg"].replace("Input should be", "must be").replace("Value should have", "must have")
    return doc.issue(path, f"{msg}, got {shown}" if value is not None and not isinstance(value, (dict, list)) else msg)


def _resolve(loc: tuple, data: Any, root: Any) -> tuple[tuple, Any]:
    """Drop union tags from pydantic's loc; return the YAML key path and the type found there."""
    path: list = []
    current, annotation = data, root
    for part in loc:
        annotation = _unwrap(annotation)
        members = _union_members(annotation)
        if members and isinstance(current, dict) and current.get("type") == part:
            annotation = next((m for m in members if part in _tags(m)), annotation)
            continue
        if isinstance(current, dict) and part in current:
            current = current[part]
        elif isinstance(current, list) and isinstance(part, int) and part < len(current):
            current = current[part]
        else:
            current = _MISSING
        path.append(part)
        annotation = _child_type(annotation, part)
    return tuple(path), annotation


def _unwrap(annotation: Any) -> Any:
    while typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    return annotation


def _union_members(annotation: Any) -> tuple:
    annotation = _unwrap(annotation)
    if typing.get_origin(annotation) not in (typing.Union, types.UnionType):
        return ()
    members: list = []
    for arg in typing.get_args(annotation):
        if arg is not type(None):
            members.extend(_union_members(arg) or (_unwrap(arg),))
    return tuple(members)


def _child_type(annotation: Any, part: Any) -> Any:
    annotation = _unwrap(annotation)
    members = _union_members(annotation)
    if members:
        models = [m for m in members if isinstance(m, type) and issubclass(m, BaseModel)]
        annotation = models[0] if len(models) == 1 else annotation
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        field = annotation.model_fields.get(part) or next(
            (f for f in annotation.model_fields.values() if f.alias == part), None)
        return field.annotation if field else None
    origin = typing.get_origin(annotation)
    if origin in (dict, list):
        return typing.get_args(annotation)[-1]
    return None


def _field_names(annotation: Any) -> list[str]:
    annotation = _unwrap(annotation)
    members = [m for m in _union_members(annotation) if isinstance(m, type) and issubclass(m, BaseModel)]
    if len(members) == 1:
        annotation = members[0]
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [f.alias or name for name, f in annotation.model_fields.items()]
    return []


def _tags(annotation: Any) -> list[str]:
    members = _union_members(annotation) or (_unwrap(annotation),)
    tags: list[str] = []
    for member in members:
        if isinstance(member, type) and issubclass(member, BaseModel) and "type" in member.model_fields:
            tags.extend(typing.get_args(member.model_fields["type"].annotation))
    return tags


def _show(value: Any, path: tuple, doc: YamlDocument) -> str:
    """A value as it may appear in a message: secrets and substituted variables are masked."""
    if path in doc.from_env or (path and str(path[-1]) in SECRET_KEYS):
        return "'***'"
    if isinstance(value, (dict, list)):
        return "a mapping" if isinstance(value, dict) else "a list"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "...'"


def model_issues(doc: YamlDocument, sources: dict[str, Any]) -> list[ConfigIssue]:
    """Checks across a model's keys once the manifest is typed: a primary key whose name says it
    holds PII must be hashed (keys are never free-text scanned: a scan would merge distinct keys
    into one label), and a SQL `query:` must be one read-only SELECT."""
    from shared.config.child_tables import child_table_issues
    from shared.config.request_models import body_paging_issue
    from shared.config.sql_query import dialect_of, query_problem
    from shared.detect.names import key_name_suggests_pii

    issues: list[ConfigIssue] = []
    for source_name, source in sources.items():
        for model_name, model in source.models.items():
            base = ("sources", source_name, "models", model_name)
            for key in model.primary_key:
                column = model.columns.get(key)
                if column is not None and column.pii is not None:
                    continue   # a rule decides it (only hash is allowed on a key)
                what = key_name_suggests_pii(key.rsplit(".", 1)[-1])
                if what is None:
                    continue
                if column is None:   # a store: mongo key field that no column declares
                    issues.append(doc.issue(base + ("primary_key",), f"primary_key field '{key}': the name suggests "
                                            f"{what}, and keys are never scanned for PII: declare it as a column "
                                            "with pii: hash"))
                else:
                    issues.append(doc.issue(base + ("columns", key), f"primary_key column '{key}': the name suggests "
                                            f"{what}, and keys are never scanned for PII: give it pii: hash "
                                            "(a keyed hash keeps keys distinct)"))
            if getattr(source, "type", None) == "api":
                pagination, own = source.pagination_for(model), model.pagination is not None
                problem = body_paging_issue(model, pagination, from_source=not own)
                if problem is not None:
                    issues.append(doc.issue(base + (("pagination", "in") if own else ()), problem))
            query = getattr(model, "query", None)
            if query is not None:
                problem = query_problem(query, dialect_of(getattr(source, "url", "") or ""))
                if problem is not None:
                    issues.append(doc.issue(base + ("query",), problem))
            for where, problem in child_table_issues(model_name, model, source.store == "mongo"):
                issues.append(doc.issue(base + where, problem))
    return issues


def pii_guard_issues(doc: YamlDocument, sources: dict[str, Any], default_scan: str) -> list[ConfigIssue]:
    """Columns whose name suggests PII that no rule or scan covers (`shared/detect/column_names.py`)."""
    from shared.config.child_tables import child_tables, walk
    from shared.detect.column_names import unguarded_columns

    issues: list[ConfigIssue] = []
    for source_name, source in sources.items():
        for model_name, model in source.models.items():
            base = ("sources", source_name, "models", model_name)
            for found in unguarded_columns(model, default_scan):
                issues.append(doc.issue(base + ("columns", found.column), found.message))
            for child in walk(child_tables(model_name, model) if model.primary_key else ()):
                for found in unguarded_columns(child, default_scan):   # as on the parent (child_tables.py)
                    issues.append(doc.issue(base + child.where + ("columns", found.column), found.message))
    return issues
