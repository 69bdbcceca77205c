"""`GET /api/health`: is the app up and are its manifests valid? Counts only, never secrets."""
from __future__ import annotations

import json

import azure.functions as func

from shared.config.errors import ConfigError
from shared.config.project import load_project
from shared.config.secrets import SecretMasker

bp = func.Blueprint()


@bp.function_name("health")
@bp.route(route="health", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
def health(req: func.HttpRequest) -> func.HttpResponse:
    try:
        project = load_project()
    except ConfigError as exc:
        body = {"status": "invalid manifests", "problems": [SecretMasker().mask(str(i)) for i in exc.issues]}
        return func.HttpResponse(json.dumps(body), status_code=500, mimetype="application/json")
    models = sum(len(s.models) for s in project.sources.values())
    body = {"status": "ok", "sources": len(project.sources), "models": models}
    return func.HttpResponse(json.dumps(body), status_code=200, mimetype="application/json")

