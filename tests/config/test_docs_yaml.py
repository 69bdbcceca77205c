"""Every YAML example in README.md and docs/*.md that has a manifest's shape validates as that
manifest: a documented spelling must never be one kspyder refuses (issue 17: `on_error: null`).

Whole files (`sources:`, `pipelines:`, `aggregations:`, settings) are validated as their file;
fragments (a `columns:` block, a `pagination:` block, source keys, a list of steps) inside the
smallest manifest that can hold them. `${VARS}` resolve to a placeholder. References between files
(a pipeline's inputs, an aggregation's source) need a project and are not checked here; each
file's own tests cover them."""
from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from shared.aggregate.config import AggregationsFile
from shared.config.errors import ConfigError, ConfigIssue
from shared.config.models import ApiModel, ApiSource
from shared.config.project import load_project
from shared.config.settings import Settings
from shared.config.yaml_source import YamlDocument, load_yaml
from shared.transform.config import PipelineSpec, _pipeline, _spec
from tests.helpers.paths import ROOT

DOCUMENTS = sorted((ROOT / "docs").glob("*.md")) + [ROOT / "README.md"]
FENCE = re.compile(r"^```ya?ml[^\n]*\n(.*?)^```", re.S | re.M)
API_SOURCE = {"type": "api", "base_url": "http://127.0.0.1:1"}
DUMMY_MODEL = {"path": "/m", "columns": {"id": {"type": "integer"}}}


class Placeholders(Mapping[str, str]):
    """Any `${VAR}` of an example resolves (to a URL, which every variable of the examples accepts)."""

    def __getitem__(self, key: str) -> str:
        return "http://127.0.0.1:1"

    def __contains__(self, key: object) -> bool:
        return True

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


def yaml_blocks() -> list[tuple[str, str]]:
    blocks = []
    for document in DOCUMENTS:
        text = document.read_text()
        for match in FENCE.finditer(text):
            line = text[:match.start()].count("\n") + 2
            blocks.append((f"{document.relative_to(ROOT)}:{line}", match.group(1)))
    return blocks


BLOCKS = yaml_blocks()


def test_the_docs_have_yaml_examples():
    assert len(BLOCKS) >= 8


@pytest.mark.parametrize("where, block", BLOCKS, ids=[w for w, _ in BLOCKS])
def test_documented_yaml_validates(where, block, tmp_path):
    path = tmp_path / "example.yml"
    path.write_text(block)
    doc, issues = load_yaml(path, where, Placeholders())
    assert issues == [], f"{where}: not YAML: {issues}"
    problems = validate(doc, tmp_path)
    assert problems == [], f"{where}:\n" + "\n".join(map(str, problems))


def validate(doc: YamlDocument, tmp_path: Path) -> list[Any]:
    data = doc.data
    if isinstance(data, list):   # a pipeline's steps
        return _pipeline_issues(doc, {"inputs": {"a": "s.t"}, "steps": data, "output": "analytics.example"})
    assert isinstance(data, dict), "a YAML example is a mapping or a list of steps"
    keys = set(data)
    if "sources" in keys:
        return _connectors(doc, tmp_path)
    if "pipelines" in keys:
        return [issue for name, raw in data["pipelines"].items() for issue in _pipeline_issues(doc, raw, name)]
    if "aggregations" in keys:
        return _pydantic(AggregationsFile, data)
    if keys <= set(Settings.model_fields):
        return _pydantic(Settings, data)
    if keys <= set(ApiModel.model_fields) - {"path"}:   # a model's keys: columns, pagination...
        return _pydantic(ApiSource, {**API_SOURCE, "models": {"m": {**DUMMY_MODEL, **data}}})
    if keys <= set(ApiSource.model_fields) | {"in"}:   # a source's keys
        return _pydantic(ApiSource, {**API_SOURCE, "models": {"m": DUMMY_MODEL}, **data})
    pytest.fail(f"a YAML example of no known manifest shape (keys: {', '.join(sorted(keys))}): "
                "make it one, or fence it as text")


def _connectors(doc: YamlDocument, tmp_path: Path) -> list[ConfigIssue]:
    folder = tmp_path / "manifests"
    folder.mkdir()
    (folder / "connector_models.yml").write_text((tmp_path / "example.yml").read_text())
    env = {name: "http://127.0.0.1:1" for name in re.findall(r"\$\{(\w+)", (tmp_path / "example.yml").read_text())}
    try:
        load_project(folder, env={**env, "KSPYDER_PII_KEY": "docs-example-key"})
    except ConfigError as exc:
        return exc.issues
    return []


def _pydantic(model: Any, data: Any) -> list[str]:
    try:
        model.model_validate(data)
    except ValidationError as exc:
        return [f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors(include_url=False)]
    return []


def _pipeline_issues(doc: YamlDocument, raw: Any, name: str = "example") -> list[ConfigIssue]:
    issues: list[ConfigIssue] = []
    wrapped = YamlDocument(doc.file, {"pipelines": {name: raw}})
    spec = _spec(wrapped, name, raw, issues)
    if isinstance(spec, PipelineSpec):
        _pipeline(wrapped, name, spec, issues)
    return issues


def test_a_cast_step_takes_on_error_null_written_bare(tmp_path):
    path = tmp_path / "steps.yml"
    path.write_text("- cast: {amount: float, code: {type: integer, on_error: null}}\n")
    doc, issues = load_yaml(path, "steps.yml", {})
    assert issues == [] and validate(doc, tmp_path) == []
