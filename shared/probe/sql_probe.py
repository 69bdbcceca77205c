"""`probe <database URL>`: a whole schema's tables and views drafted as one `type: sql` source.

The catalogue (SQLAlchemy's inspector) gives each model its columns, types and primary key; a
sample of rows (read-only, `--sample` rows per table) lets the PII hints of the API probe look at
the values of text columns. Like the API probe, the report and the YAML carry names, types,
counts and reasons only, never a value, and the password in the URL becomes a `${VAR}`.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from pydantic import ValidationError

from shared.config.models import ConnectorModels, check_identifier
from shared.config.naming import snake_case
from shared.detect.names import DROP, HASH, name_suggests
from shared.detect.redact_message import safe_excerpt
from shared.extract.sql import read_only
from shared.plural import plural
from shared.probe.naming import identifier, unique
from shared.probe.pii_hints import FreeTextPii, PiiHint, column_hint, describe_kinds
from shared.probe.sql_target import DatabaseTarget, database_target, default_source_name
from shared.probe.sql_types import TypeDraft, Unsupported, map_type
from shared.probe.walk import ProbeError

Report = Callable[[str], None]
SAMPLE_ROWS = 200
TEXT_TYPES = ("string", "text", "json")
# rules whose output is text: a column of another type stores it as a string (see target/columns.py)
TEXT_LENGTH = 50


@dataclass(frozen=True)
class SqlProbeOptions:
    url: str
    schema: str | None = None
    tables: tuple[str, ...] = ()
    source: str | None = None
    sample: int = SAMPLE_ROWS


@dataclass(frozen=True)
class SqlColumnDraft:
    name: str                       # the manifest key
    type: TypeDraft
    path: str | None = None         # the source's name, when it is not a valid key
    pii: Any = None
    comment: str | None = None

    def spec(self) -> dict[str, Any]:
        spec: dict[str, Any] = {"type": self.type.type}
        for key in ("length", "precision", "scale"):
            if getattr(self.type, key) is not None:
                spec[key] = getattr(self.type, key)
        if self.path is not None:
            spec["path"] = self.path
        if self.pii is not None:
            spec["pii"] = self.pii
        return spec


@dataclass(frozen=True)
class SqlModelDraft:
    name: str
    kind: str                       # table, partitioned table, view, materialized view
    table: str | None
    query: str | None
    primary_key: list[str]
    key_note: str
    columns: list[SqlColumnDraft]
    left_out: list[str] = field(default_factory=list)     # comments for columns without a type
    pii_scan_note: str | None = None
    sampled: int = 0

    def manifest(self) -> dict[str, Any]:
        model: dict[str, Any] = {"table": self.table} if self.table is not None else {"query": self.query}
        if self.primary_key:
            model["primary_key"] = list(self.primary_key)
        if self.pii_scan_note:
            model["pii_scan"] = "redact"
        model["columns"] = {c.name: c.spec() for c in self.columns}
        return model


@dataclass(frozen=True)
class SqlProbeResult:
    source: str
    target: DatabaseTarget
    schema: str | None
    models: list[SqlModelDraft]
    naming: bool                    # propose naming: snake_case

    def manifest(self) -> dict[str, Any]:
        source: dict[str, Any] = {"type": "sql", "url": self.target.shown_url}
        if self.naming:
            source["naming"] = "snake_case"
        source["models"] = {m.name: m.manifest() for m in self.models}
        return {"sources": {self.source: source}}


def probe_database(options: SqlProbeOptions, report: Report = lambda line: None) -> SqlProbeResult:
    """Read the catalogue of `options.url` (one schema) and draft its source. Errors name tables and
    the database's first line, scrubbed; never the password or a value."""
    target = database_target(options.url, "db")   # parsed once for the default name; real names below
    source = _name(options.source or default_source_name(target.url), "source name")
    target = database_target(options.url, source)
    engine = sa.create_engine(target.url)
    try:
        with engine.connect() as connection, read_only(connection):
            models = _drafts(connection, options, report)
    except sa.exc.SQLAlchemyError as exc:
        raise ProbeError(f"{target.shown_url}: the database failed: {type(exc).__name__}: "
                         f"{_scrubbed(exc, target)}") from None
    finally:
        engine.dispose()
    result = SqlProbeResult(source, target, options.schema, models, _proposes_snake_case(models))
    _check(result)
    _summary(result, report)
    return result


