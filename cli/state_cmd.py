"""`state show|reset`: the incremental cursors committed in the target with the rows they cover."""
from __future__ import annotations

import sys

import click

from cli.context import CliState, user_errors
from shared.config.project import Project
from shared.target.dialects import create_target_engine

TARGET_HELP = "Target database URL (default: settings target_url / KSPYDER_TARGET_URL)."


@click.group()
def state() -> None:
    """Incremental cursors, kept in each source's schema of the target (`_kspyder_state`)."""


def _scope(project: Project, selector: str | None) -> dict[str, list[str | None]]:
    """Source -> its models named by the selector (None: every model of the source)."""
    refs = project.models([selector] if selector else [])   # unknown names: a ConfigError naming them
    sources = sorted({ref.source_name for ref in refs if not ref.documents})
    if selector and "." in selector:
        return {ref.source_name: [ref.name] for ref in refs}
    return {source: [None] for source in sources}


@state.command("show")
@click.argument("selector", required=False, metavar="[SOURCE[.MODEL]]")
@click.option("--target", help=TARGET_HELP)
@click.pass_obj
def show(state: CliState, selector: str | None, target: str | None) -> None:
    """Print each committed cursor: model, partition, kind, value, the run that committed it, when."""
    from shared.load.cursor_state import list_state  # the loader's modules: only when asked
    with user_errors(state):
        project = state.project()
        scope = _scope(project, selector)
        engine = create_target_engine(target or project.settings.target_url, list(scope))
        try:
            with engine.connect() as connection:
                rows = [saved for source, models in scope.items()
                        for model in models for saved in list_state(connection, source, model)]
        finally:
            engine.dispose()
        if not rows:
            click.echo("no incremental state" + (f" for {selector}" if selector else ""))
            return
        for saved in rows:
            part = f"[{saved.partition}]" if saved.partition else ""
            when = saved.updated_at.isoformat(timespec="seconds") if saved.updated_at else "-"
            click.echo(f"{saved.qualified}{part}  {saved.kind}  {saved.cursor}  run {saved.run_id}  at {when}")


@state.command("reset")
@click.argument("selector", metavar="SOURCE[.MODEL]")
@click.option("--auto-approve", is_flag=True, help="Do not ask (required when stdin is not a terminal).")
@click.option("--target", help=TARGET_HELP)
@click.pass_obj
def reset(state: CliState, selector: str, auto_approve: bool, target: str | None) -> None:
    """Forget the cursors of SOURCE (or SOURCE.MODEL): their next run reads from initial_value again."""
    from shared.load.cursor_state import reset_state  # the loader's modules: only when asked
    with user_errors(state):
        project = state.project()
        scope = _scope(project, selector)
        if not auto_approve:
            if sys.stdin is None or not sys.stdin.isatty():
                click.echo("error: refusing to reset without confirmation: stdin is not a terminal "
                           "(pass --auto-approve)", err=True)
                sys.exit(1)
            if not click.confirm(f"Forget the incremental state of {selector}? Its next run reads everything "
                                 "from initial_value", default=False):
                click.echo("reset cancelled: nothing changed", err=True)
                sys.exit(1)
        engine = create_target_engine(target or project.settings.target_url, list(scope))
        try:
            with engine.begin() as connection:
                forgotten = sum(reset_state(connection, source, model)
                                for source, models in scope.items() for model in models)
        finally:
            engine.dispose()
        click.echo(f"{forgotten} cursor(s) forgotten for {selector}")
