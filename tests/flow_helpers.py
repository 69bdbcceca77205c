"""Helpers for flow tests: write a manifest for a running sample API and extract through it."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from shared.config.project import Project, load_project
from shared.extract.factory import build_extractor

TEST_KEY = "test-pii-key-0123456789"


def project_for(tmp_path: Path, sources: dict[str, Any], settings: dict[str, Any] | None = None,
                env: dict[str, str] | None = None) -> Project:
    folder = tmp_path / "manifests"
    folder.mkdir(exist_ok=True)
    (folder / "connector_models.yml").write_text(yaml.safe_dump({"sources": sources}, sort_keys=False))
    if settings:
        (folder / "settings.yml").write_text(yaml.safe_dump(settings, sort_keys=False))
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
