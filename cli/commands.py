"""`validate` and `extract`."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, cast

import click

from cli.context import CliState, user_errors
from cli.progress import PageProgress
from shared.outputs.export import ModelOutcome, export_model
from shared.outputs.writers import FORMATS, FileFormat
from shared.plural import plural
from shared.schema.desired import TRANSFORMATIONS_FILE

if TYPE_CHECKING:
    from shared.config.project import Project


@click.command()
@click.option("--sources", "check_sources", is_flag=True,
              help="Also connect to the SQL sources and check that every model's table and columns exist.")
@click.pass_obj
def validate(state: CliState, check_sources: bool) -> None:
    """Check every manifest and print every problem found (exit 1 when there is one)."""
    with user_errors(state):
        project = state.project()
        models = sum(len(s.models) for s in project.sources.values())
        from shared.aggregate.config import load_aggregations  # lazy: only validate reads aggregations.yml here
        aggregations = len(load_aggregations(project))
        extra = f", {plural(aggregations, 'aggregation')}" if aggregations else ""
        pipelines = _pipelines(project)
        extra += f", {plural(pipelines, 'pipeline')}" if pipelines else ""
        click.echo(f"manifests OK: {len(project.sources)} sources, {models} models{extra} ({project.root})", err=True)
        if check_sources:
            _check_sources(project)


def _pipelines(project: Project) -> int:
    """The pipelines of transformations.yml, validated; without the file, 0 and no pandas import
    (shared.transform loads it, a visible share of `validate`: docs/benchmarks.md)."""
    if not (Path(project.root) / TRANSFORMATIONS_FILE).exists():
        return 0
    from shared.transform.config import load_transformations  # lazy, as above: transformations.yml
    return len(load_transformations(project).pipelines)


def _check_sources(project: Project) -> None:
    """`validate --sources`: the SQL sources' tables and columns, every mismatch at once (opt-in: it connects)."""
    from shared.extract.sql_check import mismatch_message, sql_source_problems  # lazy: only --sources connects

    refs = project.models()
    problems = sql_source_problems(refs)
    if problems:
        click.echo(f"error: {project.masker.mask(mismatch_message(problems))}", err=True)
        sys.exit(1)
    checked = len({ref.source_name for ref in refs if ref.source.type == "sql"})
    click.echo(f"sources OK: {plural(checked, 'SQL source')} match the manifests", err=True)


@click.command()
@click.argument("selectors", nargs=-1)
@click.option("--out", "out", type=click.Choice(("stdout",) + FORMATS), default="stdout", show_default=True,
              help="stdout prints one JSON object per line; the others write one file per model.")
@click.option("--dest", type=click.Path(file_okay=False), default=None,
              help="Folder for --out files (default: settings output.folder).")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Stop each model after N records.")
@click.pass_obj
def extract(state: CliState, selectors: tuple[str, ...], out: str, dest: str | None, limit: int | None) -> None:
    """Extract SOURCE or SOURCE.MODEL (all sources when none), PII-stripped."""
    with user_errors(state):
        project = state.project()
        refs = project.models(selectors)
        fmt = None if out == "stdout" else cast(FileFormat, out)   # click.Choice checked it
        folder = dest or project.settings.output.folder
        outcomes: list[ModelOutcome] = []
        for ref in refs:
            with PageProgress(ref.qualified) as progress:
                outcomes.append(export_model(project, ref, fmt, folder, limit, progress))
        _summary(outcomes, folder if fmt else None)
        if any(o.error for o in outcomes):
            sys.exit(1)


def _summary(outcomes: list[ModelOutcome], folder: str | None) -> None:
    for o in outcomes:
        s = o.stats
        if o.ref.source.type == "api":
            line = (f"{o.ref.qualified}: {plural(s.records, 'record')}, {plural(s.pages, 'page')}, "
                    f"{plural(s.requests, 'request')}, "
                    f"{plural(s.retries, 'retry', 'retries')}, {s.throttled} throttled (429), {o.seconds:.1f}s")
        else:
            line = f"{o.ref.qualified}: {plural(s.records, 'record')}, {plural(s.pages, 'chunk')}, {o.seconds:.1f}s"
        if o.error:
            line = f"{o.ref.qualified}: FAILED after {s.records} records: {o.error}"
        click.echo(line, err=True)
        for warning in s.warnings:
            click.echo(f"  warning: {warning}", err=True)
    if folder and any(not o.error for o in outcomes):
        click.echo(f"files written to {folder}", err=True)

