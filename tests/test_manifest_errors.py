"""The broken-manifest corpus: each file in tests/broken_manifests/ states, in `# expect:` lines,
the exact messages validation must produce (all of them, at once, and nothing else)."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from shared.config.errors import ConfigError
from shared.config.project import load_project

CORPUS = Path(__file__).parent / "broken_manifests"
VALID_CONNECTORS = """sources:
  shop:
    type: api
    base_url: http://127.0.0.1:1
    models:
      c: {path: /c, columns: {id: {type: integer}}}
"""


def expected_messages(path: Path) -> list[str]:
    return [line.split("# expect: ", 1)[1].rstrip("\n") for line in path.read_text().splitlines() if line.startswith("# expect: ")]


@pytest.mark.parametrize("case", sorted(CORPUS.glob("*.yml")), ids=lambda p: p.stem)
def test_broken_manifest_reports_exact_messages(case: Path, tmp_path: Path) -> None:
    if case.stem.startswith("settings-"):
        shutil.copy(case, tmp_path / "settings.yml")
        (tmp_path / "connector_models.yml").write_text(VALID_CONNECTORS)
    else:
        shutil.copy(case, tmp_path / "connector_models.yml")
    with pytest.raises(ConfigError) as info:
        load_project(tmp_path, env={})
    assert sorted(str(i) for i in info.value.issues) == sorted(expected_messages(case))


def test_corpus_is_not_empty() -> None:
    assert len(list(CORPUS.glob("*.yml"))) >= 20
