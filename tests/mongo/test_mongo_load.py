"""Loading `store: mongo` models: upsert idempotence, keys, indexes, PII over whole documents, and
the embedded store on disk. Runs on mongomock, or on a real server with KSPYDER_TEST_MONGO_URI."""
from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from bson import Decimal128, json_util

from shared.config.settings import Settings
from shared.errors import ConversionError
from shared.extract.document_shape import DocumentShaper
from shared.load.loader import LoadError
from shared.mongo.client import PersistedMongoClient, open_documents
from shared.mongo.load import DocumentLoader
from shared.pii.stripper import PiiStripper
from tests.helpers.flow import project_for

META = ("_kspyder_run_id", "_kspyder_loaded_at")


def model_ref(tmp_path, source: str, model: dict, name: str = "items", **settings):
    source_def = {"type": "api", "store": "mongo", "base_url": "http://127.0.0.1:1",
                  "models": {name: {"path": "/x", **model}}}
    project = project_for(tmp_path, {source: source_def}, settings or None)
    [ref] = project.models([f"{source}.{name}"])
    return project, ref


def prepared(project, ref, raw: list[dict]) -> list[dict]:
    """Records as the extractor hands them to the loader: shaped and stripped whole."""
    shaper = DocumentShaper(ref.source_name, ref.name, ref.model.columns, ref.model.primary_key)
    stripper = PiiStripper.for_model(ref.model, project.settings.pii, ref.pii_scan, documents=True)
    return [stripper.apply_owned(shaper.shape(json.loads(json.dumps(r)), i)) for i, r in enumerate(raw)]


def stored(collection) -> list[dict]:
    return [{k: v for k, v in d.items() if k not in META} for d in collection.find().sort("_id", 1)]


def test_same_page_twice_gives_the_same_documents(tmp_path, mongo_client, mongo_name):
    project, ref = model_ref(tmp_path, mongo_name, {"primary_key": ["id"], "pii_scan": "off"})
    page = [{"id": 1, "name": "a", "nested": {"x": [1, 2]}}, {"id": 2, "name": "b"}]
    loader = DocumentLoader(mongo_client, ref, run_id="run-1")
    assert loader.load(page) == 2
    first = stored(mongo_client[mongo_name]["items"])
    assert DocumentLoader(mongo_client, ref, run_id="run-2").load(page) == 2
    assert stored(mongo_client[mongo_name]["items"]) == first
    assert first == [{"_id": 1, "id": 1, "name": "a", "nested": {"x": [1, 2]}}, {"_id": 2, "id": 2, "name": "b"}]
    assert {d["_kspyder_run_id"] for d in mongo_client[mongo_name]["items"].find()} == {"run-2"}


def test_later_record_of_a_key_wins_and_replaces_the_whole_document(tmp_path, mongo_client, mongo_name):
    project, ref = model_ref(tmp_path, mongo_name, {"primary_key": ["id"], "pii_scan": "off"})
    loader = DocumentLoader(mongo_client, ref, run_id="r")
    loader.load([{"id": 1, "old": True}, {"id": 1, "v": 1}])
    loader.load([{"id": 1, "v": 2}])
    assert stored(mongo_client[mongo_name]["items"]) == [{"_id": 1, "id": 1, "v": 2}]


def test_compound_key_is_a_sub_document_in_declared_order(tmp_path, mongo_client, mongo_name):
    project, ref = model_ref(tmp_path, mongo_name, {"primary_key": ["region", "props.id"], "pii_scan": "off"})
    loader = DocumentLoader(mongo_client, ref, run_id="r")
    loader.load([{"props": {"id": 7}, "region": "eu", "n": 1}, {"region": "eu", "props": {"id": 8}}])
    loader.load([{"region": "eu", "props": {"id": 7}, "n": 2}])
    docs = stored(mongo_client[mongo_name]["items"])
    assert [d["_id"] for d in docs] == [{"region": "eu", "props.id": 7}, {"region": "eu", "props.id": 8}]
    assert docs[0]["n"] == 2


def test_missing_key_is_an_error_naming_the_key_not_the_record(tmp_path, mongo_client, mongo_name):
    project, ref = model_ref(tmp_path, mongo_name, {"primary_key": ["id"], "pii_scan": "off"})
    with pytest.raises(LoadError) as info:
        DocumentLoader(mongo_client, ref, run_id="r").load([{"id": 1}, {"email": "secret@example.com"}])
    assert str(info.value) == f"{mongo_name}.items: record #1 has no value for primary key 'id'"
    with pytest.raises(ConversionError) as info:
        prepared(project, ref, [{"email": "secret@example.com"}])
    assert "secret" not in str(info.value) and "primary key 'id'" in str(info.value)


