"""Date formats of columns and body formats of responses (issue 14 §6), over bare objects."""
from __future__ import annotations

import gzip
from datetime import UTC, date, datetime

import pytest
from requests.structures import CaseInsensitiveDict

from shared.config.models import Column
from shared.errors import BadValue, FetchError
from shared.extract.body_formats import body_format, decoded, gunzip
from shared.extract.limits import ResponseTooLarge
from shared.extract.records import converter_for
from shared.extract.types import PageResponse


def read(value, **column):
    return converter_for(Column(**column))(value)


@pytest.mark.parametrize("value, expected", [
    ("Fri, 24 May 2019 17:44:46 +0000", datetime(2019, 5, 24, 17, 44, 46, tzinfo=UTC)),
    ("Fri, 24 May 2019 19:44:46 +0200", datetime(2019, 5, 24, 17, 44, 46, tzinfo=UTC)),
    ("24 May 2019 17:44:46 GMT", datetime(2019, 5, 24, 17, 44, 46, tzinfo=UTC)),
    ("2019-05-24T17:44:46Z", datetime(2019, 5, 24, 17, 44, 46, tzinfo=UTC)),   # ISO still read
])
def test_rfc2822(value, expected):
    assert read(value, type="datetime", format="rfc2822") == expected


def test_strptime_pattern_naive_is_utc_and_offsets_convert():
    assert read("24/05/2019 17:44", type="datetime", format="%d/%m/%Y %H:%M") == datetime(2019, 5, 24, 17, 44,
                                                                                          tzinfo=UTC)
    assert read("24/05/2019 19:44 +0200", type="datetime", format="%d/%m/%Y %H:%M %z") == datetime(
        2019, 5, 24, 17, 44, tzinfo=UTC)


@pytest.mark.parametrize("unit, value, expected", [
    ("s", 1558719886, datetime(2019, 5, 24, 17, 44, 46, tzinfo=UTC)),
    ("ms", 1558719886123, datetime(2019, 5, 24, 17, 44, 46, 123000, tzinfo=UTC)),
    ("ms", "1558719886123", datetime(2019, 5, 24, 17, 44, 46, 123000, tzinfo=UTC)),
    ("us", 1558719886123456, datetime(2019, 5, 24, 17, 44, 46, 123456, tzinfo=UTC)),
    ("ns", 1558719886123456789, datetime(2019, 5, 24, 17, 44, 46, 123456, tzinfo=UTC)),
    ("ms", 1558719886123.0, datetime(2019, 5, 24, 17, 44, 46, 123000, tzinfo=UTC)),
    ("ms", "2019-05-24T17:44:46+00:00", datetime(2019, 5, 24, 17, 44, 46, tzinfo=UTC)),
])
def test_unix_time_units(unit, value, expected):
    assert read(value, type="datetime", unit=unit) == expected


def test_dates_take_the_written_date_or_the_instant_in_the_column_zone():
    assert read("24/05/2019", type="date", format="%d/%m/%Y") == date(2019, 5, 24)
    assert read("Fri, 24 May 2019 23:30:00 +0000", type="date", format="rfc2822", timezone="Asia/Tokyo") == date(
        2019, 5, 25)
    assert read(1558740600000, type="date", unit="ms") == date(2019, 5, 24)
    assert read(1558740600000, type="date", unit="ms", timezone="Asia/Tokyo") == date(2019, 5, 25)


@pytest.mark.parametrize("column, value, message", [
    ({"type": "datetime", "format": "%d/%m/%Y"}, "2019/05/24 x", "expected a datetime as '%d/%m/%Y' or ISO 8601"),
    ({"type": "datetime", "format": "rfc2822"}, "yesterday", "expected a datetime as 'rfc2822' or ISO 8601"),
    ({"type": "datetime", "unit": "ms"}, "soon", "expected a datetime as 'None' or ISO 8601"),
    ({"type": "datetime", "unit": "ms"}, float("nan"), "expected a datetime, got a non-finite number"),
    ({"type": "datetime", "unit": "s"}, 10 ** 20, "expected Unix time within the years 1 to 9999"),
])
def test_bad_values_say_what_was_expected_not_what_was_found(column, value, message):
    with pytest.raises(BadValue) as caught:
        read(value, **column)
    assert str(caught.value) == message


def response(content: bytes, content_type: str = "application/json") -> PageResponse:
    return PageResponse("http://api.test/x", 200, CaseInsensitiveDict({"Content-Type": content_type}),
                        content=content, decode=lambda raw: None)


def test_format_by_declaration_then_content_type_then_json():
    assert body_format("csv", CaseInsensitiveDict({"Content-Type": "application/json"})) == "csv"
    assert body_format(None, CaseInsensitiveDict({"Content-Type": "application/x-ndjson; charset=utf-8"})) == "jsonl"
    assert body_format(None, CaseInsensitiveDict({"Content-Type": "text/csv"})) == "csv"
    assert body_format(None, CaseInsensitiveDict({})) == "json"


def test_plain_json_is_left_to_the_client_decoder():
    plain = response(b'{"a": 1}')
    assert decoded(plain, None, 1) is plain


def test_jsonl_skips_blank_lines_and_names_a_bad_line():
    assert decoded(response(b'{"a": 1}\n\n{"a": 2}\r\n'), "jsonl", 1).body == [{"a": 1}, {"a": 2}]
    with pytest.raises(FetchError) as caught:
        decoded(response(b'{"a": 1}\n{"a": \n'), "jsonl", 1).body   # noqa: B018
    assert "line 2 of the JSON Lines body is not valid JSON" in str(caught.value)


def test_csv_by_header_with_bom_quotes_and_empty_fields():
    body = '\ufeffid,name,note\r\n1,"Smith, J.",\r\n2,"say ""hi""",x\r\n'.encode()
    assert decoded(response(body, "text/csv"), None, 1).body == [
        {"id": "1", "name": "Smith, J.", "note": None}, {"id": "2", "name": 'say "hi"', "note": "x"}]
    with pytest.raises(FetchError) as caught:
        decoded(response(b"id,name\n1\n", "text/csv"), None, 1)
    assert "CSV row 2 has 1 fields, the header 2" in str(caught.value)


def test_gzip_file_bodies_are_decompressed_for_any_format_within_the_size_cap():
    assert decoded(response(gzip.compress(b'{"a": [1]}')), None, 1).body == {"a": [1]}
    assert decoded(response(gzip.compress(b'{"a": 1}\n'), "application/gzip"), "jsonl", 1).body == [{"a": 1}]
    bomb = gzip.compress(b"0" * (3 << 20))
    with pytest.raises(ResponseTooLarge) as caught:
        gunzip(bomb, 2, "http://api.test/x", 200)
    assert "larger than throttle.max_response_mb (2 MB) once decompressed" in str(caught.value)
    with pytest.raises(FetchError):
        gunzip(b"\x1f\x8bnot gzip", 1, "http://api.test/x", 200)
