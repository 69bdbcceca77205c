"""A model's request as the manifest declares it (method, `json`/`form`/`graphql` body), and the body
as it goes on the wire: the manifest's part with the paginator's values written into it."""
from __future__ import annotations

import copy
from typing import Any

from shared.config.models import ApiModel
from shared.errors import PaginationError
from shared.extract.types import PageRequest, RequestBody


def model_request(url: str, model: ApiModel) -> PageRequest:
    """The first request of `model`, before any paging value."""
    body: RequestBody | None = None
    if model.graphql is not None:
        body = RequestBody("json", {"query": model.graphql.query, "variables": dict(model.graphql.variables)},
                           at="variables")
    elif model.json_body is not None:
        body = RequestBody("json", model.json_body)
    elif model.form is not None:
        body = RequestBody("form", model.form)
    method = model.http_method
    return PageRequest(url, dict(model.params), dict(model.headers), method, body,
                       idempotent=method == "GET" or model.idempotent)


def body_arguments(body: RequestBody | None) -> dict[str, Any]:
    """`requests.Request` keywords for the body: `json=` or `data=` (none without a body)."""
    if body is None:
        return {}
    if body.kind == "form":
        return {"data": {**body.base, **body.values}}
    document: dict[str, Any] = copy.deepcopy(dict(body.base))
    for path, value in body.values.items():
        _put(document, f"{body.at}.{path}" if body.at else path, value)
    return {"json": document}


def body_value(body: RequestBody | None, path: str) -> Any:
    """The value at `path` (under `at`) the body will carry: a paging value, else the manifest's."""
    if body is None:
        return None
    if path in body.values:
        return body.values[path]
    node: Any = body.base
    for part in (f"{body.at}.{path}" if body.at else path).split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def _put(document: dict[str, Any], path: str, value: Any) -> None:
    """Set `value` at the dotted `path`, making the objects on the way."""
    *parents, last = path.split(".")
    node = document
    for part in parents:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise PaginationError(f"cannot write the paging value at body path '{path}': '{part}' is not an object")
        node = child
    node[last] = value
