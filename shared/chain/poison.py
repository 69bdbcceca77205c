"""Poison queues: the messages that failed `maxDequeueCount` times, listed and replayed.

After a fault is fixed (a source back up, a manifest corrected), `replay` puts each poisoned
message back on the queue it came from, unchanged: its claim token lets the step pick up where the
failed attempts stopped, and every step is idempotent, so a replay never duplicates data.
"""
from __future__ import annotations

from dataclasses import dataclass

from shared.chain.names import POISON_SUFFIX, QUEUES, poison
from shared.detect.redact_message import scrub_message
from shared.storage.queues import QueueStore


class PoisonError(ValueError):
    pass


def step_queue(name: str) -> str:
    """`fetch`, `kspyder-fetch` or `kspyder-fetch-poison` -> `kspyder-fetch`."""
    base = name[: -len(POISON_SUFFIX)] if name.endswith(POISON_SUFFIX) else name
    for queue in QUEUES:
        if base in (queue, queue.removeprefix("kspyder-")):
            return queue
    names = ", ".join(q.removeprefix("kspyder-") for q in QUEUES)
    raise PoisonError(f"unknown queue '{name}' (one of: {names})")


@dataclass(frozen=True)
class PoisonEntry:
    """What a poisoned message is about: identifiers only (messages never carry data)."""

    kind: str
    run_id: str
    model: str
    index: int | None

    def describe(self) -> str:
        where = f"{self.model} page {self.index}" if self.index is not None else self.model or "-"
        return f"{self.kind:<15} run {self.run_id:<24} {where}"


def list_poison(queues: QueueStore, queue: str, limit: int = 32) -> list[PoisonEntry]:
    """Peek at up to `limit` (at most 32) poisoned messages without taking them off the queue."""
    entries = []
    for body in queues.peek(poison(step_queue(queue)), min(limit, 32)):
        index = body.get("index")
        # Scrubbed: a poison queue also holds messages the chain never wrote (anyone may send one).
        kind, run_id, model = (scrub_message(str(body.get(k, d)))
                               for k, d in (("kind", "?"), ("run_id", "?"), ("model", "")))
        entries.append(PoisonEntry(kind, run_id, model, index if isinstance(index, int) else None))
    return entries


def replay(queues: QueueStore, queue: str, run_id: str | None = None, limit: int = 1000) -> int:
    """Move poisoned messages (of one run, or all) back to their queue; returns how many moved."""
    target = step_queue(queue)
    source = poison(target)
    moved = 0
    while moved < limit:
        batch = queues.receive(source, 32, 30.0)
        if not batch:
            return moved
        for message in batch:
            if run_id is not None and message.body.get("run_id") != run_id:
                continue   # left for its own replay; visible again after the timeout
            queues.send(target, message.body)
            queues.delete(source, message)
            moved += 1
    return moved
