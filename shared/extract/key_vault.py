"""Rotated refresh tokens written back to the Key Vault secret they came from, for instances that
share no disk (the queue chain in Azure).

Key Vault's set-secret has no conditional write (no If-Match), so the compare-and-swap is built from
the chain's storage, whose conditional create lets exactly one of two racing callers win: before
refreshing with the secret's newest version V, an instance creates the blob `tokens/<secret>/<V>`;
only the instance that created it refreshes with V's token and writes the rotated one as the next
version. The others wait until a newer version appears and claim that one. A version is claimed at
most once, ever, so no refresh token is sent twice. An instance that dies between its claim and its
write leaves the secret at a claimed version: the others stop after `CLAIM_WAIT` saying so (the
token may be burnt: authorize again and set the new refresh token as the secret's next version).

REST calls, api-version 7.4 (https://learn.microsoft.com/en-us/rest/api/keyvault/secrets/get-secret/get-secret,
https://learn.microsoft.com/en-us/rest/api/keyvault/secrets/set-secret/set-secret), with the app
identity's token for https://vault.azure.net/.default (role Key Vault Secrets Officer on the secret).
"""
from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import requests

from shared.config.auth_types import OAuth2RefreshToken
from shared.errors import ExtractError, FetchError
from shared.extract.auth import TOKEN_TIMEOUT, AzureTokenAuth, TokenCredential, _json_or_none
from shared.extract.refresh_token import Grant, Refresh
from shared.extract.retry import describe_exception
from shared.storage.base import BlobStore

log = logging.getLogger("kspyder.auth")
API_VERSION = "7.4"
VAULT_SCOPE = "https://vault.azure.net/.default"
CLAIMS = "kspyder-runs"       # the chain's run-state container
CLAIM_WAIT = 60.0             # seconds to wait for the holder of a claimed version to write the next one
POLL = 0.5
CONTENT_TYPE = "application/vnd.kspyder.oauth2-refresh-token"


class KeyVaultSecret:
    """One secret's newest version, read and written over REST."""

    def __init__(self, identifier: str, credential: TokenCredential | None = None,
                 session: requests.Session | None = None, timeout: float = TOKEN_TIMEOUT):
        self.url = identifier.rstrip("/")
        self._auth = AzureTokenAuth(VAULT_SCOPE, credential)
        self._session = session or requests.Session()
        self._timeout = timeout

    def latest(self) -> tuple[str, str]:
        """(version, value) of the newest version."""
        body = self._call("GET", self.url, None)
        identifier, value = body.get("id"), body.get("value")
        if not isinstance(identifier, str) or not isinstance(value, str):
            raise FetchError(self.url, 200, "Key Vault answered a secret without id or value")
        return identifier.rstrip("/").rsplit("/", 1)[1], value

    def set(self, value: str, tags: dict[str, str]) -> str:
        """Write `value` as the newest version; its version."""
        body = self._call("PUT", self.url, {"value": value, "contentType": CONTENT_TYPE, "tags": tags})
        identifier = body.get("id")
        if not isinstance(identifier, str):
            raise FetchError(self.url, 200, "Key Vault answered a new version without id")
        return identifier.rstrip("/").rsplit("/", 1)[1]

    def _call(self, method: str, url: str, payload: dict[str, Any] | None) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {self._auth.token()}", "Accept": "application/json"}
        try:
            response = self._session.request(method, url, params={"api-version": API_VERSION}, json=payload,
                                             headers=headers, timeout=self._timeout)
        except requests.RequestException as exc:
            raise FetchError(url, None, f"Key Vault request failed: {describe_exception(exc)}") from None
        body = _json_or_none(response)
        if not 200 <= response.status_code < 300:
            error = body.get("error") if isinstance(body, dict) else None
            code = error.get("code") if isinstance(error, dict) else None
            raise FetchError(url, response.status_code, f"Key Vault refused: {code or response.reason}")
        if not isinstance(body, dict):
            raise FetchError(url, response.status_code, "Key Vault answered no JSON object")
        return body


# The access token each secret last got, kept by the process: a Functions worker runs many Fetch
# invocations, each with a client of its own, and one refresh serves them all until it expires.
_granted: dict[str, Grant] = {}
_granted_lock = threading.Lock()


class KeyVaultTokenStore:
    """The secret holds the refresh token itself (so the app setting referencing it stays usable);
    access tokens are shared within a process, not between instances: each gets its own, from a
    refresh token version it alone claimed."""

    def __init__(self, secret: KeyVaultSecret, claims: BlobStore, sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic, wait: float = CLAIM_WAIT,
                 granted: dict[str, Grant] | None = None):
        self.secret, self.claims = secret, claims
        self._granted = _granted if granted is None else granted
        self._sleep, self._clock, self._wait = sleep, clock, wait
        self._prefix = "tokens/" + hashlib.sha256(secret.url.encode()).hexdigest()[:24]

    @classmethod
    def for_config(cls, config: OAuth2RefreshToken, credential: TokenCredential | None = None) -> KeyVaultTokenStore:
        if config.key_vault_secret is None:
            raise ValueError("the refresh-token auth names no key_vault_secret")
        claims = config.claims
        if claims is None:
            if config.store_path is None:
                raise ExtractError("a Key Vault refresh token needs somewhere to claim versions: run it from a "
                                   "project (the state folder) or the queue chain (its storage)")
            from shared.storage.local import LocalBlobStore
            claims = LocalBlobStore(config.store_path.parent / "claims")
        return cls(KeyVaultSecret(config.key_vault_secret, credential), claims)

    def claim_name(self, version: str) -> str:
        """The blob whose creation claims `version` of the secret (in the `CLAIMS` container)."""
        return f"{self._prefix}/{version}"

    def exchange(self, refresh: Refresh, *, rejected: str | None, valid_until: float) -> Grant:
        with _granted_lock:
            kept = self._granted.get(self.secret.url)
            if kept is not None and kept.access_token != rejected and kept.expires_at > valid_until:
                return kept
        waited_from: float | None = None
        while True:
            version, token = self.secret.latest()
            claim = json.dumps({"claimed_at": time.time()}).encode()
            if self.claims.create(CLAIMS, self.claim_name(version), claim):
                grant = refresh(token)
                with _granted_lock:
                    self._granted[self.secret.url] = grant
                self._write_back(grant.refresh_token, version)
                return grant
            waited_from = self._clock() if waited_from is None else waited_from
            if self._clock() - waited_from > self._wait:
                raise ExtractError(f"the refresh token in {self.secret.url} (version {version}) was claimed by "
                                   f"another instance that wrote no newer version in {self._wait:.0f}s: if it "
                                   "died mid-refresh, authorize again and set the new refresh token as the "
                                   "secret's next version")
            self._sleep(POLL)

    def _write_back(self, token: str, previous: str) -> None:
        """The rotated token as the next version: tried three times, since the old one is burnt now."""
        for attempt in (1, 2, 3):
            try:
                version = self.secret.set(token, {"kspyder-previous": previous})
                log.info("refresh token rotated: %s version %s replaces %s", self.secret.url, version, previous)
                return
            except FetchError:
                if attempt == 3:
                    raise ExtractError(f"the rotated refresh token could not be written to {self.secret.url}; the "
                                       f"previous one (version {previous}) is spent: authorize again") from None
                self._sleep(POLL * attempt)
