"""aggregations.yml validation: the broken-file corpus (tests/broken_aggregations/, `# expect:` lines
give the exact messages, all at once and nothing else) and the valid cases."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from shared.aggregate.config import SUPPORTED_STAGES, load_aggregations
from shared.aggregate.run import select
from shared.config.errors import ConfigError
from shared.config.project import load_project
from tests.helpers.paths import BROKEN_AGGREGATIONS

CORPUS = BROKEN_AGGREGATIONS
CONNECTORS = """sources:
  docs:
    type: api
    store: mongo
    base_url: http://127.0.0.1:1
    models:
      items: {path: /i, primary_key: [id]}
      others: {path: /o, primary_key: [id]}
  shop:
    type: api
    base_url: http://127.0.0.1:1
    models:
      c: {path: /c, columns: {id: {type: integer}}}
"""


def project_with(folder: Path, aggregations: str | None):
    (folder / "connector_models.yml").write_text(CONNECTORS)
    if aggregations is not None:
        (folder / "aggregations.yml").write_text(aggregations)
    return load_project(folder, env={})


def expected_messages(path: Path) -> list[str]:
    return [line.split("# expect: ", 1)[1] for line in path.read_text().splitlines() if line.startswith("# expect: ")]


@pytest.mark.parametrize("case", sorted(CORPUS.glob("*.yml")), ids=lambda p: p.stem)
def test_broken_aggregations_report_exact_messages(case: Path, tmp_path: Path) -> None:
    project = project_with(tmp_path, None)
    shutil.copy(case, tmp_path / "aggregations.yml")
    with pytest.raises(ConfigError) as info:
        load_aggregations(project, env={})
    assert sorted(str(i) for i in info.value.issues) == sorted(expected_messages(case))


def test_corpus_covers_every_kind_of_problem() -> None:
    text = "\n".join(p.read_text() for p in CORPUS.glob("*.yml"))
    for fragment in ("unknown source", "is not store: mongo", "unknown collection", "$lookup.from: unknown collection",
                     "unsupported stage", "must be 'schema.table'", "belongs to source", "unknown key",
                     "required key is missing", "duplicate key", "invalid YAML", "environment variable"):
        assert fragment in text, fragment


def test_absent_or_empty_file_means_no_aggregations(tmp_path: Path) -> None:
    assert load_aggregations(project_with(tmp_path, None)) == {}
    assert load_aggregations(project_with(tmp_path, "")) == {}
    assert load_aggregations(project_with(tmp_path, "aggregations: {}\n")) == {}


def test_valid_file_with_every_supported_stage(tmp_path: Path) -> None:
    stages = "\n".join(f"      - {{{stage}: {{}}}}" for stage in SUPPORTED_STAGES if stage != "$lookup")
    project = project_with(tmp_path, f"""aggregations:
  by_kind:
    description: documents per kind
    source: docs
    collection: items
    pipeline:
{stages}
      - $lookup: {{from: others, localField: other_id, foreignField: id, as: other}}
    output: {{files: [csv, json], table: analytics.by_kind}}
  plain:
    source: docs
    collection: others
""")
    aggregations = load_aggregations(project)
    assert list(aggregations) == ["by_kind", "plain"]
    assert aggregations["by_kind"].schema_table == ("analytics", "by_kind")
    assert aggregations["plain"].output.files == ["json"] and aggregations["plain"].output.table is None
    assert select(aggregations, sources=["docs"]) == ["by_kind", "plain"]
    assert select(aggregations, ["plain", "plain"]) == ["plain"]
    assert select(aggregations, sources=["elsewhere"]) == []
    with pytest.raises(ConfigError) as info:
        select(aggregations, ["nope"])
    assert str(info.value) == "command line unknown aggregation 'nope' (aggregations: by_kind, plain)"
