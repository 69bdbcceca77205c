"""The probe's HTTP side: the first page, test requests, and walking pages with a real paginator.

Verification goes through `create_paginator` and `records_at`, the same code `extract` runs, so a
pagination the probe reports is one the extractor has already followed, not a plausible guess.
"""
from __future__ import annotations

import requests

from shared.config.models import Throttle
from shared.errors import ExtractError, PaginationError
from shared.extract.api import records_at
from shared.extract.auth import build_auth
from shared.extract.http_client import HttpClient
from shared.extract.paginators import create_paginator
from shared.extract.types import PageRequest, PageResponse, RequestBody
from shared.probe.detect_pagination import Candidate, FetchRecords, FirstPage, record_digest
from shared.probe.record_path import find_records
from shared.probe.target import Target


class ProbeError(ExtractError):
    """The response cannot be turned into a model; printed by the CLI like any extraction error."""


def open_client(target: Target, source: str, throttle: Throttle) -> HttpClient:
    session = requests.Session()
    return HttpClient(source=source, throttle=throttle, auth=build_auth(target.auth, session),
                      headers=target.headers, session=session, auth_origin=target.base_url)


def request(target: Target, params: dict | None = None, body: dict | None = None,
            url: str | None = None) -> PageRequest:
    """The probe's request: the target's method and JSON body (or `body`), with these params (or its own)."""
    json_body = body if body is not None else target.json_body
    return PageRequest(url or target.url, dict(target.params if params is None else params), method=target.method,
                       body=RequestBody("json", json_body) if json_body is not None else None,
                       idempotent=target.method == "GET")


def first_page(client: HttpClient, target: Target) -> FirstPage:
    response = client.fetch(request(target))
    body = response.body
    if not isinstance(body, (dict, list)):
        raise ProbeError(f"{target.method} {target.url}: the response is a JSON {type(body).__name__}, "
                         "not an object or a list")
    found = find_records(body)
    if found is None:
        keys = ", ".join(list(body)[:10])
        raise ProbeError(f"{target.method} {target.url}: no list of records in the response (top-level keys: {keys})")
    if not found.records:
        where = f"'{found.path}'" if found.path else "the body"
        raise ProbeError(f"{target.method} {target.url}: the list at {where} is empty: no records to infer "
                         "columns from (try a URL or --param that returns some)")
    if not all(isinstance(r, dict) for r in found.records):
        raise ProbeError(f"{target.method} {target.url}: the records are not JSON objects, so they have no columns")
    in_body = target.location == "body"
    sent = dict(target.json_body or {}) if in_body else dict(target.params)
    return FirstPage(body, response.headers, found.records, found.path, sent, target.location)


def fetch_records(client: HttpClient, target: Target, records_path: str | None) -> FetchRecords:
    """A test request: the records for these params (or body fields), or None when the API refuses them."""
    def fetch(values: dict) -> list | None:
        sent = request(target, body=values) if target.location == "body" else request(target, values)
        try:
            response: PageResponse = client.fetch(sent)
            return records_at(response.body, records_path, response.url)
        except ExtractError:
            return None
    return fetch


def walk(client: HttpClient, target: Target, records_path: str | None, candidate: Candidate,
         max_pages: int) -> list[list]:
    """Up to `max_pages` pages, following the candidate's paginator; raises when pages repeat."""
    paginator = create_paginator(candidate.config)
    owned = candidate.owned_params
    if target.location == "body":
        page = request(target, body={k: v for k, v in (target.json_body or {}).items() if k not in owned})
    else:
        page = request(target, {k: v for k, v in target.params.items() if k not in owned})
    paginator.init_request(page)
    pages: list[list] = []
    while True:
        response = client.fetch(page)
        records = records_at(response.body, records_path, response.url)
        paginator.update_state(response, records)
        pages.append(records)
        if not paginator.has_next or len(pages) >= max_pages:
            break
        paginator.update_request(page)
    _check_distinct(pages)
    return pages


def _check_distinct(pages: list[list]) -> None:
    """Pages must differ: an API ignoring the paging parameter serves page 1 again."""
    seen: dict[tuple[str, ...], int] = {}
    for index, records in enumerate(pages, start=1):
        if not records:
            continue
        digest = tuple(record_digest(r) for r in records)
        if digest in seen:
            raise PaginationError(f"page {index} repeats page {seen[digest]}")
        seen[digest] = index
