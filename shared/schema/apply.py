"""Execute a plan against the target, only if the database is still the one the plan was made for.

The plan is recomputed inside the apply transaction and checked against what was approved (the
live fingerprint and the plan hash), so what runs is exactly what a person read. DDL goes through
SQLAlchemy (`Table.create`/`drop`) and alembic's `Operations`: no hand-written DDL strings.

Transactions: PostgreSQL (and SQL Server) roll every change back when one fails. MariaDB/MySQL
commit each DDL statement implicitly, so a failure part-way leaves the earlier changes applied;
running `plan` again shows what is left. SQLite's DDL is transactional because the target engine
emits BEGIN itself (`dialects.create_target_engine`).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from shared.config.project import Project
from shared.schema.desired import derived_tables, target_metadata
from shared.schema.plan import (
    ADD_COLUMN,
    CLAIM_SCHEMA,
    CREATE_SCHEMA,
    CREATE_TABLE,
    DROP_COLUMN,
    DROP_SCHEMA,
    DROP_TABLE,
    MARKING,
    REPLACE_TABLE,
    Change,
    Plan,
    PlanError,
    PlanOptions,
    compute_plan,
)
from shared.target.dialects import column_type, create_schema, drop_schema
from shared.target.meta_table import forget_cursors
from shared.target.ownership import ensure_project_id, mark_schema

if TYPE_CHECKING:
    from alembic.operations import Operations
# alembic (with mako and pygments: docs/benchmarks.md) is imported only to apply changes: `main.py run`
# plans first and usually finds nothing to do.

STALE = "plan is stale: the database changed since the plan was made (run main.py plan again)"
MANIFESTS_CHANGED = "plan is stale: the manifests changed since the plan was made (run main.py plan again)"


class StalePlan(PlanError):
    pass


@dataclass(frozen=True)
class PlanStamp:
    """What an approved plan promises: the database it was computed against and the changes it makes."""

    options: PlanOptions
    fingerprint: str
    result_fingerprint: str
    plan_hash: str

    @classmethod
    def of(cls, plan: Plan) -> PlanStamp:
        return cls(plan.options, plan.fingerprint, plan.result_fingerprint, plan.plan_hash)


@dataclass(frozen=True)
class ApplyOutcome:
    plan: Plan                  # as recomputed and executed inside the transaction
    already_applied: bool       # the database already is what the plan produces: nothing ran

    @property
    def changes(self) -> tuple[Change, ...]:
        return () if self.already_applied else self.plan.changes


def apply_stamped(engine: Engine, project: Project, stamp: PlanStamp) -> ApplyOutcome:
    """Apply the approved plan, or refuse with StalePlan when the database or the manifests moved."""
    with engine.begin() as connection:
        live = compute_plan(connection, project, stamp.options)
        if live.fingerprint != stamp.fingerprint:
            if live.fingerprint == stamp.result_fingerprint:
                return ApplyOutcome(live, already_applied=True)
            raise StalePlan(STALE)
        if live.plan_hash != stamp.plan_hash:
            raise StalePlan(MANIFESTS_CHANGED)
        derived = derived_tables(project) if any(c.builder for c in live.changes) else []
        owner = ensure_project_id(connection, project) if any(c.kind in MARKING for c in live.changes) else None
        apply_changes(connection, live.changes, target_metadata(project, connection.dialect.name, derived=derived),
                      owner)
        return ApplyOutcome(live, already_applied=False)


def apply_changes(connection: sa.Connection, changes: tuple[Change, ...], metadata: sa.MetaData,
                  owner: str | None = None) -> None:
    """`owner`: the project id marked in each schema created or claimed (ownership.py)."""
    from alembic.operations import Operations
    from alembic.runtime.migration import MigrationContext
    ops = Operations(MigrationContext.configure(connection))
    for change in changes:
        STEPS[change.kind](connection, ops, metadata, change)
        if change.kind in MARKING:
            if owner is None:
                raise PlanError(f"schema {change.schema}: no project id to mark it with")
            mark_schema(connection, change.schema, owner)


def _create_schema(connection: sa.Connection, _ops: Operations, _metadata: sa.MetaData, change: Change) -> None:
    create_schema(connection, change.schema)


def _claim_schema(_connection: sa.Connection, _ops: Operations, _metadata: sa.MetaData, _change: Change) -> None:
    """Nothing but the mark apply_changes writes after every marking step."""


def _create_table(connection: sa.Connection, _ops: Operations, metadata: sa.MetaData, change: Change) -> None:
    """A new (or replaced) table is empty: its model's incremental cursor goes with its old rows."""
    metadata.tables[change.qualified].create(connection)
    forget_cursors(connection, change.schema, change.table_name)


def _add_column(connection: sa.Connection, ops: Operations, _metadata: sa.MetaData, change: Change) -> None:
    """Nullable: the rows already there have no value for it until their model runs again."""
    [column] = change.columns
    added = sa.Column(column.name, column_type(column, connection.dialect.name), nullable=True)
    ops.add_column(change.table_name, added, schema=change.schema)


def _drop_column(_connection: sa.Connection, ops: Operations, _metadata: sa.MetaData, change: Change) -> None:
    ops.drop_column(change.table_name, change.column_name, schema=change.schema)


def _replace_table(connection: sa.Connection, ops: Operations, metadata: sa.MetaData, change: Change) -> None:
    _drop_table(connection, ops, metadata, change)
    _create_table(connection, ops, metadata, change)


def _drop_table(connection: sa.Connection, _ops: Operations, _metadata: sa.MetaData, change: Change) -> None:
    sa.Table(change.table_name, sa.MetaData(), schema=change.schema).drop(connection)
    forget_cursors(connection, change.schema, change.table_name)


def _drop_schema(connection: sa.Connection, _ops: Operations, _metadata: sa.MetaData, change: Change) -> None:
    drop_schema(connection, change.schema)   # planned only when every table in it is kspyder's


Step = Callable[[sa.Connection, "Operations", sa.MetaData, Change], None]
STEPS: dict[str, Step] = {CREATE_SCHEMA: _create_schema, CLAIM_SCHEMA: _claim_schema, CREATE_TABLE: _create_table,
                          ADD_COLUMN: _add_column, DROP_COLUMN: _drop_column, REPLACE_TABLE: _replace_table,
                          DROP_TABLE: _drop_table, DROP_SCHEMA: _drop_schema}
