"""`poison list|replay QUEUE`: inspect and re-run the queue chain's poisoned messages."""
from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

import click

from cli.context import CliState, user_errors

if TYPE_CHECKING:
    from shared.storage.queues import QueueStore
# shared.chain and the Azure SDK are imported when a poison command runs: every `main.py` command
# would otherwise pay for them in memory and start-up (docs/benchmarks.md).


def queue_store(state: CliState, local: bool) -> QueueStore:
    """The function app's storage (AzureWebJobsStorage*, Azurite included), or with --local the
    embedded on-disk queues under storage.root."""
    from shared.storage.queues import AzureQueueStore, LocalQueueStore
    if local:
        return LocalQueueStore(os.path.join(state.project().settings.storage.root, "queues"))
    if not any(k.startswith("AzureWebJobsStorage") for k in os.environ):
        click.echo("error: set AzureWebJobsStorage (e.g. UseDevelopmentStorage=true for Azurite) or "
                   "AzureWebJobsStorage__queueServiceUri, or pass --local", err=True)
        sys.exit(1)
    return AzureQueueStore.from_settings(os.environ)


@click.group()
def poison() -> None:
    """Messages the queue chain gave up on (kspyder-<queue>-poison)."""


@poison.command("list")
@click.argument("queue")
@click.option("--local", is_flag=True, help="The embedded on-disk queues instead of Azure Storage.")
@click.pass_obj
def list_command(state: CliState, queue: str, local: bool) -> None:
    """Show poisoned messages of QUEUE (paginate, fetch, load, transform)."""
    from shared.chain.poison import PoisonError, list_poison
    with user_errors(state):
        try:
            entries = list_poison(queue_store(state, local), queue)
        except PoisonError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(1)
        if not entries:
            click.echo(f"no poisoned messages on {queue}")
        for entry in entries:
            click.echo(entry.describe())


@poison.command("replay")
@click.argument("queue")
@click.option("--run", "run_id", default=None, help="Only this run's messages.")
@click.option("--local", is_flag=True, help="The embedded on-disk queues instead of Azure Storage.")
@click.pass_obj
def replay_command(state: CliState, queue: str, run_id: str | None, local: bool) -> None:
    """Put poisoned messages back on QUEUE, once the fault is fixed."""
    from shared.chain.poison import PoisonError, replay
    with user_errors(state):
        try:
            moved = replay(queue_store(state, local), queue, run_id)
        except PoisonError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(1)
        click.echo(f"replayed {moved} message{'s' if moved != 1 else ''} onto {queue}")
