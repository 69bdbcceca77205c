"""A loopback emulation of the Azure Key Vault secrets REST API (api-version 7.4), from Microsoft's
reference: get-secret (https://learn.microsoft.com/en-us/rest/api/keyvault/secrets/get-secret/get-secret:
`GET /secrets/{name}/{version}`, the newest without a version), set-secret
(https://learn.microsoft.com/en-us/rest/api/keyvault/secrets/set-secret/set-secret: `PUT /secrets/{name}`
with `value`, `contentType`, `tags`, answering the new version's bundle) and get-secret-versions
(https://learn.microsoft.com/en-us/rest/api/keyvault/secrets/get-secret-versions/get-secret-versions:
`GET /secrets/{name}/versions`, items without values). Errors are `{"error": {"code", "message"}}`;
a request without the bearer token gets 401 with the challenge Key Vault sends."""
from __future__ import annotations

import json
import threading
import time
import uuid
from typing import Any

from tests.helpers.http_stub import Reply, Seen

TOKEN = "kv-access-token-for-the-app-identity"


class FakeCredential:
    """What azure-identity's credentials offer: `get_token(scope)`, here for the vault scope only."""

    def __init__(self) -> None:
        self.scopes: list[str] = []

    def get_token(self, *scopes: str) -> Any:
        self.scopes.extend(scopes)

        class AccessToken:
            token, expires_on = TOKEN, time.time() + 3600
        return AccessToken()


class KeyVaultApi:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.secrets: dict[str, list[dict[str, Any]]] = {}
        self.base = ""   # set from the first request's Host: ids are absolute URLs

    def seed(self, name: str, value: str) -> str:
        return self._add(name, value, None, {})["version"]

    def values(self, name: str) -> list[str]:
        with self._lock:
            return [v["value"] for v in self.secrets.get(name, [])]

    def _add(self, name: str, value: str, content_type: str | None, tags: dict[str, str]) -> dict[str, Any]:
        with self._lock:
            version = {"version": uuid.uuid4().hex, "value": value, "contentType": content_type, "tags": tags,
                       "created": int(time.time())}
            self.secrets.setdefault(name, []).append(version)
            return version

    def _bundle(self, name: str, version: dict[str, Any], with_value: bool = True) -> dict[str, Any]:
        bundle = {"id": f"{self.base}/secrets/{name}/{version['version']}",
                  "attributes": {"enabled": True, "created": version["created"], "updated": version["created"],
                                 "recoveryLevel": "Recoverable+Purgeable"},
                  "tags": version["tags"]}
        if version["contentType"]:
            bundle["contentType"] = version["contentType"]
        if with_value:
            bundle["value"] = version["value"]
        return bundle

    def __call__(self, seen: Seen) -> Reply:
        self.base = self.base or f"http://{seen.headers.get('Host')}"
        if seen.query.get("api-version") != ["7.4"]:
            return Reply(400, {"error": {"code": "BadParameter", "message": "api-version is missing or wrong"}})
        if seen.headers.get("Authorization") != f"Bearer {TOKEN}":
            challenge = 'Bearer authorization="https://login.microsoftonline.com/tenant", resource="https://vault.azure.net"'
            return Reply(401, {"error": {"code": "Unauthorized", "message": "AKV10000: Request is missing a Bearer "
                                                                               "or PoP token."}},
                         headers={"WWW-Authenticate": challenge})
        parts = seen.path.strip("/").split("/")
        if len(parts) < 2 or parts[0] != "secrets":
            return Reply(404, {"error": {"code": "NotFound", "message": "no such path"}})
        name = parts[1]
        if seen.method == "PUT" and len(parts) == 2:
            body = json.loads(seen.body)
            return Reply(200, self._bundle(name, self._add(name, body["value"], body.get("contentType"),
                                                           body.get("tags") or {})))
        with self._lock:
            versions = list(self.secrets.get(name, []))
        if not versions:
            return Reply(404, {"error": {"code": "SecretNotFound", "message": f"A secret with (name/id) {name} "
                                                                             "was not found in this key vault."}})
        if len(parts) == 3 and parts[2] == "versions":
            return Reply(200, {"value": [self._bundle(name, v, with_value=False) for v in versions], "nextLink": None})
        if len(parts) == 3:
            found = [v for v in versions if v["version"] == parts[2]]
            if not found:
                return Reply(404, {"error": {"code": "SecretNotFound", "message": "no such version"}})
            return Reply(200, self._bundle(name, found[0]))
        return Reply(200, self._bundle(name, versions[-1]))
