"""A loopback OAuth2 authorization server that rotates refresh tokens, and an API behind it.

Follows RFC 6749 §6 (refresh-token grant: `grant_type=refresh_token`, `refresh_token`, client
authentication per §2.3.1 in the form or with HTTP Basic; errors as §5.2 `{"error": "invalid_grant"}`
with HTTP 400) and RFC 9700 §4.14.2 (refresh token rotation: every refresh answers a new refresh token
and invalidates the one used; a refresh token used twice is taken as stolen and the whole chain of
tokens is revoked), as Xero, Intuit, Salesforce (with rotation on) and Okta do. Also a login API for
`session` auth, and the paged API and project the auth flow tests run both modes against."""
from __future__ import annotations

import base64
import json
import secrets
import threading
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote_plus

from shared.config.project import Project
from tests.helpers.flow import project_for
from tests.helpers.http_stub import Reply, Seen

CLIENT_ID, CLIENT_SECRET = "kspyder-client", "s3cret/+&="
FIRST_REFRESH = "rt-first-0123456789"


class RotatingOAuthServer:
    def __init__(self, expires_in: int = 3600):
        self.expires_in = expires_in
        self._lock = threading.Lock()
        self.refresh_tokens = {FIRST_REFRESH}
        self.used: set[str] = set()
        self.access_tokens: set[str] = set()
        self.grants = 0          # refresh grants answered with new tokens
        self.reuses = 0          # refresh tokens presented a second time
        self.revoked = False

    def __call__(self, seen: Seen) -> Reply:
        if seen.path == "/oauth/token" and seen.method == "POST":
            return self._token(seen)
        token = seen.headers.get("Authorization", "")[len("Bearer "):]
        with self._lock:
            valid = token in self.access_tokens and not self.revoked
        if not valid:
            return Reply(401, {"error": "invalid_token"}, headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
        return Reply(200, {"items": [{"id": 1}, {"id": 2}, {"id": 3}]})

    def _client(self, seen: Seen, form: dict[str, str]) -> tuple[str, str]:
        scheme, _, encoded = seen.headers.get("Authorization", "").partition(" ")
        if scheme == "Basic":
            user, _, password = base64.b64decode(encoded).decode().partition(":")
            return unquote_plus(user), unquote_plus(password)
        return form.get("client_id", ""), form.get("client_secret", "")

    def _token(self, seen: Seen) -> Reply:
        form = {k: v[0] for k, v in parse_qs(seen.body.decode()).items()}
        if self._client(seen, form) != (CLIENT_ID, CLIENT_SECRET):
            return Reply(401, {"error": "invalid_client"})
        if form.get("grant_type") != "refresh_token":
            return Reply(400, {"error": "unsupported_grant_type"})
        presented = form.get("refresh_token", "")
        with self._lock:
            if presented in self.used:
                self.reuses += 1
                self.revoked = True   # RFC 9700: a replayed refresh token revokes the family
            if self.revoked or presented not in self.refresh_tokens:
                return Reply(400, {"error": "invalid_grant", "error_description": f"refresh token {presented} "
                                                                                 "is not valid"})
            self.refresh_tokens.discard(presented)
            self.used.add(presented)
            access, following = "at-" + secrets.token_urlsafe(12), "rt-" + secrets.token_urlsafe(12)
            self.access_tokens.add(access)
            self.refresh_tokens.add(following)
            self.grants += 1
        return Reply(200, {"access_token": access, "token_type": "Bearer", "expires_in": self.expires_in,
                           "refresh_token": following}, headers={"Cache-Control": "no-store"})


class LoginApi:
    """Logs in with a JSON body (user, password), answers the token in the body or a header."""

    def __init__(self) -> None:
        self.logins = 0
        self.valid: set[str] = set()
        self.refuse = False

    def __call__(self, seen: Seen) -> Reply:
        if seen.path == "/auth/login":
            body = json.loads(seen.body or b"{}") if seen.body.startswith(b"{") else seen.form()
            if body.get("password") != "pa55word!":
                return Reply(401, {"message": f"bad password {body.get('password')} for {body.get('user')}"})
            self.logins += 1
            token = f"session-{self.logins}"
            self.valid = {token}
            return Reply(200, {"data": {"token": token, "expires": 900}}, headers={"X-Session": token})
        if self.refuse:
            return Reply(401, {"message": "session expired"})
        if seen.headers.get("X-Auth-Token") in self.valid or seen.headers.get("Authorization", "")[7:] in self.valid:
            return Reply(200, [{"id": 1}])
        return Reply(401, {"message": "session expired"})


PAGES = 3
COLUMNS = {"id": {"type": "integer"}}


def paged(inner: Any):
    """The API behind `inner`'s auth, three pages by `page` with the total stated."""
    def handler(seen: Seen) -> Reply:
        reply = inner(seen)
        if seen.path != "/items" or reply.status != 200:
            return reply
        page = int(seen.query.get("page", ["1"])[0])
        return Reply(200, {"items": [{"id": 10 * page + i} for i in range(3)], "pages": PAGES})
    return handler


def build(tmp_path: Path, base_url: str, auth: dict[str, Any], env: dict[str, str]) -> Project:
    model = {"path": "/items", "records": "items", "primary_key": ["id"], "columns": COLUMNS,
             "pagination": {"type": "page_number", "total_pages_path": "pages"}}
    sources = {"crm": {"type": "api", "base_url": base_url, "auth": auth, "models": {"items": model}}}
    return project_for(tmp_path, sources, {"target_url": f"sqlite:///{tmp_path / 'unused.db'}",
                                           "storage": {"root": str(tmp_path / "storage")},
                                           "state_dir": str(tmp_path / "state")}, env)
