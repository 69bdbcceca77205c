"""Keep credentials out of anything printed: errors, logs and progress lines pass through `mask`."""
from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy.engine import make_url

if TYPE_CHECKING:
    from shared.config.models import ApiSource, SqlSource
    from shared.config.settings import Settings

MASK = "***"
_MIN_SECRET = 4  # shorter values would mask ordinary words


@dataclass(frozen=True)
class SecretMasker:
    secrets: tuple[str, ...] = ()

    @classmethod
    def from_config(cls, settings: Settings | None,
                    sources: Mapping[str, ApiSource | SqlSource] | None) -> SecretMasker:
        found: list[str] = []
        if settings is not None and settings.pii.key:
            found.append(settings.pii.key)
        for source in (sources or {}).values():
            if source.type == "sql":
                found.extend(_url_password(source.url))
                continue
            auth = source.auth
            found.extend(v for k in ("token", "value", "password", "client_secret", "refresh_token")
                         if (v := getattr(auth, k, None)))
            login = getattr(auth, "login", None)   # a session's login body: its values are credentials
            if login is not None:
                found.extend(_strings(login.json_body) + _strings(login.form))
            for headers in [source.headers, *(model.headers for model in source.models.values())]:
                found.extend(v for k, v in headers.items() if k.lower() in source.secret_headers)
        return cls(tuple(sorted({s for s in found if len(s) >= _MIN_SECRET}, key=len, reverse=True)))

    def mask(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, MASK)
        return _URL_CREDENTIALS.sub(r"\1" + MASK + "@", text)

    def add(self, values: Iterable[str]) -> SecretMasker:
        added = {v for v in values if len(v) >= _MIN_SECRET}
        return SecretMasker(tuple(sorted(set(self.secrets) | added, key=len, reverse=True)))


def mark_secret_headers(from_env: set[tuple], sources: dict) -> None:
    """Tell each API source which of its headers (source or model) got their value from `${VAR}`:
    after substitution a value no longer shows where it came from, and such a header is a credential
    that must not reach another origin (`extract/origins.py`) nor any message."""
    names: dict[str, set[str]] = {}
    for path in from_env:
        if len(path) == 4 and path[0] == "sources" and path[2] == "headers":
            names.setdefault(path[1], set()).add(str(path[3]))
        elif len(path) == 6 and path[0] == "sources" and path[2] == "models" and path[4] == "headers":
            names.setdefault(path[1], set()).add(str(path[5]))
    for source_name, headers in names.items():
        source = sources.get(source_name)
        if source is not None and source.type == "api":
            source.mark_secret_headers(headers)


_URL_CREDENTIALS = re.compile(r"(\b[a-z][a-z0-9+.-]*://[^/\s:@]+:)[^@\s/]+@", re.I)


def _strings(value: object) -> list[str]:
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return [value] if isinstance(value, str) else []


def _url_password(url: str) -> list[str]:
    try:
        password = make_url(url).password
    except Exception:  # not a valid URL: the connector reports that, here there is just nothing to mask
        return []
    return [str(password)] if password else []
