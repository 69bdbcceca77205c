"""Blob-drop ingestion without Azure: `ingest_file` into a SQLite target with the plan applied and a
ledger on local storage. Formats, conversion, PII, errors that name line and column (never values),
unknown models, and re-ingesting the same file."""
from __future__ import annotations

import hashlib
import json
from decimal import Decimal

import pytest
import sqlalchemy as sa

from shared.inbox.drops import IngestError, ingest_file
from shared.ledger import RunLedger
from shared.storage import LocalBlobStore
from tests.helpers.chain import applied_target
from tests.helpers.flow import project_for
from tests.helpers.inbox import SECRET_EMAIL, SECRET_NAME, customer, models


@pytest.fixture
def env(tmp_path):
    project = project_for(tmp_path, {"shop": {"type": "api", "base_url": "http://127.0.0.1:9", "models": models()}},
                          {"target_url": f"sqlite:///{tmp_path / 'unused.db'}",
                           "storage": {"root": str(tmp_path / "storage")}})
    engine = applied_target(project, tmp_path / "target.db")
    ledger = RunLedger(LocalBlobStore(tmp_path / "ledger"))
    yield project, engine, ledger
    engine.dispose()


def rows(engine, table: str, *columns: str) -> list[tuple]:
    with engine.connect() as connection:
        t = sa.Table(table, sa.MetaData(), schema="shop", autoload_with=connection)
        return sorted(tuple(r) for r in connection.execute(sa.select(*(t.c[c] for c in columns))))


def test_json_array_is_shaped_stripped_and_loaded(env):
    project, engine, ledger = env
    data = json.dumps([customer(1), customer(2)]).encode()
    result = ingest_file(project, "shop", "customers", "batch.json", data, engine, ledger)
    assert (result.records, result.rows, result.batches, result.format) == (2, 2, 1, "json")
    assert rows(engine, "customers", "id", "city", "balance") == [(1, "City 1", Decimal("10.50")),
                                                                  (2, "City 2", Decimal("10.50"))]
    run = ledger.get(result.run_id)
    assert run.status == "succeeded" and run.trigger == "inbox" and run.models == ["shop.customers"]
    assert run.summary["file"] == "shop/customers/batch.json" and run.summary["records"] == 2
    assert ledger.pages(result.run_id, "shop.customers", "loaded") == 1


def test_json_lines_in_batches(env):
    project, engine, ledger = env
    data = "".join(json.dumps(customer(i)) + "\n" for i in range(1, 8)).encode()
    result = ingest_file(project, "shop", "customers", "many.jsonl", data, engine, ledger, batch_size=3)
    assert (result.records, result.rows, result.batches) == (7, 7, 3)
    assert [r[0] for r in rows(engine, "customers", "id")] == list(range(1, 8))
    # the same lines in a .json file are recognised as JSON Lines too
    result = ingest_file(project, "shop", "customers", "many.json", data, engine, ledger)
    assert result.records == 7


def test_csv_values_are_converted(env):
    project, engine, ledger = env
    data = ("\ufeffid,full_name,email,address.city,balance,active,created,tags,unknown\n"
            f"1,{SECRET_NAME},{SECRET_EMAIL},Paris,12.30,yes,2024-05-01T12:00:00Z,\"[\"\"x\"\"]\",zzz\n"
            f"2,{SECRET_NAME},{SECRET_EMAIL},\"Multi\nLine\",,no,,,\n").encode()
    result = ingest_file(project, "shop", "customers", "people.csv", data, engine, ledger)
    assert (result.records, result.rows) == (2, 2)
    got = rows(engine, "customers", "id", "city", "balance", "active", "tags")
    assert got[0] == (1, "Paris", Decimal("12.30"), True, ["x"])
    assert got[1] == (2, "Multi\nLine", None, False, None)


def test_csv_headers_may_be_column_names(env):
    project, engine, ledger = env
    data = b"id,city\n5,Oslo\n"
    ingest_file(project, "shop", "customers", "by-name.csv", data, engine, ledger)
    assert rows(engine, "customers", "id", "city") == [(5, "Oslo")]


def test_records_path_wrapper(env):
    project, engine, ledger = env
    data = json.dumps({"data": {"items": [customer(3), customer(4)]}, "meta": {}}, indent=2).encode()
    result = ingest_file(project, "shop", "customers", "page.json", data, engine, ledger)
    assert result.records == 2
    # a wrapper on a single line is a wrapper, not one JSON Lines record
    data = json.dumps({"data": {"items": [customer(5)]}}).encode()
    assert ingest_file(project, "shop", "customers", "one-line.json", data, engine, ledger).records == 1
    assert [r[0] for r in rows(engine, "customers", "id")] == [3, 4, 5]


