"""Helpers for flow tests: write a manifest for a running sample API and extract through it."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa
import yaml

from shared.config.project import Project, load_project
from shared.extract.factory import build_extractor

TEST_KEY = "test-pii-key-0123456789"


def write_manifests(tmp_path: Path, sources: dict[str, Any], settings: dict[str, Any] | None = None) -> Path:
    """`tmp_path/manifests` holding `sources` (connector_models.yml) and `settings` (settings.yml)."""
    folder = tmp_path / "manifests"
    folder.mkdir(exist_ok=True)
    (folder / "connector_models.yml").write_text(yaml.safe_dump({"sources": sources}, sort_keys=False))
    if settings:
        (folder / "settings.yml").write_text(yaml.safe_dump(settings, sort_keys=False))
    return folder


def project_for(tmp_path: Path, sources: dict[str, Any], settings: dict[str, Any] | None = None,
                env: dict[str, str] | None = None) -> Project:
    folder = write_manifests(tmp_path, sources, settings)
    return load_project(folder, env={"KSPYDER_PII_KEY": TEST_KEY, **(env or {})})


def api_source(base_url: str, models: dict[str, Any], **source: Any) -> dict[str, Any]:
    return {"type": "api", "base_url": base_url, **source, "models": models}


def extract_all(project: Project, selector: str, limit: int | None = None):
    """(records, stats) of one model."""
    [ref] = project.models([selector])
    extractor = build_extractor(project, ref, limit)
    records = list(extractor.records())
    return records, extractor.stats


ID = {"id": {"type": "integer"}}


def with_sources(folder):
    """`plan` and `apply` check the SQL sources: point the manifests' placeholder source at an
    (empty) one holding the models' tables."""
    connectors = folder / "connector_models.yml"
    if "sqlite:///unused.db" not in connectors.read_text():
        return
    source = folder / "source.db"
    engine = sa.create_engine(f"sqlite:///{source}")
    with engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE IF NOT EXISTS orders (order_id TEXT PRIMARY KEY, customer_id INTEGER, "
                                   "amount NUMERIC, status TEXT, created_at TIMESTAMP)")
        connection.exec_driver_sql("CREATE TABLE IF NOT EXISTS customers (id INTEGER PRIMARY KEY, city TEXT)")
    engine.dispose()
    connectors.write_text(connectors.read_text().replace("sqlite:///unused.db", f"sqlite:///{source}"))