def test_indexes_are_created_idempotently_and_unique_violations_name_no_value(tmp_path, mongo_client, mongo_name):
    project, ref = model_ref(tmp_path, mongo_name, {
        "primary_key": ["id"], "pii_scan": "off",
        "indexes": [{"keys": ["props.subnet"]}, {"keys": ["-created", "code"], "unique": True, "name": "by_code"}]})
    loader = DocumentLoader(mongo_client, ref, run_id="r")
    loader.check_drift()
    DocumentLoader(mongo_client, ref, run_id="r2").check_drift()   # again, from a new loader: no error
    info = mongo_client[mongo_name]["items"].index_information()
    assert info["props.subnet_1"]["key"] == [("props.subnet", 1)]
    assert info["by_code"]["key"] == [("created", -1), ("code", 1)] and info["by_code"]["unique"] is True
    loader.load([{"id": 1, "code": "DUP-VALUE-1"}])
    with pytest.raises(LoadError) as error:
        loader.load([{"id": 2, "code": "DUP-VALUE-1"}])
    assert str(error.value) == (f"{mongo_name}.items: 1 document(s) not written, first at batch record #0: "
                                "duplicate value in a unique index")


def test_declared_columns_are_converted_in_place_and_undeclared_fields_kept(tmp_path, mongo_client, mongo_name):
    project, ref = model_ref(tmp_path, mongo_name, {
        "primary_key": ["id"], "pii_scan": "off",
        "columns": {"id": {"type": "integer"}, "when": {"path": "meta.created", "type": "datetime"},
                    "amount": {"type": "decimal"}, "day": {"type": "date"},
                    "bad": {"type": "integer", "on_error": "null"}}})
    [record] = prepared(project, ref, [{"id": "5", "meta": {"created": "2024-03-01T10:00:00+02:00", "other": "x"},
                                        "amount": "12.50", "day": "2024-03-02", "bad": "nope",
                                        "extra": [1, {"a": None}]}])
    loader = DocumentLoader(mongo_client, ref, run_id="r")
    loader.load([record])
    # the queue chain carries pages as plain JSON: the loader restores the declared types
    loader.load([json.loads(json.dumps(record, default=str))])
    [doc] = stored(mongo_client[mongo_name]["items"])
    assert doc["_id"] == 5 and doc["id"] == 5
    assert doc["meta"] == {"created": datetime(2024, 3, 1, 8, tzinfo=UTC), "other": "x"}
    assert doc["amount"] == Decimal128(Decimal("12.50"))
    assert doc["day"] == datetime(2024, 3, 2, tzinfo=UTC)
    assert doc["bad"] is None and doc["extra"] == [1, {"a": None}]


def test_no_raw_pii_anywhere_in_stored_documents(tmp_path, mongo_client, mongo_name):
    project, ref = model_ref(tmp_path, mongo_name, {
        "primary_key": ["id"],
        "columns": {"name": {"path": "owner.name", "type": "string", "pii": "hash"},
                    "card": {"type": "string", "pii": "drop"},
                    "props": {"type": "json", "pii_fields": {"contacts.*.mail": "hash"}},
                    "code": {"type": "string", "pii_scan": "off"}}}, pii={"scan": "redact"})
    raw = [{"id": 1, "owner": {"name": "Jane Roe", "note": "call +44 20 7946 0958"},
            "card": "4111111111111111",
            "props": {"contacts": [{"mail": "jane.roe@example.com"}, {"mail": "sam@example.org"}]},
            "history": [{"by": "ops@example.net", "tags": ["x", "reach me at +1 202 555 0147"]}],
            "deep": {"a": {"b": {"c": ["mail bob.smith@example.com now"]}}},
            "code": "KEEP-1"}]
    DocumentLoader(mongo_client, ref, run_id="r").load(prepared(project, ref, raw))
    [doc] = stored(mongo_client[mongo_name]["items"])
    text = json_util.dumps(doc)
    for value in ("Jane Roe", "7946 0958", "4111111111111111", "jane.roe@example.com", "sam@example.org",
                  "ops@example.net", "555 0147", "bob.smith@example.com"):
        assert value not in text
    assert "card" not in doc and len(doc["owner"]["name"]) == 64
    assert doc["history"][0]["by"] == "[EMAIL]" and doc["deep"]["a"]["b"]["c"] == ["mail [EMAIL] now"]
    assert len(doc["props"]["contacts"][0]["mail"]) == 64   # pii_fields before the scan: a hash, not [EMAIL]
    assert doc["code"] == "KEEP-1"


