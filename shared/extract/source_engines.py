"""The SQL sources' engines of one run: every model of a source reads through one engine.

An engine per model paid, for each model, a new connection, the dialect's first-connect queries
and an empty compiled-statement cache (the source reflection compiled again); one per source URL
pays them once per run (docs/benchmarks.md, `sql`, "Per model").
"""
from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from shared.config.models import SqlSource

# Zone names PostgreSQL knows that are UTC at every instant. psycopg gives a timestamptz the exact
# `datetime.timezone.utc` only in a session whose zone is spelled `UTC`; under any other of these
# names (Debian's servers default to `Etc/UTC`) every value carries a ZoneInfo the shaper must
# relabel, one call per value (docs/benchmarks.md, `sql`).
UTC_ALIASES = frozenset({"Etc/UTC", "Etc/UCT", "UCT", "Etc/Universal", "Universal", "Etc/Zulu", "Zulu",
                         "Etc/GMT", "GMT", "Etc/GMT0", "GMT0", "Etc/GMT+0", "GMT+0", "Etc/GMT-0", "GMT-0",
                         "Etc/Greenwich", "Greenwich"})


def source_engine(url: str) -> sa.Engine:
    """An engine to read a source through. A psycopg session in a UTC alias is switched to `UTC`:
    the same rules (a query's `now()::date` is unchanged), and values arrive ready to load."""
    engine = sa.create_engine(url)
    if engine.dialect.name == "postgresql" and engine.dialect.driver == "psycopg":
        sa.event.listen(engine, "connect", _utc_by_name)
    return engine


def _utc_by_name(dbapi_connection: Any, _record: Any) -> None:
    if dbapi_connection.info.parameter_status("TimeZone") in UTC_ALIASES:
        autocommit = dbapi_connection.autocommit
        dbapi_connection.autocommit = True   # a SET in a transaction would go with the pool's rollback
        try:
            dbapi_connection.execute("SET TIME ZONE 'UTC'")
        finally:
            dbapi_connection.autocommit = autocommit


class SourceEngines:
    """Engines by source URL, made on first use and disposed by `close` (the run's end)."""

    def __init__(self) -> None:
        self._engines: dict[str, sa.Engine] = {}

    def for_source(self, source: SqlSource) -> sa.Engine:
        engine = self._engines.get(source.url)
        if engine is None:
            engine = self._engines[source.url] = source_engine(source.url)
        return engine

    def close(self) -> None:
        engines, self._engines = list(self._engines.values()), {}
        for engine in engines:
            engine.dispose()
