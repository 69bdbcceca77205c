"""`transform`: run the pipelines of manifests/transformations.yml, or show their schemas (--dry-run)."""
from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from cli.context import CliState, user_errors
from shared.transform import CHUNK_ROWS  # the rest imports pandas: only when the command runs

if TYPE_CHECKING:
    from shared.config.project import Project
    from shared.target.columns import StoredColumn
    from shared.transform.graph import Transformations
    from shared.transform.pipeline import Pipeline


@click.command()
@click.argument("pipelines", nargs=-1)
@click.option("--dry-run", is_flag=True, help="Print each pipeline's columns after every step; read and write nothing.")
@click.option("--chunk-rows", type=click.IntRange(min=1), default=CHUNK_ROWS, show_default=True,
              help="Rows per input chunk for chunk-safe pipelines.")
@click.pass_obj
def transform(state: CliState, pipelines: tuple[str, ...], dry_run: bool, chunk_rows: int) -> None:
    """Rebuild the output tables of PIPELINES (all when none), in dependency order.

    Naming a pipeline runs that pipeline only: the outputs it reads must exist already.
    """
    with user_errors(state):
        project = state.project()
        from shared.transform.config import load_transformations
        from shared.transform.runner import run_pipelines
        transformations = load_transformations(project)
        selected = transformations.select(pipelines)
        if dry_run:
            for pipeline in selected:
                click.echo(render_dry_run(pipeline, transformations, project))
            return
        summary = run_pipelines(project, transformations, selected, chunk_rows=chunk_rows)
    click.echo(summary.render(), err=True)
    if not summary.ok:
        sys.exit(1)


def render_dry_run(pipeline: Pipeline, transformations: Transformations, project: Project) -> str:
    from shared.transform.graph import input_columns, table_models
    models = table_models(project)
    how = "chunk-safe: read in chunks" if pipeline.chunk_safe else "needs whole frames"
    lines = [f"pipeline {pipeline.name} -> {pipeline.output} ({how})"]
    for alias, table in pipeline.inputs.items():
        columns = input_columns(table, models, project, transformations.pipelines)
        lines.append(f"  input {alias} = {table}: {_columns(columns)}")
    for label, columns in pipeline.trace:
        lines.append(f"  {label}: {_columns(columns)}")
    lines.append(f"  output {pipeline.output}: {_columns(pipeline.columns)}")
    return "\n".join(lines)


def _columns(columns: list[StoredColumn]) -> str:
    from shared.target.columns import META_COLUMNS
    return ", ".join(f"{c.name} {c.describe()}" for c in columns if c.name not in META_COLUMNS) or "(no columns)"
