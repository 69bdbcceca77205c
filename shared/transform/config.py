"""Load `manifests/transformations.yml` into checked pipelines, reporting every problem at once.

Checks, in order, each with file:line and key path: the file's shape (pydantic, unknown keys
refused), step names and arguments (expressions against the whitelist), names of inputs and
outputs, the dependency graph (unknown inputs, clashing outputs, cycles), then a dry run of every
pipeline over empty frames with its inputs' columns, which finds a column a step needs but the
step before does not produce, and infers the output columns `plan` shows.
"""
from __future__ import annotations

import difflib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shared.config.errors import ConfigError, ConfigIssue, format_path
from shared.config.models import check_identifier
from shared.config.project import Project
from shared.config.project_cache import derived
from shared.config.validation import issues_from_validation
from shared.config.yaml_source import YamlDocument, load_yaml
from shared.transform.graph import Transformations, check_graph
from shared.transform.pipeline import Pipeline, StepAt
from shared.transform.steps import STEPS

TRANSFORMATIONS_FILE = "transformations.yml"


class PipelineSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    description: str | None = None
    inputs: dict[str, str] = Field(default_factory=dict)    # alias -> schema.table
    steps: list[Any] = Field(min_length=1)                  # checked step by step against the registry
    output: str


class TransformationsFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    pipelines: dict[str, Any] = Field(default_factory=dict)   # each checked on its own: all errors at once


def load_transformations(project: Project, env: Mapping[str, str] | None = None) -> Transformations:
    """The project's pipelines in dependency order (none without the file); ConfigError lists
    every problem found."""
    if env is None:   # the process's environment: kept with a cached project (Functions workers)
        return derived(project, TRANSFORMATIONS_FILE, lambda: _read(project, os.environ))
    return _read(project, env)


def _read(project: Project, env: Mapping[str, str]) -> Transformations:
    path = Path(project.root) / TRANSFORMATIONS_FILE
    if not path.exists():
        return Transformations(TRANSFORMATIONS_FILE, {})
    doc, issues = load_yaml(path, TRANSFORMATIONS_FILE, env)
    if issues:
        raise ConfigError(issues)
    if doc.data is None or doc.data == {}:
        return Transformations(TRANSFORMATIONS_FILE, {})
    if not isinstance(doc.data, dict):
        raise ConfigError([doc.issue((), "expected a mapping with a top-level 'pipelines:' key")])
    try:
        spec = TransformationsFile.model_validate(doc.data)
    except ValidationError as exc:
        raise ConfigError(issues_from_validation(exc, doc, TransformationsFile)) from None
    pipelines, broken = {}, set()
    for name, raw in spec.pipelines.items():
        pipeline_spec = _spec(doc, name, raw, issues)
        pipeline = _pipeline(doc, name, pipeline_spec, issues) if pipeline_spec else None
        if pipeline is not None:
            pipelines[name] = pipeline
        elif isinstance(raw, dict) and isinstance(raw.get("output"), str):
            broken.add(raw["output"])
    transformations = check_graph(doc, project, pipelines, issues, broken)
    if issues:
        raise ConfigError(issues)
    return transformations


def _spec(doc: YamlDocument, name: str, raw: Any, issues: list[ConfigIssue]) -> PipelineSpec | None:
    if not isinstance(raw, dict):
        issues.append(doc.issue(("pipelines", name), "expected a pipeline: a mapping with inputs, steps and output"))
        return None
    try:
        return PipelineSpec.model_validate(raw)
    except ValidationError as exc:
        issues.extend(_prefixed(exc, doc, ("pipelines", name), raw, PipelineSpec))
        return None


def _prefixed(exc: ValidationError, doc: YamlDocument, prefix: tuple, data: Any,
              model: type[BaseModel]) -> list[ConfigIssue]:
    """pydantic's errors for the part of `doc` under `prefix`, with their full key paths."""
    head = format_path(prefix)
    out = []
    for issue in issues_from_validation(exc, _sub_document(doc, prefix, data), model):
        key = issue.key_path
        joined = "" if not key else key if key.startswith("[") else "." + key
        out.append(ConfigIssue(doc.file, issue.line, head + joined, issue.message))
    return out


def _pipeline(doc: YamlDocument, name: str, spec: PipelineSpec, issues: list[ConfigIssue]) -> Pipeline | None:
    base = ("pipelines", name)
    found: list[ConfigIssue] = []
    _identifier(doc, base, name, "pipeline name", found)
    for alias, table in spec.inputs.items():
        _identifier(doc, base + ("inputs", alias), alias, "input name", found)
        _qualified(doc, base + ("inputs", alias), table, found)
    _qualified(doc, base + ("output",), spec.output, found)
    steps = [s for i, raw in enumerate(spec.steps) if (s := _step(doc, base + ("steps", i), raw, found))]
    reads = []
    for at in steps:
        for j, table in enumerate(getattr(at.step.args, "reads", None) or []):
            _qualified(doc, at.path + ("sql", "reads", j), table, found)
            reads.append(table)
    issues.extend(found)
    if found:
        return None
    return Pipeline(name, dict(spec.inputs), steps, spec.output, spec.description, doc.file,
                    doc.line_of(base), reads_sql=reads)


def _step(doc: YamlDocument, path: tuple, raw: Any, issues: list[ConfigIssue]) -> StepAt | None:
    valid = ", ".join(sorted(STEPS))
    if not isinstance(raw, dict) or len(raw) != 1:
        issues.append(doc.issue(path, f"expected a step: a mapping with one key, the step name (one of: {valid})"))
        return None
    [(name, value)] = raw.items()
    if name not in STEPS:
        hint = difflib.get_close_matches(name, list(STEPS), n=1)
        guess = f" (did you mean '{hint[0]}'?)" if hint else ""
        issues.append(doc.issue(path + (name,), f"unknown step '{name}'{guess}; expected one of: {valid}"))
        return None
    cls = STEPS[name]
    try:
        args = cls.Arguments.model_validate(cls.shorthand(value))
    except ValidationError as exc:
        issues.extend(_prefixed(exc, doc, path + (name,), cls.shorthand(value), cls.Arguments))
        return None
    return StepAt(cls(args), path, doc.line_of(path))


def _sub_document(doc: YamlDocument, prefix: tuple, data: Any) -> YamlDocument:
    """The part of `doc` under `prefix`, as its own document: pydantic reports paths from there."""
    cut = len(prefix)
    lines = {k[cut:]: v for k, v in doc.lines.items() if k[:cut] == prefix}
    return YamlDocument(doc.file, data, lines, {p[cut:] for p in doc.from_env if p[:cut] == prefix},
                        {p[cut:] for p in doc.missing_env if p[:cut] == prefix})


def _identifier(doc: YamlDocument, path: tuple, name: str, what: str, issues: list[ConfigIssue]) -> bool:
    try:
        check_identifier(name, what)
    except ValueError as exc:
        issues.append(doc.issue(path, str(exc)))
        return False
    return True


def _qualified(doc: YamlDocument, path: tuple, text: str, issues: list[ConfigIssue]) -> None:
    schema, dot, table = text.partition(".")
    if not dot or "." in table:
        issues.append(doc.issue(path, f"expected schema.table (like erp.orders), got {text!r}"))
        return
    _identifier(doc, path, schema, "schema", issues) and _identifier(doc, path, table, "table", issues)
