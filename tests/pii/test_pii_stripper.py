"""`PiiStripper`: the per-model policy that every extracted record goes through."""
from __future__ import annotations

import copy
import hashlib
import hmac
import re
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from shared.config.models import Column, ModelBase
from shared.config.settings import PiiSettings
from shared.pii.rules import PiiKeyMissing
from shared.pii.stripper import PiiStripper

KEY = b"k1"


def columns(spec: dict) -> dict[str, Column]:
    return {name: Column.model_validate(body) for name, body in spec.items()}


COLUMNS = columns({
    "id": {"type": "integer"},
    "full_name": {"type": "string", "pii": "hash"},
    "email": {"type": "string", "pii": "drop"},
    "card": {"type": "string", "pii": {"rule": "mask", "keep": 4}},
    "notes": {"type": "text"},
    "city": {"type": "string"},
    "born": {"type": "date", "pii": {"rule": "generalize", "kind": "date"}},
    "seen": {"type": "datetime"},
    "balance": {"type": "decimal"},
    "active": {"type": "boolean"},
    "payload": {"type": "json", "pii_fields": {"contacts.*.email": "drop"}},
    "ssn": {"type": "string", "pii": "redact"},
})
RECORD = {
    "id": 7, "full_name": "Jane Doe", "email": "jane@example.com", "card": "4111111111111111",
    "notes": "Call me on +44 20 7946 0958 or jane@example.com about ORD-2024-000123",
    "city": "London", "born": date(1980, 5, 17), "seen": datetime(2024, 3, 15, 10, tzinfo=UTC),
    "balance": Decimal("12.50"), "active": True,
    "payload": {"contacts": [{"email": "x@example.org", "note": "ip 10.0.0.1"}], "mail@key.com": "fine"},
    "ssn": "123-45-6789",
}


def hmac_hex(text: str, key: bytes = KEY) -> str:
    return hmac.new(key, text.encode(), hashlib.sha256).hexdigest()


def test_output_columns_in_declared_order_without_drops() -> None:
    stripper = PiiStripper(COLUMNS, scan="redact", key=KEY)
    assert stripper.output_columns == ["id", "full_name", "card", "notes", "city", "born", "seen", "balance",
                                       "active", "payload", "ssn"]


def test_apply_full_record() -> None:
    out = PiiStripper(COLUMNS, scan="redact", key=KEY).apply(RECORD)
    assert out == {
        "id": 7, "full_name": hmac_hex("Jane Doe"), "card": "************1111",
        "notes": "Call me on [PHONE] or [EMAIL] about ORD-2024-000123",
        "city": "London", "born": date(1980, 5, 1), "seen": RECORD["seen"], "balance": Decimal("12.50"),
        "active": True, "payload": {"contacts": [{"note": "ip [IP]"}], "mail@key.com": "fine"},
        "ssn": "[REDACTED]",
    }
    assert list(out) == PiiStripper(COLUMNS, scan="redact", key=KEY).output_columns


def test_apply_returns_new_dict_and_leaves_record_alone() -> None:
    record = copy.deepcopy(RECORD)
    stripper = PiiStripper(COLUMNS, scan="redact", key=KEY)
    out = stripper.apply(record)
    assert record == RECORD
    assert out is not record and out["payload"] is not record["payload"]


def test_extra_keys_are_not_copied_and_missing_become_none() -> None:
    stripper = PiiStripper(columns({"a": {"type": "string"}, "b": {"type": "integer"}}), scan="off", key=None)
    assert stripper.apply({"a": "x", "zzz": "leak"}) == {"a": "x", "b": None}


def test_none_values_pass_every_rule() -> None:
    out = PiiStripper(COLUMNS, scan="hash", key=KEY).apply({name: None for name in COLUMNS})
    assert out == {name: None for name in PiiStripper(COLUMNS, scan="off", key=KEY).output_columns}


def test_no_rules_scan_off_is_a_plain_copy() -> None:
    cols = columns({"a": {"type": "text"}, "b": {"type": "json"}})
    record = {"a": "jane@example.com", "b": {"e": "jane@example.com"}}
    assert PiiStripper(cols, scan="off", key=None).apply(record) == record


