"""Keep credentials out of anything printed: errors, logs and progress lines pass through `mask`."""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable

from sqlalchemy.engine import make_url

MASK = "***"
_MIN_SECRET = 4  # shorter values would mask ordinary words


@dataclass(frozen=True)
class SecretMasker:
    secrets: tuple[str, ...] = ()

    @classmethod
    def from_config(cls, settings, sources) -> "SecretMasker":
        found: list[str] = []
        if settings is not None and settings.pii.key:
            found.append(settings.pii.key)
        for source in (sources or {}).values():
            if source.type == "sql":
                found.extend(_url_password(source.url))
                continue
            auth = source.auth
            found.extend(v for k in ("token", "value", "password", "client_secret") if (v := getattr(auth, k, None)))
        return cls(tuple(sorted({s for s in found if len(s) >= _MIN_SECRET}, key=len, reverse=True)))

    def mask(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, MASK)
        return _URL_CREDENTIALS.sub(r"\1" + MASK + "@", text)

    def add(self, values: Iterable[str]) -> "SecretMasker":
        return SecretMasker(tuple(sorted(set(self.secrets) | {v for v in values if len(v) >= _MIN_SECRET}, key=len, reverse=True)))


_URL_CREDENTIALS = re.compile(r"(\b[a-z][a-z0-9+.-]*://[^/\s:@]+:)[^@\s/]+@", re.I)


def _url_password(url: str) -> list[str]:
    try:
        password = make_url(url).password
    except Exception:  # not a valid URL: the connector reports that, here there is just nothing to mask
        return []
    return [str(password)] if password else []
