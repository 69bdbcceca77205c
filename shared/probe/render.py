"""The probe's result as a YAML block to paste under `sources:` of connector_models.yml.

Hand-written rather than `yaml.safe_dump`: the draft is meant to be read and edited, so columns
go one per line in flow style with the reason for each guess as a trailing comment, which no YAML
dumper can emit. Scalars are quoted whenever plain style could change their meaning.
"""
from __future__ import annotations

import json
import re
from typing import Any

from shared.probe.probe import ProbeResult, pagination_spec

_PLAIN_BLOCK = re.compile(r"[A-Za-z0-9_/$][A-Za-z0-9_./:${}\-]*")
_PLAIN_FLOW = re.compile(r"[A-Za-z0-9_/][A-Za-z0-9_./\-]*")
_RESERVED = {"true", "false", "yes", "no", "on", "off", "y", "n", "null", "~", ""}
# PyYAML resolves these plain scalars as ints, sexagesimals or dates, not strings
_YAML_11_NUMBERS = re.compile(r"0[xob]|\d+(:\d+)+$|\d{4}-\d\d?-\d\d?")
COMMENT_COLUMN = 56


def render_yaml(result: ProbeResult) -> str:
    data = result.manifest()
    source = data["sources"][result.source]
    model = source["models"][result.model]
    comments = {c.name: c.comment for c in result.columns}
    lines = [f"# drafted by `kspyder probe` from {result.target.url}: {_count(result.pages, 'page')}, "
             f"{_count(result.records, 'record')} seen; review the types, key and PII rules",
             "sources:", f"  {result.source}:", "    type: api", f"    base_url: {scalar(source['base_url'])}"]
    if "auth" in source:
        lines += ["    auth:"] + [f"      {scalar(k)}: {scalar(v)}" for k, v in source["auth"].items()]
    if "headers" in source:
        lines += ["    headers:"] + [f"      {scalar(k)}: {scalar(v)}" for k, v in source["headers"].items()]
    lines.append(_commented(f"    pagination: {flow(pagination_spec(result.pagination))}", result.pagination.how))
    lines += ["    models:", f"      {result.model}:", f"        path: {scalar(model['path'])}"]
    for key in ("params", "records", "primary_key"):
        if key in model:
            lines.append(f"        {key}: {flow(model[key])}")
    if "pii_scan" in model:
        lines.append(_commented(f"        pii_scan: {model['pii_scan']}", result.pii_scan_note))
    lines.append("        columns:")
    lines += [_commented(f"          {scalar(name, True)}: {flow(spec)}", comments.get(name))
              for name, spec in model["columns"].items()]
    return "\n".join(lines) + "\n"


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
