"""Running aggregations: every supported stage on the document store (mongomock, or a real server
with KSPYDER_TEST_MONGO_URI), each output kind (JSON, CSV, SQL table on SQLite and PostgreSQL,
files in the outputs container in Azure storage mode) and failures that leave the others running."""
from __future__ import annotations

import csv
import io
import json
import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest
import sqlalchemy as sa
from bson import Decimal128, ObjectId

from shared.aggregate.config import SUPPORTED_STAGES, Aggregation
from shared.aggregate.formats import csv_bytes, flatten, json_bytes
from shared.aggregate.run import aggregate, run_aggregations, run_pipeline
from shared.chain.names import OUTPUTS
from shared.storage import LocalBlobStore
from shared.target.dialects import create_target_engine, drop_schema
from tests.helpers.aggregate import ROUTES, VNETS, manifests, routes_aggregation, seed

WHEN = datetime(2024, 5, 1, 12, tzinfo=UTC)
# one pipeline per supported stage, with the result it must give on ROUTES (and VNETS)
STAGE_CASES = {
    "$match": ([{"$match": {"name": {"$in": ["hub", "spoke"]}}}, {"$project": {"_id": 1}}],
               [{"_id": "rt1"}, {"_id": "rt2"}]),
    "$project": ([{"$project": {"_id": 0, "n": "$name", "count": {"$size": "$routes"}}}, {"$limit": 1}],
                 [{"n": "hub", "count": 2}]),
    "$addFields": ([{"$addFields": {"kind": "table"}}, {"$project": {"_id": 0, "kind": 1}}, {"$limit": 1}],
                   [{"kind": "table"}]),
    "$set": ([{"$set": {"upper": {"$toUpper": "$name"}}}, {"$project": {"_id": 0, "upper": 1}}, {"$skip": 2}],
             [{"upper": "EMPTY"}]),
    "$unwind": ([{"$unwind": "$routes"}, {"$project": {"_id": 0, "p": "$routes.prefix"}}],
                [{"p": "0.0.0.0/0"}, {"p": "10.1.0.0/16"}, {"p": "10.2.0.0/16"}]),
    "$lookup": ([{"$lookup": {"from": "vnets", "localField": "vnet", "foreignField": "_id", "as": "v"}},
                 {"$project": {"_id": 1, "vnets": "$v.name"}}],
                [{"_id": "rt1", "vnets": ["vnet-hub"]}, {"_id": "rt2", "vnets": ["vnet-spoke"]},
                 {"_id": "rt3", "vnets": []}]),
    "$group": ([{"$unwind": "$routes"}, {"$group": {"_id": "$routes.hop", "n": {"$sum": 1}}}, {"$sort": {"_id": 1}}],
               [{"_id": "Internet", "n": 1}, {"_id": "VirtualAppliance", "n": 1}, {"_id": "VnetLocal", "n": 1}]),
    "$sort": ([{"$sort": {"name": -1}}, {"$project": {"_id": 1}}], [{"_id": "rt2"}, {"_id": "rt1"}, {"_id": "rt3"}]),
    "$limit": ([{"$sort": {"_id": 1}}, {"$limit": 2}, {"$project": {"_id": 1}}], [{"_id": "rt1"}, {"_id": "rt2"}]),
    "$skip": ([{"$sort": {"_id": 1}}, {"$skip": 2}, {"$project": {"_id": 1}}], [{"_id": "rt3"}]),
    "$count": ([{"$unwind": "$routes"}, {"$count": "routes"}], [{"routes": 3}]),
    "$replaceRoot": ([{"$unwind": "$routes"}, {"$replaceRoot": {"newRoot": "$routes"}}, {"$limit": 1}],
                     [{"prefix": "0.0.0.0/0", "hop": "Internet"}]),
}


def test_every_supported_stage_has_a_case() -> None:
    assert set(STAGE_CASES) == set(SUPPORTED_STAGES)


