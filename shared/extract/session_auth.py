"""`session` auth: log in with a request of the manifest's, then send the token its answer holds
(in a header or at a body path) until it expires or a 401 says it has; then log in once again."""
from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urljoin

import requests

from shared.config.auth_types import SessionAuth
from shared.errors import FetchError
from shared.extract.auth import TOKEN_TIMEOUT, CachedTokenAuth, _json_or_none, _redact
from shared.extract.paginators.paths import MISSING, dotted_get
from shared.extract.retry import describe_exception, short_reason


def _strings(value: Any) -> list[str]:
    """The string values of a login body, all kept out of messages (a username as much as a password)."""
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return [value] if isinstance(value, str) and len(value) >= 4 else []


class SessionTokenAuth(CachedTokenAuth):
    def __init__(self, config: SessionAuth, session: requests.Session, base_url: str,
                 clock: Callable[[], float] = time.monotonic, timeout: float = TOKEN_TIMEOUT):
        super().__init__(clock)
        login = config.login
        self.login_url = login.path if login.path.startswith(("http://", "https://")) \
            else urljoin(base_url.rstrip("/") + "/", login.path.lstrip("/"))
        self._config, self._session, self._timeout = config, session, timeout
        self._secrets = _strings(login.json_body) + _strings(login.form)

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        r.headers[self._config.header] = self._config.prefix + self.token()
        return r

    def sent_token(self, prepared: requests.PreparedRequest) -> str | None:
        sent = prepared.headers.get(self._config.header)
        prefix = self._config.prefix
        return sent[len(prefix):] if sent is not None and sent.startswith(prefix) else None

    def _fetch(self) -> tuple[str, float]:
        login = self._config.login
        started = self._clock()
        try:
            response = self._session.post(self.login_url, json=login.json_body, data=login.form,
                                          headers={"Accept": "application/json"}, timeout=self._timeout)
        except requests.RequestException as exc:
            raise FetchError(self.login_url, None, f"login failed: {describe_exception(exc)}") from None
        if not 200 <= response.status_code < 300:
            raise FetchError(self.login_url, response.status_code,
                             "login rejected: " + self.redact(short_reason(response)))
        body = _json_or_none(response)
        if login.token_header is not None:
            token: Any = response.headers.get(login.token_header)
            where = f"header {login.token_header}"
        else:
            token = dotted_get(body, login.token_path or "", None) if isinstance(body, (dict, list)) else None
            where = f"'{login.token_path}'"
        if not isinstance(token, str) or not token:
            raise FetchError(self.login_url, response.status_code, f"login answer has no token at {where}")
        lifetime = login.ttl
        if login.expires_in_path is not None and isinstance(body, (dict, list)):
            stated = dotted_get(body, login.expires_in_path, MISSING)
            if isinstance(stated, (int, float, str)) and not isinstance(stated, bool):
                try:
                    lifetime = float(stated)
                except ValueError:
                    lifetime = login.ttl
        return token, started + lifetime

    def redact(self, text: str) -> str:
        return _redact(super().redact(text), *self._secrets)
