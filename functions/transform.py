"""The Transform step (queue `kspyder-transform`): one `TransformEvent` per run whose every page is
loaded.

NOT IMPLEMENTED YET, on purpose: the transformation pipelines arrive with the transformations
issue. Until then this function validates the event and logs what it would run (the run, its
sources and models), and does nothing else. The issue allows this no-op for this function only;
every other step of the chain is real. See docs/functions.md.
"""
from __future__ import annotations

import logging

import azure.functions as func

from shared.chain.messages import MessageError, TransformEvent, decode
from shared.chain.names import TRANSFORM
from .common import CONNECTION

bp = func.Blueprint()
log = logging.getLogger("kspyder.functions")


@bp.function_name("transform")
@bp.queue_trigger(arg_name="msg", queue_name=TRANSFORM, connection=CONNECTION)
def transform(msg: func.QueueMessage) -> None:
    event = decode(msg.get_json())
    if not isinstance(event, TransformEvent):
        raise MessageError(f"{TRANSFORM}: expected a TransformEvent, not a {type(event).__name__}")
    log.info("run %s loaded (sources %s; models %s): transformations are not implemented yet, nothing to run",
             event.run_id, ", ".join(event.sources), ", ".join(event.models) or "-")