@pytest.mark.parametrize("stage", SUPPORTED_STAGES)
def test_supported_stage_runs_on_the_document_store(stage, mongo_client, mongo_name) -> None:
    database = mongo_client[mongo_name]
    database["route_tables"].insert_many([dict(r) for r in ROUTES])
    database["vnets"].insert_many([dict(v) for v in VNETS])
    pipeline, expected = STAGE_CASES[stage]
    aggregation = Aggregation(source=mongo_name, collection="route_tables", pipeline=pipeline)
    assert run_pipeline(mongo_client, aggregation) == expected


def test_json_and_csv_files(tmp_path, mongo_client, mongo_name) -> None:
    project = manifests(tmp_path, mongo_name, {"routes": routes_aggregation(mongo_name, files=["json", "csv"])})
    seed(mongo_client, mongo_name)
    [result] = run_aggregations(project, client=mongo_client)
    assert result.error is None and result.documents == 3 and result.table is None
    folder = tmp_path / "out" / "aggregations"
    assert result.files == [str(folder / "routes.json"), str(folder / "routes.csv")]
    assert json.loads((folder / "routes.json").read_text())[0] == {
        "table": "hub", "route": {"prefix": "0.0.0.0/0", "hop": "Internet"}, "vnet": "vnet-hub",
        "regions": ["westeurope"]}
    rows = list(csv.reader(io.StringIO((folder / "routes.csv").read_text())))
    assert rows[0] == ["table", "route.prefix", "route.hop", "vnet", "regions"]
    assert rows[1:] == [["hub", "0.0.0.0/0", "Internet", "vnet-hub", '["westeurope"]'],
                        ["hub", "10.1.0.0/16", "VirtualAppliance", "vnet-hub", '["westeurope"]'],
                        ["spoke", "10.2.0.0/16", "VnetLocal", "vnet-spoke", '["northeurope"]']]
    assert not [p for p in folder.iterdir() if p.name.startswith(".")]   # no temporary files left


def test_plain_json_and_csv_cells_for_bson_types() -> None:
    oid = ObjectId("65f000000000000000000001")
    docs = [{"_id": oid, "at": WHEN, "amount": Decimal128("12.50"), "ok": True, "n": None, "deep": {"a": {"b": 1}},
             "e": {}},
            {"late": 1}]
    assert json.loads(json_bytes(docs)) == [{"_id": str(oid), "at": "2024-05-01T12:00:00+00:00", "amount": "12.50",
                                             "ok": True,
                                             "n": None, "deep": {"a": {"b": 1}}, "e": {}}, {"late": 1}]
    rows = list(csv.reader(io.StringIO(csv_bytes(docs).decode())))
    assert rows == [["_id", "at", "amount", "ok", "n", "deep.a.b", "e", "late"],
                    [str(oid), "2024-05-01T12:00:00+00:00", "12.50", "true", "", "1", "{}", ""],
                    ["", "", "", "", "", "", "", "1"]]
    assert flatten({"a": {"b": {"c": 1}, "d": [1, {"x": 2}]}}) == {"a.b.c": 1, "a.d": [1, {"x": 2}]}
    assert csv_bytes([]) == b"\r\n" and json.loads(json_bytes([])) == []


def test_aggregate_returns_python_values_and_writes_nothing(tmp_path, mongo_client, mongo_name) -> None:
    project = manifests(tmp_path, mongo_name, {"totals": {"source": mongo_name, "collection": "vnets", "pipeline": [
        {"$sort": {"_id": -1}}, {"$limit": 1}]}})   # ObjectIds sort after strings
    seed(mongo_client, mongo_name)
    mongo_client[mongo_name]["vnets"].insert_one({"_id": ObjectId("65f000000000000000000001"), "at": WHEN,
                                                  "amount": Decimal128("1.25")})
    [doc] = aggregate(project, "totals", client=mongo_client)
    assert doc == {"_id": "65f000000000000000000001", "at": WHEN, "amount": Decimal("1.25")}
    assert not (tmp_path / "out").exists()


