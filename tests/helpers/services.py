"""The external servers the `services` tests use: skipped on a laptop without them, a failure when
KSPYDER_REQUIRE_SERVICES=1 or CI=true, where a missing database must never pass as green."""
from __future__ import annotations

import os

import pytest
import sqlalchemy as sa

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
