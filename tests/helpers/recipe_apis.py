"""Loopback emulations of public list APIs whose paging needs a request body, a last-record or header
cursor, or a "more" flag (issue 14 §1-§2), each built from the API's public documentation (cited in
its docstring): parameter names, envelopes, stop signals and error answers. Handlers for
`tests.helpers.http_stub.StubServer`; each refuses what the real API refuses (wrong method, missing
credentials or version header, a page size over the cap, an unknown cursor), so a recipe that
passes against it asks the way the documentation says.
"""
from __future__ import annotations

import base64
import json
import re
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.helpers.http_stub import Reply, Seen

EPOCH = datetime(2024, 1, 1, tzinfo=UTC)
# The credentials and ids the recipes take from the environment, as the emulations expect them.
ENV = {"STRIPE_SECRET_KEY": "sk_test_emulated", "NOTION_TOKEN": "secret_emulated",
       "NOTION_DATABASE_ID": "6f1e6f3b2a2c4c1f9c7d0e2b1a3c5d7e", "ES_API_KEY": "ZW11bGF0ZWQ6a2V5",
       "GITHUB_TOKEN": "ghp_emulated", "AZURE_DEVOPS_PAT": "emulatedpat"}


def _json_body(seen: Seen) -> dict[str, Any] | None:
    try:
        body = json.loads(seen.body or b"{}")
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


class Emulation(ABC):
    """Counts the requests of each path, as the recipe tests check no extra page is asked for."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.calls: dict[str, int] = {}

    def __call__(self, seen: Seen) -> Reply:
        with self.lock:
            self.calls[seen.path] = self.calls.get(seen.path, 0) + 1
        return self.serve(seen)

    @abstractmethod
    def serve(self, seen: Seen) -> Reply:
        """The API's answer to one request."""

    def reset(self) -> None:
        with self.lock:
            self.calls.clear()


class Stripe(Emulation):
    """Stripe list endpoints, `GET /v1/customers`.

    https://docs.stripe.com/api/pagination: `limit` (1 to 100, default 10), `starting_after` (an
    object ID: the list continues after it), a list object `{"object": "list", "url", "has_more",
    "data"}` whose `has_more` says whether more objects follow. https://docs.stripe.com/api/authentication:
    the secret key as a bearer token. https://docs.stripe.com/api/errors: errors are
    `{"error": {"type": "invalid_request_error", "message", "param"}}` with HTTP 400 / 401.
    """

    def __init__(self, count: int = 250, key: str = ENV["STRIPE_SECRET_KEY"]) -> None:
        super().__init__()
        self.key = key
        self.customers = [{"id": f"cus_{i:08d}", "object": "customer", "email": f"customer{i}@example.com",
                           "created": 1_700_000_000 + i * 60, "balance": (i % 7) * 100, "livemode": False}
                          for i in range(count)]
        self.index = {c["id"]: i for i, c in enumerate(self.customers)}

    def serve(self, seen: Seen) -> Reply:
        if seen.headers.get("Authorization") != f"Bearer {self.key}":
            return _stripe_error(401, "authentication_error", "Invalid API Key provided")
        if seen.method != "GET" or seen.path != "/v1/customers":
            return _stripe_error(404, "invalid_request_error", "Unrecognized request URL")
        query = {k: v[0] for k, v in seen.query.items()}
        limit = int(query.get("limit", 10))
        if not 1 <= limit <= 100:
            return _stripe_error(400, "invalid_request_error", "Invalid integer: limit", "limit")
        start = 0
        if "starting_after" in query:
            if query["starting_after"] not in self.index:
                return _stripe_error(400, "invalid_request_error", "No such customer", "starting_after")
            start = self.index[query["starting_after"]] + 1
        data = self.customers[start:start + limit]
        return Reply(body={"object": "list", "url": "/v1/customers", "has_more": start + limit < len(self.customers),
                           "data": data})


def _stripe_error(status: int, kind: str, message: str, param: str | None = None) -> Reply:
    return Reply(status=status, body={"error": {"type": kind, "message": message,
                                                **({"param": param} if param else {})}})


