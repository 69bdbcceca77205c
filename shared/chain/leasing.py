"""How the queue chain holds a model's lease (`shared/target/lease.py`) across the many messages of
a run, where no process lives as long as the run:

- Paginate (the model's start) takes the lease for the run id. When another run holds it, the
  RunModel message goes back on its queue with a delay (until about when that lease expires, at
  most a third of the ttl) instead of failing; the run waits, and its heartbeat says so.
- Every Fetch and Load of the run renews it (at most once a third of the ttl: one SELECT a message
  otherwise); a message sent with a visibility delay (fanned-out pages, a rate limit's pause)
  first extends it past that delay, so a run pausing on purpose never loses its table.
- The load that finishes the model releases it; so do a model failed by its stated total and a
  step poisoned for good. A run killed in between stops renewing: its lease expires after the ttl
  and the next run proceeds.
- A step that finds the model's lease taken by another run (this run stalled past the expiry)
  fails with a clear error rather than writing into a table another run now owns.
- A step that finds no lease while its model is not finished (a poisoned message replayed, or a
  page still in flight when another page was poisoned) writes the table again, so it takes the
  lease again first; when another run holds it meanwhile, the step is refused, naming that run.

Each renewal also writes the run's heartbeat in the ledger (`RunLedger.beat`, one blob per model),
from which `run_status` tells a running run from an abandoned one.
"""
from __future__ import annotations

import logging
import socket
from collections import Counter
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from shared.chain.messages import LoadJob, Message, PageJob, RunModel
from shared.chain.pages import ChainError
from shared.config.models import ApiSource
from shared.config.project import ModelRef
from shared.target.lease import Lease, Leases, retry_delay, utc

if TYPE_CHECKING:
    from shared.chain.steps import Chain

log = logging.getLogger("kspyder.chain")


class ChainLeases:
    """One invocation's view of its run's model leases."""

    def __init__(self, chain: Chain):
        self.chain = chain
        self.ttl = chain.project.settings.leases.ttl_seconds
        self.holder = f"queue chain on {socket.gethostname()}"
        self._leases: Leases | None = None
        self._until: dict[tuple[str, str], datetime] = {}   # leases this invocation keeps, and their expiry

    @property
    def leases(self) -> Leases:
        if self._leases is None:
            self._leases = Leases(self.chain.engine, self.ttl, self.chain.clock)
        return self._leases

    def started(self, run_id: str, refs: list[ModelRef]) -> None:
        """A run just queued: alive until its last model's Paginate is due (a source's models
        start 1/rate apart), and a ttl more."""
        count = Counter(ref.source_name for ref in refs)
        rates = {ref.source_name: ref.source.throttle.rate if isinstance(ref.source, ApiSource) else None
                 for ref in refs}
        last = max([(count[name] - 1) / rate for name, rate in rates.items() if rate] or [0.0])
        self.chain.ledger.beat(run_id, "start", utc(self.chain.clock()) + timedelta(seconds=last + self.ttl))

    def start(self, msg: RunModel) -> float | None:
        """Take the model's lease for the run; None when taken (or the model needs none), else the
        delay after which to try again."""
        if self.chain.ref(msg.model).documents:
            return None   # store: mongo: documents are upserted by key, no table to guard
        if self.chain.state.plan(msg.run_id, msg.model) is not None:
            self.keep(msg.run_id, msg.model)   # a copy of a Paginate that already ran
            return None
        blocking = self.leases.try_acquire([msg.model], msg.run_id, self.holder)
        now = self.leases.now()
        if blocking is None:
            self._kept(msg.run_id, msg.model, now + timedelta(seconds=self.ttl))
            return None
        delay = retry_delay(blocking, now, self.ttl)
        log.info("run %s: %s is leased by run %s until %s: trying again in %.0fs", msg.run_id, msg.model,
                 blocking.run_id, blocking.expires_at.isoformat(timespec="seconds"), delay)
        self.chain.ledger.beat(msg.run_id, msg.model, now + timedelta(seconds=delay + self.ttl))
        return delay

    def keep(self, run_id: str, model: str) -> None:
        """Renew the run's lease of `model` when a third of the ttl has passed; ChainError when
        another run holds it now. No lease (the model is finished, or needs none): nothing to do."""
        if self.chain.ref(model).documents:
            return
        lease = self.leases.get(model)
        if lease is None:
            self._retake(run_id, model)
            return
        if lease.run_id != run_id:
            raise ChainError(_refusal(model, run_id, lease))
        now = self.leases.now()
        if (lease.expires_at - now).total_seconds() > self.ttl * 2 / 3:
            self._until[(run_id, model)] = lease.expires_at
            return
        self._renew(run_id, model, now + timedelta(seconds=self.ttl))

    def _retake(self, run_id: str, model: str) -> None:
        """No lease: given back when the model finished (nothing to do), or when one of its steps was
        poisoned, and this step (its replay, or another page) writes the table again."""
        if model in self.chain.ledger.model_outcomes(run_id):
            return
        blocking = self.leases.try_acquire([model], run_id, self.holder)
        if blocking is not None:
            raise ChainError(_refusal(model, run_id, blocking))
        log.info("run %s: %s leased again (a step after its lease was given back)", run_id, model)
        self._kept(run_id, model, self.leases.now() + timedelta(seconds=self.ttl))

    def cover(self, message: Message, delay: float) -> None:
        """Before a message of a leased model is sent with `delay`: the lease (and the heartbeat)
        lasts past the moment it becomes visible."""
        if not delay or not isinstance(message, (PageJob, LoadJob)):
            return
        key = (message.run_id, message.model)
        until = self._until.get(key)
        if until is None:
            return
        wanted = self.leases.now() + timedelta(seconds=delay + self.ttl / 3)
        if wanted > until:
            self._renew(message.run_id, message.model, wanted + timedelta(seconds=self.ttl * 2 / 3))

    def release(self, run_id: str, model: str) -> None:
        if self.chain.ref(model).documents:
            return
        self.leases.release([model], run_id)
        self._until.pop((run_id, model), None)

    def _renew(self, run_id: str, model: str, until: datetime) -> None:
        if self.leases.renew([model], run_id, until=until):
            holder = self.leases.get(model)
            raise ChainError(f"{model}: the lease of run {run_id} expired and "
                             f"{'run ' + holder.run_id if holder else 'another run'} took the table")
        self._kept(run_id, model, until)

    def _kept(self, run_id: str, model: str, until: datetime) -> None:
        self._until[(run_id, model)] = until
        self.chain.ledger.beat(run_id, model, until)


def _refusal(model: str, run_id: str, lease: Lease) -> str:
    """This run's lease expired (it stalled) or was given back (a step poisoned), and another run
    holds the table now: its step must not write into it."""
    return (f"{model}: run {lease.run_id} ({lease.holder}) holds the table's lease until "
            f"{lease.expires_at.isoformat(timespec='seconds')}Z; this step of run {run_id} was not run "
            f"(this run's lease expired or was given back): start the model again once that run is over")
