"""Column rules and `pii_fields`, on every value type a record can carry."""
from __future__ import annotations

import copy
import hashlib
import hmac
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from shared.config.models import Column, PiiSpec
from shared.pii.rules import DROP, PiiKeyMissing, canonical_text, compile_rule
from shared.pii.stripper import PiiStripper

KEY = b"test-key"
UTC = UTC


def rule(spec: str | dict, redaction: str = "[REDACTED]"):
    return compile_rule(PiiSpec.model_validate(spec), key=KEY, redaction=redaction, where="col")


def reference_hash(text: str, key: bytes = KEY) -> str:
    return hmac.new(key, text.encode("utf-8"), hashlib.sha256).hexdigest()


# ---------------------------------------------------------------- hash
@pytest.mark.parametrize(("value", "text"), [
    ("jane@example.com", "jane@example.com"),
    ("Zoë Ångström", "Zoë Ångström"),
    ("", ""),
    (42, "42"),
    (3.5, "3.5"),
    (Decimal("12.50"), "12.50"),
    (True, "True"),
    (date(2024, 3, 15), "2024-03-15"),
    (datetime(2024, 3, 15, 10, 30, tzinfo=UTC), "2024-03-15T10:30:00+00:00"),
])
def test_hash_is_hmac_of_canonical_text(value, text) -> None:
    hashed = rule("hash")(value)
    assert hashed == reference_hash(text)
    assert len(hashed) == 64 and hashed == hashed.lower()


def test_hash_known_vector() -> None:
    # Pinned so that a change of canonical form or algorithm (which would break joins) fails loudly.
    assert rule("hash")("jane") == "ea6d3ad170878e9c67226b434d43049ee5ea7ac3f4cf5faa45ef931494d8293a"
    assert rule("hash")("jane") != reference_hash("jane", b"other-key")


def test_hash_none_stays_none() -> None:
    assert rule("hash")(None) is None


def test_hash_json_value_ignores_key_order() -> None:
    hashed = rule("hash")
    assert hashed({"a": 1, "b": [1, 2]}) == hashed({"b": [1, 2], "a": 1})
    assert hashed({"a": 1}) != hashed({"a": 2})


def test_hash_without_key_raises() -> None:
    with pytest.raises(PiiKeyMissing, match="'owner'"):
        compile_rule(PiiSpec(rule="hash"), key=None, redaction="x", where="owner")
    with pytest.raises(PiiKeyMissing):
        compile_rule(PiiSpec(rule="hash"), key=b"", redaction="x", where="owner")


# ---------------------------------------------------------------- mask
@pytest.mark.parametrize(("spec", "value", "expected"), [
    ("mask", "4111111111111111", "************1111"),
    ({"rule": "mask", "keep": 2}, "secret", "****et"),
    ({"rule": "mask", "keep": 0}, "secret", "******"),
    ({"rule": "mask", "keep": 10}, "abc", "abc"),
    ("mask", "", ""),
    ("mask", 12345678, "****5678"),
    ("mask", Decimal("-12.50"), "**2.50"),
    ("mask", "Zoë Ångström", "********tröm"),
    ("mask", date(2024, 3, 15), "******3-15"),
    ("mask", None, None),
])
def test_mask(spec, value, expected) -> None:
    assert rule(spec)(value) == expected


def test_mask_keeps_length_of_unicode() -> None:
    value = "日本語のテキスト"
    masked = rule({"rule": "mask", "keep": 1})(value)
    assert len(masked) == len(value) and masked.endswith("ト") and set(masked[:-1]) == {"*"}


# ---------------------------------------------------------------- redact
@pytest.mark.parametrize("value", ["jane", "", 7, 1.5, Decimal("1"), False, date(2024, 1, 1), {"a": 1}, ["x"]])
def test_redact_replaces_any_value(value) -> None:
    assert rule("redact")(value) == "[REDACTED]"
    assert rule("redact", redaction="***")(value) == "***"


def test_redact_none_stays_none() -> None:
    assert rule("redact")(None) is None