def _name(name: str, what: str) -> str:
    try:
        return check_identifier(name, what)
    except ValueError as exc:
        raise ProbeError(str(exc)) from None


def _scrubbed(exc: BaseException, target: DatabaseTarget) -> str:
    lines = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    text = lines[0].split("DETAIL")[0] if lines else ""
    if target.url.password:
        text = text.replace(str(target.url.password), "***")
    return safe_excerpt(text, 200)


# ---------------------------------------------------------------- the catalogue
def _drafts(connection: sa.Connection, options: SqlProbeOptions, report: Report) -> list[SqlModelDraft]:
    inspector = sa.inspect(connection)
    schema = options.schema
    if schema is not None and schema not in inspector.get_schema_names():
        raise ProbeError(f"schema '{schema}' not found (schemas: {', '.join(inspector.get_schema_names())})")
    qualify = schema is not None and schema != inspector.default_schema_name
    partitions = _partitions(connection, schema or inspector.default_schema_name)
    kinds: dict[str, str] = {}
    for name in inspector.get_table_names(schema=schema):
        if name not in partitions:
            kinds[name] = "table"
    for name in _partitioned(connection, schema or inspector.default_schema_name):
        kinds[name] = "partitioned table"
    for name in inspector.get_view_names(schema=schema):
        kinds[name] = "view"
    if connection.dialect.name == "postgresql":
        for name in inspector.get_materialized_view_names(schema=schema):
            kinds[name] = "materialized view"
    if partitions:
        report(f"probe: {len(partitions)} partition{'s' if len(partitions) != 1 else ''} left out: "
               "each is read through its partitioned table")
    wanted = list(options.tables) or sorted(kinds)
    unknown = [t for t in wanted if t not in kinds]
    if unknown:
        raise ProbeError(f"no table or view {', '.join(repr(t) for t in unknown)} in "
                         f"{'schema ' + repr(schema) if schema else 'the default schema'} "
                         f"(found: {', '.join(sorted(kinds)) or 'none'})")
    taken: set[str] = set()
    drafts = []
    for name in wanted:
        drafts.append(_model(connection, inspector, name, kinds[name], schema, qualify, options.sample, taken))
        _report_model(drafts[-1], report)
    if not drafts:
        raise ProbeError(f"no tables or views in {'schema ' + repr(schema) if schema else 'the default schema'}")
    return drafts


def _partitions(connection: sa.Connection, schema: str | None) -> set[str]:
    """PostgreSQL's partitions of a partitioned table: the parent reads them all, once."""
    if connection.dialect.name != "postgresql":
        return set()
    rows = connection.execute(sa.text(
        "SELECT c.relname FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = :schema AND c.relispartition AND c.relkind IN ('r', 'p')"), {"schema": schema})
    return {row[0] for row in rows}


def _partitioned(connection: sa.Connection, schema: str | None) -> list[str]:
    if connection.dialect.name != "postgresql":
        return []
    rows = connection.execute(sa.text(
        "SELECT c.relname FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = :schema AND c.relkind = 'p' AND NOT c.relispartition"), {"schema": schema})
    return [row[0] for row in rows]


