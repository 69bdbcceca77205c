"""The command group. Commands live in small modules and are registered here."""
from __future__ import annotations

import click

from cli.aggregate_cmd import aggregate
from cli.commands import extract, validate
from cli.context import CliState
from cli.host_cmd import host
from cli.poison_cmd import poison
from cli.probe_cmd import probe
from cli.render_cmd import render
from cli.run_cmd import run, status
from cli.schema_cmd import apply, plan, rebuild
from cli.state_cmd import state
from cli.transform_cmd import transform


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--manifests", envvar="KSPYDER_MANIFESTS", type=click.Path(file_okay=False),
              help="Manifests folder (default: ./manifests; env KSPYDER_MANIFESTS).")
@click.option("-v", "--verbose", count=True, help="-v info, -vv debug logs on stderr.")
@click.pass_context
def cli(ctx: click.Context, manifests: str | None, verbose: int) -> None:
    """kspyder: config-driven extract, PII-strip and load."""
    ctx.obj = CliState(manifests, verbose)


cli.add_command(validate)
cli.add_command(extract)
cli.add_command(probe)
cli.add_command(plan)
cli.add_command(apply)
cli.add_command(rebuild)
cli.add_command(run)
cli.add_command(status)
cli.add_command(poison)
cli.add_command(host)
cli.add_command(render)
cli.add_command(aggregate)
cli.add_command(transform)
cli.add_command(state)
