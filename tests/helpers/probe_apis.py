"""Loopback emulations for the probe, as `tests.http_stub.StubServer` handlers: GitHub's REST API (an
organization's repositories and each repository's issues) for parent-child proposals, and Jira's
POST search for offset paging in a request body.

https://docs.github.com/en/rest/repos/repos#list-organization-repositories: `GET /orgs/{org}/repos`,
repository objects with `id`, `node_id`, `name`, `full_name`, `owner {login, id}`, `private`.
https://docs.github.com/en/rest/issues/issues#list-repository-issues: `GET /repos/{owner}/{repo}/issues`,
issue objects with `id`, `number`, `title`, `state`, `user {login}`; an unknown repository is a 404
`{"message": "Not Found", "documentation_url": ...}`.
https://docs.github.com/en/rest/using-the-rest-api/using-pagination-in-the-rest-api: `per_page` (at most
100, default 30) and `page`, the next page in a `Link` header with `rel="next"` (absent on the last page).
"""
from __future__ import annotations

import base64
import json
import re

from tests.helpers.http_stub import Reply, Seen
from tests.helpers.recipe_apis import Emulation

NOT_FOUND = {"message": "Not Found", "documentation_url": "https://docs.github.com/rest"}


class GitHubRest(Emulation):
    REPO_ISSUES = re.compile(r"/repos/([^/]+)/([^/]+)/issues")
    TEAM_MEMBERS = re.compile(r"/orgs/([^/]+)/teams/([^/]+)/members")

    def __init__(self, org: str = "acme", repos: int = 7) -> None:
        super().__init__()
        self.org = org
        names = ["widgets", "gadgets", "gizmos", "sprockets", "doohickeys", "thingamajigs", "whatsits"][:repos]
        self.repos = [{"id": 9000 + i, "node_id": f"R_kgDO{i:04d}", "name": name, "full_name": f"{org}/{name}",
                       "owner": {"login": org, "id": 77}, "private": i % 2 == 0}
                      for i, name in enumerate(names)]
        self.issues = {r["name"]: [{"id": 50_000 + 100 * i + n, "number": n + 1, "title": f"Issue {n + 1}",
                                    "state": ("open", "closed")[n % 2], "user": {"login": f"dev{n % 4}"}}
                                   for n in range(3 + 2 * i)]
                       for i, r in enumerate(self.repos)}

    def serve(self, seen: Seen) -> Reply:
        if seen.method != "GET":
            return Reply(status=404, body=NOT_FOUND)
        if seen.path == f"/orgs/{self.org}/repos":
            return self._page(seen, self.repos)
        match = self.REPO_ISSUES.fullmatch(seen.path)
        if match and match.group(1) == self.org and match.group(2) in self.issues:
            return self._page(seen, self.issues[match.group(2)])
        team = self.TEAM_MEMBERS.fullmatch(seen.path)
        if team and team.group(1) == self.org and team.group(2) == "widgets":   # a team that shares a repo's name
            return self._page(seen, [{"login": "dev1", "id": 11}, {"login": "dev2", "id": 12}])
        return Reply(status=404, body=NOT_FOUND)

    def _page(self, seen: Seen, items: list) -> Reply:
        query = {k: v[0] for k, v in seen.query.items()}
        size, page = int(query.get("per_page", 30)), int(query.get("page", 1))
        if not 1 <= size <= 100:
            return Reply(status=422, body={"message": "Validation Failed"})
        chunk = items[(page - 1) * size:page * size]
        headers = {}
        if page * size < len(items):
            headers["Link"] = f'<http://{seen.headers["Host"]}{seen.path}?per_page={size}&page={page + 1}>; rel="next"'
        return Reply(body=chunk, headers=headers)


class JiraSearch(Emulation):
    """Jira Cloud issue search by POST, `POST /rest/api/3/search`.

    https://developer.atlassian.com/cloud/jira/platform/rest/v3/api-group-issue-search/#api-rest-api-3-search-post:
    a JSON body with `jql`, `startAt` (default 0) and `maxResults` (default 50), answered with
    `{"expand", "startAt", "maxResults", "total", "issues": [{"id", "key", "self", "fields"}]}`; a JQL
    the server cannot parse is a 400 `{"errorMessages": [...], "errors": {}}`.
    https://developer.atlassian.com/cloud/jira/platform/basic-auth-for-rest-apis/: an e-mail and API
    token as HTTP Basic credentials.
    """

    AUTH = "Basic " + base64.b64encode(b"bot@example.com:jira-token").decode()

    def __init__(self, count: int = 130) -> None:
        super().__init__()
        self.issues = [{"id": str(10_000 + i), "key": f"KAN-{i + 1}", "self": f"https://x.atlassian.net/rest/api/3/"
                        f"issue/{10_000 + i}", "fields": {"summary": f"Task {i + 1}",
                                                          "status": {"name": ("To Do", "Done")[i % 2]}}}
                       for i in range(count)]

    def serve(self, seen: Seen) -> Reply:
        if seen.headers.get("Authorization") != self.AUTH:
            return Reply(status=401, body={"errorMessages": ["You are not authenticated."], "errors": {}})
        if seen.method != "POST" or seen.path != "/rest/api/3/search":
            return Reply(status=404, body={"errorMessages": ["Not found."], "errors": {}})
        body = json.loads(seen.body or b"{}")
        if body.get("jql") != "project = KAN ORDER BY created":
            return Reply(status=400, body={"errorMessages": ["Error in the JQL Query."], "errors": {}})
        start, size = int(body.get("startAt", 0)), int(body.get("maxResults", 50))
        return Reply(body={"expand": "names,schema", "startAt": start, "maxResults": size, "total": len(self.issues),
                           "issues": self.issues[start:start + size]})
