"""The pipelines' target on each database, for the transform tests."""
from __future__ import annotations

import pytest

from tests.helpers.transform import Target


@pytest.fixture(params=["sqlite", "postgresql", "mariadb"])
def target(request, tmp_path):
    url = (f"sqlite:///{tmp_path / 'target.db'}" if request.param == "sqlite"
           else request.getfixturevalue("postgres_url" if request.param == "postgresql" else "mariadb_url"))
    t = Target(url, tmp_path)
    yield t
    t.drop()