def _model(connection: sa.Connection, inspector: Any, table: str, kind: str, schema: str | None, qualify: bool,
           sample: int, taken: set[str]) -> SqlModelDraft:
    columns = inspector.get_columns(table, schema=schema)
    model_name = unique(table if _valid(table) else identifier(table, "table"), taken)
    if _valid(table) and (schema is None or _valid(schema)):
        source_table, query = (f"{schema}.{table}" if qualify else table), None
    else:   # a name `table:` cannot hold: read it through a query that quotes it
        source_table = None
        quote = connection.dialect.identifier_preparer
        # identifiers only, quoted by the dialect: no value is ever in the text
        query = f"SELECT * FROM {quote.format_table(sa.table(table, schema=schema if qualify else None))}"  # noqa: S608
    names: set[str] = set()
    typed: list[tuple[str, str | None, dict, TypeDraft]] = []
    left_out: list[str] = []
    for column in columns:
        source_name = column["name"]
        if "." in source_name:
            left_out.append(f"'{source_name}' left out: a column path cannot reach a name with a dot")
            continue
        mapped = map_type(column["type"], connection.dialect.name)
        if isinstance(mapped, Unsupported):
            left_out.append(f"'{source_name}' left out: {mapped.reason}")
            continue
        column_key = unique(source_name if _valid(source_name) else identifier(source_name), names)
        typed.append((column_key, None if column_key == source_name else source_name, column, mapped))
    if not typed:
        raise ProbeError(f"{kind} '{table}': no column has a type kspyder can load")
    key, key_note = _key(inspector, table, kind, schema, {c["name"]: c for _, _, c, _ in typed})
    by_source = {(path or name): name for name, path, _, _ in typed}
    key = [by_source[k] for k in key]
    values, sampled = _sample(connection, table, schema, [path or name for name, path, _, d in typed
                                                          if d.type in TEXT_TYPES], sample)
    drafts, free_text = [], []
    for name, path, _, mapped in typed:
        draft, found = _column(name, path, mapped, values.get(path or name, []), name in key)
        drafts.append(draft)
        if found is not None:
            free_text.append(found)
    note = None
    if free_text:
        note = "PII? free text holds " + "; ".join(
            f"{describe_kinds(f.kinds)} in {f.column} ({round(f.share * 100)}% of sampled values)" for f in free_text)
    return SqlModelDraft(model_name, kind, source_table, query, key, key_note, drafts, left_out, note, sampled)


def _valid(name: str) -> bool:
    try:
        check_identifier(name, "name")
    except ValueError:
        return False
    return True


def _key(inspector: Any, table: str, kind: str, schema: str | None, columns: dict[str, dict]) -> tuple[list[str], str]:
    if "view" in kind:
        return [], f"{kind}: no primary key, so the model is replaced whole on every run"
    constraint = inspector.get_pk_constraint(table, schema=schema) or {}
    key = [c for c in constraint.get("constrained_columns") or [] if c in columns]
    if key and len(key) == len(constraint["constrained_columns"]):
        return key, f"{kind}; primary key from its constraint"
    for unique_constraint in inspector.get_unique_constraints(table, schema=schema):
        names = unique_constraint.get("column_names") or []
        if names and all(n in columns and not columns[n].get("nullable", True) for n in names):
            return list(names), f"{kind}; no primary key: key from its unique constraint on non-null columns"
    return [], f"{kind}: no primary key, so the model is replaced whole on every run"


def _sample(connection: sa.Connection, table: str, schema: str | None, names: list[str],
            rows: int) -> tuple[dict[str, list], int]:
    """Up to `rows` values of each text-like column, for the PII hints; they never leave this module."""
    if not names or rows <= 0:
        return {}, 0
    query: sa.Select = sa.select(*[sa.column(n) for n in names]).select_from(sa.table(table, schema=schema)).limit(rows)
    fetched = connection.execute(query).all()
    return {name: [row[i] for row in fetched] for i, name in enumerate(names)}, len(fetched)


def _column(name: str, path: str | None, mapped: TypeDraft, values: list, is_key: bool
            ) -> tuple[SqlColumnDraft, FreeTextPii | None]:
    """The column with its PII rule, if its (snake_case) name or sampled values suggest one."""
    spoken = snake_case(path or name) or name   # name patterns are written over snake_case names
    hint: PiiHint | FreeTextPii | None
    if mapped.type == "binary":
        hint = _binary_hint(name, spoken)
    else:
        hint = column_hint(spoken, mapped.type, values)
    free_text = None
    if isinstance(hint, FreeTextPii):
        if not is_key:
            free_text = FreeTextPii(name, hint.kinds, hint.share)
            return SqlColumnDraft(name, mapped, path, comment=mapped.note), free_text
        hint = PiiHint(name, HASH, f"{describe_kinds(hint.kinds)} in {round(hint.share * 100)}% of sampled values")
    if hint is None:
        return SqlColumnDraft(name, mapped, path, comment=mapped.note), None
    rule, reason = hint.rule, f"PII? {hint.reason}"
    rule_name = rule if isinstance(rule, str) else rule["rule"]
    if is_key and rule_name != HASH:
        rule, reason = HASH, f"{reason} (hash, not {rule_name}: it is the primary key)"
    elif is_key:
        reason = f"{reason} (keys are never scanned for PII)"
    mapped = _typed_for_rule(rule, mapped)
    comment = f"{reason}; {mapped.note}" if mapped.note else reason
    return SqlColumnDraft(name, mapped, path, rule, comment), free_text