def test_scan_off_keeps_free_text_but_column_rules_still_apply(tmp_path):
    project, ref = model_ref(tmp_path, "docs", {"primary_key": ["id"], "pii_scan": "off",
                                                "columns": {"mail": {"path": "a.mail", "type": "string",
                                                                     "pii": "redact"}}})
    [doc] = prepared(project, ref, [{"id": 1, "a": {"mail": "x@y.com"}, "note": "x@y.com"}])
    assert doc == {"id": 1, "a": {"mail": "[REDACTED]"}, "note": "x@y.com"}


def test_embedded_store_survives_reopen(tmp_path):
    settings = Settings(state_dir=str(tmp_path / "state"))
    project, ref = model_ref(tmp_path, "docs", {"primary_key": ["id"], "pii_scan": "off", "indexes": [{"keys": ["k"]}]})
    with open_documents(settings) as client:
        assert isinstance(client, PersistedMongoClient)
        DocumentLoader(client, ref, run_id="r").load([{"id": 1, "k": "a", "at": datetime(2024, 1, 1, tzinfo=UTC)}])
    assert (tmp_path / "state" / "documents" / "docs" / "items.jsonl").exists()
    with open_documents(settings) as client:
        [doc] = stored(client["docs"]["items"])
        assert doc == {"_id": 1, "id": 1, "k": "a", "at": datetime(2024, 1, 1, tzinfo=UTC)}
        assert "k_1" in client["docs"]["items"].index_information()
        client.drop_database("docs")
    with open_documents(settings) as client:
        assert client.list_database_names() == []
    assert not (tmp_path / "state" / "documents" / "docs").exists()


def test_embedded_store_rewrites_only_changed_collections(tmp_path):
    folder = tmp_path / "documents"
    with PersistedMongoClient(folder) as client:
        client["d"]["a"].insert_one({"_id": 1})
        client["d"]["b"].insert_one({"_id": 1})
    before = (folder / "d" / "a.jsonl").stat().st_mtime_ns
    with PersistedMongoClient(folder) as client:
        client["d"]["b"].insert_one({"_id": 2})
    assert (folder / "d" / "a.jsonl").stat().st_mtime_ns == before
    assert len((folder / "d" / "b.jsonl").read_text().splitlines()) == 2


def test_mongo_uri_setting_opens_a_server_client(monkeypatch):
    settings = Settings(mongo_uri="mongodb://127.0.0.1:1/?serverSelectionTimeoutMS=1")
    client = open_documents(settings)
    try:
        assert type(client).__name__ == "MongoClient" and not isinstance(client, PersistedMongoClient)
    finally:
        client.close()


def test_embedded_store_serialises_clients_so_no_update_is_lost(tmp_path):
    import threading

    folder = tmp_path / "documents"
    first = PersistedMongoClient(folder)
    first["d"]["c"].insert_one({"_id": "first"})
    seen: list = []

    def second_client() -> None:
        with PersistedMongoClient(folder) as client:   # waits for `first` to close
            seen.append(sorted(d["_id"] for d in client["d"]["c"].find()))
            client["d"]["c"].insert_one({"_id": "second"})

    worker = threading.Thread(target=second_client)
    worker.start()
    worker.join(0.3)
    assert worker.is_alive() and seen == []   # still waiting
    first.close()
    worker.join(10)
    assert seen == [["first"]]
    with PersistedMongoClient(folder) as client:
        with PersistedMongoClient(folder) as nested:   # the same thread may nest
            assert sorted(d["_id"] for d in nested["d"]["c"].find()) == ["first", "second"]
        assert client["d"]["c"].count_documents({}) == 2


def test_inbox_file_lands_as_documents_and_csv_is_refused(tmp_path):
    from shared.inbox.drops import IngestError, ingest_file
    from shared.ledger import RunLedger
    from shared.storage import LocalBlobStore

    project, ref = model_ref(tmp_path, "docs", {"primary_key": ["id"]}, state_dir=str(tmp_path / "state"))
    ledger = RunLedger(LocalBlobStore(tmp_path / "storage"))
    lines = b'{"id": 1, "who": {"mail": "a.person@example.com"}}\n{"id": 2, "tags": ["x"]}\n'
    for _ in range(2):   # dropping the same file again converges
        result = ingest_file(project, "docs", "items", "drop.jsonl", lines, None, ledger)
        assert (result.records, result.rows) == (2, 2)
    with open_documents(project.settings) as client:
        docs = stored(client["docs"]["items"])
    assert docs == [{"_id": 1, "id": 1, "who": {"mail": "[EMAIL]"}}, {"_id": 2, "id": 2, "tags": ["x"]}]
    with pytest.raises(IngestError) as info:
        ingest_file(project, "docs", "items", "drop.csv", b"id\n1\n", None, ledger)
    assert str(info.value) == ("inbox file docs/items/drop.csv: docs.items stores whole documents (store: mongo): "
                               "drop JSON or JSON Lines, not CSV")


