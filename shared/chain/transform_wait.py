"""A Transform whose output table another run holds waits instead of failing: in the queue chain
its event is sent again once that lease would expire (`Leases` in shared/target/lease.py), as
Paginate does for a leased model, rather than failing and burning the message's attempts. The
whole event runs again then; outputs are replaced whole, so what already ran is simply redone."""
from __future__ import annotations

from shared.target.lease import retry_delay, utc
from shared.transform.runner import TransformSummary


def leased_delay(summary: TransformSummary, ttl: float, now: float) -> float | None:
    """Seconds until the event should run again, when every failed pipeline failed only because
    another run holds its output (the pipelines skipped behind them follow them); None otherwise,
    and when nothing failed."""
    failed = [r for r in summary.results if r.error and not r.skipped]
    if not failed or any(r.held is None for r in failed):
        return None
    return min(retry_delay(r.held, utc(now), ttl) for r in failed if r.held is not None)
