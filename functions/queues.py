"""The queue-triggered steps of the chain: Paginate, Fetch and Load, each on its own queue.

Each function is thin: the message's JSON goes to `Chain.handle`, which validates it, runs the step
and sends the next messages. An exception propagates on purpose: the host makes the message
visible again after host.json's `visibilityTimeout` and, after `maxDequeueCount` failed attempts,
moves it to `<queue>-poison`; the chain has already recorded the failure (as poisoned on the last
attempt) in the run's ledger, which `GET /api/runs/{id}` reports.
"""
from __future__ import annotations

import azure.functions as func

from functions.common import CONNECTION, open_chain
from shared.chain.names import FETCH, LOAD, PAGINATE

bp = func.Blueprint()


def run_step(queue: str, msg: func.QueueMessage) -> None:
    with open_chain() as chain:
        chain.handle(queue, msg.get_json(), msg.dequeue_count or 1)


@bp.function_name("paginate")
@bp.queue_trigger(arg_name="msg", queue_name=PAGINATE, connection=CONNECTION)
def paginate(msg: func.QueueMessage) -> None:
    run_step(PAGINATE, msg)


@bp.function_name("fetch")
@bp.queue_trigger(arg_name="msg", queue_name=FETCH, connection=CONNECTION)
def fetch(msg: func.QueueMessage) -> None:
    run_step(FETCH, msg)


@bp.function_name("load")
@bp.queue_trigger(arg_name="msg", queue_name=LOAD, connection=CONNECTION)
def load(msg: func.QueueMessage) -> None:
    run_step(LOAD, msg)
