"""Request authentication: one small `requests` AuthBase per configured auth type.

Auth objects are applied to each prepared request, after the client has noted the URL it may
show in errors and logs, so a key that travels in the query string never reaches a message.
Every object also offers `redact(text)`, which the client runs over reasons quoted from the
server, because some APIs echo the credential they rejected.
"""
from __future__ import annotations

import base64
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any, Protocol
from urllib.parse import quote, quote_plus

import requests
from requests.auth import AuthBase, HTTPBasicAuth

from shared.config import models as cfg
from shared.config.auth_types import OAuth2RefreshToken, SessionAuth
from shared.errors import ExtractError, FetchError
from shared.extract.retry import describe_exception, short_reason

MASK = "***"
TOKEN_TIMEOUT = 30.0          # seconds; the token endpoint is not covered by the source's throttle
DEFAULT_EXPIRES_IN = 3600.0   # when a token response omits expires_in (RFC 6749 only recommends it)


def _redact(text: str, *secrets: str) -> str:
    for secret in secrets:
        if secret:
            for form in {secret, quote_plus(secret), quote(secret, safe="")}:
                text = text.replace(form, MASK)
    return text


class BearerTokenAuth(AuthBase):
    def __init__(self, token: str):
        self._token = token

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        r.headers["Authorization"] = f"Bearer {self._token}"
        return r

    def redact(self, text: str) -> str:
        return _redact(text, self._token)


class ApiKeyHeaderAuth(AuthBase):
    def __init__(self, name: str, value: str):
        self.name, self._value = name, value

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        r.headers[self.name] = self._value
        return r

    def redact(self, text: str) -> str:
        return _redact(text, self._value)


class ApiKeyQueryAuth(AuthBase):
    def __init__(self, name: str, value: str):
        self.name, self._value = name, value

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        # requests' own encoder, so the key is escaped exactly like the model's params are
        r.prepare_url(r.url, {self.name: self._value})
        return r

    def redact(self, text: str) -> str:
        return _redact(text, self._value)


class BasicAuth(HTTPBasicAuth):
    def __init__(self, username: str, password: str):
        super().__init__(username, password)
        self._secret = password   # the str given; HTTPBasicAuth types its field str | bytes

    def redact(self, text: str) -> str:
        return _redact(text, self._secret)


class CachedTokenAuth(AuthBase, ABC):
    """A bearer token fetched on first use and kept until shortly before it expires.

    One lock guards fetch and cache: while one thread refreshes, the others wait for its token
    instead of each asking the identity provider. The safety margin is `early` seconds, or half
    the lifetime for short-lived tokens, so a 30-second token is not refreshed on every request.
    """

    early = 60.0

    def __init__(self, clock: Callable[[], float]):
        self._clock = clock
        self._lock = threading.Lock()
        self._token: str | None = None
        self._refresh_at = float("-inf")
        self._rejected: str | None = None   # the token last refused with a 401: never handed out again
        self.fetches = 0   # how many tokens were obtained; tests and run stats read it

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        r.headers["Authorization"] = f"Bearer {self.token()}"
        return r

    def token(self) -> str:
        with self._lock:
            if self._token is None or self._clock() >= self._refresh_at:
                self._token, expires_at = self._fetch()
                self._refresh_at = expires_at - min(self.early, max(expires_at - self._clock(), 0) / 2)
                self.fetches += 1
            return self._token

    def invalidate(self, token: str | None = None) -> None:
        """Drop the cached token after a 401. Given the token that was rejected, only drop it if
        it is still the current one: sixteen threads rejected together refresh once, not 16 times."""
        with self._lock:
            if token is None or token == self._token:
                self._rejected = self._token
                self._token, self._refresh_at = None, float("-inf")

    def sent_token(self, prepared: requests.PreparedRequest) -> str | None:
        """The token a request carried, so that a 401 on it invalidates that token only."""
        sent = prepared.headers.get("Authorization", "")
        return sent[7:] if sent.startswith("Bearer ") else None

    def redact(self, text: str) -> str:
        return _redact(text, self._token or "")

    @abstractmethod
    def _fetch(self) -> tuple[str, float]:
        """A new token and the clock time at which it expires."""


class OAuth2ClientCredentialsAuth(CachedTokenAuth):
    def __init__(self, config: cfg.OAuth2ClientCredentials, session: requests.Session,
                 clock: Callable[[], float] = time.monotonic, timeout: float = TOKEN_TIMEOUT):
        super().__init__(clock)
        self.token_url = config.token_url
        self._config, self._session, self._timeout = config, session, timeout

    def _fetch(self) -> tuple[str, float]:
        form = {"grant_type": "client_credentials"}
        if self._config.scope:
            form["scope"] = self._config.scope
        started = self._clock()
        body = token_request(self._session, self.token_url, form, self._config.client_id, self._config.client_secret,
                             self._config.auth_method, self._timeout, self.redact)
        return body["access_token"], started + expires_in(body)

    def redact(self, text: str) -> str:
        return _redact(super().redact(text), self._config.client_secret)


