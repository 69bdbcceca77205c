"""`host`: run function_app.py's functions locally (HTTP, queues, timers, blob polling) against
Azurite or Azure Storage, with host.json's queue settings. See devhost/."""
from __future__ import annotations

import logging
import signal
import sys
import threading

import click


@click.command()
@click.option("--port", default=7071, show_default=True, type=click.IntRange(0, 65535),
              help="Loopback port for the HTTP routes (/api/...).")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64),
              help="Threads polling the queues concurrently.")
@click.option("--processes", default=1, show_default=True, type=click.IntRange(1, 64),
              help="Processes serving the queues (each with --workers threads), as Azure runs instances: "
                   "Python code runs on more than one core only across processes.")
@click.option("--once", is_flag=True,
              help="Process until every trigger queue is empty (delayed messages included), then exit; no HTTP.")
@click.option("--timeout", default=None, type=click.FloatRange(min=1),
              help="With --once: fail when the queues are not empty after this many seconds.")
def host(port: int, workers: int, processes: int, once: bool, timeout: float | None) -> None:
    """Run the function app locally, as `func start` would (Core Tools not needed)."""
    from devhost import HostError, LocalHost, load_app

    logging.getLogger("kspyder.localhost").setLevel(logging.INFO)
    try:
        local = LocalHost(load_app(), workers=workers, processes=processes)
    except (HostError, ValueError) as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    if not once:
        if local.key_generated:
            click.echo(f"host key (x-functions-key header or ?code=): {local.key}  "
                       "(set KSPYDER_HOST_KEY to choose one)")
        for route in local.routes():
            click.echo(f"  http://127.0.0.1:{port}{route.split(' ', 1)[1]}  [{route.split(' ', 1)[0]}]")
    for queue in local.functions.queues:
        click.echo(f"  queue {queue.queue} -> {queue.name}")
    for timer in local.functions.timers:
        click.echo(f"  timer {timer.schedule} -> {timer.name}")
    for blob in local.functions.blobs:
        click.echo(f"  blob {blob.path} -> {blob.name}")

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, lambda *_: local.stop())
    try:
        local.run(once=once, port=None if once else port, timeout=timeout)
    except KeyboardInterrupt:
        local.stop()
        click.echo("stopped", err=True)
    except (HostError, TimeoutError) as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
