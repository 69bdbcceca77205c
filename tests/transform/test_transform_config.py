"""Loading transformations.yml: the broken-file corpus (exact messages, all at once), expression
injection refused at load time, cycles, dependency order, and the dry run's inferred columns."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from shared.config.errors import ConfigError
from shared.config.project import Project, load_project
from shared.transform.config import load_transformations
from shared.transform.expressions import ExpressionError, compile_expression
from tests.helpers.paths import BROKEN_TRANSFORMATIONS
from tests.helpers.transform import CONNECTORS

CORPUS = BROKEN_TRANSFORMATIONS


def make_project(folder: Path, transformations: str | None, connectors: str = CONNECTORS) -> Project:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "connector_models.yml").write_text(connectors)
    if transformations is not None:
        (folder / "transformations.yml").write_text(transformations)
    return load_project(folder, env={})


def expected_messages(path: Path) -> list[str]:
    return [line.split("# expect: ", 1)[1] for line in path.read_text().splitlines() if line.startswith("# expect: ")]


@pytest.mark.parametrize("case", sorted(CORPUS.glob("*.yml")), ids=lambda p: p.stem)
def test_broken_transformations_report_exact_messages(case: Path, tmp_path: Path) -> None:
    project = make_project(tmp_path, None)
    shutil.copy(case, tmp_path / "transformations.yml")
    with pytest.raises(ConfigError) as info:
        load_transformations(project, env={})
    assert sorted(str(i) for i in info.value.issues) == sorted(expected_messages(case))


def test_corpus_covers_the_kinds_of_mistakes() -> None:
    assert len(list(CORPUS.glob("*.yml"))) >= 15
    assert all(expected_messages(case) for case in CORPUS.glob("*.yml"))


def test_no_file_means_no_pipelines(tmp_path: Path) -> None:
    assert load_transformations(make_project(tmp_path, None)).pipelines == {}
    assert load_transformations(make_project(tmp_path / "empty", "")).pipelines == {}


ORDERED = """pipelines:
  third:
    inputs: {s: analytics.second, f: analytics.first}
    steps:
      - union: [s, f]
    output: analytics.third
  second:
    inputs: {f: analytics.first}
    steps: [{select: [status, n]}]
    output: analytics.second
  first:
    inputs: {o: erp.orders}
    steps:
      - group_by: {by: status, agg: {n: [order_id, count]}}
    output: reports.first
  lone:
    inputs: {c: shop.customers}
    steps: [{select: [id]}]
    output: analytics.lone
"""


def test_pipelines_come_in_dependency_order_and_affected_follows_outputs(tmp_path: Path) -> None:
    text = ORDERED.replace("reports.first", "analytics.first")
    transformations = load_transformations(make_project(tmp_path, text))
    order = list(transformations.pipelines)
    assert order.index("first") < order.index("second") < order.index("third")
    assert [p.name for p in transformations.affected_by(["erp"])] == [n for n in order if n != "lone"]
    assert [p.name for p in transformations.affected_by(["shop"])] == ["lone"]
    assert transformations.affected_by(["nothing"]) == []
    assert [p.name for p in transformations.select(["third", "first"])] == ["first", "third"]
    with pytest.raises(ConfigError, match="unknown pipeline 'fourth' \\(pipelines: "):
        transformations.select(["fourth"])


def test_dry_run_infers_output_columns(tmp_path: Path) -> None:
    text = ORDERED.replace("reports.first", "analytics.first")
    pipelines = load_transformations(make_project(tmp_path, text)).pipelines
    assert [(c.name, c.describe()) for c in pipelines["third"].columns] == [
        ("status", "TEXT"), ("n", "BIGINT"), ("_kspyder_run_id", "STRING(36)"), ("_kspyder_loaded_at", "DATETIME")]
    assert [label for label, _ in pipelines["first"].trace] == ["step 1 (group_by)"]
    assert pipelines["lone"].chunk_safe and not pipelines["first"].chunk_safe


def test_yaml_on_key_reads_as_on(tmp_path: Path) -> None:
    text = """pipelines:
  j:
    inputs: {o: erp.orders, c: shop.customers}
    steps:
      - rename: {}
      - join: {left: o, right: c, on: created_at, how: inner}
    output: analytics.j
"""
    transformations = load_transformations(make_project(tmp_path, text.replace("      - rename: {}\n", "")))
    assert "created_at" in [c.name for c in transformations.pipelines["j"].columns]


@pytest.mark.parametrize("text, reason", [
    ("__import__('os').system('id')", "calling '__import__' is not allowed"),
    ("amount.__class__", "attribute '__class__' is not allowed"),
    ("amount.__add__(1)", "method .__add__() is not allowed"),
    ("(lambda: 0)()", "lambda is not allowed"),
    ("[x for x in amount]", "comprehensions are not allowed"),
    ("open('/etc/passwd')", "calling 'open' is not allowed"),
    ("getattr(amount, 'x')", "calling 'getattr' is not allowed"),
    ("amount.str.__class__()", "method .str.__class__() is not allowed"),
    ("amount.pipe(print)", "method .pipe() is not allowed"),
    ("city.str.lower(**{'a': 1})", "keyword argument ** is not allowed"),
    ("9 ** 9 ** 9", "write the result of arithmetic between two literals instead"),
    ("'a' * 100000000", "write the result of arithmetic between two literals instead"),
    ("1 if amount else 2", "'x if c else y' is not allowed (use if_else(c, x, y))"),
    ("f'{amount}'", "an f-string is not allowed"),
    ("amount[0]", "subscripts ([...]) are not allowed"),
    ("(a := 1)", "assignment (:=) is not allowed"),
    ("amount >", "syntax error at column"),
])
def test_expressions_outside_the_whitelist_are_refused(text: str, reason: str) -> None:
    with pytest.raises(ExpressionError) as info:
        compile_expression(text)
    assert reason in str(info.value)


def test_whitelisted_expressions_compile() -> None:
    for text in ["amount > 0 and status not in ['cancelled']", "created_at.dt.strftime('%Y-%m')",
                 "city.str.lower().str.strip()", "round(abs(amount) * 1.2, 2)", "coalesce(city, 'x')",
                 "if_else(amount >= 100, 'big', 'small')", "created_at.dt.year == 2024", "~(amount > 0) | isnull(city)",
                 "amount.between(1, 5)", "city.str.contains('er', regex=False)", "city == None"]:
        assert compile_expression(text).text == text
