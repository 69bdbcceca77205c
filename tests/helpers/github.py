"""A loopback emulation of the GitHub REST API's list endpoints, for parent-child models.

Follows GitHub's public documentation:
- pagination: `per_page` (default 30, at most 100) and `page`, the next page named by the `Link`
  header's rel="next" URL, no Link on the last page
  (https://docs.github.com/en/rest/using-the-rest-api/using-pagination-in-the-rest-api);
- `GET /orgs/{org}/repos` (https://docs.github.com/en/rest/repos/repos#list-organization-repositories):
  a JSON array of repositories with `id`, `name`, `full_name`, `owner.login`, `private`;
- `GET /repos/{owner}/{repo}/issues` (https://docs.github.com/en/rest/issues/issues#list-repository-issues):
  `state=open|closed|all`, a JSON array of issues with `id`, `number`, `title`, `state`, `user.login`;
  a repository with issues disabled answers 410 Gone;
- `GET /repos/{owner}/{repo}/issues/{issue_number}/comments`
  (https://docs.github.com/en/rest/issues/comments#list-issue-comments): an array with `id`, `body`, `user.login`;
- errors: a JSON object `{"message": ..., "documentation_url": ...}`; a secondary rate limit answers 429
  with `Retry-After` (https://docs.github.com/en/rest/using-the-rest-api/rate-limits-for-the-rest-api).
- `POST /graphql` (https://docs.github.com/en/graphql/guides/using-pagination-in-the-graphql-api): a
  `repository(owner, name) { issues(first, after) { pageInfo { hasNextPage endCursor } nodes } }` query,
  its variables in the JSON body; the answer under `data`.
Plus `/regions/{region}/things`, a plain list per region, for `for_each`.
"""
from __future__ import annotations

import json
import re
import threading
from typing import Any
from urllib.parse import urlencode

from tests.helpers.http_stub import Reply, Seen

ORG = "acme"
DISABLED = "vault"   # its issues are disabled: 410 Gone
REPOS = ["alpha", "beta", "gamma", "delta", DISABLED, "zeta", "eta"]
REGIONS = ["eu", "us", "ap"]


def issues_of(repo_index: int) -> int:
    return (repo_index * 7) % 11   # 0 to 10 issues: some repositories have none


def comments_of(number: int) -> int:
    return number % 3