def test_sql_driver_values_become_bson_values(tmp_path, mongo_client, mongo_name):
    from datetime import date, time
    from uuid import UUID

    project, ref = model_ref(tmp_path, mongo_name, {"primary_key": ["id"], "pii_scan": "off"})
    row = {"id": 1, "amount": Decimal("2.50"), "day": date(2024, 1, 2), "at": time(13, 5), "ref": UUID(int=7),
           "pair": (1, 2)}
    DocumentLoader(mongo_client, ref, run_id="r").load([row])
    [doc] = stored(mongo_client[mongo_name]["items"])
    assert doc == {"_id": 1, "id": 1, "amount": Decimal128("2.50"), "day": datetime(2024, 1, 2, tzinfo=UTC),
                   "at": "13:05:00", "ref": str(UUID(int=7)), "pair": [1, 2]}


def test_conversion_errors_name_model_record_and_column_never_the_value(tmp_path):
    project, ref = model_ref(tmp_path, "docs", {"primary_key": ["id"], "pii_scan": "off",
                                                "columns": {"id": {"type": "integer"},
                                                            "n": {"path": "a.n", "type": "integer"}}})
    with pytest.raises(ConversionError) as info:
        prepared(project, ref, [{"id": 4, "a": {"n": "secret-text"}}])
    assert str(info.value) == ("docs.items: record #0, column 'n': expected an integer, got text that is not a "
                               "number (set on_error: null on the column to store null instead)")
    (tmp_path / "u").mkdir()
    _, undeclared = model_ref(tmp_path / "u", "docs", {"primary_key": ["ref"], "pii_scan": "off",
                                                       "columns": {"n": {"type": "integer"}}})
    with pytest.raises(ConversionError) as info:
        prepared(project, undeclared, [{"ref": "x@y.com", "n": "bad"}])
    assert str(info.value).startswith("docs.items: record #0, column 'n'") and "x@y.com" not in str(info.value)


def test_a_damaged_embedded_file_is_a_clear_error_naming_file_and_line(tmp_path):
    from shared.mongo.client import DocumentStoreError

    folder = tmp_path / "documents"
    (folder / "d").mkdir(parents=True)
    (folder / "d" / "c.jsonl").write_text('{"_id": 1}\n{"_id": 2, "email": "x@y.com"\n')
    with pytest.raises(DocumentStoreError) as info:
        PersistedMongoClient(folder)
    assert str(info.value) == f"embedded document store: {folder / 'd' / 'c.jsonl'}:2 is not Extended JSON"
    (folder / "d" / "c.jsonl").write_text('{"_id": 1}\n')
    (folder / "d" / "c.indexes.json").write_text('[{"name": "x"}]')
    with pytest.raises(DocumentStoreError):
        PersistedMongoClient(folder)
    (folder / "d" / "c.indexes.json").unlink()
    with PersistedMongoClient(folder) as client:   # the lock was released by the failed opens
        assert client["d"]["c"].count_documents({}) == 1


def test_star_paths_convert_and_strip_every_item(tmp_path):
    project, ref = model_ref(tmp_path, "docs", {"primary_key": ["id"], "pii_scan": "off", "columns": {
        "hops": {"path": "routes.*.hop_ip", "type": "string", "pii": {"rule": "mask", "keep": 2}},
        "metrics": {"path": "routes.*.metric", "type": "integer"}}})
    [doc] = prepared(project, ref, [{"id": 1, "routes": [{"hop_ip": "10.0.0.4", "metric": "5"}, {"metric": 7}, {}]}])
    assert doc["routes"] == [{"hop_ip": "******.4", "metric": 5}, {"metric": 7}, {}]


def test_whole_document_hash_scan_and_terms(tmp_path):
    project, ref = model_ref(tmp_path, "docs", {"primary_key": ["id"], "pii_scan": "hash",
                                                "pii_terms": ["Acme Holdings"],
                                                "columns": {"note": {"path": "a.note", "type": "text",
                                                                     "pii_scan": "redact"}}})
    [doc] = prepared(project, ref, [{"id": 1, "x": ["mail me: jo@example.com"], "who": "Acme Holdings Ltd",
                                     "a": {"note": "jo@example.com"}}])
    assert doc["x"][0].startswith("mail me: [EMAIL:") and "jo@example.com" not in doc["x"][0]
    assert doc["who"].startswith("[TERM:") and doc["who"].endswith(" Ltd")
    assert doc["a"] == {"note": "[EMAIL]"}   # the column's own mode wins for its field
