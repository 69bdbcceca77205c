"""The command group. Commands live in small modules, imported when they run (cli/lazy_group.py)."""
from __future__ import annotations

import click

from cli.lazy_group import LazyGroup

COMMANDS = {
    "validate": "cli.commands:validate",
    "extract": "cli.commands:extract",
    "probe": "cli.probe_cmd:probe",
    "plan": "cli.schema_cmd:plan",
    "apply": "cli.schema_cmd:apply",
    "rebuild": "cli.schema_cmd:rebuild",
    "run": "cli.run_cmd:run",
    "status": "cli.run_cmd:status",
    "poison": "cli.poison_cmd:poison",
    "host": "cli.host_cmd:host",
    "render": "cli.render_cmd:render",
    "aggregate": "cli.aggregate_cmd:aggregate",
    "transform": "cli.transform_cmd:transform",
    "state": "cli.state_cmd:state",
}


@click.group(cls=LazyGroup, lazy_commands=COMMANDS, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--manifests", envvar="KSPYDER_MANIFESTS", type=click.Path(file_okay=False),
              help="Manifests folder (default: ./manifests; env KSPYDER_MANIFESTS).")
@click.option("-v", "--verbose", count=True, help="-v info, -vv debug logs on stderr.")
@click.pass_context
def cli(ctx: click.Context, manifests: str | None, verbose: int) -> None:
    """kspyder: config-driven extract, PII-strip and load."""
    from cli.context import CliState  # imported with the command's module (LazyGroup), not before
    ctx.obj = CliState(manifests, verbose)
