"""The monthly cost chart: a real PNG (and SVG) file, totals summed per month and cost center,
and bad documents or file types refused with a clear message."""
from __future__ import annotations

import struct
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from shared.render.cost_chart import CostDataError, monthly_totals, write_cost_chart

DOCS = [
    {"month": "2026-09", "cost_center": "CC-1", "owner": "a1", "cost": 10.5},
    {"month": "2026-08", "cost_center": "CC-1", "owner": "a1", "cost": 4.0},
    {"month": "2026-08", "cost_center": "CC-1", "owner": "b2", "cost": 1.25},   # second owner: summed
    {"month": "2026-08", "cost_center": "CC-2", "owner": "c3", "cost": 100},
    {"month": "2026-09", "cost_center": None, "owner": "(no owner)", "cost": 2.0},
]


def test_totals_per_month_and_cost_center_biggest_first():
    months, series = monthly_totals(DOCS)
    assert months == ["2026-08", "2026-09"]
    assert series == {"CC-2": [100.0, 0.0], "CC-1": [5.25, 10.5], "(untagged)": [0.0, 2.0]}


def test_a_valid_png_is_written(tmp_path: Path):
    target = write_cost_chart(DOCS, tmp_path / "charts" / "cost.png")
    data = target.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    assert width >= 600 and height >= 400
    assert data.endswith(b"IEND\xaeB`\x82")
    assert sorted(p.name for p in target.parent.iterdir()) == ["cost.png"]  # no partial file left


def test_svg_by_extension_and_the_same_input_gives_the_same_file(tmp_path: Path):
    first = write_cost_chart(DOCS, tmp_path / "a.svg").read_bytes()
    second = write_cost_chart(DOCS, tmp_path / "b.svg").read_bytes()
    assert ET.fromstring(first).tag == "{http://www.w3.org/2000/svg}svg"
    assert first == second  # no dates or versions embedded: the committed picture only changes with data


@pytest.mark.parametrize("docs, message", [
    ([{"month": "Aug", "cost_center": "x", "cost": 1}], "document 0: 'month' must be text like 2026-08, got str"),
    ([{"month": "2026-08", "cost_center": "x", "cost": "12"}], "document 0: 'cost' must be a finite number"),
    ([{"month": "2026-08", "cost_center": "x", "cost": float("nan")}], "document 0: 'cost' must be a finite number"),
    ([], "no cost documents to chart: run the aggregation after loading cost data"),
])
def test_bad_documents_are_refused(tmp_path: Path, docs, message):
    with pytest.raises(CostDataError) as caught:
        write_cost_chart(docs, tmp_path / "c.png")
    assert str(caught.value) == message
    assert not any(tmp_path.iterdir())


def test_mixed_currencies_are_refused_and_one_currency_labels_the_axis(tmp_path: Path):
    from shared.render.cost_chart import currency_of

    assert currency_of([{**d, "currency": "USD"} for d in DOCS]) == "USD"
    assert currency_of(DOCS) is None
    mixed = [{**DOCS[0], "currency": "EUR"}, {**DOCS[1], "currency": "USD"}]
    with pytest.raises(CostDataError, match=r"the documents mix currencies \(EUR, USD\): chart one currency"):
        write_cost_chart(mixed, tmp_path / "c.png")
    svg = write_cost_chart([{**d, "currency": "USD"} for d in DOCS], tmp_path / "c.svg").read_text()
    assert "Cost (USD)" in svg


def test_unknown_extension_is_refused(tmp_path: Path):
    with pytest.raises(CostDataError, match=r"c\.jpg: the chart is written as \.png or \.svg, not '\.jpg'"):
        write_cost_chart(DOCS, tmp_path / "c.jpg")