def test_pii_is_dropped_and_hashed(env, tmp_path):
    project, engine, ledger = env
    ingest_file(project, "shop", "customers", "p.json", json.dumps([customer(1)]).encode(), engine, ledger)
    with engine.connect() as connection:
        columns = [c["name"] for c in sa.inspect(connection).get_columns("customers", schema="shop")]
        assert "email" not in columns
        [(name,)] = connection.execute(sa.text("SELECT name FROM shop.customers")).all()
    assert name and name != SECRET_NAME and SECRET_NAME not in name
    dump = (tmp_path / "target.db").read_bytes() + b"".join(p.read_bytes() for p in (tmp_path / "ledger").rglob("*")
                                                             if p.is_file())
    assert SECRET_EMAIL.encode() not in dump and SECRET_NAME.encode() not in dump


def test_bad_value_names_line_and_column_not_the_value(env):
    project, engine, ledger = env
    data = b"id,balance\n1,1.00\n2,not-a-number-SECRET\n"
    with pytest.raises(IngestError) as caught:
        ingest_file(project, "shop", "customers", "bad.csv", data, engine, ledger)
    message = str(caught.value)
    assert "bad.csv" in message and "line 3" in message and "'balance'" in message
    assert "SECRET" not in message
    [run] = ledger.recent()
    assert run.status == "failed" and run.summary["error"] == message
    assert rows(engine, "customers", "id") == []      # nothing of a failed file is loaded...
    # ...in its batch: JSON Lines report the line, arrays the record number
    with pytest.raises(IngestError, match=r"line 2: .*column 'active'"):
        ingest_file(project, "shop", "customers", "bad.jsonl",
                    (json.dumps(customer(1)) + "\n" + json.dumps(customer(2, active="maybe")) + "\n").encode(),
                    engine, ledger)
    with pytest.raises(IngestError, match=r"record 2: .*column 'active'"):
        body = json.dumps([customer(1), customer(2, active="maybe")]).encode()
        ingest_file(project, "shop", "customers", "bad.json", body,
                    engine, ledger)
    with pytest.raises(IngestError, match=r"line 2: not valid JSON") as caught:
        ingest_file(project, "shop", "customers", "broken.jsonl", b'{"id": 1}\n{"id": SECRET\n', engine, ledger)
    assert "SECRET" not in str(caught.value)


def test_unknown_source_or_model_lists_the_valid_ones(env):
    project, engine, ledger = env
    with pytest.raises(IngestError, match=r"unknown model 'nope' of source 'shop' \(models of shop: countries, "
                                          r"customers\)"):
        ingest_file(project, "shop", "nope", "x.json", b"[]", engine, ledger)
    with pytest.raises(IngestError, match=r"unknown source 'crm' \(sources: shop\)"):
        ingest_file(project, "crm", "customers", "x.json", b"[]", engine, ledger)
    assert ledger.recent() == []


def test_unsupported_extension(env):
    project, engine, ledger = env
    with pytest.raises(IngestError, match=r"shop/customers/report.xlsx: unsupported file type; drop .json, .jsonl, "
                                          r".csv"):
        ingest_file(project, "shop", "customers", "report.xlsx", b"PK", engine, ledger)


def test_csv_without_key_column_is_refused(env):
    project, engine, ledger = env
    with pytest.raises(IngestError, match=r"line 1: the header row lacks the primary key column\(s\) id"):
        ingest_file(project, "shop", "customers", "nokey.csv", b"city\nOslo\n", engine, ledger)


def test_reingesting_the_same_file_gives_the_same_rows(env):
    project, engine, ledger = env
    data = json.dumps([customer(1), customer(2), customer(1, address={"city": "Later"})]).encode()
    first = ingest_file(project, "shop", "customers", "same.json", data, engine, ledger)
    before = rows(engine, "customers", "id", "name", "city", "balance", "active", "created_at", "tags")
    second = ingest_file(project, "shop", "customers", "same.json", data, engine, ledger)
    assert rows(engine, "customers", "id", "name", "city", "balance", "active", "created_at", "tags") == before
    assert [r[2] for r in before] == ["Later", "City 2"]       # the later record of a key wins
    assert first.run_id != second.run_id and (first.rows, second.rows) == (2, 2)
    # a keyless model is replaced by the file, so re-dropping it converges too
    countries = b"code,name\nFR,France\nNO,Norway\n"
    for _ in range(2):
        ingest_file(project, "shop", "countries", "c.csv", countries, engine, ledger)
    assert rows(engine, "countries", "code", "name") == [("FR", "France"), ("NO", "Norway")]


