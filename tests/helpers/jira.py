"""Jira Cloud's search, emulated for the pagination-cap tests: asked `maxResults=1000`, it serves at
most its own cap and says so in the body, `{"startAt": 0, "maxResults": 100, "total": 270, "issues": [...]}`
(https://developer.atlassian.com/cloud/jira/platform/rest/v3/intro/#pagination: "the maxResults
… may be lower than requested"). A page-numbered twin (`?page=&per_page=`, the cap read back as
`per_page`) covers page_number. The cap here is 50, so 270 records make six pages."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.helpers.flow import project_for
from tests.helpers.http_stub import Reply, Seen

RECORDS = 270
CAP = 50          # the server's own page size, whatever is asked
ASKED = 1000
SHORT = 300       # a stated total the server never reaches
SHORTFALL = (f"jira.issues: the API stated {SHORT} records but {RECORDS} arrived (shortfall {SHORT - RECORDS})")


def issue(i: int) -> dict[str, Any]:
    return {"id": 10000 + i, "key": f"KSP-{i}", "fields": {"summary": f"issue {i}"}}


class CappedApi:
    """Jira-like search at /rest/api/3/search (offset) and its page-numbered twin at /items.
    `short_at`: the offset whose page holds fewer records than the cap though more follow (an API
    whose pages are uneven: only page-by-page stepping reaches every record)."""

    def __init__(self, stated: int = RECORDS, short_at: int | None = None):
        self.stated, self.short_at = stated, short_at

    def __call__(self, seen: Seen) -> Reply:
        query = {k: v[0] for k, v in seen.query.items()}
        if seen.path == "/rest/api/3/search":
            start, asked = int(query.get("startAt", 0)), int(query.get("maxResults", 50))
            served = min(asked, CAP)
            count = CAP - 20 if start == self.short_at else served
            return Reply(body={"startAt": start, "maxResults": served, "total": self.stated,
                               "issues": [issue(i) for i in range(start, min(start + count, RECORDS))]})
        if seen.path == "/items":
            page, asked = int(query.get("page", 1)), int(query.get("per_page", 50))
            served = min(asked, CAP)
            first = (page - 1) * served
            return Reply(body={"page": page, "per_page": served, "total": self.stated,
                               "items": [issue(i) for i in range(first, min(first + served, RECORDS))]})
        return Reply(status=404, body={"errorMessages": ["not found"]})


COLUMNS = {"id": {"type": "integer"}, "key": {"type": "string"}, "summary": {"path": "fields.summary", "type": "text"}}
PAGINATIONS = {
    "offset_stated": ("/rest/api/3/search", "issues", {
        "type": "offset", "offset_param": "startAt", "limit_param": "maxResults", "limit": ASKED,
        "limit_path": "maxResults", "total_path": "total"}),
    "offset_shown": ("/rest/api/3/search", "issues", {
        "type": "offset", "offset_param": "startAt", "limit_param": "maxResults", "limit": ASKED,
        "total_path": "total"}),
    "page_number_stated": ("/items", "items", {
        "type": "page_number", "size_param": "per_page", "size": ASKED, "size_path": "per_page",
        "total_path": "total"}),
    "page_number_shown": ("/items", "items", {
        "type": "page_number", "size_param": "per_page", "size": ASKED, "total_path": "total"}),
}


def sources(base_url: str, kind: str, concurrency: int = 1, **pagination: Any) -> dict[str, Any]:
    path, records, paging = PAGINATIONS[kind]
    return {"jira": {"type": "api", "base_url": base_url, "throttle": {"concurrency": concurrency, "max_retries": 0},
                     "pagination": {**paging, **pagination},
                     "models": {"issues": {"path": path, "records": records, "primary_key": ["id"],
                                           "columns": COLUMNS}}}}


def settings(tmp_path: Path, chain: dict | None = None) -> dict[str, Any]:
    return {"target_url": f"sqlite:///{tmp_path / 'target.db'}", "storage": {"root": str(tmp_path / "storage")},
            **({"chain": chain} if chain else {})}


def chain_harness(tmp_path: Path, harness_for, base_url: str, kind: str, chain: dict | None = None, **pagination):
    return harness_for(project_for(tmp_path, sources(base_url, kind, **pagination), settings(tmp_path, chain)))
