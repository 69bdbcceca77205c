"""Which origins a source's credentials may reach: its `base_url`'s, and those it lists.

A next link or a redirect may point at any host. `auth:` of every kind and every header whose
value came from `${VAR}` go only to a trusted origin; a request to any other goes without them.
Checked on the URL each hop actually goes to, never on the one first asked for.
"""
from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

import requests

Origin = tuple[str, str]
# Sent by hand (`headers:`) they are credentials whatever their value's origin; requests itself
# drops only Authorization on a redirect to another host.
CREDENTIAL_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie"})


def origin(url: str) -> Origin:
    """(scheme, host:port), the default port filled in, so `https://a` and `https://a:443` agree."""
    parts = urlsplit(url)
    default = {"http": 80, "https": 443}.get(parts.scheme.lower())
    try:
        port = parts.port
    except ValueError:   # a port out of range: an origin nothing is trusted with
        port = -1
    return parts.scheme.lower(), f"{(parts.hostname or '').lower()}:{port or default}"


class OriginPolicy:
    """`base`: the source's origin; None means "the origin of each fetch's first URL" (a client
    built without a source, as the tests' are). `allowed`: the manifest's `allowed_origins`."""

    def __init__(self, base: str | None, allowed: Iterable[str] = (), secret_headers: Iterable[str] = ()):
        self.base = origin(base) if base else None
        self.allowed = frozenset(origin(url) for url in allowed)
        self.secret_headers = CREDENTIAL_HEADERS | {name.lower() for name in secret_headers}

    def trusts(self, url: str, first_url: str) -> bool:
        target = origin(url)
        return target == (self.base or origin(first_url)) or target in self.allowed

    def strip(self, prepared: requests.PreparedRequest) -> requests.PreparedRequest:
        """The request without its credential headers (in place; the caller passes a copy)."""
        for name in [name for name in prepared.headers if name.lower() in self.secret_headers]:
            del prepared.headers[name]
        return prepared
