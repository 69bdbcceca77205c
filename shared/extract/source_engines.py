"""The SQL sources' engines of one run: every model of a source reads through one engine.

An engine per model paid, for each model, a new connection, the dialect's first-connect queries
and an empty compiled-statement cache (the source reflection compiled again); one per source URL
pays them once per run (docs/benchmarks.md, `sql`, "Per model").
"""
from __future__ import annotations

import sqlalchemy as sa

from shared.config.models import SqlSource


class SourceEngines:
    """Engines by source URL, made on first use and disposed by `close` (the run's end)."""

    def __init__(self) -> None:
        self._engines: dict[str, sa.Engine] = {}

    def for_source(self, source: SqlSource) -> sa.Engine:
        engine = self._engines.get(source.url)
        if engine is None:
            engine = self._engines[source.url] = sa.create_engine(source.url)
        return engine

    def close(self) -> None:
        engines, self._engines = list(self._engines.values()), {}
        for engine in engines:
            engine.dispose()
