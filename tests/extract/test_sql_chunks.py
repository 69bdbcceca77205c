"""How SQL chunks become records: rows fetched at once and zipped with their keys, and a source's
timestamptz in a UTC zone relabelled as UTC rather than converted, values already typed passed as
they are, and a PostgreSQL source session in a UTC alias switched to `UTC` so none need relabelling."""
from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from shared.config.models import Column
from shared.errors import ConversionError
from shared.extract.records import RecordShaper
from shared.extract.source_engines import source_engine
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


def test_values_already_in_the_column_type_pass_the_generated_shaper_as_they_are():
    columns = {"at": Column(type="datetime"), "amount": Column(type="decimal", precision=5, scale=2),
               "on": Column(type="date")}
    shaper = RecordShaper("s", "m", columns, [])
    at, amount, on = datetime(2024, 7, 1, 12, 30, tzinfo=UTC), Decimal("1.50"), date(2024, 7, 1)
    shaped = shaper.shape({"at": at, "amount": amount, "on": on}, 0)
    assert shaped["at"] is at and shaped["amount"] is amount and shaped["on"] is on
    assert shaped == shaper.shape_each({"at": at, "amount": amount, "on": on}, 0)


def test_a_guarded_value_that_fails_its_guard_is_converted_or_refused_as_shape_each_does():
    shaper = RecordShaper("s", "m", {"at": Column(type="datetime"), "amount": Column(type="decimal")}, [])
    paris = datetime(2024, 7, 1, 14, 30, tzinfo=ZoneInfo("Europe/Paris"))
    shaped = shaper.shape({"at": paris, "amount": Decimal("2")}, 0)
    assert shaped["at"] == paris and shaped["at"].tzinfo is UTC and shaped["at"].hour == 12
    for bad in (Decimal("NaN"), Decimal("Infinity")):
        with pytest.raises(ConversionError, match=r"record #3, column 'amount': expected a finite decimal"):
            shaper.shape({"at": None, "amount": bad}, 3)
    lenient = RecordShaper("s", "m", {"amount": Column(type="decimal", on_error="null")}, [])
    assert lenient.shape({"amount": Decimal("NaN")}, 0) == {"amount": None}


def test_a_date_column_takes_a_datetime_by_its_utc_date_not_as_a_date():
    shaper = RecordShaper("s", "m", {"on": Column(type="date")}, [])
    late = datetime(2024, 7, 1, 23, 30, tzinfo=ZoneInfo("America/New_York"))   # 03:30 UTC on the 2nd
    assert shaper.shape({"on": late}, 0) == {"on": date(2024, 7, 2)}


@pytest.mark.services
@pytest.mark.parametrize("zone, relabelled", [("Etc/UTC", True), ("UTC", True), ("Europe/Paris", False)])
def test_a_postgresql_source_session_in_a_utc_alias_is_switched_to_utc(postgres_url, zone, relabelled):
    url = sa.make_url(postgres_url).update_query_dict({"options": f"-c TimeZone={zone}"})
    engine = source_engine(url.render_as_string(hide_password=False))
    try:
        with engine.connect() as connection:
            value = connection.exec_driver_sql("SELECT TIMESTAMPTZ '2024-07-01 12:30:00+00'").scalar_one()
            shown = connection.exec_driver_sql("SHOW TIME ZONE").scalar_one()
            connection.rollback()   # the pool's reset: the zone must outlive it
        with engine.connect() as connection:
            again = connection.exec_driver_sql("SHOW TIME ZONE").scalar_one()
    finally:
        engine.dispose()
    assert value == datetime(2024, 7, 1, 12, 30, tzinfo=UTC)
    assert (value.tzinfo is UTC) is relabelled
    assert shown == again == ("UTC" if relabelled else zone)
