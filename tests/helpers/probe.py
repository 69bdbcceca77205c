"""`probe` as the command line runs it, without the rest of the command group."""
from __future__ import annotations

import click
from click.testing import CliRunner

from cli.context import CliState
from cli.probe_cmd import probe


@click.group()
@click.pass_context
def group(ctx: click.Context) -> None:
    ctx.obj = CliState(None, 0)


group.add_command(probe)


def run_probe(*args: str, env: dict[str, str] | None = None):
    return CliRunner().invoke(group, ["probe", *args], env=env)
