"""The PII guard (issue 17 §4): PII-named columns need a rule, a scan that sees them, or `pii: none`
with a reason; phone and national-id columns are scanned with their context; and a run whose first
page holds PII in a column nothing covers stops before writing, in both modes."""
from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
import sqlalchemy as sa

from shared.config.errors import ConfigError
from shared.config.models import Column
from shared.detect.column_names import scan_context, suggested
from shared.detect.national_ids import find_national_ids
from shared.detect.phones import find_phone_runs
from shared.detect.scrub import scrubbers
from shared.pii.stripper import PiiStripper
from shared.pipeline.run import run_models
from tests.helpers.chain import Harness, applied_target
from tests.helpers.flow import project_for

# Phones as Pagila's address table writes them: bare digit runs, 9 to 12 digits
PAGILA_PHONES = ["6172235589", "14033335568", "28303384290", "838635286649", "705814003527", "149981386302",
                 "831813733521", "717330702212", "463638624913", "965212330"]


# ---------------------------------------------------------------- validation
def _load(tmp_path: Path, columns: dict, **model) -> list[str]:
    sources = {"s": {"type": "api", "base_url": "http://127.0.0.1:1",
                     "models": {"m": {"path": "/m", "columns": columns, **model}}}}
    try:
        project_for(tmp_path, sources)
    except ConfigError as exc:
        return [issue.message for issue in exc.issues]
    return []


def test_a_scanned_email_column_passes_and_a_name_column_needs_a_rule(tmp_path):
    assert _load(tmp_path, {"email": {"type": "string"}}) == []
    assert _load(tmp_path, {"first_name": {"type": "string"}}) == [
        "column 'first_name': the name suggests a personal name and nothing covers it (the free-text scan does "
        "not recognise personal names): give it a pii rule, or pii: none with a reason"]
    assert _load(tmp_path, {"first_name": {"type": "string", "pii": "hash"}}) == []
    assert _load(tmp_path, {"first_name": {"type": "string", "pii": "none", "reason": "a product's first name"}}) == []


def test_a_phone_column_the_scan_cannot_read_is_refused(tmp_path):
    assert _load(tmp_path, {"phone": {"type": "bigint"}})[0].startswith(
        "column 'phone': the name suggests a phone number and nothing covers it (bigint columns are never scanned)")
    assert _load(tmp_path, {"phone": {"type": "string"}}, pii_scan="off")[0].endswith(
        "(its pii_scan is off): give it a pii rule, or pii: none with a reason")
    assert _load(tmp_path, {"phone": {"type": "string"}}) == []   # scanned, with the phone context


def test_types_that_cannot_hold_the_kind_pass(tmp_path):
    assert _load(tmp_path, {"email_verified_at": {"type": "datetime"}, "email_opt_in": {"type": "boolean"},
                            "postcode_count": {"type": "float"}}) == []


def test_pii_none_is_not_a_rule_the_column_is_still_scanned():
    column = Column(type="string", pii="none", reason="test data")
    assert column.rule is None and column.pii.rule.value == "none"
    stripper = PiiStripper({"note": column}, scan="redact", key=None)
    assert stripper.apply({"note": "write to jane@example.com"}) == {"note": "write to [EMAIL]"}


def test_a_camel_case_name_and_a_path_are_read_as_words():
    assert suggested("BillingPostalCode", Column(type="string")) == "a postcode"
    assert suggested("contact", Column(type="string", path="customer.mobile_phone")) == "a phone number"
    assert scan_context("Phone", Column(type="string")) == "phone"
    assert scan_context("ssn", Column(type="string")) == "national_id"
    assert scan_context("notes", Column(type="string")) is None


# ---------------------------------------------------------------- detectors with a column's context
@pytest.mark.parametrize("phone", PAGILA_PHONES + ["+44 20 7946 0958", "(202) 555-0143", "0049 30 901820"])
def test_every_pagila_phone_is_found_in_a_phone_column(phone):
    assert scrubbers((), None)["redact:phone"](phone) == "[PHONE]"


@pytest.mark.parametrize("text", PAGILA_PHONES)
def test_bare_digit_runs_outside_phone_columns_are_left_alone(text):
    assert scrubbers((), None)["redact"](text) == text


@pytest.mark.parametrize("text", ["2024-01-05", "05/01/2024", "ext. 12", "n/a", "12.50", "v2.3.1", "10:30", "123456",
                                  "ORD-2024-000123", "call 12345678901234567"])
def test_a_phone_column_keeps_dates_amounts_versions_and_overlong_runs(text):
    assert find_phone_runs(text) == []


