"""The probe's result as a YAML block to paste under `sources:` of connector_models.yml.

Hand-written rather than `yaml.safe_dump`: the draft is meant to be read and edited, so columns
go one per line in flow style with the reason for each guess as a trailing comment, which no YAML
dumper can emit. Scalars are quoted whenever plain style could change their meaning.
"""
from __future__ import annotations

import json
import re
from typing import Any

from shared.probe.parents import SourceDraft
from shared.probe.probe import ProbeResult, pagination_spec

_PLAIN_BLOCK = re.compile(r"[A-Za-z0-9_/$][A-Za-z0-9_./:${}\-]*")
_PLAIN_FLOW = re.compile(r"[A-Za-z0-9_/][A-Za-z0-9_./\-]*")
_RESERVED = {"true", "false", "yes", "no", "on", "off", "y", "n", "null", "~", ""}
# PyYAML resolves these plain scalars as ints, sexagesimals or dates, not strings
_YAML_11_NUMBERS = re.compile(r"0[xob]|\d+(:\d+)+$|\d{4}-\d\d?-\d\d?")
COMMENT_COLUMN = 56


def render_yaml(result: ProbeResult) -> str:
    lines = [f"# drafted by `kspyder probe` from {result.target.url}: {_count(result.pages, 'page')}, "
             f"{_count(result.records, 'record')} seen; review the types, key and PII rules"]
    lines += source_lines(result)
    lines.append(pagination_line("    ", result))
    lines += ["    models:", *model_lines(result, result.model)]
    return "\n".join(lines) + "\n"


def render_source_yaml(draft: SourceDraft) -> str:
    """Several models of one source, each with its pagination; a child with its `parent:` and why."""
    pages = sum(r.pages for r in draft.results)
    records = sum(r.records for r in draft.results)
    lines = [f"# drafted by `kspyder probe` from {_count(len(draft.results), 'URL')} of "
             f"{draft.results[0].target.base_url}: {_count(pages, 'page')}, {_count(records, 'record')} seen; "
             "review the types, keys and PII rules"]
    lines += source_lines(draft.results[0])
    lines.append("    models:")
    models = draft.manifest()["sources"][draft.source]["models"]
    for name, result in zip(draft.names, draft.results, strict=True):
        relation = draft.relations.get(name)
        notes: dict[str, str] = {}
        if relation is not None:
            notes["parent"] = (f"its path takes {', '.join(relation.fields)} from each {relation.parent} record" +
                               ("" if relation.checked else "; seen with one record only: check the path"))
        if relation is not None and "include_from_parent" in models[name]:
            stored = ", ".join(f"{relation.parent}_{f}" for f in models[name]["include_from_parent"])
            notes["include_from_parent"] = f"stored as {stored}: joins each row to its parent"
            notes["primary_key"] = f"the children of one {relation.parent} record were seen: unique within a parent"
        lines += model_lines(result, name, models[name], notes)
    return "\n".join(lines) + "\n"


def source_lines(result: ProbeResult) -> list[str]:
    """`sources:` down to the source's headers: what every model of the source shares."""
    source = result.manifest()["sources"][result.source]
    lines = ["sources:", f"  {result.source}:", "    type: api", f"    base_url: {scalar(source['base_url'])}"]
    if "auth" in source:
        lines += ["    auth:"] + [f"      {scalar(k)}: {scalar(v)}" for k, v in source["auth"].items()]
    if "headers" in source:
        lines += ["    headers:"] + [f"      {scalar(k)}: {scalar(v)}" for k, v in source["headers"].items()]
    return lines


def pagination_line(indent: str, result: ProbeResult) -> str:
    return _commented(f"{indent}pagination: {flow(pagination_spec(result.pagination))}", result.pagination.how)


def model_lines(result: ProbeResult, name: str, model: dict[str, Any] | None = None,
                notes: dict[str, str] | None = None) -> list[str]:
    """One model under `models:` (by default the result's own entry, its pagination the source's),
    each key with its reason as a comment."""
    model = model or result.model_spec()
    notes = {"method": "add idempotent: true if sending it again is safe (a search or query)",
             "pii_scan": result.pii_scan_note or "", **(notes or {})}
    lines = [f"      {name}:"]
    for key in ("parent", "path", "method", "pagination", "params", "json", "records", "include_from_parent",
                "primary_key", "pii_scan"):
        if key == "pagination" and key in model:
            lines.append(pagination_line("        ", result))
        elif key in model:
            lines.append(_commented(f"        {key}: {flow(model[key]) if key != 'path' else scalar(model[key])}",
                                    notes.get(key)))
    comments = {c.name: c.comment for c in result.columns}
    lines.append("        columns:")
    lines += [_commented(f"          {scalar(column, True)}: {flow(spec)}", comments.get(column))
              for column, spec in model["columns"].items()]
    return lines


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _commented(line: str, comment: str | None) -> str:
    if not comment:
        return line
    return f"{line.ljust(COMMENT_COLUMN)}  # {' '.join(comment.split())}"


def flow(value: Any) -> str:
    """A value in YAML flow style: `{type: string, length: 50}`, `[id]`, or a scalar."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{scalar(k, True)}: {flow(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(flow(v) for v in value) + "]"
    return scalar(value, True)


def scalar(value: Any, in_flow: bool = False) -> str:
    """A scalar that reads back as the same value and type: `25` stays a number only if it was one."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    text = str(value)
    plain = (_PLAIN_FLOW if in_flow else _PLAIN_BLOCK).fullmatch(text)
    if plain and text.lower() not in _RESERVED and not _number_like(text) and not text.endswith(":"):
        return text
    if text.isprintable():
        return "'" + text.replace("'", "''") + "'"
    return json.dumps(text)


def _number_like(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return bool(_YAML_11_NUMBERS.match(text))
    return True