def _binary_hint(name: str, spoken: str) -> PiiHint | None:
    """Bytes take drop or hash only (validation refuses the text rules on them)."""
    found = name_suggests(spoken)
    if found is None:
        return None
    rule, what = found
    if rule == HASH:
        return PiiHint(name, HASH, f"the name suggests {what}")
    return PiiHint(name, DROP, f"the name suggests {what} (drop: binary data takes drop or hash)")


def _typed_for_rule(rule: Any, mapped: TypeDraft) -> TypeDraft:
    """mask and generalize postcode write text: a number column is drafted as a string for them."""
    rule_name = rule if isinstance(rule, str) else rule["rule"]
    writes_text = rule_name == "mask" or (isinstance(rule, dict) and rule.get("kind") == "postcode")
    if not writes_text or mapped.type in TEXT_TYPES:
        return mapped
    return TypeDraft("string", TEXT_LENGTH, note=f"{mapped.type} in the source; the rule writes text")


def _proposes_snake_case(models: list[SqlModelDraft]) -> bool:
    """CamelCase (or other capitalised) names, which snake_case turns into names without a clash."""
    names_sets = [[m.name for m in models]] + [[c.name for c in m.columns] for m in models]
    if not any(snake_case(n) != n for names in names_sets for n in names):
        return False
    return all(len({snake_case(n) for n in names}) == len(names) and all(len(snake_case(n)) <= 63 for n in names)
               for names in names_sets)


def _check(result: SqlProbeResult) -> None:
    """The draft must load: a probe bug should fail here, not in the user's manifest folder."""
    try:
        ConnectorModels.model_validate(result.manifest())
    except ValidationError as exc:
        raise ProbeError(f"internal error: the drafted manifest does not validate: {exc}") from None


# ---------------------------------------------------------------- the report (stderr)
def _report_model(model: SqlModelDraft, report: Report) -> None:
    key = f"key ({', '.join(model.primary_key)})" if model.primary_key else "no key"
    flagged = [f"{c.name} ({c.pii if isinstance(c.pii, str) else c.pii['rule']})" for c in model.columns if c.pii]
    rows = f"{model.sampled} row{'s' if model.sampled != 1 else ''} sampled"
    left_out = f"; {len(model.left_out)} left out" if model.left_out else ""
    report(f"probe: {model.kind} {model.name}: {len(model.columns)} columns, {key}, {rows}; "
           f"PII flags: {', '.join(flagged) or 'none'}{left_out}")


def _summary(result: SqlProbeResult, report: Report) -> None:
    kinds: dict[str, int] = {}
    for model in result.models:
        kinds[model.kind] = kinds.get(model.kind, 0) + 1
    report(f"probe: {plural(len(result.models), 'model')} drafted ("
           + ", ".join(plural(n, k) for k, n in kinds.items()) + ")")
    if result.naming:
        report("probe: naming: snake_case proposed: the names are CamelCase; tables and columns are "
               "snake_cased in the target and read as written")
    if any(c.pii and (c.pii if isinstance(c.pii, str) else c.pii["rule"]) == HASH
           for m in result.models for c in m.columns):
        report("probe: hash rules need KSPYDER_PII_KEY set when the manifest loads")
    for var in result.target.env_vars:
        report(f"probe: the manifest reads a secret from ${{{var}}}: set {var} in the environment")
