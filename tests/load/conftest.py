"""Fixtures of the loading tests."""
from __future__ import annotations

import pytest


@pytest.fixture(params=["sqlite", "postgresql", "mariadb"])
def url(request: pytest.FixtureRequest, tmp_path) -> str:
    """A target database URL on each database in turn: a fresh SQLite file, the test PostgreSQL and
    MariaDB servers (skipped without them, or failing where CI promises them)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'target.db'}"
    return request.getfixturevalue("postgres_url" if request.param == "postgresql" else "mariadb_url")
