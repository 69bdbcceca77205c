"""A loopback OAuth2 authorization server that rotates refresh tokens, and an API behind it.

Follows RFC 6749 §6 (refresh-token grant: `grant_type=refresh_token`, `refresh_token`, client
authentication per §2.3.1 in the form or with HTTP Basic; errors as §5.2 `{"error": "invalid_grant"}`
with HTTP 400) and RFC 9700 §4.14.2 (refresh token rotation: every refresh answers a new refresh token
and invalidates the one used; a refresh token used twice is taken as stolen and the whole chain of
tokens is revoked), as Xero, Intuit, Salesforce (with rotation on) and Okta do."""
from __future__ import annotations

import base64
import secrets
import threading
from urllib.parse import parse_qs, unquote_plus

from tests.http_stub import Reply, Seen

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
