"""A plan saved as JSON: for people and scripts to read, and for `apply PLAN.json` to hold the
database to. Applying recomputes the plan and compares fingerprints and the plan hash, so the file
is a promise to check, not a list of statements to trust (and it never holds a password).
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.engine import make_url

from shared.config.project import Project
from shared.schema.apply import PlanStamp
from shared.schema.plan import Plan, PlanError, PlanOptions

FORMAT = 1


def mask_url(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


def plan_document(plan: Plan, target_url: str, project: Project) -> dict:
    return {
        "kspyder_plan": FORMAT,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "target": mask_url(target_url),
        "manifests": str(project.root),
        "selection": {"selectors": list(plan.options.selectors), "models": list(plan.models)},
        "options": plan.options.as_json(),
        "fingerprint": plan.fingerprint,
        "result_fingerprint": plan.result_fingerprint,
        "plan_hash": plan.plan_hash,
        "changes": [c.as_json() for c in plan.changes],
        "kept": [k.as_json() for k in plan.kept],
        "reextract": list(plan.reextract),
    }


def save_plan(path: str | os.PathLike, document: dict) -> None:
    """Written beside the destination then renamed, so a half-written plan never exists."""
    path = Path(path)
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    temporary.replace(path)


@dataclass(frozen=True)
class SavedPlan:
    stamp: PlanStamp
    target: str            # masked URL
    changes: list[dict]


def load_plan(path: str | os.PathLike) -> SavedPlan:
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
        if document.get("kspyder_plan") != FORMAT:
            raise ValueError(f"unsupported plan format {document.get('kspyder_plan')!r}")
        options = document["options"]
        stamp = PlanStamp(PlanOptions(bool(options["prune"]), tuple(options["selectors"]), tuple(options["scope"]),
                                      bool(options.get("rebuild", False))),
                          str(document["fingerprint"]), str(document["result_fingerprint"]), str(document["plan_hash"]))
        return SavedPlan(stamp, str(document["target"]), list(document["changes"]))
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise PlanError(f"{path} is not a readable kspyder plan: {type(exc).__name__}: {exc}") from None