# ---------------------------------------------------------------- generalize date
DATE_TO_MONTH = {"rule": "generalize", "kind": "date"}


@pytest.mark.parametrize(("value", "expected"), [
    (date(2024, 3, 15), date(2024, 3, 1)),
    (date(2024, 12, 31), date(2024, 12, 1)),
    (datetime(2024, 3, 15, 23, 59, tzinfo=UTC), datetime(2024, 3, 1, tzinfo=UTC)),
    (datetime(2024, 3, 15, 1, 0, tzinfo=timezone(timedelta(hours=2))), datetime(2024, 3, 1, tzinfo=UTC)),
    ("2024-03-15", "2024-03"),
    ("2024-03-15T10:30:00Z", "2024-03"),
    ("1999-12-31 23:59", "1999-12"),
    ("15/03/2024", "[REDACTED]"),
    ("2024-13-45", "[REDACTED]"),
    ("March 2024", "[REDACTED]"),
    ("", "[REDACTED]"),
    (20240315, "[REDACTED]"),
    (None, None),
])
def test_generalize_date(value, expected) -> None:
    result = rule(DATE_TO_MONTH)(value)
    assert result == expected
    assert type(result) is type(expected)


def test_generalized_datetime_is_utc_aware() -> None:
    result = rule(DATE_TO_MONTH)(datetime(2024, 3, 15, 10, tzinfo=UTC))
    assert result.tzinfo is not None and result.utcoffset() == timedelta(0)


# ---------------------------------------------------------------- generalize postcode
@pytest.mark.parametrize(("spec", "value", "expected"), [
    ({"rule": "generalize", "kind": "postcode"}, "SW1A 1AA", "SW1"),
    ({"rule": "generalize", "kind": "postcode"}, "sw1a 1aa", "SW1"),
    ({"rule": "generalize", "kind": "postcode", "keep": 4}, "SW1A 1AA", "SW1A"),
    ({"rule": "generalize", "kind": "postcode", "keep": 5}, " EC1A\t1BB ", "EC1A1"),
    ({"rule": "generalize", "kind": "postcode"}, "75008", "750"),
    ({"rule": "generalize", "kind": "postcode"}, 90210, "902"),
    ({"rule": "generalize", "kind": "postcode"}, "1 0", "10"),
    ({"rule": "generalize", "kind": "postcode"}, "straße 1", "STR"),
    ({"rule": "generalize", "kind": "postcode"}, None, None),
])
def test_generalize_postcode(spec, value, expected) -> None:
    assert rule(spec)(value) == expected


def test_drop_is_a_marker() -> None:
    assert rule("drop") is DROP


def test_canonical_text_of_datetime_uses_isoformat() -> None:
    assert canonical_text(datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)) == "2024-01-02T03:04:05+00:00"


# ---------------------------------------------------------------- pii_fields
def json_stripper(fields: dict, scan: str = "off", key: bytes | None = KEY) -> PiiStripper:
    column = Column.model_validate({"type": "json", "pii_fields": fields})
    return PiiStripper({"payload": column}, scan=scan, key=key)


PAYLOAD = {
    "owner": {"name": "Jane Doe", "email": "jane@example.com", "born": "1980-05-17"},
    "contacts": [
        {"email": "a@example.com", "phone": "+44 20 7946 0958", "role": "admin"},
        {"email": "b@example.com", "role": "user"},
        {"role": "guest"},
    ],
    "by_id": {"u1": {"ssn": "123-45-6789"}, "u2": {"ssn": "987-65-4321"}, "u3": "not a dict"},
    "tags": ["vip", "Zoë"],
    "count": 3,
}


def apply_fields(fields: dict, payload=PAYLOAD):
    return json_stripper(fields).apply({"payload": payload})["payload"]


def test_fields_drop_inside_list_items() -> None:
    result = apply_fields({"contacts.*.email": "drop"})
    assert result["contacts"] == [{"phone": "+44 20 7946 0958", "role": "admin"}, {"role": "user"}, {"role": "guest"}]
    assert result["owner"] == PAYLOAD["owner"]


