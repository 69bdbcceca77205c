"""Shared fixtures: real loopback servers and the external databases.

PostgreSQL and MariaDB tests skip on a laptop without them, but fail when KSPYDER_REQUIRE_SERVICES=1
or CI=true: in CI a missing database must never pass as green.
"""
from __future__ import annotations

import os

import pytest

from tests.helpers.services import MARIADB_URL, POSTGRES_URL, reachable_database

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
    from tests.helpers.azurite import running_azurite

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
    """Queue chain harnesses (`tests/helpers/chain.py` Harness), each in a folder of its own,
    their target engines disposed afterwards."""
    from tests.helpers.chain import Harness

    made: list[Harness] = []

    def make(project, **options):
        made.append(Harness(tmp_path / f"chain{len(made)}", project, **options))
        return made[-1]

    yield make
    for harness in made:
        harness.engine.dispose()


@pytest.fixture(scope="module")
def app_api():
    """The sample API the `app_env` manifests read, one per test module."""
    from samples.sample_api.server import ApiConfig, SampleApi

    with SampleApi(ApiConfig(customers=60)) as server:
        yield server


@pytest.fixture
def app_env(azurite, app_api, tmp_path, monkeypatch):
    """The settings the function app reads (as local.settings.json gives them), manifests for `shop`
    (tests/helpers/app.py MODELS) over the sample API without a rate limit, and a SQLite target with
    the plan applied. Yields (project, queues)."""
    from functions import common
    from shared.chain.names import STORAGE_SETTING
    from shared.storage.queues import AzureQueueStore
    from tests.helpers.app import MODELS, empty
    from tests.helpers.chain import applied_target, build_project
    from tests.helpers.flow import TEST_KEY

    project = build_project(tmp_path, app_api.base_url, shop=MODELS, erp=[], throttle={})
    target = tmp_path / "target.db"
    applied_target(project, target).dispose()
    monkeypatch.setenv(STORAGE_SETTING, azurite.connection_string)
    monkeypatch.setenv("KSPYDER_MANIFESTS", str(tmp_path / "manifests"))
    monkeypatch.setenv("KSPYDER_PII_KEY", TEST_KEY)
    monkeypatch.setenv("KSPYDER_SCHEDULE", "0 */5 * * * *")   # the timer binding reads it, as in Azure
    monkeypatch.setenv("KSPYDER_TARGET_URL", f"sqlite:///{target}")
    queues = AzureQueueStore.from_connection_string(azurite.connection_string)
    empty(queues)
    yield project, queues
    common.dispose_engines()
    empty(queues)
