"""A loopback emulation of GitHub's repository issues with `since`, for per-parent incremental state.

Follows GitHub's public documentation:
- `GET /orgs/{org}/repos` (https://docs.github.com/en/rest/repos/repos#list-organization-repositories):
  a JSON array of repositories with `id`, `name`;
- `GET /repos/{owner}/{repo}/issues` (https://docs.github.com/en/rest/issues/issues#list-repository-issues):
  `state=all`, `since` ("only show results that were last updated after the given time", ISO 8601
  `YYYY-MM-DDTHH:MM:SSZ`; GitHub includes an issue updated at that very second), `sort=updated`,
  `direction=asc`; issues carry `id`, `number`, `title`, `updated_at`;
- pagination: `per_page` and `page`, the next page in the `Link` header's rel="next" URL
  (https://docs.github.com/en/rest/using-the-rest-api/using-pagination-in-the-rest-api).
"""
from __future__ import annotations

import re
import threading
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from tests.helpers.http_stub import Reply, Seen

ORG = "acme"
T0 = datetime(2024, 1, 1, tzinfo=UTC)


def zulu(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


class GitHubIssuesSince:
    """Repositories and their issues; `asked` records (repository, since) of every first issue page."""

    def __init__(self, repos: list[str], issues_per_repo: int = 3) -> None:
        self.repos: list[dict[str, Any]] = []
        self.issues: dict[str, list[dict[str, Any]]] = {}
        self.asked: list[tuple[str, str | None]] = []
        self.lock = threading.Lock()
        for name in repos:
            self.add_repo(name, issues_per_repo)

    def add_repo(self, name: str, issues: int = 3) -> None:
        index = len(self.repos)
        self.repos.append({"id": 1000 + index, "name": name})
        self.issues[name] = [{"id": (index + 1) * 100 + n, "number": n, "title": f"issue {n} of {name}",
                              "updated_at": zulu(T0 + timedelta(hours=index * 10 + n))} for n in range(1, issues + 1)]

    def touch(self, name: str, number: int, hours: int) -> str:
        """Update one issue `hours` after T0; its new `updated_at`."""
        issue = next(i for i in self.issues[name] if i["number"] == number)
        issue["updated_at"] = zulu(T0 + timedelta(hours=hours))
        return str(issue["updated_at"])

    def __call__(self, seen: Seen) -> Reply:
        query = {k: v[0] for k, v in seen.query.items()}
        per_page, page = min(int(query.get("per_page", 30)), 100), int(query.get("page", 1))
        if seen.path == f"/orgs/{ORG}/repos":
            return _paged(seen, list(self.repos), per_page, page, query)
        match = re.fullmatch(rf"/repos/{ORG}/([^/]+)/issues", seen.path)
        if match is None or match.group(1) not in self.issues:
            return Reply(status=404, body={"message": "Not Found", "documentation_url": "https://docs.github.com/rest"})
        name = match.group(1)
        since = query.get("since")
        if page == 1:
            with self.lock:
                self.asked.append((name, since))
        chosen = [i for i in self.issues[name] if since is None or i["updated_at"] >= since]
        if query.get("sort") == "updated":
            chosen.sort(key=lambda i: str(i["updated_at"]), reverse=query.get("direction") != "asc")
        return _paged(seen, chosen, per_page, page, query)


def _paged(seen: Seen, items: list, per_page: int, page: int, query: dict[str, str]) -> Reply:
    start = (page - 1) * per_page
    headers = {}
    if start + per_page < len(items):
        following = urlencode({**query, "page": page + 1})
        headers["Link"] = f'<http://{seen.headers["Host"]}{seen.path}?{following}>; rel="next"'
    return Reply(body=items[start:start + per_page], headers=headers)
