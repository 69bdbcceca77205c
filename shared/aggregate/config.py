"""`manifests/aggregations.yml`: named MongoDB aggregation pipelines over `store: mongo` sources,
validated up front like the connector manifests (every problem at once, file:line and key path).

Stages are limited to those both mongomock (the embedded store and the tests) and MongoDB run
the same way, so a pipeline that passes on a laptop passes against the server: see
`SUPPORTED_STAGES` and docs/documents.md.
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator

from shared.config.errors import ConfigError, ConfigIssue
from shared.config.models import Strict, check_identifier
from shared.config.project import Project
from shared.config.project_cache import derived
from shared.config.validation import issues_from_validation
from shared.config.yaml_source import YamlDocument, load_yaml

AGGREGATIONS_FILE = "aggregations.yml"
SUPPORTED_STAGES = ("$match", "$project", "$addFields", "$set", "$unwind", "$lookup", "$group", "$sort",
                    "$limit", "$skip", "$count", "$replaceRoot")
LOOKUP_KEYS = ("from", "localField", "foreignField", "as")
FileFormat = Literal["json", "csv"]


def _json_only() -> list[FileFormat]:
    return ["json"]


class AggregationOutput(Strict):
    files: list[FileFormat] = Field(default_factory=_json_only, description="<name>.json / <name>.csv")
    table: str | None = Field(None, description="schema.table in the SQL target, replaced on every run.")

    @field_validator("files")
    @classmethod
    def _once_each(cls, files: list[str]) -> list[str]:
        if len(set(files)) != len(files):
            raise ValueError("files lists a format twice")
        return files

    @field_validator("table")
    @classmethod
    def _schema_table(cls, table: str | None) -> str | None:
        if table is None:
            return None
        schema, dot, name = table.partition(".")
        if not dot or "." in name:
            raise ValueError(f"table '{table}' must be 'schema.table'")
        check_identifier(schema, "schema name")
        check_identifier(name, "table name")
        return table


class Aggregation(Strict):
    source: str = Field(description="A source with store: mongo: its database.")
    collection: str = Field(description="A model of that source: the collection the pipeline starts from.")
    pipeline: list[dict[str, Any]] = Field(default_factory=list)
    output: AggregationOutput = Field(default_factory=lambda: AggregationOutput())
    description: str | None = None

    @property
    def schema_table(self) -> tuple[str, str] | None:
        if self.output.table is None:
            return None
        schema, _, table = self.output.table.partition(".")
        return schema, table


class AggregationsFile(Strict):
    aggregations: dict[str, Aggregation] = Field(default_factory=dict)


def load_aggregations(project: Project, env: Mapping[str, str] | None = None) -> dict[str, Aggregation]:
    """Every aggregation of `<manifests>/aggregations.yml` (none when the file is absent), in file
    order. Raises one `ConfigError` listing every problem."""
    if env is None:   # the process's environment: kept with a cached project (Functions workers)
        return derived(project, AGGREGATIONS_FILE, lambda: _read(project, os.environ))
    return _read(project, env)


def _read(project: Project, env: Mapping[str, str]) -> dict[str, Aggregation]:
    path = Path(project.root) / AGGREGATIONS_FILE
    if not path.exists():
        return {}
    doc, issues = load_yaml(path, AGGREGATIONS_FILE, env)
    if issues:
        raise ConfigError(issues)
    if doc.data == {} or doc.data is None:
        return {}
    if not isinstance(doc.data, dict):
        raise ConfigError([doc.issue((), "expected a mapping with a top-level 'aggregations:' key")])
    issues += _name_issues(doc)
    try:
        aggregations = AggregationsFile.model_validate(doc.data).aggregations
    except ValidationError as exc:
        issues += issues_from_validation(exc, doc, AggregationsFile)
        aggregations = _valid_ones(doc.data.get("aggregations"))   # still checked below: all problems at once
    for name, aggregation in aggregations.items():
        issues += _reference_issues(doc, ("aggregations", name), aggregation, project)
    if issues:
        raise ConfigError(issues)
    return aggregations


def _valid_ones(raw: Any) -> dict[str, Aggregation]:
    found = {}
    for name, body in raw.items() if isinstance(raw, dict) else ():
        try:
            found[name] = Aggregation.model_validate(body)
        except ValidationError:
            pass   # already reported with its file position
    return found


def _name_issues(doc: YamlDocument) -> list[ConfigIssue]:
    """Names become file names and are typed on the command line: identifiers only."""
    found = doc.data.get("aggregations")
    issues = []
    for name in found if isinstance(found, dict) else {}:
        try:
            check_identifier(name, "aggregation name")
        except ValueError as exc:
            issues.append(doc.issue(("aggregations", name), str(exc)))
    return issues


def _reference_issues(doc: YamlDocument, base: tuple, aggregation: Aggregation, project: Project) -> list[ConfigIssue]:
    issues: list[ConfigIssue] = []
    source = project.sources.get(aggregation.source)
    documents = {n for n, s in project.sources.items() if s.store == "mongo"}
    if source is None:
        issues.append(doc.issue(base + ("source",), f"unknown source '{aggregation.source}' "
                                f"(store: mongo sources: {', '.join(sorted(documents)) or 'none'})"))
    elif source.store != "mongo":
        issues.append(doc.issue(base + ("source",), f"source '{aggregation.source}' is not store: mongo, "
                                "so it has no documents to aggregate"))
    models = list(source.models) if source is not None and source.store == "mongo" else None
    if models is not None and aggregation.collection not in models:
        issues.append(doc.issue(base + ("collection",), f"unknown collection '{aggregation.collection}' "
                                f"(models of {aggregation.source}: {', '.join(models)})"))
    for index, stage in enumerate(aggregation.pipeline):
        issues += _stage_issues(doc, base + ("pipeline", index), stage, aggregation.source, models)
    table = aggregation.schema_table
    if table is not None and table[0] in project.sources and project.sources[table[0]].store == "sql":
        # plan/apply manage a source's schema: they would take an extra table there for a removed model
        issues.append(doc.issue(base + ("output", "table"), f"schema '{table[0]}' belongs to source "
                                f"{table[0]}: write aggregation tables to a schema of their own"))
    return issues


def _stage_issues(doc: YamlDocument, path: tuple, stage: dict, source: str,
                  models: list[str] | None) -> list[ConfigIssue]:
    if len(stage) != 1:
        return [doc.issue(path, f"a stage is a mapping with one key (the stage name), got {len(stage)} keys")]
    (operator, options), = stage.items()
    if operator not in SUPPORTED_STAGES:
        return [doc.issue(path + (operator,),
                          f"unsupported stage '{operator}'; expected one of: {', '.join(SUPPORTED_STAGES)}")]
    if operator != "$lookup":
        return []
    path = path + (operator,)
    if not isinstance(options, dict):
        return [doc.issue(path, "expected a mapping with from, localField, foreignField and as")]
    issues = []
    for extra in [k for k in options if k not in LOOKUP_KEYS]:
        issues.append(doc.issue(path + (extra,), f"unsupported $lookup key '{extra}': only the localField/"
                                "foreignField form runs on both stores (from, localField, foreignField, as)"))
    for key in LOOKUP_KEYS:
        value = options.get(key)
        if key not in options:
            issues.append(doc.issue(path + (key,), "required key is missing"))
        elif not isinstance(value, str) or not value or value.startswith("$"):
            issues.append(doc.issue(path + (key,), "expected a field or collection name (text, not starting with '$')"))
        elif key == "as" and "." in value:
            issues.append(doc.issue(path + (key,), "expected a top-level field name (no '.')"))
        elif key == "from" and models is not None and value not in models:
            issues.append(doc.issue(path + (key,),
                                    f"unknown collection '{value}' (models of {source}: {', '.join(models)})"))
    return issues
