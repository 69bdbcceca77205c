"""transformations.yml and aggregations.yml kept with the Functions worker's cached project
(shared/config/project_cache.derived): read and validated once while no manifest file or variable
changes, read again with the project after a change, and read on every call for a project no cache
holds (the command line loads once per command anyway)."""
from __future__ import annotations

import json

import azure.functions as func
import pytest
from azure.functions.queue import QueueMessage

from functions import common
from functions.transform import transform
from shared.aggregate import config as aggregate_config
from shared.aggregate.config import load_aggregations
from shared.chain.messages import TransformEvent, encode
from shared.config.errors import ConfigError
from shared.config.project import load_project
from shared.config.project_cache import ProjectCache
from shared.transform import config as transform_config
from shared.transform.config import load_transformations
from tests.helpers.transform import PIPELINES, Target

CONNECTORS = """sources:
  shop:
    type: api
    base_url: http://127.0.0.1:1
    models:
      c: {path: /c, primary_key: [id], columns: {id: {type: integer}, city: {type: string, pii: none, reason: a city}}}
"""
ONE_PIPELINE = """pipelines:
  cities:
    inputs: {c: shop.c}
    steps:
      - select: [city]
    output: out.cities
"""
TWO_PIPELINES = ONE_PIPELINE + """  ids:
    inputs: {c: shop.c}
    steps:
      - select: [id]
    output: out.ids
"""
AGGREGATIONS = """aggregations:
  by_city:
    source: shop
    collection: c
    pipeline: [{"$group": {"_id": "$city"}}]
"""


@pytest.fixture
def folder(tmp_path, monkeypatch):
    monkeypatch.setenv("KSPYDER_MANIFESTS", str(tmp_path))
    (tmp_path / "connector_models.yml").write_text(CONNECTORS)
    (tmp_path / "transformations.yml").write_text(ONE_PIPELINE)
    return tmp_path


@pytest.fixture
def reads(monkeypatch):
    """How often each file was read and validated."""
    counts = {"transformations": 0, "aggregations": 0}
    for name, module in (("transformations", transform_config), ("aggregations", aggregate_config)):
        def counted(*args, _name=name, _original=module._read):
            counts[_name] += 1
            return _original(*args)
        monkeypatch.setattr(module, "_read", counted)
    return counts


def test_transformations_are_read_once_per_cached_project(folder, reads):
    cache = ProjectCache()
    for _ in range(3):
        assert list(load_transformations(cache.get()).pipelines) == ["cities"]
    assert reads["transformations"] == 1 and cache.loads == 1


def test_a_changed_transformations_file_is_read_again(folder, reads):
    cache = ProjectCache()
    load_transformations(cache.get())
    (folder / "transformations.yml").write_text(TWO_PIPELINES)
    assert list(load_transformations(cache.get()).pipelines) == ["cities", "ids"]
    assert reads["transformations"] == 2 and cache.loads == 2


def test_a_broken_transformations_file_is_reported_every_time_but_read_once(folder, reads):
    (folder / "transformations.yml").write_text("pipelines:\n  x:\n    steps: [{fliter: a}]\n    output: a.b\n")
    cache = ProjectCache()
    for _ in range(2):
        with pytest.raises(ConfigError, match="unknown step 'fliter'"):
            load_transformations(cache.get())
    assert reads["transformations"] == 1


def test_aggregations_are_read_once_per_cached_project(folder, reads):
    (folder / "aggregations.yml").write_text(AGGREGATIONS)
    (folder / "connector_models.yml").write_text(CONNECTORS.replace("type: api", "type: api\n    store: mongo"))
    cache = ProjectCache()
    for _ in range(2):
        assert list(load_aggregations(cache.get())) == ["by_city"]
    assert reads["aggregations"] == 1


def test_a_project_no_cache_holds_reads_the_file_each_time(folder, reads):
    project = load_project(folder)
    load_transformations(project)
    load_transformations(project)
    assert reads["transformations"] == 2


def test_an_explicit_environment_is_never_served_from_the_cache(folder, reads):
    project = ProjectCache().get()
    load_transformations(project, env={})
    load_transformations(project, env={})
    assert reads["transformations"] == 2


def test_the_transform_function_reads_transformations_once(tmp_path, monkeypatch, reads):
    target = Target(f"sqlite:///{tmp_path / 'target.db'}", tmp_path)
    monkeypatch.setattr(common, "projects", ProjectCache())
    monkeypatch.setenv("KSPYDER_MANIFESTS", str(tmp_path))
    monkeypatch.setenv("KSPYDER_TARGET_URL", target.url)
    monkeypatch.setenv("KSPYDER_STATE_DIR", str(tmp_path / "state"))
    target.apply()
    target.insert()
    reads["transformations"] = 0

    def run(run_id: str) -> None:
        body = json.dumps(encode(TransformEvent(run_id, (target.erp,)))).encode()
        transform(QueueMessage(id=run_id, body=body, dequeue_count=1, pop_receipt="r"))
    try:
        run("run-1")
        run("run-2")
        assert reads["transformations"] == 1
        (tmp_path / "transformations.yml").write_text(PIPELINES.format(erp=target.erp, shop=target.shop,
                                                                       out=target.out) + "\n")
        run("run-3")
        assert reads["transformations"] == 2
    finally:
        common.dispose_engines()
        target.drop()


def test_the_plan_route_reads_transformations_once(folder, monkeypatch, reads):
    from functions.schema_routes import schema_plan

    monkeypatch.setattr(common, "projects", ProjectCache())
    monkeypatch.setenv("KSPYDER_TARGET_URL", f"sqlite:///{folder / 'target.db'}")
    monkeypatch.setenv("KSPYDER_STATE_DIR", str(folder / "state"))
    try:
        for _ in range(2):
            response = schema_plan(func.HttpRequest("GET", "http://localhost/api/schema/plan", body=b""))
            assert response.status_code == 200, response.get_body()
            assert any(c.get("builder") == "transform cities" for c in json.loads(response.get_body())["changes"])
        assert reads["transformations"] == 1
    finally:
        common.dispose_engines()