def test_drop_only_model() -> None:
    stripper = PiiStripper(columns({"a": {"type": "string", "pii": "drop"}, "b": {"type": "integer"}}),
                           scan="off", key=None)
    assert stripper.output_columns == ["b"]
    assert stripper.apply({"a": "secret", "b": 1}) == {"b": 1}


# ---------------------------------------------------------------- keys
@pytest.mark.parametrize("key", [None, b""])
def test_hash_rule_without_key_names_the_column(key) -> None:
    with pytest.raises(PiiKeyMissing, match="'full_name'") as raised:
        PiiStripper(COLUMNS, scan="off", key=key)
    assert raised.value.column == "full_name"
    assert isinstance(raised.value, ValueError)


def test_scan_hash_without_key_names_first_scanned_column() -> None:
    cols = columns({"id": {"type": "integer"}, "ssn": {"type": "string", "pii": "redact"},
                    "notes": {"type": "text"}, "more": {"type": "text"}})
    with pytest.raises(PiiKeyMissing, match="'notes'"):
        PiiStripper(cols, scan="hash", key=None)


def test_scan_hash_without_key_and_nothing_to_scan_is_allowed() -> None:
    # Nothing would ever be hashed, so there is nothing to refuse.
    stripper = PiiStripper(columns({"id": {"type": "integer"}}), scan="hash", key=None)
    assert stripper.apply({"id": 1}) == {"id": 1}


def test_redact_and_mask_need_no_key() -> None:
    cols = columns({"a": {"type": "string", "pii": "mask"}, "b": {"type": "text"}})
    assert PiiStripper(cols, scan="redact", key=None).apply({"a": "abcdef", "b": "x@y.com"}) == {
        "a": "**cdef", "b": "[EMAIL]"}


def test_invalid_scan_mode() -> None:
    with pytest.raises(ValueError, match="pii scan"):
        PiiStripper(COLUMNS, scan="mask", key=KEY)


# ---------------------------------------------------------------- hash stability
def test_hash_stable_across_instances_and_differs_by_key() -> None:
    record = {"full_name": "Zoë Ångström", "id": 1}
    first = PiiStripper(COLUMNS, scan="off", key=KEY).apply(record)["full_name"]
    second = PiiStripper(COLUMNS, scan="off", key=b"k1").apply(dict(record))["full_name"]
    other = PiiStripper(COLUMNS, scan="off", key=b"k2").apply(record)["full_name"]
    assert first == second == hmac_hex("Zoë Ångström")
    assert other != first and len(other) == 64


def test_scan_hash_tokens_are_stable_and_keyed() -> None:
    cols = columns({"notes": {"type": "text"}})
    text = "mail jane@example.com or call 020 7946 0958"
    one = PiiStripper(cols, scan="hash", key=KEY).apply({"notes": text})["notes"]
    two = PiiStripper(cols, scan="hash", key=KEY).apply({"notes": text})["notes"]
    other = PiiStripper(cols, scan="hash", key=b"k2").apply({"notes": text})["notes"]
    assert one == two == (f"mail [EMAIL:{hmac_hex('jane@example.com')[:16]}] "
                          f"or call [PHONE:{hmac_hex('020 7946 0958')[:16]}]")
    assert other != one and re.fullmatch(r"mail \[EMAIL:[0-9a-f]{16}\] or call \[PHONE:[0-9a-f]{16}\]", other)


# ---------------------------------------------------------------- scanning
def test_scan_on_json_columns_recurses_into_values_not_keys() -> None:
    cols = columns({"doc": {"type": "json"}})
    doc = {"jane@example.com": "key kept", "list": ["4111 1111 1111 1111", 5, None, True, {"ip": "::1"}],
           "nested": {"deep": [["+1-202-555-0143"]]}, "n": 1.5}
    out = PiiStripper(cols, scan="redact", key=None).apply({"doc": doc})["doc"]
    assert out == {"jane@example.com": "key kept", "list": ["[CARD]", 5, None, True, {"ip": "[IP]"}],
                   "nested": {"deep": [["[PHONE]"]]}, "n": 1.5}


def test_scan_on_json_string_value() -> None:
    out = PiiStripper(columns({"doc": {"type": "json"}}), scan="redact", key=None).apply({"doc": "a@b.com"})
    assert out == {"doc": "[EMAIL]"}