def test_hashed_key_is_deterministic(env):
    """The name hash is keyed: the same input hashes the same way on each drop (sanity for upserts)."""
    project, engine, ledger = env
    ingest_file(project, "shop", "customers", "h1.json", json.dumps([customer(1)]).encode(), engine, ledger)
    [(h1,)] = rows(engine, "customers", "name")
    ingest_file(project, "shop", "customers", "h2.json", json.dumps([customer(1)]).encode(), engine, ledger)
    assert rows(engine, "customers", "name") == [(h1,)]
    assert h1 != hashlib.sha256(SECRET_NAME.encode()).hexdigest()


# ---------------------------------------------------------------- drops into a keyless model
def countries_csv(*pairs: tuple[str, str]) -> bytes:
    return ("code,name\n" + "".join(f"{code},{name}\n" for code, name in pairs)).encode()


def test_two_files_into_a_keyless_model_both_stay(env):
    """The 0-row bug: each file used to replace the whole table. Each file now replaces its own rows."""
    project, engine, ledger = env
    ingest_file(project, "shop", "countries", "a.csv", countries_csv(("FR", "France"), ("NO", "Norway")), engine,
                ledger)
    ingest_file(project, "shop", "countries", "b.csv", countries_csv(("DE", "Germany")), engine, ledger)
    assert rows(engine, "countries", "code") == [("DE",), ("FR",), ("NO",)]


def test_redropping_a_file_replaces_only_its_rows(env):
    project, engine, ledger = env
    first = ingest_file(project, "shop", "countries", "a.csv", countries_csv(("FR", "France"), ("NO", "Norway")),
                        engine, ledger)
    ingest_file(project, "shop", "countries", "b.csv", countries_csv(("DE", "Germany")), engine, ledger)
    again = ingest_file(project, "shop", "countries", "a.csv", countries_csv(("IT", "Italy")), engine, ledger)
    assert rows(engine, "countries", "code") == [("DE",), ("IT",)]
    # the rows carry the file's id, the same on every drop of that file, never its name
    assert first.file_id == again.file_id and first.file_id.startswith("inbox-") and len(first.file_id) == 36
    tagged = rows(engine, "countries", "code", "_kspyder_run_id")
    assert ("IT", first.file_id) in tagged and all("a.csv" not in tag for _, tag in tagged)
    assert ledger.get(again.run_id).summary["file_id"] == first.file_id
    # an empty re-drop empties that file's rows only
    ingest_file(project, "shop", "countries", "a.csv", b"code,name\n", engine, ledger)
    assert rows(engine, "countries", "code") == [("DE",)]


def test_a_failing_redrop_leaves_the_files_earlier_rows(env):
    """One transaction per file: a failure in a later batch rolls back the delete and every batch."""
    project, engine, ledger = env
    ingest_file(project, "shop", "countries", "a.jsonl", b'{"code": "FR", "name": "France"}\n', engine, ledger)
    bad = b'{"code": "IT", "name": "Italy"}\n{"code": "ES", "name": "Spain"}\n{"code": broken\n'
    with pytest.raises(IngestError, match="line 3"):
        ingest_file(project, "shop", "countries", "a.jsonl", bad, engine, ledger, batch_size=1)
    assert rows(engine, "countries", "code") == [("FR",)]


def test_duplicate_delivery_of_a_version_is_a_no_op(env):
    project, engine, ledger = env
    data = countries_csv(("FR", "France"))
    first = ingest_file(project, "shop", "countries", "a.csv", data, engine, ledger, version="etag-1")
    again = ingest_file(project, "shop", "countries", "a.csv", data, engine, ledger, version="etag-1")
    assert not first.skipped and again.skipped and again.run_id == first.run_id
    assert [r.run_id for r in ledger.recent()] == [first.run_id]       # a skipped delivery is no run
    # a new version of the same file is loaded, and replaces the file's rows
    newer = ingest_file(project, "shop", "countries", "a.csv", countries_csv(("NO", "Norway")), engine, ledger,
                        version="etag-2")
    assert not newer.skipped and rows(engine, "countries", "code") == [("NO",)]


def test_the_same_file_delivered_twice_at_once_is_loaded_once(env):
    project, engine, ledger = env
    import threading
    data = "".join(json.dumps(customer(i)) + "\n" for i in range(1, 40)).encode()
    countries = countries_csv(*((f"C{i}", f"Country {i}") for i in range(30)))
    barrier, results, errors = threading.Barrier(4), [], []

    def deliver(model: str, name: str, body: bytes) -> None:
        try:
            barrier.wait()
            results.append(ingest_file(project, "shop", model, name, body, engine, ledger, version="v1", batch_size=7))
        except Exception as exc:   # surfaced by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=deliver, args=args) for args in
               [("customers", "c.jsonl", data)] * 2 + [("countries", "k.csv", countries)] * 2]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(r.skipped for r in results) == [False, False, True, True]
    assert len(rows(engine, "countries", "code")) == 30 and len(rows(engine, "customers", "id")) == 39
    assert len(ledger.recent()) == 2


