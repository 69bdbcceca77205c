"""`aggregate`: run the aggregations of manifests/aggregations.yml and publish their outputs."""
from __future__ import annotations

import sys

import click

from cli.context import CliState, user_errors
from shared.plural import plural


@click.command()
@click.argument("names", nargs=-1)
@click.pass_obj
def aggregate(state: CliState, names: tuple[str, ...]) -> None:
    """Run the aggregations NAMES (all when none): JSON/CSV files and SQL tables as declared."""
    with user_errors(state):
        project = state.project()
        from shared.aggregate.run import run_aggregations  # pymongo and pandas: only when the command runs
        results = run_aggregations(project, names)
    if not results:
        click.echo("no aggregations: declare them in manifests/aggregations.yml", err=True)
        return
    for result in results:
        if result.error:
            click.echo(f"{result.name}: FAILED: {result.error}", err=True)
            continue
        outputs = list(result.files)
        if result.table:
            outputs.append(f"table {result.table} ({plural(result.rows, 'row')})")
        click.echo(f"{result.name}: {plural(result.documents, 'document')} -> {', '.join(outputs) or 'no outputs'} "
                   f"({result.seconds:.1f}s)")
    if any(r.error for r in results):
        sys.exit(1)
