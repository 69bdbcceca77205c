"""The OAuth2 refresh-token grant with rotation (RFC 6749 §6; single-use refresh tokens, RFC 9700 §4.14.2).

A rotating server answers each refresh with a new refresh token and refuses the old one from then on
(and may revoke them all when one comes back), so the new one must be kept before anything could use
the old one again. Where it is kept is the store's business (`TokenStore.exchange`):

- the state folder (`<state_dir>/tokens/<source>.json`, mode 0600) in embedded runs: every refresh
  runs under a `flock` on it, reads the newest saved state first (another process may have refreshed
  meanwhile: its access token, still valid, is used instead of refreshing again) and writes the new
  state before the lock is released;
- the Key Vault secret the token came from (`key_vault.py`), for instances without a shared disk.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import requests

from shared.config.auth_types import OAuth2RefreshToken
from shared.errors import ExtractError
from shared.extract.auth import TOKEN_TIMEOUT, CachedTokenAuth, _redact, expires_in, token_request

State = dict[str, Any]


@dataclass(frozen=True)
class Grant:
    """What a refresh obtained: the access token, its expiry (wall-clock seconds), the refresh token to use next."""

    access_token: str
    expires_at: float
    refresh_token: str


# Given the refresh token to use, refresh with it (burning it on a rotating server).
Refresh = Callable[[str], Grant]


class TokenStore(Protocol):
    def exchange(self, refresh: Refresh, *, rejected: str | None, valid_until: float) -> Grant:
        """An access token: one saved that is neither `rejected` nor expiring before `valid_until`,
        else the grant of `refresh` called with the newest refresh token, kept before returning."""


class LockedStateStore(ABC):
    """A store of one state (refresh token, access token, expiry) read and written under a lock."""

    def __init__(self, manifest_token: str):
        self.seed = seed_of(manifest_token)
        self.manifest_token = manifest_token

    @abstractmethod
    def locked(self) -> contextlib.AbstractContextManager[None]:
        """The lock under which a read, a refresh and a write happen together."""

    @abstractmethod
    def read(self) -> State | None:
        """The stored state, None before the first write."""

    @abstractmethod
    def write(self, state: State) -> None:
        """Store `state` (the rotated refresh token first of all)."""

    def exchange(self, refresh: Refresh, *, rejected: str | None, valid_until: float) -> Grant:
        with self.locked():
            saved = self.read()
            if saved is None or saved.get("seed") != self.seed:
                saved = {"seed": self.seed, "refresh_token": self.manifest_token}
            access, expires_at, following = saved.get("access_token"), saved.get("expires_at"), saved["refresh_token"]
            if (isinstance(access, str) and access != rejected and isinstance(expires_at, (int, float))
                    and expires_at > valid_until):
                return Grant(access, float(expires_at), following)   # another process refreshed: no grant needed
            grant = refresh(following)
            self.write({"seed": self.seed, "refresh_token": grant.refresh_token, "access_token": grant.access_token,
                        "expires_at": grant.expires_at})
            return grant


class MemoryTokenStore(LockedStateStore):
    """For a client built without a project (tests, `probe`): rotation within one process only."""

    def __init__(self, manifest_token: str) -> None:
        super().__init__(manifest_token)
        self._lock = threading.Lock()
        self._state: State | None = None

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        with self._lock:
            yield

    def read(self) -> State | None:
        return self._state

    def write(self, state: State) -> None:
        self._state = dict(state)


class FileTokenStore(LockedStateStore):
    """One JSON file, readable by its owner only, replaced whole (never half written), next to a lock
    file that every process refreshing the same source takes first."""

    def __init__(self, path: Path, manifest_token: str = ""):
        super().__init__(manifest_token)
        self.path = path

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        descriptor = os.open(self.path.with_name(self.path.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX)
            yield
        finally:
            os.close(descriptor)   # closing releases the lock

    def read(self) -> State | None:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        try:
            state = json.loads(text)
        except ValueError:
            raise ExtractError(f"the saved refresh token {self.path} is not JSON: delete it to start again from "
                               "the manifest's refresh_token") from None
        return state if isinstance(state, dict) else None

    def write(self, state: State) -> None:
        temporary = self.path.with_name(f"{self.path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as out:
            json.dump(state, out)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, self.path)


def store_for(config: OAuth2RefreshToken) -> TokenStore:
    """The Key Vault secret when the manifest names one, else the state folder (memory without a project)."""
    if config.key_vault_secret is not None:
        from shared.extract.key_vault import KeyVaultTokenStore
        return KeyVaultTokenStore.for_config(config)
    if config.store_path is not None:
        return FileTokenStore(config.store_path, config.refresh_token)
    return MemoryTokenStore(config.refresh_token)


def seed_of(refresh_token: str) -> str:
    """Which manifest refresh token a saved state descends from: a new one in the manifest (the user
    authorized again) starts over from it. A digest, so the file does not keep the old token."""
    return hashlib.sha256(refresh_token.encode()).hexdigest()


class OAuth2RefreshTokenAuth(CachedTokenAuth):
    """Expiry in wall-clock seconds: a saved access token is shared across processes and runs."""

    def __init__(self, config: OAuth2RefreshToken, session: requests.Session, store: TokenStore,
                 clock: Callable[[], float] = time.time, timeout: float = TOKEN_TIMEOUT):
        super().__init__(clock)
        self.token_url = config.token_url
        self._config, self._session, self._store, self._timeout = config, session, store, timeout
        self._secrets: set[str] = {config.refresh_token}
        self._secrets_lock = threading.Lock()
        self.refreshes = 0   # refresh-token grants this object sent (tests count them)

    def _fetch(self) -> tuple[str, float]:
        grant = self._store.exchange(self._refresh, rejected=self._rejected,
                                     valid_until=self._clock() + min(self.early, 1.0))
        with self._secrets_lock:
            self._secrets.add(grant.refresh_token)
        return grant.access_token, grant.expires_at

    def _refresh(self, refresh_token: str) -> Grant:
        with self._secrets_lock:
            self._secrets.add(refresh_token)
        form = {"grant_type": "refresh_token", "refresh_token": refresh_token}
        if self._config.scope:
            form["scope"] = self._config.scope
        started = self._clock()
        body = token_request(self._session, self.token_url, form, self._config.client_id, self._config.client_secret,
                             self._config.auth_method, self._timeout, self.redact)
        self.refreshes += 1
        rotated = body.get("refresh_token")
        following = rotated if isinstance(rotated, str) and rotated else refresh_token
        with self._secrets_lock:
            self._secrets.add(following)
        return Grant(body["access_token"], started + expires_in(body), following)

    def redact(self, text: str) -> str:
        with self._secrets_lock:
            secrets = tuple(self._secrets)
        return _redact(super().redact(text), self._config.client_secret or "", *secrets)