class Notion(Emulation):
    """Notion's database query, `POST /v1/databases/{database_id}/query`.

    https://developers.notion.com/reference/post-database-query: a POST with a JSON body
    (`filter`, `sorts`, `start_cursor`, `page_size` up to 100). https://developers.notion.com/reference/intro
    (Pagination): responses are `{"object": "list", "results", "next_cursor", "has_more", "type":
    "page_or_database"}`, `start_cursor` left out for the first page, `next_cursor` null at the end.
    https://developers.notion.com/reference/versioning: the `Notion-Version` header is required.
    https://developers.notion.com/reference/status-codes: `{"object": "error", "status", "code",
    "message"}`, 400 `validation_error`, 401 `unauthorized`.
    """

    def __init__(self, database: str = ENV["NOTION_DATABASE_ID"], count: int = 230,
                 token: str = ENV["NOTION_TOKEN"]) -> None:
        super().__init__()
        self.database, self.token = database, token
        self.pages = [{"object": "page", "id": f"00000000-0000-4000-8000-{i:012d}",
                       "created_time": (EPOCH + timedelta(hours=i)).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
                       "archived": False,
                       "properties": {"Name": {"id": "title", "type": "title",
                                               "title": [{"type": "text", "plain_text": f"Task {i}"}]},
                                      "Status": {"id": "s", "type": "select",
                                                 "select": {"name": ("Done", "Open")[i % 2]}}}}
                      for i in range(count)]
        self.cursors = {self._cursor(i): i for i in range(count)}

    @staticmethod
    def _cursor(i: int) -> str:
        return f"00000000-0000-4000-8000-{i:012d}"

    def serve(self, seen: Seen) -> Reply:
        if seen.headers.get("Authorization") != f"Bearer {self.token}":
            return _notion_error(401, "unauthorized", "API token is invalid.")
        if not seen.headers.get("Notion-Version"):
            return _notion_error(400, "missing_version", "Notion-Version header failed validation.")
        if seen.path != f"/v1/databases/{self.database}/query":
            return _notion_error(404, "object_not_found", "Could not find database.")
        if seen.method != "POST":
            return _notion_error(400, "invalid_request_url", "Invalid request URL.")
        body = _json_body(seen)
        if body is None:
            return _notion_error(400, "invalid_json", "Error parsing JSON body.")
        size = body.get("page_size", 100)
        if not isinstance(size, int) or not 1 <= size <= 100:
            return _notion_error(400, "validation_error", "body.page_size should be ≤ 100.")
        start = 0
        if "start_cursor" in body:
            if body["start_cursor"] not in self.cursors:
                return _notion_error(400, "validation_error", "body.start_cursor should be a valid cursor.")
            start = self.cursors[body["start_cursor"]]
        results = self.pages[start:start + size]
        more = start + size < len(self.pages)
        return Reply(body={"object": "list", "results": results,
                           "next_cursor": self._cursor(start + size) if more else None, "has_more": more,
                           "type": "page_or_database", "page_or_database": {}})


def _notion_error(status: int, code: str, message: str) -> Reply:
    return Reply(status=status, body={"object": "error", "status": status, "code": code, "message": message})


