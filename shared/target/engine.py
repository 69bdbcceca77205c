"""The one recipe for a project's target engine, whichever mode or command opens it: every SQL
source's schema, plus the derived schemas its caller knows (on SQLite, where they are attached)."""
from __future__ import annotations

from collections.abc import Callable, Iterable

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from shared.config.project import Project
from shared.target.dialects import SQLITE, create_target_engine


def sql_schemas(project: Project) -> list[str]:
    """The sources' schemas: one per `store: sql` source (a `store: mongo` source has none)."""
    return [name for name, source in project.sources.items() if source.store == "sql"]


def target_engine(project: Project, url: str | None = None,
                  derived: Callable[[], Iterable[str]] = tuple) -> sa.Engine:
    """The project's target engine (`url`: another target than the settings'). `derived`: the
    output schemas of pipelines or aggregations the caller writes, asked for on SQLite only (its
    schemas are files the engine attaches; a server has them all, and reading manifests is spared)."""
    url = url or project.settings.target_url
    if make_url(url).get_backend_name() != SQLITE:
        return create_target_engine(url)
    return create_target_engine(url, [*sql_schemas(project), *derived()])
