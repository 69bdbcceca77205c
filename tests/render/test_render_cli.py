"""`main.py render ...`: default output under output.folder, clear errors for an empty store,
a wrong file type or an unknown aggregation (the drawing itself is tested in test_render_*.py)."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli.main import cli
from tests.helpers.flow import TEST_KEY
from tests.helpers.paths import ROOT

EXAMPLE = ROOT / "examples" / "azure" / "manifests"


@pytest.fixture()
def manifests(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "manifests"
    shutil.copytree(EXAMPLE, folder)
    for name, value in {"KSPYDER_PII_KEY": TEST_KEY, "KSPYDER_STATE_DIR": str(tmp_path / "state"),
                        "KSPYDER_OUTPUT_DIR": str(tmp_path / "out")}.items():
        monkeypatch.setenv(name, value)
    return folder


def render(manifests: Path, *args: str):
    return CliRunner().invoke(cli, ["--manifests", str(manifests), "render", *args])


@pytest.mark.parametrize("picture, aggregation", [("route-tables", "route_table_graph"),
                                                  ("cost-by-cost-center", "cost_by_cost_center")])
def test_an_empty_store_is_an_error_that_says_what_to_do(manifests, picture, aggregation):
    result = render(manifests, picture)
    assert result.exit_code == 1
    assert f"error: aggregation '{aggregation}' returned no documents: load its source first" in result.output
    assert not (manifests.parent / "out").exists()


@pytest.mark.parametrize("picture, out, expected", [
    ("route-tables", "x.png", "'x.png': the diagram is an SVG file (.svg)"),
    ("cost-by-cost-center", "x.jpg", "'x.jpg': the chart is written as .png or .svg"),
])
def test_a_wrong_file_type_is_refused_before_any_work(manifests, picture, out, expected):
    result = render(manifests, picture, "--out", out)
    assert result.exit_code == 2
    assert expected in result.output


def test_an_unknown_aggregation_is_named(manifests):
    result = render(manifests, "route-tables", "--aggregation", "nope")
    assert result.exit_code == 1
    assert "unknown aggregation 'nope'" in result.output


def test_a_document_of_the_wrong_shape_is_reported_not_drawn(manifests):
    """cost_by_month has no cost_center: the chart still sums it as untagged; route-tables cannot use it."""
    from samples.arm_api import costs
    from shared.mongo.client import PersistedMongoClient

    with PersistedMongoClient(manifests.parent / "state" / "documents") as client:
        client["azure"]["usage_details"].insert_many([{**row, "_id": row["id"]} for row in costs.usage_details()[:3]])
    result = render(manifests, "route-tables", "--aggregation", "cost_by_month")
    assert result.exit_code == 1
    message = "error: aggregation 'cost_by_month' cannot be drawn: document 0: 'vnet' must be a non-empty string"
    assert message in result.output
    result = render(manifests, "cost-by-cost-center")
    assert result.exit_code == 0, result.output
    assert (manifests.parent / "out" / "cost-by-cost-center.png").exists()
    assert result.output.strip().endswith("cost-by-cost-center.png")