def token_request(session: requests.Session, token_url: str, form: dict[str, str], client_id: str,
                  client_secret: str | None, auth_method: str, timeout: float,
                  redact: Callable[[str], str]) -> dict[str, Any]:
    """POST a grant to a token endpoint, the client authenticated as RFC 6749 §2.3.1 allows: in the
    form (`client_secret_post`) or with HTTP Basic of the form-encoded id and secret
    (`client_secret_basic`); a public client (no secret) names itself in the form. The answer's body,
    which holds an `access_token`."""
    headers = {"Accept": "application/json"}
    if auth_method == "client_secret_basic" and client_secret:
        pair = f"{quote_plus(client_id)}:{quote_plus(client_secret or '')}"
        headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
    else:
        form = {**form, "client_id": client_id, **({"client_secret": client_secret} if client_secret else {})}
    try:
        response = session.post(token_url, data=form, headers=headers, timeout=timeout)
    except requests.RequestException as exc:
        raise FetchError(token_url, None, f"token request failed: {describe_exception(exc)}") from None
    if not 200 <= response.status_code < 300:
        raise FetchError(token_url, response.status_code, "token request rejected: " + redact(short_reason(response)))
    body = _json_or_none(response)
    token = body.get("access_token") if isinstance(body, dict) else None
    if not isinstance(body, dict) or not isinstance(token, str) or not token:
        raise FetchError(token_url, response.status_code, "token response has no access_token")
    return body


def expires_in(body: dict[str, Any]) -> float:
    """A token answer's lifetime in seconds (RFC 6749 only recommends stating it; some send a string)."""
    try:
        return float(body.get("expires_in", DEFAULT_EXPIRES_IN))
    except (TypeError, ValueError):
        return DEFAULT_EXPIRES_IN


class TokenCredential(Protocol):
    """What azure-identity credentials offer; tests pass any object with this method."""

    def get_token(self, *scopes: str) -> Any: ...   # an AccessToken(token, expires_on)


class AzureTokenAuth(CachedTokenAuth):
    """Entra ID tokens through `DefaultAzureCredential` (managed identity in Azure, the developer's
    az login locally). `expires_on` is epoch seconds, hence the wall clock here."""

    early = 300.0

    def __init__(self, scope: str, credential: TokenCredential | None = None,
                 clock: Callable[[], float] = time.time):
        super().__init__(clock)
        self.scope, self._credential = scope, credential

    def _fetch(self) -> tuple[str, float]:
        if self._credential is None:
            # imported late: building the credential probes the environment, and most sources never need it
            from azure.identity import DefaultAzureCredential
            self._credential = DefaultAzureCredential()
        try:
            access = self._credential.get_token(self.scope)
        except Exception as exc:  # azure-identity raises several unrelated types; all mean "no token"
            first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
            raise ExtractError(f"could not get an Azure token for scope {self.scope}: {first_line}") from exc
        return access.token, float(access.expires_on)


def build_auth(config: Any, session: requests.Session, *, azure_credential: TokenCredential | None = None,
               base_url: str = "") -> AuthBase | None:
    """The AuthBase for a source's `auth:` block; `session` is the client's, reused for token calls;
    `base_url` the source's, against which a session's login path is resolved."""
    if config is None or isinstance(config, cfg.NoAuth):
        return None
    if isinstance(config, cfg.BearerAuth):
        return BearerTokenAuth(config.token)
    if isinstance(config, cfg.ApiKeyAuth):
        if config.location == "query":
            return ApiKeyQueryAuth(config.name, config.value)
        return ApiKeyHeaderAuth(config.name, config.value)
    if isinstance(config, cfg.BasicAuth):
        return BasicAuth(config.username, config.password)
    if isinstance(config, cfg.OAuth2ClientCredentials):
        return OAuth2ClientCredentialsAuth(config, session)
    if isinstance(config, cfg.AzureAuth):
        return AzureTokenAuth(config.scope, azure_credential)
    if isinstance(config, OAuth2RefreshToken):
        from shared.extract.refresh_token import OAuth2RefreshTokenAuth, store_for
        return OAuth2RefreshTokenAuth(config, session, store_for(config))
    if isinstance(config, SessionAuth):
        from shared.extract.session_auth import SessionTokenAuth
        return SessionTokenAuth(config, session, base_url)
    raise TypeError(f"unsupported auth config: {type(config).__name__}")


def _json_or_none(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None
