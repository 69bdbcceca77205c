"""Shared fixtures: real loopback servers and the external databases.

PostgreSQL and MariaDB tests skip on a laptop without them, but fail when KSPYDER_REQUIRE_SERVICES=1
or CI=true: in CI a missing database must never pass as green.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

POSTGRES_URL = os.environ.get("KSPYDER_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
MARIADB_URL = os.environ.get("KSPYDER_TEST_MARIADB_URL", "mysql+pymysql://root@127.0.0.1:3306/test")


def services_required() -> bool:
    return os.environ.get("KSPYDER_REQUIRE_SERVICES") == "1" or os.environ.get("CI", "").lower() == "true"


def reachable_database(url: str) -> str:
    """The URL if the server answers; else skip (laptop) or fail (CI)."""
    engine = sa.create_engine(url, connect_args={"connect_timeout": 3})
    try:
        with engine.connect() as connection:
            connection.execute(sa.text("SELECT 1"))
    except Exception as exc:  # any driver error means "not available here"
        message = f"database not reachable at {engine.url.render_as_string(hide_password=True)}: {type(exc).__name__}"
        if services_required():
            pytest.fail(message + " (required: KSPYDER_REQUIRE_SERVICES=1 or CI=true)")
        pytest.skip(message)
    finally:
        engine.dispose()
    return url


# What marks a test `services` (so `make test-unit` can leave it out): a fixture that starts or reaches
# a server, asked for directly or through a fixture parametrized by the server's name.
SERVICE_FIXTURES = frozenset({"postgres_url", "mariadb_url", "azurite"})
SERVICE_PARAMS = frozenset({"postgresql", "mariadb", "azure"})


@pytest.hookimpl(tryfirst=True)   # before `-m` deselects by marker
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        callspec = getattr(item, "callspec", None)
        params = list(callspec.params.values()) if callspec is not None else []
        if SERVICE_FIXTURES & set(getattr(item, "fixturenames", ())) or any(
                isinstance(value, str) and value in SERVICE_PARAMS for value in params):
            item.add_marker(pytest.mark.services)


@pytest.fixture(scope="session")
def postgres_url() -> str:
    return reachable_database(POSTGRES_URL)


@pytest.fixture(scope="session")
def mariadb_url() -> str:
    return reachable_database(MARIADB_URL)


@pytest.fixture(autouse=True)
def _isolated_kspyder_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """A developer's own KSPYDER_* settings must not change what the tests see."""
    for name in list(os.environ):
        if (name.startswith("KSPYDER_") and name not in ("KSPYDER_REQUIRE_SERVICES",)
                and not name.startswith("KSPYDER_TEST_")):
            monkeypatch.delenv(name)


@pytest.fixture(autouse=True)
def _reset_kspyder_logging():
    """The CLI configures the `kspyder` logger; each test starts from the library default again."""
    yield
    import logging

    logger = logging.getLogger("kspyder")
    logger.handlers.clear()
    logger.setLevel(logging.NOTSET)


@pytest.fixture(scope="session")
def azurite():
    """A private Azurite (blob, queue, table) for the session: skipped on a laptop without
    `npm ci`, a failure where services are required."""
    from tests.azurite import running_azurite

    with running_azurite() as emulator:
        yield emulator


@pytest.fixture()
def mongo_client():
    """mongomock, or the MongoDB server at KSPYDER_TEST_MONGO_URI: the same tests run on both.
    Name databases with `mongo_name`, which drops them afterwards."""
    uri = os.environ.get("KSPYDER_TEST_MONGO_URI")
    if uri:
        import pymongo
        client = pymongo.MongoClient(uri, tz_aware=True, serverSelectionTimeoutMS=5000)
    else:
        import mongomock
        client = mongomock.MongoClient(tz_aware=True)
    yield client
    client.close()


@pytest.fixture()
def mongo_name(mongo_client):
    """A unique database (= source) name; every database starting with it is dropped afterwards."""
    import uuid
    name = f"kt_{uuid.uuid4().hex[:12]}"
    yield name
    for database in mongo_client.list_database_names():
        if database.startswith(name):
            mongo_client.drop_database(database)


@pytest.fixture()
def harness_for(tmp_path):
    """Queue chain harnesses (`tests/test_chain_flow.py` Harness), each in a folder of its own,
    their target engines disposed afterwards."""
    from tests.test_chain_flow import Harness

    made: list[Harness] = []

    def make(project, **options):
        made.append(Harness(tmp_path / f"chain{len(made)}", project, **options))
        return made[-1]

    yield make
    for harness in made:
        harness.engine.dispose()
