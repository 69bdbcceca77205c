"""What an API model's request may carry besides its query: a method, a JSON or form body, a GraphQL
query. Kept apart from `models.py` so the rules about which combinations make sense stay in one place.
"""
from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator


class GraphQL(BaseModel):
    """A GraphQL query sent as `{"query": ..., "variables": ...}`; paging values go into the variables."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    query: str = Field(description="The query document (a `query` operation, with its variables).")
    variables: dict[str, Any] = Field(default_factory=dict, description="Variables sent with every page.")

    @field_validator("query")
    @classmethod
    def _not_blank(cls, query: str) -> str:
        if not query.strip():
            raise ValueError("the query is empty: give the GraphQL query document")
        return query


def check_request_body(model: Any) -> Any:
    """An ApiModel's method, body and idempotency agree (a GET has no body; one body at most)."""
    method, body = model.method, model.json_body
    if model.graphql is not None:
        if body is not None or model.form is not None:
            raise ValueError("graphql builds the body ({query, variables}): leave out json and form")
        if method not in (None, "POST"):
            raise ValueError(f"graphql is sent as a POST, not {method}: leave out method")
    if body is not None and model.form is not None:
        raise ValueError("give one body, json or form, not both")
    effective = model.http_method
    if effective == "GET":
        if body is not None or model.form is not None:
            raise ValueError(f"{'json' if body is not None else 'form'}: a GET request has no body: "
                             "set method: POST (or PUT)")
        if model.idempotent:
            raise ValueError("idempotent only applies to POST and PUT: a GET is always retried")
    return model


def body_paging_issue(model: Any, pagination: Any, from_source: bool) -> str | None:
    """Why `pagination` cannot write into this model's request body, or None when it can."""
    if getattr(pagination, "location", "query") != "body" or model.http_method != "GET":
        return None
    where = "the source's pagination" if from_source else "pagination"
    return f"{where} has in: body, but a GET request has no body: set method: POST (or PUT) on the model"
