"""The leases `apply` and `rebuild` take: every table their plan creates, alters, replaces or
drops, so that no run loads a table while its shape changes, and no apply changes a table that a
run is loading (refused like a second run, naming the holder)."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.engine import Engine

from shared.config.project import Project
from shared.schema.apply import PlanStamp
from shared.schema.plan import Plan, compute_plan
from shared.target.lease import Holding, Leases, this_process


def plan_tables(plan: Plan) -> list[str]:
    """"schema.table" of every table the plan touches (a dropped schema: each table in it)."""
    names = {change.qualified for change in plan.changes if change.table}
    names.update(f"{change.schema}.{table}" for change in plan.changes for table in change.tables)
    return sorted(names)


@contextmanager
def leased_apply(engine: Engine, project: Project, stamp: PlanStamp, run_id: str, wait: float = 0.0) -> Iterator[None]:
    """Hold the leases of the tables the approved plan touches for the block (LeaseHeld when a run
    holds one past `wait` seconds). Apply re-plans inside its transaction anyway, and refuses a plan
    that moved, so the tables leased here are the ones it changes."""
    with engine.connect() as connection:
        plan = compute_plan(connection, project, stamp.options)
    with Holding(Leases(engine, project.settings.leases.ttl_seconds), run_id, this_process()) as holding:
        holding.take(plan_tables(plan), wait)
        yield