def test_a_delivery_waits_for_one_in_flight_and_a_dead_ones_claim_is_taken_over(env):
    from shared.inbox.receipts import InboxReceipts
    project, engine, ledger = env
    data = countries_csv(("FR", "France"))
    probe = ingest_file(project, "shop", "countries", "a.csv", data, engine, ledger)
    receipts = InboxReceipts(ledger.store)
    held = receipts.claim("shop.countries", probe.file_id, "other-run", wait=0)
    with pytest.raises(IngestError, match=r"shop/countries/a.csv: another delivery is loading this file"):
        ingest_file(project, "shop", "countries", "a.csv", data, engine, ledger, wait=0)
    receipts.release(held)
    # a claim older than the TTL (its delivery died) is taken over by the next delivery
    stale = InboxReceipts(ledger.store, clock=lambda: 0.0).claim("shop.countries", probe.file_id, "dead", wait=0)
    assert stale is not None
    result = ingest_file(project, "shop", "countries", "a.csv", countries_csv(("NO", "Norway")), engine, ledger, wait=0)
    assert not result.skipped and rows(engine, "countries", "code") == [("NO",)]
    assert receipts.held_since("shop.countries", probe.file_id) is None     # both claims released


@pytest.mark.parametrize("name, problem", [
    ("../escape.json", "'.' or '..' segment"),
    ("a/./b.json", "'.' or '..' segment"),
    ("two\nlines.json", "control character"),
    ("tab\there.csv", "control character"),
    ("back\\slash.json", "backslash"),
    ("a//b.json", "empty segment"),
    ("dir/", "empty segment"),
])
def test_unsafe_names_are_refused_with_the_reason(env, name, problem):
    project, engine, ledger = env
    with pytest.raises(IngestError) as caught:
        ingest_file(project, "shop", "countries", name, b"code,name\nFR,France\n", engine, ledger)
    message = str(caught.value)
    assert problem in message and "refused" in message
    assert "\n" not in message and "\t" not in message
    assert ledger.recent() == [] and rows(engine, "countries", "code") == []


def test_a_file_name_holding_pii_is_stored_scrubbed(env, tmp_path):
    project, engine, ledger = env
    name = f"{SECRET_EMAIL}/DE89370400440532013000.csv"
    result = ingest_file(project, "shop", "countries", name, countries_csv(("FR", "France")), engine, ledger)
    assert result.file == "shop/countries/[EMAIL]/[IBAN].csv"
    assert ledger.get(result.run_id).summary["file"] == result.file
    with pytest.raises(IngestError) as caught:
        ingest_file(project, "shop", "countries", name, b"code,name\nFR,France,extra\n", engine, ledger)
    assert "[EMAIL]" in str(caught.value) and SECRET_EMAIL not in str(caught.value)
    stored = b"".join(p.read_bytes() for p in (tmp_path / "ledger").rglob("*") if p.is_file())
    stored += (tmp_path / "target.db").read_bytes()
    assert SECRET_EMAIL.encode() not in stored and b"DE89370400440532013000" not in stored


def test_a_drop_waits_for_the_models_lease_and_is_refused_past_wait(env):
    """A drop writes under its model's lease, as a run does: not while a run or apply holds the table."""
    from shared.target.lease import Leases
    project, engine, ledger = env
    leases = Leases(engine, project.settings.leases.ttl_seconds)
    leases.acquire(["shop.countries"], "20261124T001500Z-3f9a1c", "a run elsewhere")
    with pytest.raises(IngestError, match=r"shop.countries is leased by run 20261124T001500Z-3f9a1c .*retry later"):
        ingest_file(project, "shop", "countries", "a.csv", countries_csv(("FR", "France")), engine, ledger, wait=0)
    assert rows(engine, "countries", "code") == [] and ledger.recent() == []
    leases.release(["shop.countries"], "20261124T001500Z-3f9a1c")
    ingest_file(project, "shop", "countries", "a.csv", countries_csv(("FR", "France")), engine, ledger, wait=0)
    assert rows(engine, "countries", "code") == [("FR",)]
    assert leases.get("shop.countries") is None or leases.get("shop.countries").run_id != "20261124T001500Z-3f9a1c"
