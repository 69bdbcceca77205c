"""The Functions worker's one cached loader (functions/common.projects): manifests are read and
validated once while nothing they depend on changes; a changed file, a changed variable they read,
or another folder loads them again."""
from __future__ import annotations

import json

import azure.functions as func
import pytest

from functions import common
from functions.health import health
from shared.config import project_cache
from shared.config.project_cache import ProjectCache
from tests.helpers.paths import ROOT

FUNCTIONS = ROOT / "functions"
CONNECTORS = """sources:
  shop:
    type: api
    base_url: ${SHOP_URL}
    models:
      c: {path: /c, columns: {id: {type: integer}}}
"""
SECOND_MODEL = "      d: {path: /d, columns: {id: {type: integer}}}\n"


@pytest.fixture
def cache(monkeypatch, tmp_path) -> ProjectCache:
    fresh = ProjectCache()
    monkeypatch.setattr(common, "projects", fresh)
    monkeypatch.setenv("KSPYDER_MANIFESTS", str(tmp_path))
    monkeypatch.setenv("SHOP_URL", "http://127.0.0.1:1")
    (tmp_path / "connector_models.yml").write_text(CONNECTORS)
    return fresh


def call_health() -> tuple[int, dict]:
    response = health(func.HttpRequest(method="GET", url="http://localhost/api/health", body=b""))
    return response.status_code, json.loads(response.get_body())


def test_two_invocations_load_once(cache):
    assert call_health() == (200, {"status": "ok", "sources": 1, "models": 1})
    assert call_health() == (200, {"status": "ok", "sources": 1, "models": 1})
    assert cache.loads == 1


def test_unchanged_old_files_are_not_read_again(cache, monkeypatch):
    monkeypatch.setattr(project_cache, "RACY_NS", 0)   # files past the window in which a stat cannot be trusted
    call_health()
    reads = []
    original = project_cache._contents
    monkeypatch.setattr(project_cache, "_contents", lambda *a: reads.append(a) or original(*a))
    call_health()
    assert cache.loads == 1 and reads == []


def test_a_changed_file_is_loaded_again(cache, tmp_path):
    call_health()
    (tmp_path / "connector_models.yml").write_text(CONNECTORS + SECOND_MODEL)
    assert call_health() == (200, {"status": "ok", "sources": 1, "models": 2})
    (tmp_path / "transformations.yml").write_text("pipelines: {}\n")   # a file added counts too
    call_health()
    assert cache.loads == 3


def test_a_change_the_stats_miss_is_seen_right_after_a_load(cache, tmp_path, monkeypatch):
    """Within the clock's step a same-size rewrite keeps its mtime and ctime: a load that soon after
    a write keeps a digest of the files, so such a change is still seen."""
    path = tmp_path / "connector_models.yml"
    frozen = project_cache._stats(tmp_path)
    monkeypatch.setattr(project_cache, "_stats", lambda root: frozen)   # a clock that did not move
    assert common.current_project().sources["shop"].models.keys() == {"c"}
    path.write_text(CONNECTORS.replace("c: {path: /c", "e: {path: /e"))
    assert common.current_project().sources["shop"].models.keys() == {"e"}
    assert common.current_project().sources["shop"].models.keys() == {"e"}
    assert cache.loads == 2


def test_only_variables_the_manifests_read_reload(cache, monkeypatch):
    call_health()
    monkeypatch.setenv("UNRELATED_SETTING", "x")
    call_health()
    assert cache.loads == 1
    monkeypatch.setenv("SHOP_URL", "http://127.0.0.1:2")             # named by ${SHOP_URL}
    assert str(common.current_project().sources["shop"].base_url).startswith("http://127.0.0.1:2")
    monkeypatch.setenv("KSPYDER_PII_SCAN", "off")                     # a KSPYDER_* override
    assert common.current_project().settings.pii.scan == "off"
    assert cache.loads == 3


def test_invalid_manifests_are_not_validated_again_either(cache, tmp_path):
    (tmp_path / "connector_models.yml").write_text(CONNECTORS.replace("type: integer", "type: integr"))
    first, second = call_health(), call_health()
    assert first == second and first[0] == 500
    assert first[1]["problems"][0].startswith("connector_models.yml:6 sources.shop.models.c.columns.id.type: 'integr'")
    assert cache.loads == 1


def test_another_folder_is_loaded(cache, tmp_path, monkeypatch):
    call_health()
    other = tmp_path / "other"
    other.mkdir()
    (other / "connector_models.yml").write_text(CONNECTORS + SECOND_MODEL)
    monkeypatch.setenv("KSPYDER_MANIFESTS", str(other))
    assert call_health()[1]["models"] == 2 and cache.loads == 2


def test_every_function_reads_manifests_through_the_cache():
    direct = [p.name for p in FUNCTIONS.glob("*.py") if "load_project(" in p.read_text()]
    assert direct == []
