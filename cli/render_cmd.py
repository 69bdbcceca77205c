"""`render`: the pictures of the Azure use cases, drawn from an aggregation's documents.

`render route-tables` draws `route_table_graph` as an SVG network diagram; `render
cost-by-cost-center` draws `cost_by_cost_center` as a stacked monthly bar chart (PNG or SVG by the
file's extension). The aggregation runs fresh each time, nothing is written but the picture.
"""
from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import click

from cli.context import CliState, user_errors


@click.group()
def render() -> None:
    """Draw a picture from an aggregation (see examples/azure and docs/use-cases.md)."""


@render.command("route-tables")
@click.option("--aggregation", default="route_table_graph", show_default=True,
              help="The aggregation giving one document per VNet (vnet, address_space, subnets).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="The SVG file (default: <output.folder>/route-tables.svg).")
@click.pass_obj
def route_tables(state: CliState, aggregation: str, out: Path | None) -> None:
    """VNets, their subnets, route tables and routes, with Internet and appliance hops highlighted."""
    from shared.render.route_diagram import write_route_svg
    from shared.render.route_model import RouteDataError

    if out is not None and out.suffix.lower() != ".svg":
        raise click.BadParameter(f"'{out}': the diagram is an SVG file (.svg)", param_hint="--out")
    _draw(state, aggregation, out, "route-tables.svg", write_route_svg, RouteDataError)


@render.command("cost-by-cost-center")
@click.option("--aggregation", default="cost_by_cost_center", show_default=True,
              help="The aggregation giving month, cost_center and cost per document.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="A .png or .svg file (default: <output.folder>/cost-by-cost-center.png).")
@click.pass_obj
def cost_by_cost_center(state: CliState, aggregation: str, out: Path | None) -> None:
    """Monthly cost stacked by cost-center tag."""
    from shared.render.cost_chart import FORMATS, CostDataError, write_cost_chart

    if out is not None and out.suffix.lower() not in FORMATS:
        raise click.BadParameter(f"'{out}': the chart is written as {' or '.join(FORMATS)}", param_hint="--out")
    _draw(state, aggregation, out, "cost-by-cost-center.png", write_cost_chart, CostDataError)


def _draw(state: CliState, aggregation: str, out: Path | None, default_name: str,
          writer: Callable[[list[dict], Path], Path], data_error: type[Exception]) -> None:
    from shared.aggregate.run import aggregate
    from shared.mongo.client import DocumentStoreError

    with user_errors(state):
        project = state.project()
        target = out or Path(project.settings.output.folder) / default_name
        try:
            documents = aggregate(project, aggregation)
        except DocumentStoreError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(1)
        if not documents:
            click.echo(f"error: aggregation '{aggregation}' returned no documents: load its source first "
                       f"(`main.py run <source>`)", err=True)
            sys.exit(1)
        try:
            writer(documents, target)
        except data_error as exc:
            click.echo(f"error: aggregation '{aggregation}' cannot be drawn: {exc}", err=True)
            sys.exit(1)
        except OSError as exc:
            click.echo(f"error: cannot write {target}: {exc.strerror or exc}", err=True)
            sys.exit(1)
        click.echo(str(target))
