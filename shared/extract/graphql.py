"""GraphQL answers errors with HTTP 200 and an `errors` list (spec, "Response" section:
https://spec.graphql.org/October2021/#sec-Errors); such a page is a failure, not records."""
from __future__ import annotations

from typing import Any

from shared.detect.redact_message import safe_excerpt, safe_url
from shared.errors import ExtractError

MAX_SHOWN = 3   # error messages quoted in the model's error; the rest are counted


class GraphQLError(ExtractError):
    """A GraphQL response stated errors. Its message quotes theirs, scrubbed and cut short."""


def check_graphql(body: Any, url: str) -> None:
    """Raise GraphQLError when a GraphQL response body carries a non-empty `errors` list."""
    errors = body.get("errors") if isinstance(body, dict) else None
    if not errors:
        return
    items = errors if isinstance(errors, list) else [errors]
    messages = [safe_excerpt(_message(item)) for item in items[:MAX_SHOWN]]
    more = f" (and {len(items) - MAX_SHOWN} more)" if len(items) > MAX_SHOWN else ""
    raise GraphQLError(f"POST {safe_url(url)}: the GraphQL response has {len(items)} error(s): "
                       f"{'; '.join(messages)}{more}")


def _message(item: Any) -> str:
    if isinstance(item, dict):
        text = item.get("message")
        if isinstance(text, str) and text.strip():
            return text
        return "(an error without a message)"
    return str(item)