class GitHubApi:
    """`requests` counts the calls per endpoint kind; an unknown path answers 404 as GitHub does."""

    def __init__(self, delay: float = 0.0, limited: tuple[str, ...] = ()) -> None:
        self.requests: list[str] = []
        self.delay = delay   # seconds each issue list waits before answering (to see requests overlap)
        self.limited = set(limited)   # paths (query included) answered 429 once per round (`reset`)
        self._answered: set[str] = set()
        self._lock = threading.Lock()

    @property
    def answered_429(self) -> set[str]:
        with self._lock:
            return set(self._answered)

    def reset(self) -> None:
        with self._lock:
            self._answered.clear()

    def __call__(self, seen: Seen) -> Reply:
        self.requests.append(seen.path)
        if seen.target in self.limited:
            with self._lock:
                first = seen.target not in self._answered
                self._answered.add(seen.target)
            if first:   # GitHub's secondary rate limit: 429 with Retry-After
                return Reply(status=429, body={"message": "You have exceeded a secondary rate limit"},
                             headers={"Retry-After": "0"})
        query = {k: v[0] for k, v in seen.query.items()}
        per_page = min(int(query.get("per_page", 30)), 100)
        page = int(query.get("page", 1))
        if match := re.fullmatch(r"/orgs/([^/]+)/repos", seen.path):
            if match.group(1) != ORG:
                return _not_found()
            items = [self._repo(i) for i in range(len(REPOS))]
            return _paged(seen, items, per_page, page, query)
        if match := re.fullmatch(r"/repos/([^/]+)/([^/]+)/issues", seen.path):
            owner, name = match.groups()
            if owner != ORG or name not in REPOS:
                return _not_found()
            if name == DISABLED:
                return Reply(status=410, body={"message": "Issues are disabled for this repo",
                                               "documentation_url": "https://docs.github.com/rest/issues"})
            if query.get("state") != "all":
                return Reply(status=422, body={"message": "Validation Failed"})
            index = REPOS.index(name)
            items = [self._issue(index, n) for n in range(1, issues_of(index) + 1)]
            reply = _paged(seen, items, per_page, page, query)
            reply.delay = self.delay
            return reply
        if match := re.fullmatch(r"/repos/([^/]+)/([^/]+)/issues/(\d+)/comments", seen.path):
            owner, name, number = match.groups()
            if owner != ORG or name not in REPOS:
                return _not_found()
            index = REPOS.index(name)
            items = [{"id": index * 100_000 + int(number) * 100 + c, "body": f"comment {c}",
                      "user": {"login": f"user{c}"}} for c in range(comments_of(int(number)))]
            return _paged(seen, items, per_page, page, query)
        if seen.path == "/graphql" and seen.method == "POST":
            return self._graphql(json.loads(seen.body or b"{}"))
        if match := re.fullmatch(r"/regions/([^/]+)/things", seen.path):
            region = match.group(1)
            if region not in REGIONS:
                return _not_found()
            return Reply(body=[{"id": i, "label": f"{region}-{i}"} for i in range(REGIONS.index(region) + 2)])
        return _not_found()

    def _graphql(self, body: dict[str, Any]) -> Reply:
        variables = body.get("variables") or {}
        if "repository(" not in str(body.get("query")) or variables.get("owner") != ORG:
            return Reply(body={"data": None, "errors": [{"message": "Could not resolve to a Repository"}]})
        name = variables.get("name")
        if name not in REPOS:
            return Reply(body={"data": {"repository": None},
                               "errors": [{"message": "Could not resolve to a Repository"}]})
        index = REPOS.index(name)
        first = min(int(variables.get("first", 100)), 100)
        start = int(str(variables.get("after") or "cursor:0").split(":")[1])
        numbers = list(range(1, issues_of(index) + 1))[start:start + first]
        end = start + len(numbers)
        page_info = {"hasNextPage": end < issues_of(index), "endCursor": f"cursor:{end}" if numbers else None}
        nodes = [{"number": n, "title": f"issue {n} of {name}"} for n in numbers]
        return Reply(body={"data": {"repository": {"issues": {"pageInfo": page_info, "nodes": nodes}}}})

    @staticmethod
    def _repo(i: int) -> dict[str, Any]:
        return {"id": 1000 + i, "name": REPOS[i], "full_name": f"{ORG}/{REPOS[i]}", "owner": {"login": ORG},
                "private": i % 2 == 0}

    @staticmethod
    def _issue(repo: int, number: int) -> dict[str, Any]:
        return {"id": repo * 1000 + number, "number": number, "title": f"issue {number} of {REPOS[repo]}",
                "state": "open" if number % 2 else "closed", "user": {"login": f"user{number}"}}


def _paged(seen: Seen, items: list, per_page: int, page: int, query: dict[str, str]) -> Reply:
    start = (page - 1) * per_page
    headers = {}
    if start + per_page < len(items):
        following = urlencode({**query, "page": page + 1})
        headers["Link"] = f'<http://{seen.headers["Host"]}{seen.path}?{following}>; rel="next"'
    return Reply(body=items[start:start + per_page], headers=headers)


def _not_found() -> Reply:
    return Reply(status=404, body={"message": "Not Found", "documentation_url": "https://docs.github.com/rest"})


def expected_issues(skip_disabled: bool = True) -> int:
    return sum(issues_of(i) for i, name in enumerate(REPOS) if not (skip_disabled and name == DISABLED))
