"""Issue 12 §3: primary keys are never altered by PII handling. Keys are exempt from the free-text
scan (in the run's process and in the scan process), a key that holds PII is hashed, and two
distinct keys that would become one after the rules fail the model instead of merging."""
from __future__ import annotations

import pytest

from shared.config.models import Column
from shared.pii.document import DocumentStripper
from shared.pii.key_guard import KeyCollision, KeyGuard, column_getter
from shared.pii.page_scan import PageScan
from shared.pii.stripper import PiiStripper

KEY = b"a-test-pii-key"
KEYS = ["ann@example.com", "bob@example.org", "+44 20 7946 0958", "10.0.0.7", "carl@example.net"]


def columns(spec: dict) -> dict[str, Column]:
    return {name: Column.model_validate(body) for name, body in spec.items()}


COLUMNS = columns({"contact": {"type": "string"}, "note": {"type": "text"}})


def test_a_plain_key_column_is_never_scanned_but_other_text_is() -> None:
    stripper = PiiStripper(COLUMNS, scan="redact", key=None, keys=("contact",))
    out = [stripper.apply({"contact": k, "note": f"write to {k}"}) for k in KEYS]
    assert [r["contact"] for r in out] == KEYS                        # ten distinct keys stay distinct
    assert all(k not in r["note"] for k, r in zip(KEYS, out, strict=True))         # the free text is still scanned
    assert stripper.scanned_columns == (("note", "redact"),)          # so the scan process never sees the key


def test_without_keys_the_same_column_is_scanned() -> None:
    stripper = PiiStripper(COLUMNS, scan="redact", key=None)
    assert {stripper.apply({"contact": k, "note": ""})["contact"] for k in KEYS[:2]} == {"[EMAIL]"}


def test_the_scan_process_leaves_keys_alone() -> None:
    stripper = PiiStripper(COLUMNS, scan="redact", key=None, keys=("contact",))
    warnings: list[str] = []
    scan = PageScan(stripper, warnings.append, "shop.people")
    records = [stripper.apply_owned_unscanned({"contact": k, "note": f"mail {k}"}) for k in KEYS]
    scan.start(records)
    scan.finish(records)
    scan.close()
    assert warnings == [] and [r["contact"] for r in records] == KEYS
    assert all("@" not in r["note"] for r in records)


def test_a_hashed_key_stays_distinct_and_unscanned() -> None:
    spec = columns({"email": {"type": "string", "pii": "hash"}, "note": {"type": "text"}})
    stripper = PiiStripper(spec, scan="hash", key=KEY, keys=("email",), where="shop.people")
    out = [stripper.apply_owned({"email": k, "note": "x"}) for k in KEYS]
    assert len({r["email"] for r in out}) == len(KEYS) and all(len(r["email"]) == 64 for r in out)


def test_two_keys_that_become_one_fail_the_model_naming_positions_not_values() -> None:
    spec = columns({"email": {"type": "string", "pii": "hash"}})
    stripper = PiiStripper(spec, scan="off", key=KEY, keys=("email",), where="shop.people")
    stripper._guard = KeyGuard("shop.people", ("email",), column_getter(("email",)))
    # a rule that collapses case stands in for any rule that maps two keys to one
    stripper._transforms = (("email", lambda value: value.lower()),)
    stripper.apply_owned({"email": "Ann@example.com"})
    stripper.apply_owned({"email": "bob@example.com"})
    stripper.apply_owned({"email": "bob@example.com"})   # the same key again is an update, not a collision
    with pytest.raises(KeyCollision) as caught:
        stripper.apply_owned({"email": "ann@example.com"})
    message = str(caught.value)
    assert message == ("shop.people: records #0 and #3 have different keys that become the same key (email) after "
                       "their PII rules; refusing to merge them into one row")
    assert "ann" not in message.lower().replace("shop.people", "")


def test_document_keys_are_not_scanned_and_hashed_keys_are_guarded() -> None:
    stripper = DocumentStripper({}, scan="redact", key=None, keys=("contact.email",))
    docs = [stripper.apply({"contact": {"email": k}, "note": f"to {k}"}) for k in KEYS[:2]]
    assert [d["contact"]["email"] for d in docs] == KEYS[:2]
    assert all("@" not in d["note"] for d in docs)


def test_probe_drafts_pii_hash_on_a_key_whose_values_hold_pii() -> None:
    from shared.probe.infer_columns import infer_columns
    from shared.probe.probe import _columns

    records = [{"code": f"member {k}", "city": "Leeds"} for k in KEYS]   # free text with PII, used as key
    drafts, free_text = _columns(infer_columns(records)[0], records, "code")
    code = next(d for d in drafts if d.name == "code")
    assert code.pii == "hash" and "keys are never scanned" in code.comment
    assert [f.column for f in free_text] == []
