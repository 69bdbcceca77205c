"""The broken-manifest corpus: each file in tests/broken_manifests/ states, in `# expect:` lines,
the exact messages validation must produce (all of them, at once, and nothing else)."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from shared.config.errors import ConfigError
from shared.config.project import load_project
from shared.config.yaml_source import load_yaml
from tests.helpers.paths import BROKEN_MANIFESTS

CORPUS = BROKEN_MANIFESTS
VALID_CONNECTORS = """sources:
  shop:
    type: api
    base_url: http://127.0.0.1:1
    models:
      c: {path: /c, columns: {id: {type: integer}}}
"""


def expected_messages(path: Path) -> list[str]:
    return [line.split("# expect: ", 1)[1].rstrip("\n") for line in path.read_text().splitlines()
            if line.startswith("# expect: ")]


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


# ---------------------------------------------------------------- bounds against hostile manifests
def _issues(tmp_path: Path, text: str | bytes) -> list[str]:
    path = tmp_path / "connector_models.yml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(ConfigError) as info:
        load_project(tmp_path, env={})
    return [str(i) for i in info.value.issues]


NESTING = "connector_models.yml:1 nesting deeper than 100 levels (the limit for a manifest file)"


@pytest.mark.parametrize("opening, closing", [("[", "]"), ("{a: ", "}")], ids=["list", "mapping"])
def test_value_nested_100000_deep_is_refused_without_a_traceback(tmp_path: Path, opening: str,
                                                                  closing: str) -> None:
    assert _issues(tmp_path, "a: " + opening * 100_000 + "x" + closing * 100_000 + "\n") == [NESTING]


def test_block_nesting_is_refused_at_the_line_past_the_limit(tmp_path: Path) -> None:
    text = "".join("  " * i + "-\n" for i in range(1_000))   # a list in a list ..., one per line
    assert _issues(tmp_path, text) == [NESTING.replace(":1 ", ":101 ")]


def test_nesting_limit_is_exactly_100_levels(tmp_path: Path) -> None:
    def nested(levels: int) -> str:   # the root mapping is level 1
        return "a: " + "[" * (levels - 1) + "]" * (levels - 1) + "\n"

    doc, issues = load_yaml(_write(tmp_path, nested(100)), "connector_models.yml", {})
    assert issues == []
    doc, issues = load_yaml(_write(tmp_path, nested(101)), "connector_models.yml", {})
    assert [str(i) for i in issues] == [NESTING]


def test_alias_that_nests_past_the_limit_is_refused(tmp_path: Path) -> None:
    def aliased(levels: int) -> str:   # the alias sits 41 levels deep: root mapping + 40 lists
        return "a: &deep " + "[" * levels + "]" * levels + "\nb: " + "[" * 40 + "*deep" + "]" * 40 + "\n"

    assert load_yaml(_write(tmp_path, aliased(59)), "connector_models.yml", {})[1] == []
    doc, issues = load_yaml(_write(tmp_path, aliased(60)), "connector_models.yml", {})
    assert [str(i) for i in issues] == [NESTING.replace(":1 ", ":2 ")]


def test_alias_bomb_is_refused_before_it_expands(tmp_path: Path) -> None:
    """Twelve levels of ten: 10^12 nodes if expanded; refused within the 200,000-node budget."""
    lines = ["l0: &l0 [" + ", ".join(["lol"] * 10) + "]"]
    lines += [f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 10) + "]" for i in range(1, 12)]
    assert _issues(tmp_path, "\n".join(lines) + "\n") == [
        "connector_models.yml:6 aliases expand to more than 200,000 nodes (the limit for a manifest file)"]


def test_aliases_within_the_budget_are_expanded_with_lines(tmp_path: Path) -> None:
    """A shared column set, aliased by 900 models, is what anchors are for: accepted, and a mistake
    in it is reported for each model at the anchor's own line."""
    models = "\n".join(f"      m{i}: {{path: /m{i}, columns: *cols}}" for i in range(900))
    text = ("sources:\n  shop:\n    type: api\n    base_url: http://127.0.0.1:1\n    models:\n"
            "      m: {path: /m, columns: &cols {id: {type: integer}, name: {type: strin}}}\n" + models + "\n")
    issues = _issues(tmp_path, text)
    expected = "connector_models.yml:6 sources.shop.models.{}.columns.name.type: 'strin' is not one of "
    assert len(issues) == 901
    assert all(any(i.startswith(expected.format(m)) for i in issues) for m in ["m", "m0", "m899"])


def test_file_over_10_mb_is_refused_unread(tmp_path: Path) -> None:
    limit = 10 * 1024 * 1024
    assert _issues(tmp_path, b"#" * (limit + 1)) == [
        "connector_models.yml is larger than 10 MB, the limit for a manifest file"]
    # at the limit: read (a comment-only file declares no sources)
    assert _issues(tmp_path, b"#" * limit) == [
        "connector_models.yml no sources declared (expected a top-level 'sources:' mapping)"]


def test_file_not_utf8_is_an_issue_with_its_line(tmp_path: Path) -> None:
    assert _issues(tmp_path, b"sources:\n  shop: \xff\n") == [
        "connector_models.yml:2 invalid YAML: the file is not UTF-8 text"]


def test_merge_keys_let_the_mapping_override_and_keep_lines(tmp_path: Path) -> None:
    text = ("base: &base\n"
            "  type: api\n"
            "  token: ${UNSET_TOKEN}\n"
            "  nested: {x: 1}\n"
            "shop:\n"
            "  <<: [*base, {extra: 2, type: sql}]\n"
            "  type: own\n")
    doc, issues = load_yaml(_write(tmp_path, text), "connector_models.yml", {})
    assert doc.data["shop"] == {"token": "", "nested": {"x": 1}, "extra": 2, "type": "own"}
    assert doc.line_of(("shop", "type")) == 7          # the mapping's own key
    assert doc.line_of(("shop", "nested", "x")) == 4   # merged: where it is written
    assert doc.line_of(("shop", "extra")) == 6
    assert sorted(str(i) for i in issues) == [
        "connector_models.yml:3 base.token: environment variable UNSET_TOKEN is not set (referenced as ${UNSET_TOKEN})",
        "connector_models.yml:3 shop.token: environment variable UNSET_TOKEN is not set (referenced as ${UNSET_TOKEN})"]


def test_alias_gets_its_own_copy(tmp_path: Path) -> None:
    doc, issues = load_yaml(_write(tmp_path, "a: &a {x: [1]}\nb: *a\n"), "connector_models.yml", {})
    doc.data["b"]["x"].append(2)
    assert doc.data["a"] == {"x": [1]} and issues == []


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "doc.yml"
    path.write_text(text)
    return path