def test_fields_hash_nested_key() -> None:
    result = apply_fields({"owner.name": "hash"})
    assert result["owner"]["name"] == reference_hash("Jane Doe")
    assert result["owner"]["email"] == "jane@example.com"


def test_fields_star_matches_every_dict_value() -> None:
    result = apply_fields({"by_id.*.ssn": {"rule": "mask", "keep": 4}})
    assert result["by_id"] == {"u1": {"ssn": "*******6789"}, "u2": {"ssn": "*******4321"}, "u3": "not a dict"}


def test_fields_rules_on_list_elements_and_index() -> None:
    assert apply_fields({"tags.*": "redact"})["tags"] == ["[REDACTED]", "[REDACTED]"]
    assert apply_fields({"tags.1": "hash"})["tags"] == ["vip", reference_hash("Zoë")]
    assert apply_fields({"contacts.0": "drop"})["contacts"] == PAYLOAD["contacts"][1:]
    assert apply_fields({"tags.*": "drop"})["tags"] == []


def test_fields_generalize_and_whole_subtree() -> None:
    result = apply_fields({"owner.born": {"rule": "generalize", "kind": "date"}, "by_id": "redact"})
    assert result["owner"]["born"] == "1980-05"
    assert result["by_id"] == "[REDACTED]"


def test_fields_several_rules_apply_in_order() -> None:
    result = apply_fields({"contacts.*.email": "drop", "contacts.*.phone": "redact", "owner": "drop"})
    assert "owner" not in result
    assert result["contacts"][0] == {"phone": "[REDACTED]", "role": "admin"}


@pytest.mark.parametrize("path", ["missing", "owner.missing.deeper", "count.x", "contacts.9.email",
                                  "contacts.x", "tags.*.x", "count.*"])
def test_fields_missing_paths_are_fine(path: str) -> None:
    assert apply_fields({path: "drop"}) == PAYLOAD


@pytest.mark.parametrize(("value", "expected"), [(None, None), ("a string", "a string"), (12, 12),
                                               ([1, {"owner": 2}], []), ({"x": 1}, {})])
def test_fields_on_other_json_values(value, expected) -> None:
    assert apply_fields({"owner.name": "hash", "*": "drop"}, value) == expected


def test_fields_never_mutate_the_input() -> None:
    payload = copy.deepcopy(PAYLOAD)
    apply_fields({"contacts.*.email": "drop", "owner.name": "hash", "by_id.*.ssn": "mask", "tags.*": "drop"}, payload)
    assert payload == PAYLOAD


def test_fields_hash_without_key_names_the_path() -> None:
    with pytest.raises(PiiKeyMissing, match=r"'payload\.owner\.name'") as raised:
        json_stripper({"owner.name": "hash"}, key=None)
    assert raised.value.column == "payload.owner.name"


@pytest.mark.parametrize("value", [b"\x00\xffjpeg", bytearray(b"\x00\xffjpeg"), memoryview(b"\x00\xffjpeg")])
def test_hash_of_binary_data_is_hmac_of_its_bytes(value) -> None:
    expected = hmac.new(KEY, b"\x00\xffjpeg", hashlib.sha256).hexdigest()
    assert rule("hash")(value) == expected
    assert rule("hash")(value) != reference_hash(str(b"\x00\xffjpeg"))   # never the text form b'...'


def test_hash_of_text_is_unchanged_by_the_bytes_rule() -> None:
    """Text hashes as its UTF-8 bytes, as it always did: stored hashes of text values stay valid."""
    assert rule("hash")("Zoë") == rule("hash")("Zoë".encode()) == reference_hash("Zoë")


def test_binary_column_with_hash_rule_in_a_stripper() -> None:
    columns = {"id": Column.model_validate({"type": "integer"}),
               "photo": Column.model_validate({"type": "binary", "pii": "hash"})}
    stripper = PiiStripper(columns, scan="redact", key=KEY, keys=("id",))
    expected = hmac.new(KEY, b"\x89PNG", hashlib.sha256).hexdigest()
    assert stripper.apply({"id": 1, "photo": b"\x89PNG"})["photo"] == expected
