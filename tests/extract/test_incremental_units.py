"""Cursor values, durations, the API walk's windows and checkpoints, and a SQL chunk's cursor: pure,
over bare objects."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from shared.config.incremental import ApiIncremental, parse_duration
from shared.extract.cursor import CursorError, read_cursor
from shared.extract.incremental import ApiWalk, set_request_value
from shared.extract.sql_incremental import chunk_checkpoint
from shared.extract.types import PageRequest


@pytest.mark.parametrize("text, expected", [
    ("PT1H", timedelta(hours=1)), ("P30D", timedelta(days=30)), ("P1DT12H", timedelta(days=1, hours=12)),
    ("PT0.5S", timedelta(seconds=0.5)), ("P2W", timedelta(weeks=2)), ("PT5M", timedelta(minutes=5))])
def test_durations_of_a_fixed_length_are_read(text, expected):
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["P1M", "P1Y", "P", "PT", "1 hour", "PT1H ", "P1DT"])
def test_durations_without_a_fixed_length_or_malformed_are_refused(text):
    with pytest.raises(ValueError, match="is not an ISO 8601 duration"):
        parse_duration(text)


def test_datetime_cursors_compare_as_instants_whatever_their_offset_or_form():
    paris = read_cursor("2024-01-01T01:00:00+01:00")
    assert paris == read_cursor("2024-01-01T00:00:00Z") == read_cursor(datetime(2024, 1, 1))   # naive: UTC
    assert read_cursor("2024-01-01T00:00:00.5Z") > paris
    assert read_cursor("2024-01-02") > paris
    assert paris.text() == "2024-01-01T00:00:00Z"


def test_numeric_cursors_compare_as_numbers_not_as_text():
    assert read_cursor("10") > read_cursor("9")
    assert read_cursor(Decimal("10.0")) == read_cursor(10)
    assert read_cursor(10).text() == "10" and read_cursor("2.50").text() == "2.5"
    assert read_cursor(None) is None and read_cursor("") is None


def test_a_cursor_of_the_wrong_kind_names_where_it_was_never_its_value():
    with pytest.raises(CursorError) as info:
        read_cursor("secret-ish text", None, "shop.orders: the cursor of record #3")
    assert "shop.orders: the cursor of record #3" in str(info.value) and "secret" not in str(info.value)
    with pytest.raises(CursorError, match="is a number where the model's cursor is a datetime"):
        read_cursor(17, "datetime", "the cursor")
    with pytest.raises(CursorError, match="cannot be compared"):
        assert read_cursor(1) < read_cursor("2024-01-01T00:00:00Z")


def test_lag_is_a_duration_for_datetimes_and_a_number_for_numbers():
    assert read_cursor("2024-01-01T01:00:00Z").minus("PT1H") == read_cursor("2024-01-01T00:00:00Z")
    assert read_cursor(100).minus(5) == read_cursor(95)
    with pytest.raises(CursorError, match="lag is a duration but the cursor is a number"):
        read_cursor(100).minus("PT1H")


def test_a_request_value_goes_to_the_query_or_into_the_path():
    request = PageRequest("https://api.example.com/v1/changes/{since}", {"a": 1})
    set_request_value(request, "path", "since", "2024-01-01T00:00:00Z")
    set_request_value(request, "query", "until", "2024-02-01T00:00:00Z")
    assert request.url == "https://api.example.com/v1/changes/2024-01-01T00:00:00Z"
    assert request.params == {"a": 1, "until": "2024-02-01T00:00:00Z"}


def spec(**options) -> ApiIncremental:
    return ApiIncremental.model_validate({"cursor_path": "updated_at", "param": "since", **options})


NOW = datetime(2024, 3, 1, tzinfo=UTC)


def test_windows_walk_from_the_committed_cursor_less_lag_to_the_end():
    walk = ApiWalk(spec(initial_value="2024-01-01T00:00:00Z", window="P20D", end_param="until", lag="PT1H"),
                   read_cursor("2024-02-01T01:00:00Z"), "shop.x", NOW)
    assert [(w.start.text(), w.end.text(), w.last) for w in walk.windows] == [
        ("2024-02-01T00:00:00Z", "2024-02-21T00:00:00Z", False), ("2024-02-21T00:00:00Z", "2024-03-01T00:00:00Z", True)]
    request = walk.request(PageRequest("https://x/y", {"per_page": 10}), walk.windows[0])
    assert request.params == {"per_page": 10, "since": "2024-02-01T00:00:00Z", "until": "2024-02-21T00:00:00Z"}


def test_the_first_run_starts_at_initial_value_without_lag():
    walk = ApiWalk(spec(initial_value="2024-01-01T00:00:00Z", lag="PT1H"), None, "shop.x", NOW)
    assert walk.windows[0].start.text() == "2024-01-01T00:00:00Z" and walk.windows[0].end is None


def test_unsorted_pages_move_the_cursor_only_at_the_windows_end():
    walk = ApiWalk(spec(), read_cursor("2024-01-01T00:00:00Z"), "shop.x", NOW)
    [window] = walk.windows
    walk.take([{"updated_at": "2024-01-05T00:00:00Z"}, {"updated_at": "2024-01-02T00:00:00Z"}], 0)
    assert walk.checkpoint(window, window_done=False) is None
    walk.take([{"updated_at": "2024-01-03T00:00:00Z"}, {"other": 1}], 2)
    assert walk.checkpoint(window, window_done=True).text() == "2024-01-05T00:00:00Z"


def test_ascending_pages_move_the_cursor_page_by_page():
    walk = ApiWalk(spec(sorted="asc"), None, "shop.x", NOW)
    [window] = walk.windows
    walk.take([{"updated_at": 3}, {"updated_at": 7}], 0)
    assert walk.checkpoint(window, window_done=False) == read_cursor(7)


def test_client_side_drops_what_is_not_newer_and_stops_a_descending_walk():
    walk = ApiWalk(spec(on="client", sorted="desc", param=None), read_cursor(5), "shop.x", NOW)
    kept = walk.take([{"updated_at": 9, "id": 1}, {"updated_at": 6, "id": 2}, {"updated_at": 5, "id": 3}], 0)
    assert [r["id"] for r in kept] == [1, 2] and walk.stopped and walk.dropped == 1
    assert walk.request(PageRequest("https://x/y"), walk.windows[0]).params == {}   # nothing sent


def test_a_sql_chunk_commits_below_its_last_value_unless_it_is_the_last_chunk():
    values = [datetime(2024, 1, 1), datetime(2024, 1, 2), datetime(2024, 1, 3), datetime(2024, 1, 3)]
    assert chunk_checkpoint(values, last=False, where="erp.x") == read_cursor(datetime(2024, 1, 2))
    assert chunk_checkpoint(values, last=True, where="erp.x") == read_cursor(datetime(2024, 1, 3))
    assert chunk_checkpoint([4, 4, 4], last=False, where="erp.x") is None


def test_a_request_value_goes_into_the_json_body_under_a_graphql_models_variables():
    from shared.extract.request_body import body_arguments
    from shared.extract.types import RequestBody

    request = PageRequest("https://api.example.com/graphql", method="POST",
                          body=RequestBody("json", {"query": "query($since: DateTime)", "variables": {"n": 5}},
                                           at="variables"))
    walk = ApiWalk(spec(location="body", end_param="until", end_value="2024-02-01T00:00:00Z",
                        initial_value="2024-01-01T00:00:00Z"), None, "shop.x", NOW)
    sent = walk.request(request, walk.windows[0])
    assert body_arguments(sent.body) == {"json": {"query": "query($since: DateTime)", "variables": {
        "n": 5, "since": "2024-01-01T00:00:00Z", "until": "2024-02-01T00:00:00Z"}}}
    assert request.body is not None and request.body.values == {}   # the manifest's request is left as it was
