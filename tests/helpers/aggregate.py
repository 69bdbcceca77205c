"""Route tables and their virtual networks in the document store, an aggregation joining them, and
manifests for a `store: mongo` source with aggregations.yml: shared by the aggregation tests and
the Transform function's."""
from __future__ import annotations

import yaml

from tests.helpers.flow import project_for

ROUTES = [
    {"_id": "rt1", "name": "hub", "vnet": "v1", "routes": [{"prefix": "0.0.0.0/0", "hop": "Internet"},
                                                           {"prefix": "10.1.0.0/16", "hop": "VirtualAppliance"}]},
    {"_id": "rt2", "name": "spoke", "vnet": "v2", "routes": [{"prefix": "10.2.0.0/16", "hop": "VnetLocal"}]},
    {"_id": "rt3", "name": "empty", "vnet": "v9", "routes": []},
]
VNETS = [{"_id": "v1", "name": "vnet-hub", "region": "westeurope"},
         {"_id": "v2", "name": "vnet-spoke", "region": "northeurope"}]


def manifests(tmp_path, source: str, aggregations: dict, env: dict[str, str] | None = None, **settings):
    models = {"route_tables": {"path": "/rt", "primary_key": ["id"]}, "vnets": {"path": "/vn", "primary_key": ["id"]}}
    source_def = {"type": "api", "store": "mongo", "base_url": "http://127.0.0.1:1", "models": models}
    project = project_for(tmp_path, {source: source_def},
                          {"state_dir": str(tmp_path / "state"), "output": {"folder": str(tmp_path / "out")},
                           **settings},
                          env=env)
    (project.root / "aggregations.yml").write_text(yaml.safe_dump({"aggregations": aggregations}, sort_keys=False))
    return project


def routes_aggregation(source: str, **output) -> dict:
    return {"source": source, "collection": "route_tables", "output": output, "pipeline": [
        {"$unwind": "$routes"},
        {"$lookup": {"from": "vnets", "localField": "vnet", "foreignField": "_id", "as": "vnet"}},
        {"$addFields": {"regions": "$vnet.region"}},
        {"$unwind": "$vnet"},
        {"$project": {"_id": 0, "table": "$name", "route": {"prefix": "$routes.prefix", "hop": "$routes.hop"},
                      "vnet": "$vnet.name", "regions": "$regions"}},
        {"$sort": {"route.prefix": 1}}]}


def seed(client, source: str) -> None:
    client[source]["route_tables"].insert_many([dict(r) for r in ROUTES])
    client[source]["vnets"].insert_many([dict(v) for v in VNETS])
