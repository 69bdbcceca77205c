"""`render cost-by-cost-center`: monthly cost stacked by cost center, with matplotlib's Agg backend
(no display needed, same pixels on a laptop and in a Function).

Input: the `cost_by_cost_center` aggregation's documents, each with `month` (YYYY-MM), `cost_center`,
`cost` and optionally `currency` (one for all: the axis label); several documents for one
(month, cost center), e.g. one per hashed owner, are summed.
The output format follows the file's extension (.png or .svg).
"""
from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

FORMATS = (".png", ".svg")
PALETTE = ("#1971c2", "#e8590c", "#2b8a3e", "#5f3dc4", "#c92a2a", "#0c8599", "#e67700", "#862e9c", "#868e96")


class CostDataError(ValueError):
    """The documents lack a field the chart needs; the message names the document."""


def currency_of(documents: list[dict[str, Any]]) -> str | None:
    """The one `currency` the documents state (None if they state none): costs in different
    currencies cannot be stacked into one bar."""
    found = {doc.get("currency") for doc in documents if isinstance(doc, dict)} - {None, ""}
    if len(found) > 1:
        raise CostDataError(f"the documents mix currencies ({', '.join(sorted(map(str, found)))}): "
                            "chart one currency at a time ($match on it in the aggregation)")
    return str(found.pop()) if found else None


def monthly_totals(documents: Iterable[dict[str, Any]]) -> tuple[list[str], dict[str, list[float]]]:
    """(months in order, cost center -> cost per month), biggest cost center first."""
    sums: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for index, doc in enumerate(documents):
        month, center, cost = (doc.get(key) if isinstance(doc, dict) else None
                               for key in ("month", "cost_center", "cost"))
        if not isinstance(month, str) or len(month) != 7 or month[4] != "-":
            raise CostDataError(f"document {index}: 'month' must be text like 2026-08, got {type(month).__name__}")
        if isinstance(cost, bool) or not isinstance(cost, (int, float)) or not math.isfinite(cost):
            raise CostDataError(f"document {index}: 'cost' must be a finite number")
        sums[str(center) if center not in (None, "") else "(untagged)"][month] += cost
    months = sorted({month for per_month in sums.values() for month in per_month})
    centers = sorted(sums, key=lambda c: (-sum(sums[c].values()), c))
    return months, {center: [sums[center].get(month, 0.0) for month in months] for center in centers}


def write_cost_chart(documents: Iterable[dict[str, Any]], path: Path,
                     title: str = "Monthly cost by cost center") -> Path:
    if path.suffix.lower() not in FORMATS:
        raise CostDataError(f"{path}: the chart is written as {' or '.join(FORMATS)}, not '{path.suffix}'")
    documents = list(documents)
    currency = currency_of(documents)
    months, series = monthly_totals(documents)
    if not months:
        raise CostDataError("no cost documents to chart: run the aggregation after loading cost data")
    import matplotlib
    matplotlib.use("Agg")  # before pyplot: never try to open a window
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter

    fig, ax = plt.subplots(figsize=(max(6.0, 1.3 * len(months) + 4), 4.8), dpi=120, layout="constrained")
    try:
        bottoms = [0.0] * len(months)
        for number, (center, values) in enumerate(series.items()):
            ax.bar(months, values, bottom=bottoms, width=0.62, label=center,
                   color=PALETTE[number % len(PALETTE)], edgecolor="white", linewidth=0.8)
            bottoms = [b + v for b, v in zip(bottoms, values, strict=True)]
        for x, total in enumerate(bottoms):
            ax.annotate(f"{total:,.0f}", (x, total), xytext=(0, 4), textcoords="offset points",
                        ha="center", fontsize=9, color="#343a40")
        ax.set_title(title, loc="left", fontsize=13, fontweight="bold")
        ax.set_ylabel(f"Cost ({currency})" if currency else "Cost")
        ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:,.0f}"))
        ax.set_ylim(0, max(bottoms) * 1.12 if max(bottoms) > 0 else 1)
        ax.spines[["top", "right"]].set_visible(False)
        ax.grid(axis="y", color="#dee2e6", linewidth=0.8)
        ax.set_axisbelow(True)
        ax.legend(title="Cost center", frameon=False, loc="upper left", bbox_to_anchor=(1.01, 1))
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(path.name + ".partial" + path.suffix)
        with matplotlib.rc_context({"svg.hashsalt": "kspyder"}):  # stable SVG element ids
            fig.savefig(partial, format=path.suffix[1:].lower(), metadata=_metadata(path.suffix.lower()))
        partial.replace(path)
    finally:
        plt.close(fig)
    return path


def _metadata(suffix: str) -> dict[str, Any]:
    """No creation date or software version: the committed picture changes only when the data does."""
    return {"Software": None} if suffix == ".png" else {"Date": None, "Creator": None}
