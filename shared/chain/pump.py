"""A bare in-process driver for the chain: receive, run the step, delete; poison after too many tries.

Not the local host (that one runs the real decorated functions under the host.json settings); this
is the smallest loop that moves a run through the queues, for tests, benchmarks and an embedded
"queued" mode. It follows the host's rules where they matter to the steps: a failed message stays
on its queue and comes back after the visibility timeout with a higher dequeue count, and one that
failed `max_dequeue_count` times moves to `<queue>-poison`. It never sleeps with `time.sleep`
(it waits on an Event), so tests can forbid sleeping in the steps.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from shared.chain.names import FETCH, LOAD, PAGINATE, poison
from shared.chain.steps import DEFAULT_MAX_DEQUEUE_COUNT, Chain
from shared.storage.queues import QueueMessage, QueueStore

log = logging.getLogger("kspyder.chain")
STEP_QUEUES = (PAGINATE, FETCH, LOAD)
Dispatch = Callable[[Chain, str, QueueMessage], None]


def handle_once(chain: Chain, queue: str, message: QueueMessage) -> None:
    chain.handle(queue, message.body, message.dequeue_count)


@dataclass
class PumpStats:
    handled: dict[str, int] = field(default_factory=dict)
    failed: int = 0
    poisoned: int = 0


def drain(make_chain: Callable[[], Chain], queues: QueueStore, *, until: Callable[[], bool] | None = None,
          timeout: float = 60.0, visibility_timeout: float = 1.0, batch: int = 16,
          max_dequeue_count: int = DEFAULT_MAX_DEQUEUE_COUNT, dispatch: Dispatch = handle_once,
          poll: float = 0.02, only: tuple[str, ...] = STEP_QUEUES) -> PumpStats:
    """Run messages until `until()` is true, or (without `until`) until the step queues are empty,
    delayed messages included. A fresh Chain per message, as a function invocation gets.
    `only`: the step queues to serve (a worker may serve some steps and leave others to another).
    TimeoutError when neither happens within `timeout` seconds."""
    stats = PumpStats()
    pause = threading.Event()
    deadline = time.monotonic() + timeout
    while True:
        moved = 0
        for queue in only:
            for message in queues.receive(queue, batch, visibility_timeout):
                moved += 1
                _run(make_chain, queues, queue, message, dispatch, max_dequeue_count, stats)
        if until is not None and until():
            return stats
        if until is None and not moved and all(queues.peek_count(q) == 0 for q in only):
            return stats
        if time.monotonic() > deadline:
            raise TimeoutError(f"the chain did not finish within {timeout}s ({stats})")
        if not moved:
            pause.wait(poll)


def _run(make_chain: Callable[[], Chain], queues: QueueStore, queue: str, message: QueueMessage,
         dispatch: Dispatch, max_dequeue_count: int, stats: PumpStats) -> None:
    try:
        with make_chain() as chain:
            dispatch(chain, queue, message)
    except Exception as exc:
        stats.failed += 1
        if message.dequeue_count >= max_dequeue_count:
            queues.send(poison(queue), message.body)
            queues.delete(queue, message)
            stats.poisoned += 1
            log.warning("message %s moved to %s after %d attempts: %s", message.id, poison(queue),
                        message.dequeue_count, type(exc).__name__)
        return
    queues.delete(queue, message)
    stats.handled[queue] = stats.handled.get(queue, 0) + 1
