"""Names the probe invents: column, source and model identifiers.

Every name the manifest loader sees must pass `check_identifier` (they become SQL identifiers),
so API keys such as `createdAt`, `@odata.etag` or `2fa` are turned into snake_case identifiers here
and the original key is kept in the column's `path`.
"""
from __future__ import annotations

import ipaddress
import re

from shared.config.models import MAX_IDENTIFIER

_CAMEL_1 = re.compile(r"([A-Z]+)([A-Z][a-z])")   # HTTPStatus -> HTTP_Status
_CAMEL_2 = re.compile(r"([a-z0-9])([A-Z])")      # createdAt -> created_At
_OTHER = re.compile(r"[^A-Za-z0-9_]+")
_UNDERSCORES = re.compile(r"_{2,}")
GENERIC_HOST_LABELS = ("api", "www", "rest", "apis", "gateway")


def identifier(key: str, fallback: str = "column") -> str:
    """A valid identifier for any key; never empty, never starting with a digit, at most 63 characters."""
    text = _CAMEL_2.sub(r"\1_\2", _CAMEL_1.sub(r"\1_\2", key))
    text = _UNDERSCORES.sub("_", _OTHER.sub("_", text)).strip("_").lower()
    if not text:
        text = fallback
    if text[0].isdigit():
        text = f"{fallback}_{text}"
    return text[:MAX_IDENTIFIER].rstrip("_") or fallback


def unique(name: str, taken: set[str]) -> str:
    """`name`, or `name_2`, `name_3`… when two keys sanitise to the same identifier."""
    candidate, n = name, 2
    while candidate in taken:
        suffix = f"_{n}"
        candidate = name[:MAX_IDENTIFIER - len(suffix)] + suffix
        n += 1
    taken.add(candidate)
    return candidate


def source_name(host: str) -> str:
    """The host's first meaningful label: `api.github.com` is `github`, not one more source called `api`."""
    host = host.strip("[]").lower()
    try:
        ipaddress.ip_address(host)
        return "api"
    except ValueError:
        pass
    labels = [label for label in host.split(".") if label]
    meaningful = [label for label in labels[:-1] if label not in GENERIC_HOST_LABELS] or labels
    return identifier(meaningful[0] if meaningful else "", fallback="api")


def model_name(path: str) -> str:
    """The last path segment that is not a version or an id: `/v1/customers/` is `customers`."""
    segments = [s for s in path.split("/") if s]
    for segment in reversed(segments):
        if not re.fullmatch(r"v\d+(\.\d+)?|\d+|[0-9a-fA-F-]{16,}", segment):
            return identifier(segment.rsplit(".", 1)[0] if segment.endswith(".json") else segment, fallback="records")
    return "records"


def singular(name: str) -> str:
    """Good enough for `<singular>_id` key guesses; not an English grammar."""
    if name.endswith("ies") and len(name) > 3:
        return name[:-3] + "y"
    if name.endswith(("ses", "xes", "ches", "shes")):
        return name[:-2]
    if name.endswith("s") and not name.endswith("ss"):
        return name[:-1]
    return name
