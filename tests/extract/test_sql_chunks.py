"""How SQL chunks become records: rows fetched at once and zipped with their keys, and a source's
timestamptz in a UTC zone relabelled as UTC rather than converted."""
from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from shared.config.models import Column
from shared.extract.records import RecordShaper
from shared.extract.sql import as_dicts


def test_as_dicts_keys_every_row_by_its_column_names():
    engine = sa.create_engine("sqlite://")
    with engine.connect() as connection:
        result = connection.exec_driver_sql("SELECT 1 AS a, 'x' AS b UNION ALL SELECT 2, NULL")
        assert as_dicts(result) == [{"a": 1, "b": "x"}, {"a": 2, "b": None}]
        assert as_dicts(connection.exec_driver_sql("SELECT 1 AS a WHERE 0")) == []
    engine.dispose()


def test_a_datetime_in_any_utc_zone_comes_out_in_utc_at_the_same_instant():
    shaper = RecordShaper("s", "m", {"at": Column(type="datetime")}, [])
    for zone in (ZoneInfo("Etc/UTC"), ZoneInfo("UTC"), UTC, ZoneInfo("Europe/Paris")):
        value = datetime(2024, 7, 1, 12, 30, tzinfo=zone)
        shaped = shaper.shape({"at": value}, 0)["at"]
        assert shaped == value and shaped.tzinfo is UTC
    naive = shaper.shape({"at": datetime(2024, 7, 1, 12, 30)}, 0)["at"]
    assert naive == datetime(2024, 7, 1, 12, 30, tzinfo=UTC)
