"""Inbox receipts in the run store: one delivery loads a dropped file at a time, and a delivery of
a version already loaded is a no-op (Event Grid delivers at least once, sometimes twice at once).

Layout in the ledger's container, per file (`file_id`: a keyed hash of its name, never the name):
    inbox/<source.model>/<file_id>/claim.<generation>   the delivery loading the file now
    inbox/<source.model>/<file_id>/loaded.json          the version last loaded, and by which run

A claim is a conditional create, so of two racing deliveries exactly one holds the file. A claim
older than `ttl` belongs to a delivery that died (a killed worker): the next delivery takes it over
by creating the next generation, again a conditional create, so exactly one taker wins.
"""
from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from shared.ledger import CONTAINER
from shared.storage import BlobStore

CLAIM_TTL = 1800.0   # seconds: the Functions timeout on Flex Consumption (30 minutes)
POLL = 0.2           # seconds between two looks at a held claim


@dataclass(frozen=True)
class Claim:
    prefix: str
    generation: int
    held_since: float


class InboxReceipts:
    def __init__(self, store: BlobStore, *, ttl: float = CLAIM_TTL, clock: Callable[[], float] = time.time,
                 sleep: Callable[[float], None] = time.sleep):
        self.store, self.ttl, self.clock, self.sleep = store, ttl, clock, sleep

    @staticmethod
    def prefix(model: str, file_id: str) -> str:
        return f"inbox/{model}/{file_id}/"

    def claim(self, model: str, file_id: str, run_id: str, wait: float) -> Claim | None:
        """Hold the file for this delivery; waits up to `wait` seconds while another delivery holds
        it. None when it is still held after that (the caller fails, and the host retries)."""
        prefix = self.prefix(model, file_id)
        deadline = time.monotonic() + wait
        while True:
            held = self._holder(prefix)
            if held is None:
                generation = 0
            else:
                generation, since = held
                if since is None:      # released while we looked
                    continue
                if self.clock() - since < self.ttl:
                    if time.monotonic() >= deadline:
                        return None
                    self.sleep(POLL)
                    continue
                generation += 1        # a dead delivery's claim: take it over
            now = self.clock()
            body = json.dumps({"run_id": run_id, "at": now}).encode()
            if self.store.create(CONTAINER, f"{prefix}claim.{generation:06d}", body):
                return Claim(prefix, generation, now)

    def held_since(self, model: str, file_id: str) -> float | None:
        """When the delivery holding the file claimed it (epoch seconds), or None when none does."""
        held = self._holder(self.prefix(model, file_id))
        return None if held is None else held[1]

    def release(self, claim: Claim) -> None:
        """Drop this claim and the dead ones it took over (the newest first: a delivery that looks
        meanwhile sees at most a dead claim, which it may take over, as this one is done)."""
        for generation in range(claim.generation, -1, -1):
            self.store.delete(CONTAINER, f"{claim.prefix}claim.{generation:06d}")

    def loaded(self, model: str, file_id: str) -> dict[str, Any] | None:
        """{"version", "run_id", "at"} of the version last loaded, or None."""
        raw = self.store.get(CONTAINER, f"{self.prefix(model, file_id)}loaded.json")
        return json.loads(raw) if raw else None

    def record_loaded(self, claim: Claim, version: str | None, run_id: str) -> None:
        """Only the claim's holder writes this, so a plain write is enough."""
        body = json.dumps({"version": version, "run_id": run_id, "at": self.clock()}).encode()
        self.store.put(CONTAINER, f"{claim.prefix}loaded.json", body)

    def _holder(self, prefix: str) -> tuple[int, float | None] | None:
        """(generation, claimed at) of the newest claim; claimed at is None if it just vanished."""
        generations = [int(name.rsplit(".", 1)[1]) for name in self.store.list(CONTAINER, prefix + "claim.")]
        if not generations:
            return None
        newest = max(generations)
        raw = self.store.get(CONTAINER, f"{prefix}claim.{newest:06d}")
        return newest, (json.loads(raw)["at"] if raw else None)
