"""The OAuth2 refresh-token grant with rotation (RFC 6749 §6; single-use refresh tokens, RFC 9700 §4.14.2).

A rotating server answers each refresh with a new refresh token and refuses the old one from then on,
so the new one must be kept before anything could use the old one again: every refresh runs under the
store's lock, reads the newest saved state first (another process may have refreshed meanwhile: its
access token, still valid, is used instead of refreshing again), and writes the new state before the
lock is released. Embedded runs keep it in the state folder (`<state_dir>/tokens/<source>.json`, mode
0600, locked with `flock`).
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol

import requests

from shared.config.auth_types import OAuth2RefreshToken
from shared.errors import ExtractError
from shared.extract.auth import TOKEN_TIMEOUT, CachedTokenAuth, _redact, expires_in, token_request

State = dict[str, Any]


class HeldStore(Protocol):
    """A store while its lock is held: what was saved last, and saving the next state."""

    def read(self) -> State | None: ...

    def write(self, state: State) -> None: ...


class TokenStore(Protocol):
    def locked(self) -> contextlib.AbstractContextManager[HeldStore]: ...


class MemoryTokenStore:
    """For a client built without a project (tests, `probe`): rotation within one process only."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._state: State | None = None

    @contextlib.contextmanager
    def locked(self) -> Iterator[HeldStore]:
        with self._lock:
            yield self

    def read(self) -> State | None:
        return self._state

    def write(self, state: State) -> None:
        self._state = dict(state)


class FileTokenStore:
    """One JSON file, readable by its owner only, replaced whole (never half written), next to a lock
    file that every process refreshing the same source takes first."""

    def __init__(self, path: Path):
        self.path = path

    @contextlib.contextmanager
    def locked(self) -> Iterator[HeldStore]:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        descriptor = os.open(self.path.with_name(self.path.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX)
            yield self
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
    return FileTokenStore(config.store_path) if config.store_path is not None else MemoryTokenStore()


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
        self.refreshes = 0   # refresh-token grants this object sent (tests count them)

    def _fetch(self) -> tuple[str, float]:
        seed = seed_of(self._config.refresh_token)
        with self._store.locked() as held:
            saved = held.read()
            if saved is None or saved.get("seed") != seed:
                saved = {"seed": seed, "refresh_token": self._config.refresh_token}
            access, expires_at = saved.get("access_token"), saved.get("expires_at")
            if (isinstance(access, str) and access != self._rejected and isinstance(expires_at, (int, float))
                    and expires_at - self._clock() > min(self.early, 1.0)):
                return access, float(expires_at)   # refreshed by another process: no grant needed
            refresh = saved["refresh_token"]
            form = {"grant_type": "refresh_token", "refresh_token": refresh}
            if self._config.scope:
                form["scope"] = self._config.scope
            started = self._clock()
            body = token_request(self._session, self.token_url, form, self._config.client_id,
                                 self._config.client_secret, self._config.auth_method, self._timeout, self.redact)
            self.refreshes += 1
            rotated = body.get("refresh_token")
            following = rotated if isinstance(rotated, str) and rotated else refresh
            self._secrets |= {refresh, following}
            token, expires = body["access_token"], started + expires_in(body)
            held.write({"seed": seed, "refresh_token": following, "access_token": token, "expires_at": expires})
            return token, expires

    def redact(self, text: str) -> str:
        return _redact(super().redact(text), self._config.client_secret or "", *self._secrets)