class Elasticsearch(Emulation):
    """Elasticsearch `POST /{index}/_search` paged with `search_after`.

    https://www.elastic.co/guide/en/elasticsearch/reference/current/paginate-search-results.html#search-after:
    a sorted search (with a tiebreaker field), the next request passing the last hit's `sort` values
    as `search_after`; an empty `hits.hits` is the end. https://www.elastic.co/guide/en/elasticsearch/reference/current/search-search.html:
    the response envelope (`took`, `timed_out`, `_shards`, `hits.total`, `hits.hits[]` with
    `_index`, `_id`, `_source`, `sort`); date sort values come back as epoch milliseconds.
    https://www.elastic.co/guide/en/elasticsearch/reference/current/security-api-create-api-key.html:
    `Authorization: ApiKey <encoded>`. Errors: `{"error": {"type", "reason"}, "status"}`.
    """

    def __init__(self, index: str = "logs-app", count: int = 120, key: str = ENV["ES_API_KEY"]) -> None:
        super().__init__()
        self.index, self.key = index, key
        self.docs = [{"_id": f"evt-{i:05d}", "ts": int((EPOCH + timedelta(seconds=30 * (i // 2))).timestamp() * 1000),
                      "source": {"@timestamp": (EPOCH + timedelta(seconds=30 * (i // 2))).isoformat()
                                 .replace("+00:00", "Z"),
                                 "event": {"id": f"evt-{i:05d}", "action": ("login", "logout", "view")[i % 3]},
                                 "bytes": i * 10}}
                     for i in range(count)]   # two events share each timestamp: the `event.id` tiebreaker matters
        self.searches: list[dict[str, Any]] = []

    def serve(self, seen: Seen) -> Reply:
        if seen.headers.get("Authorization") != f"ApiKey {self.key}":
            return _es_error(401, "security_exception", "missing authentication credentials")
        if seen.path != f"/{self.index}/_search":
            return _es_error(404, "index_not_found_exception", "no such index")
        if seen.method not in ("GET", "POST"):
            return _es_error(405, "method_not_allowed", "Incorrect HTTP method")
        body = _json_body(seen)
        if body is None:
            return _es_error(400, "parse_exception", "request body is required")
        with self.lock:
            self.searches.append(body)
        size = body.get("size", 10)
        sort = body.get("sort")
        after = body.get("search_after")
        if after is not None and not sort:
            return _es_error(400, "action_request_validation_exception", "sort must be specified with search_after")
        if sort != [{"@timestamp": "asc"}, {"event.id": "asc"}] and sort is not None:
            return _es_error(400, "illegal_argument_exception", "the emulation sorts by @timestamp, event.id only")
        if not isinstance(size, int) or size + int(body.get("from", 0)) > 10_000:
            return _es_error(400, "illegal_argument_exception", "Result window is too large")
        ordered = self.docs
        if after is not None:
            if not (isinstance(after, list) and len(after) == 2):
                return _es_error(400, "illegal_argument_exception", "search_after has a different number of values "
                                 "than sort")
            key = (after[0], after[1])
            ordered = [d for d in ordered if (d["ts"], d["_id"]) > key]
        hits = [{"_index": self.index, "_id": d["_id"], "_score": None, "_source": d["source"],
                 "sort": [d["ts"], d["_id"]]} for d in ordered[:size]]
        return Reply(body={"took": 3, "timed_out": False, "_shards": {"total": 1, "successful": 1, "skipped": 0,
                                                                     "failed": 0},
                           "hits": {"total": {"value": len(self.docs), "relation": "eq"}, "max_score": None,
                                    "hits": hits}})


def _es_error(status: int, kind: str, reason: str) -> Reply:
    return Reply(status=status, body={"error": {"root_cause": [{"type": kind, "reason": reason}], "type": kind,
                                                "reason": reason}, "status": status})


class GitHubGraphQL(Emulation):
    """GitHub's GraphQL API, `POST /graphql`, a repository's issues.

    https://docs.github.com/en/graphql/guides/forming-calls-with-graphql: one endpoint, a POST whose
    JSON body is `{"query", "variables"}`, a bearer token. https://docs.github.com/en/graphql/guides/using-pagination-in-the-graphql-api:
    connections take `first` (1 to 100) and `after`, and answer `pageInfo {hasNextPage endCursor}`.
    https://docs.github.com/en/graphql/overview/resource-limitations: `first` over 100 is refused.
    Errors come with HTTP 200 in an `errors` list (`type`, `path`, `message`), `data` null where they
    struck (https://spec.graphql.org/October2021/#sec-Errors).
    """

    FIRST = re.compile(r"issues\s*\(\s*first:\s*(\d+)")

    def __init__(self, owner: str = "octo-org", name: str = "octo-repo", count: int = 130,
                 token: str = ENV["GITHUB_TOKEN"]) -> None:
        super().__init__()
        self.owner, self.name, self.token = owner, name, token
        self.issues = [{"number": i + 1, "title": f"Issue {i + 1}", "state": ("OPEN", "CLOSED")[i % 2],
                        "createdAt": (EPOCH + timedelta(days=i)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                        "author": {"login": f"user{i % 9}"}} for i in range(count)]

    @staticmethod
    def cursor(position: int) -> str:
        return base64.b64encode(f"cursor:v2:{position}".encode()).decode()

    def serve(self, seen: Seen) -> Reply:
        if seen.headers.get("Authorization") != f"Bearer {self.token}":
            return Reply(status=401, body={"message": "Bad credentials"})
        if seen.method != "POST" or seen.path != "/graphql":
            return Reply(status=404, body={"message": "Not Found"})
        body = _json_body(seen)
        if body is None or not isinstance(body.get("query"), str):
            return Reply(status=400, body={"message": "Problems parsing JSON"})
        variables = body.get("variables") or {}
        first = self.FIRST.search(body["query"])
        if first is None:
            return _graphql_error("MISSING_PAGINATION_BOUNDARIES", ["repository", "issues"],
                                  "You must provide a `first` or `last` value to properly paginate the `issues` "
                                  "connection.")
        size = int(first.group(1))
        if not 1 <= size <= 100:
            return _graphql_error("EXCESSIVE_PAGINATION", ["repository", "issues"],
                                  f"Requesting {size} records on the `issues` connection exceeds the `first` limit "
                                  "of 100 records.")
        if (variables.get("owner"), variables.get("name")) != (self.owner, self.name):
            return _graphql_error("NOT_FOUND", ["repository"], "Could not resolve to a Repository with the name "
                                  f"'{variables.get('owner')}/{variables.get('name')}'.")
        start = 0
        after = variables.get("after")
        if after is not None:
            try:
                start = int(base64.b64decode(after).decode().rsplit(":", 1)[1]) + 1
            except ValueError:
                return _graphql_error("INVALID_CURSOR_ARGUMENTS", ["repository", "issues"],
                                      f"`{after}` does not appear to be a valid cursor.")
        nodes = self.issues[start:start + size]
        end = start + len(nodes) - 1
        return Reply(body={"data": {"repository": {"issues": {
            "totalCount": len(self.issues),
            "pageInfo": {"hasNextPage": start + size < len(self.issues),
                         "endCursor": self.cursor(end) if nodes else None},
            "nodes": nodes}}}})


def _graphql_error(kind: str, path: list[str], message: str) -> Reply:
    return Reply(body={"data": {"repository": None} if path == ["repository"] else None,
                       "errors": [{"type": kind, "path": path, "locations": [{"line": 2, "column": 3}],
                                   "message": message}]})


class AzureDevOps(Emulation):
    """Azure DevOps REST API, Projects - List: `GET /{organization}/_apis/projects`.

    https://learn.microsoft.com/en-us/rest/api/azure/devops/core/projects/list?view=azure-devops-rest-7.1:
    `$top`, `continuationToken` and `api-version` query parameters, a `{"count", "value"}` envelope,
    and the next page's token in the `x-ms-continuationtoken` response header (absent on the last
    page). https://learn.microsoft.com/en-us/azure/devops/integrate/get-started/authentication/authentication-guidance:
    a personal access token as the password of HTTP Basic auth (empty user name).
    """

    def __init__(self, organization: str = "fabrikam", count: int = 75, pat: str = ENV["AZURE_DEVOPS_PAT"]) -> None:
        super().__init__()
        self.organization = organization
        self.auth = "Basic " + base64.b64encode(f":{pat}".encode()).decode()
        self.projects = [{"id": f"eb6e4656-77fc-42a1-9181-{i:012d}", "name": f"Project {i}",
                          "url": f"https://dev.azure.com/{organization}/_apis/projects/{i}",
                          "state": "wellFormed", "revision": 400 + i, "visibility": ("private", "public")[i % 2],
                          "lastUpdateTime": (EPOCH + timedelta(minutes=i)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")}
                         for i in range(count)]

    def serve(self, seen: Seen) -> Reply:
        if seen.headers.get("Authorization") != self.auth:
            return Reply(status=401, body="Unauthorized")   # Azure DevOps answers an HTML sign-in page
        if seen.method != "GET" or seen.path != f"/{self.organization}/_apis/projects":
            return Reply(status=404, body={"message": "The resource cannot be found.", "typeKey": "NotFound"})
        query = {k: v[0] for k, v in seen.query.items()}
        if "api-version" not in query:
            return Reply(status=400, body={"message": "No api-version was supplied for the GET request.",
                                           "typeKey": "VssVersionNotSpecifiedException"})
        top = int(query.get("$top", 100))
        start = int(query.get("continuationToken", 0))
        value = self.projects[start:start + top]
        headers = {"x-ms-continuationtoken": str(start + top)} if start + top < len(self.projects) else {}
        return Reply(body={"count": len(value), "value": value}, headers=headers)


RECIPES: dict[str, Callable[[], Emulation]] = {
    "Stripe": Stripe, "Notion": Notion, "Elasticsearch": Elasticsearch, "GitHub GraphQL": GitHubGraphQL,
    "Azure DevOps (header cursor)": AzureDevOps,
}