def test_pii_fields_apply_before_scan() -> None:
    cols = columns({"doc": {"type": "json", "pii_fields": {"owner": {"rule": "mask", "keep": 3}}}})
    out = PiiStripper(cols, scan="redact", key=None).apply({"doc": {"owner": "me@x.com", "memo": "me@x.com"}})
    assert out == {"doc": {"owner": "*****com", "memo": "[EMAIL]"}}


def test_scan_skipped_for_columns_with_a_rule() -> None:
    cols = columns({"masked": {"type": "string", "pii": {"rule": "mask", "keep": 20}},
                    "postcode": {"type": "string", "pii": {"rule": "generalize", "kind": "postcode", "keep": 20}},
                    "free": {"type": "string"}})
    value = "jane@example.com"
    out = PiiStripper(cols, scan="redact", key=None).apply({"masked": value, "postcode": "192.168.1.1", "free": value})
    assert out == {"masked": value, "postcode": "192.168.1.1", "free": "[EMAIL]"}


def test_scan_off_leaves_text() -> None:
    cols = columns({"notes": {"type": "text"}})
    assert PiiStripper(cols, scan="off", key=None).apply({"notes": "a@b.com"}) == {"notes": "a@b.com"}


def test_scan_uses_terms() -> None:
    cols = columns({"notes": {"type": "text"}})
    out = PiiStripper(cols, scan="redact", key=None, terms=["Acme Holdings", "jdoe"]).apply(
        {"notes": "JDOE works at acme holdings, not jdoe2"})
    assert out == {"notes": "[TERM] works at [TERM], not jdoe2"}


def test_non_text_values_are_not_scanned() -> None:
    cols = columns({"n": {"type": "bigint"}, "d": {"type": "decimal"}})
    record = {"n": 4111111111111111, "d": Decimal("4111111111111111")}
    assert PiiStripper(cols, scan="redact", key=None).apply(record) == record


# ---------------------------------------------------------------- for_model
def test_for_model_uses_settings_key_redaction_and_terms() -> None:
    model = ModelBase.model_validate({
        "primary_key": ["id"], "pii_terms": ["Jane"],
        "columns": {"id": {"type": "string", "pii": "hash"}, "ssn": {"type": "string", "pii": "redact"},
                    "notes": {"type": "text"}}})
    settings = PiiSettings(scan="redact", key="s3cret", redaction="<gone>")
    stripper = PiiStripper.for_model(model, settings, "hash")
    out = stripper.apply({"id": "u1", "ssn": "1", "notes": "Jane"})
    assert out == {"id": hmac_hex("u1", b"s3cret"), "ssn": "<gone>",
                   "notes": f"[TERM:{hmac_hex('Jane', b's3cret')[:16]}]"}


def test_for_model_without_key_refuses_hash() -> None:
    model = ModelBase.model_validate({"columns": {"id": {"type": "string", "pii": "hash"}}})
    with pytest.raises(PiiKeyMissing, match="'id'"):
        PiiStripper.for_model(model, PiiSettings(), "off")



def test_a_column_can_narrow_or_widen_the_model_scan():
    from shared.config.models import Column as _Column
    from shared.pii.rules import PiiKeyMissing as _Missing
    from shared.pii.stripper import PiiStripper as _Stripper

    columns = {"city": _Column(type="string"), "notes": _Column(type="text", pii_scan="redact"),
               "memo": _Column(type="text", pii_scan="off")}
    stripper = _Stripper(columns, scan="off", key=None)
    out = stripper.apply({"city": "mail a@b.example", "notes": "mail a@b.example", "memo": "mail a@b.example"})
    assert out == {"city": "mail a@b.example", "notes": "mail [EMAIL]", "memo": "mail a@b.example"}
    widened = _Stripper({"memo": _Column(type="text", pii_scan="off"), "x": _Column(type="text")}, scan="redact",
                        key=None)
    assert widened.apply({"memo": "a@b.example", "x": "a@b.example"}) == {"memo": "a@b.example", "x": "[EMAIL]"}
    with pytest.raises(_Missing):
        _Stripper({"notes": _Column(type="text", pii_scan="hash")}, scan="off", key=None)
