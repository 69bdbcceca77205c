"""A loopback emulation of Microsoft Graph's group list and the identity platform's token endpoint,
from Microsoft's documentation:
- https://learn.microsoft.com/en-us/graph/api/group-list (`GET /v1.0/groups`, `$top`, `$select`; the
  records under `value`, with `@odata.context`);
- https://learn.microsoft.com/en-us/graph/paging (`@odata.nextLink`: an absolute URL with a `$skiptoken`,
  to be followed as is; absent on the last page);
- https://learn.microsoft.com/en-us/graph/throttling (429 with `Retry-After` in seconds and an error
  body `{"error": {"code": "TooManyRequests", ...}}`);
- https://learn.microsoft.com/en-us/entra/identity-platform/v2-oauth2-client-creds-grant-flow
  (`POST /{tenant}/oauth2/v2.0/token`, `grant_type=client_credentials`, `scope=https://graph.microsoft.com/.default`)."""
from __future__ import annotations

import base64
import secrets
import threading

from tests.helpers.http_stub import Reply, Seen

TENANT, CLIENT_ID, CLIENT_SECRET = "contoso-tenant-id", "graph-client-id", "graph-client-secret"


def group(i: int) -> dict:
    return {"id": f"{i:08x}-0000-4000-8000-{i:012x}", "displayName": f"Team {i}",
            "createdDateTime": f"2024-01-{1 + i % 28:02d}T08:00:00Z", "mailEnabled": i % 2 == 0,
            "securityEnabled": True, "mail": f"team{i}@contoso.example"}


class GraphApi:
    def __init__(self, groups: int = 23, throttle_page: int | None = None):
        self.groups, self.throttle_page = groups, throttle_page
        self._lock = threading.Lock()
        self._throttled = False
        self.tokens: set[str] = set()

    def reset(self) -> None:
        with self._lock:
            self._throttled = False

    def __call__(self, seen: Seen) -> Reply:
        if seen.path == f"/{TENANT}/oauth2/v2.0/token":
            form = seen.form()
            if (form.get("client_id"), form.get("client_secret")) != (CLIENT_ID, CLIENT_SECRET):
                return Reply(401, {"error": "invalid_client",
                                   "error_description": "AADSTS7000215: Invalid client secret"})
            if form.get("scope") != "https://graph.microsoft.com/.default":
                return Reply(400, {"error": "invalid_scope"})
            token = secrets.token_urlsafe(16)
            with self._lock:
                self.tokens.add(token)
            return Reply(200, {"token_type": "Bearer", "expires_in": 3599, "access_token": token})
        if seen.path != "/v1.0/groups":
            return Reply(404, {"error": {"code": "Request_ResourceNotFound", "message": "Resource not found"}})
        if seen.headers.get("Authorization", "")[7:] not in self.tokens:
            return Reply(401, {"error": {"code": "InvalidAuthenticationToken", "message": "Access token is empty."}})
        query = {k: v[0] for k, v in seen.query.items()}
        top = min(int(query.get("$top", 100)), 999)
        start = int(base64.urlsafe_b64decode(query["$skiptoken"]).decode()) if "$skiptoken" in query else 0
        with self._lock:
            if start and start // top == self.throttle_page and not self._throttled:
                self._throttled = True
                return Reply(429, {"error": {"code": "TooManyRequests", "message": "Too many requests"}},
                             headers={"Retry-After": "1"})
        fields = query.get("$select", "").split(",") if query.get("$select") else None
        records = [group(i) for i in range(start, min(start + top, self.groups))]
        if fields:
            records = [{k: v for k, v in r.items() if k in fields} for r in records]
        host = f"http://{seen.headers.get('Host')}"
        body: dict = {"@odata.context": f"{host}/v1.0/$metadata#groups", "value": records}
        if start + top < self.groups:
            skip = base64.urlsafe_b64encode(str(start + top).encode()).decode()
            select = f"&$select={query['$select']}" if fields else ""
            body["@odata.nextLink"] = f"{host}/v1.0/groups?$top={top}{select}&$skiptoken={skip}"
        return Reply(200, body)
