"""The database probe's draft as YAML to paste under `sources:`: one model per table or view, one
column per line with the reason for its type or PII rule as a trailing comment (see render.py)."""
from __future__ import annotations

from shared.probe.render import _commented, flow, scalar
from shared.probe.sql_probe import SqlModelDraft, SqlProbeResult


def render_sql_yaml(result: SqlProbeResult) -> str:
    source = result.manifest()["sources"][result.source]
    where = f" (schema {result.schema})" if result.schema else ""
    lines = [f"# drafted by `kspyder probe` from {result.target.shown_url}{where}: {len(result.models)} "
             f"model{'s' if len(result.models) != 1 else ''}; review the types, keys and PII rules",
             "sources:", f"  {result.source}:", "    type: sql", f"    url: {scalar(source['url'])}"]
    if result.naming:
        lines.append(_commented("    naming: snake_case", "CamelCase names: snake_case in the target, "
                                                         "read as the source writes them"))
    lines.append("    models:")
    for model in result.models:
        lines += _model_lines(model)
    return "\n".join(lines) + "\n"


def _model_lines(model: SqlModelDraft) -> list[str]:
    spec = model.manifest()
    lines = [_commented(f"      {scalar(model.name, True)}:", model.key_note)]
    if "table" in spec:
        lines.append(f"        table: {scalar(spec['table'])}")
    else:
        lines.append(f"        query: {scalar(spec['query'])}")
    if "primary_key" in spec:
        lines.append(f"        primary_key: {flow(spec['primary_key'])}")
    if "pii_scan" in spec:
        lines.append(_commented("        pii_scan: redact", model.pii_scan_note))
    lines.append("        columns:")
    lines += [_commented(f"          {scalar(c.name, True)}: {flow(spec['columns'][c.name])}", c.comment)
              for c in model.columns]
    lines += [f"          # {' '.join(note.split())}" for note in model.left_out]
    return lines