@pytest.mark.parametrize("value, kind", [
    ("536-90-4399", "US SSN"), ("2 95 10 99 126 111 93", "FR NIR"), ("36574261809", "DE IdNr"),
    ("54362315K", "ES DNI"), ("X2482300W", "ES NIE"), ("RCCMNL83S18D969H", "IT codice fiscale"),
    ("111222333", "NL BSN"), ("AB 12 34 56 C", "UK NINO"), ("9434765919", "UK NHS number")])
def test_national_identifiers_are_found_in_their_column(value, kind):
    assert scrubbers((), None)["redact:national_id"](f"id: {value}") == "id: [NATIONAL_ID]", kind
    assert scrubbers((), None)["redact"](value) == value   # no context: left to a rule


@pytest.mark.parametrize("text", ["2024-01-05", "order 12345", "000-00-0000", "666-12-3456", "DE123", "AB123456E",
                                  "GB 12 34 56 A", "36574261808", "RCCMNL83S18D969X", "54362315A", "1.234,56 EUR"])
def test_national_id_precision(text):
    assert find_national_ids(text) == []


def test_the_scan_process_scans_a_phone_column_as_this_process_does():
    from shared.pii.page_scan import PageScan
    stripper = PiiStripper({"phone": Column(type="string"), "note": Column(type="text")}, scan="redact", key=None)
    assert dict(stripper.scanned_columns) == {"phone": "redact:phone", "note": "redact"}
    records = [{"phone": p, "note": p} for p in PAGILA_PHONES]
    warnings: list[str] = []
    scan = PageScan(stripper, warnings.append, "s.m")
    try:
        scan.start(records)
        scan.finish(records)
    finally:
        scan.close()
    assert warnings == []
    assert records == [{"phone": "[PHONE]", "note": p} for p in PAGILA_PHONES]


# ---------------------------------------------------------------- the first page, in both modes
def _source_db(path: Path) -> str:
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE contacts (id INTEGER PRIMARY KEY, notes TEXT, city TEXT)")
        db.executemany("INSERT INTO contacts VALUES (?, ?, ?)",
                       [(i, f"met at the fair, write to person{i}@example.com" if i % 3 == 0 else "called back",
                         "Lyon") for i in range(1, 31)])
    return f"sqlite:///{path}"


def _project(tmp_path: Path, notes: dict):
    sources = {"crm": {"type": "sql", "url": _source_db(tmp_path / "crm.db"), "models": {"contacts": {
        "table": "contacts", "primary_key": ["id"], "chunk_size": 10,
        "columns": {"id": {"type": "integer"}, "notes": notes, "city": {"type": "string", "length": 40}}}}}}
    return project_for(tmp_path, sources, env={"KSPYDER_STATE_DIR": str(tmp_path / "state")})


MESSAGE = ("model crm.contacts: column 'notes' holds e-mail addresses in 3 of 10 records of the first page, and "
           "nothing "
           "covers it (its pii_scan is off): nothing was written; give the column a pii rule or a scan, or pii: none "
           "with a reason")


def _rows(engine: sa.Engine) -> int:
    with engine.connect() as connection:
        return connection.execute(sa.text("SELECT COUNT(*) FROM crm.contacts")).scalar()


def test_embedded_run_stops_before_writing_an_unguarded_column(tmp_path):
    project = _project(tmp_path, {"type": "text", "pii_scan": "off"})
    engine = applied_target(project, tmp_path / "target.db")
    try:
        summary = run_models(project, project.models(), engine=engine)
        [result] = summary.results
        assert result.error == MESSAGE
        assert _rows(engine) == 0
    finally:
        engine.dispose()


def test_queue_chain_stops_before_writing_an_unguarded_column(tmp_path):
    project = _project(tmp_path, {"type": "text", "pii_scan": "off"})
    harness = Harness(tmp_path, project)
    try:
        run_id = harness.run()
        status = harness.status(run_id)
        assert MESSAGE in str(status)
        assert _rows(harness.engine) == 0
    finally:
        harness.engine.dispose()


@pytest.mark.parametrize("notes", [{"type": "text"}, {"type": "text", "pii_scan": "off", "pii": "none",
                                                      "reason": "addresses of the shop's own mailboxes"}])
def test_a_scanned_or_stated_column_loads(tmp_path, notes):
    project = _project(tmp_path, notes)
    engine = applied_target(project, tmp_path / "target.db")
    try:
        assert run_models(project, project.models(), engine=engine).ok
        assert _rows(engine) == 30
    finally:
        engine.dispose()
