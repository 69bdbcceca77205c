"""The same manifests in both modes, for the tests that compare them: the embedded run (`run_models`,
as `main.py run`) and the queue chain pumped in process each give (tables, warnings, errors)."""
from __future__ import annotations

import re
from pathlib import Path

from shared.config.project import Project
from shared.ledger import RunLedger
from shared.pipeline import run_models
from shared.storage import LocalBlobStore
from tests.helpers.chain import Harness, applied_target, snapshot


def plain(error: str | None) -> str | None:
    """An error as the run reports it: the chain's status names the exception's type first."""
    return None if error is None else re.sub(r"^[A-Z]\w*Error: ", "", error)


def embedded(project: Project, tmp_path: Path) -> tuple[dict, dict, dict]:
    engine = applied_target(project, tmp_path / "embedded.db")
    try:
        summary = run_models(project, project.models(), engine=engine,
                             ledger=RunLedger(LocalBlobStore(tmp_path / "embedded-ledger")))
        tables = snapshot(engine, project)
    finally:
        engine.dispose()
    warnings = {r.model: list(r.stats.warnings) for r in summary.results}
    errors = {r.model: plain(r.error) for r in summary.results}
    return tables, warnings, errors


def chained(project: Project, tmp_path: Path) -> tuple[dict, dict, dict]:
    harness = Harness(tmp_path / "chain", project, max_dequeue_count=2)
    try:
        run_id = harness.run(visibility_timeout=0.2, max_dequeue_count=2)
        tables = snapshot(harness.engine, project)
        outcomes = RunLedger(harness.blobs).model_outcomes(run_id)
        status = harness.status(run_id)
    finally:
        harness.engine.dispose()
    step_errors = {e["model"]: e["message"] for e in status["errors"]}
    warnings = {m: list(status["models"][m]["warnings"]) for m in status["models"]}
    errors = {m: plain(outcomes.get(m, {}).get("error") or step_errors.get(m)) for m in status["models"]}
    return tables, warnings, errors