def sql_table_case(tmp_path, mongo_client, mongo_name, target_url: str) -> None:
    schema = f"kt_{uuid.uuid4().hex[:10]}"
    aggregation = routes_aggregation(mongo_name, files=[], table=f"{schema}.routes")
    aggregation["pipeline"][-2] = {"$project": {"_id": 0, "table": "$name", "prefix": "$routes.prefix",
                                                "vnet": "$vnet.name", "routes": {"$literal": 1}, "seen": WHEN}}
    aggregation["pipeline"][-1] = {"$sort": {"prefix": 1}}
    project = manifests(tmp_path, mongo_name, {"routes": aggregation}, target_url=target_url)
    seed(mongo_client, mongo_name)
    engine = create_target_engine(target_url, [schema])
    try:
        [first] = run_aggregations(project, client=mongo_client, engine=engine, run_id="run-a")
        mongo_client[mongo_name]["route_tables"].delete_one({"_id": "rt2"})
        [second] = run_aggregations(project, client=mongo_client, engine=engine, run_id="run-b")
        assert (first.error, first.rows, first.files) == (None, 3, [])
        assert (second.error, second.rows, second.table) == (None, 2, f"{schema}.routes")
        with engine.connect() as connection:
            rows = connection.execute(sa.text('SELECT "table", prefix, vnet, routes, _kspyder_run_id FROM '
                                              f'{schema}.routes '
                                              "ORDER BY prefix")).all()
        assert [tuple(r) for r in rows] == [("hub", "0.0.0.0/0", "vnet-hub", 1, "run-b"),
                                           ("hub", "10.1.0.0/16", "vnet-hub", 1, "run-b")]
    finally:
        with engine.begin() as connection:
            drop_schema(connection, schema)
        engine.dispose()


def test_sql_table_on_sqlite_is_replaced_each_run(tmp_path, mongo_client, mongo_name) -> None:
    sql_table_case(tmp_path, mongo_client, mongo_name, f"sqlite:///{tmp_path}/target.db")


def test_sql_table_on_postgresql_is_replaced_each_run(tmp_path, mongo_client, mongo_name, postgres_url) -> None:
    sql_table_case(tmp_path, mongo_client, mongo_name, postgres_url)


def test_azure_storage_mode_writes_to_the_outputs_container(tmp_path, mongo_client, mongo_name) -> None:
    # Azure mode needs a MongoDB server for documents (never the embedded store): named here, and the
    # test's client stands in for it
    project = manifests(tmp_path, mongo_name, {"routes": routes_aggregation(mongo_name, files=["csv"])},
                        env={"KSPYDER_MONGO_URI": "mongodb://127.0.0.1:27017"}, storage={"mode": "azure"})
    seed(mongo_client, mongo_name)
    blobs = LocalBlobStore(tmp_path / "blobs")
    [result] = run_aggregations(project, client=mongo_client, blobs=blobs)
    assert result.files == [f"{OUTPUTS}/aggregations/routes.csv"]
    header = blobs.get(OUTPUTS, "aggregations/routes.csv").decode().splitlines()[0]
    assert header == "table,route.prefix,route.hop,vnet,regions"
    assert not (tmp_path / "out").exists()


def test_a_failing_aggregation_is_reported_and_the_others_run(tmp_path, mongo_client, mongo_name) -> None:
    project = manifests(tmp_path, mongo_name, {
        "broken": {"source": mongo_name, "collection": "vnets", "pipeline": [{"$group": {"n": {"$sum": 1}}}]},
        "fine": {"source": mongo_name, "collection": "vnets", "pipeline": [{"$count": "n"}]}})
    seed(mongo_client, mongo_name)
    broken, fine = run_aggregations(project, client=mongo_client)
    assert broken.error.startswith("the pipeline failed: ") and broken.files == []
    assert fine.error is None
    assert json.loads((tmp_path / "out" / "aggregations" / "fine.json").read_text()) == [{"n": 2}]
    assert [r.name for r in run_aggregations(project, ["fine"], client=mongo_client)] == ["fine"]
    assert run_aggregations(project, sources=["other"], client=mongo_client) == []
