"""The Transform step (queue `kspyder-transform`): one `TransformEvent` per run whose every page is
loaded, or per `POST /api/transform`.

It runs what a load makes stale: every pipeline of manifests/transformations.yml that reads the
event's sources, directly or through other pipelines, in dependency order (shared/transform), then
every aggregation of manifests/aggregations.yml that reads them (shared/aggregate). A failed
pipeline or aggregation fails the message after the others ran, so the queue retries it and, in
the end, the poison handling reports it; re-running is safe (outputs are replaced whole). A
pipeline whose output table another run holds (a lease) is no failure: once the others ran, the
event is sent again for when that lease would expire (shared/chain/transform_wait.py).
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable

import azure.functions as func

from functions.common import CONNECTION, current_project, stores
from shared.aggregate.run import run_aggregations
from shared.chain.messages import MessageError, TransformEvent, decode, encode
from shared.chain.names import TRANSFORM
from shared.chain.transform_wait import leased_delay
from shared.config.project import Project
from shared.transform.runner import run_affected

bp = func.Blueprint()
log = logging.getLogger("kspyder.functions")


def run_transformations(project: Project, event: TransformEvent) -> None:
    summary = run_affected(project, event.sources, run_id=event.run_id)
    log.info("run %s loaded (sources %s): %s", event.run_id, ", ".join(event.sources), summary.render())
    delay = leased_delay(summary, project.settings.leases.ttl_seconds, time.time())
    if delay is not None:
        raise OutputsLeased(delay)
    summary.check()


class OutputsLeased(Exception):
    """Only leased outputs failed: the event runs again after `delay` seconds."""

    def __init__(self, delay: float):
        self.delay = delay
        super().__init__(f"output tables leased by another run: again in {delay:.0f}s")


def refresh_aggregations(project: Project, event: TransformEvent) -> None:
    """The aggregations of manifests/aggregations.yml that read the event's (mongo) sources; one
    that fails is logged by name and fails the message after the others ran, like a pipeline."""
    results = run_aggregations(project, sources=event.sources, run_id=event.run_id)
    failed = [r for r in results if r.error]
    for r in results:
        log.info("run %s: aggregation %s: %s", event.run_id, r.name,
                 f"failed: {r.error}" if r.error else f"{r.documents} document(s), {len(r.files)} file(s)"
                 + (f", {r.rows} row(s) in {r.table}" if r.table else ""))
    if failed:
        raise AggregationFailed(f"run {event.run_id}: aggregation(s) failed: {', '.join(r.name for r in failed)}")


class AggregationFailed(RuntimeError):
    """Names the failed aggregations (their reasons, masked, are in the log above it)."""


# What a loaded run triggers, in this order; each gets the project and the event. Pipelines first:
# an aggregation's SQL output never feeds a pipeline, and a pipeline never reads Mongo.
AFTER_LOAD: tuple[Callable[[Project, TransformEvent], None], ...] = (
    run_transformations,
    refresh_aggregations,
)


@bp.function_name("transform")
@bp.queue_trigger(arg_name="msg", queue_name=TRANSFORM, connection=CONNECTION)
def transform(msg: func.QueueMessage) -> None:
    event = decode(msg.get_json())
    if not isinstance(event, TransformEvent):
        raise MessageError(f"{TRANSFORM}: expected a TransformEvent, not a {type(event).__name__}")
    project = current_project()
    failures: list[Exception] = []
    later: float | None = None
    for after_load in AFTER_LOAD:   # a failing step does not keep the next from running
        try:
            after_load(project, event)
        except OutputsLeased as exc:
            later = exc.delay
        except Exception as exc:
            failures.append(exc)
    if failures:
        raise failures[0]   # retried by the queue: the leased outputs with it
    if later is not None:
        stores()[1].send(TRANSFORM, encode(event), later)
        log.info("run %s: an output table is leased by another run: transform sent again in %.0fs",
                 event.run_id, later)
