"""One page step, the same for both modes: a request and a paginator (fresh, or resumed from a saved
state) in, one page's records and the paginator advanced past it out.

The embedded run loops over it (`ApiExtractor.raw_pages`, fetching random-access pages ahead); a
queue-chain Fetch message takes exactly one step, or one block of steps, and saves `Position.state()`
for the message that takes the next. Paging rules, loop detection and `max_pages` are the paginator's.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shared.config.models import ApiModel, ApiSource
from shared.errors import RecordPathError
from shared.extract.body_formats import decoded
from shared.extract.graphql import check_graphql
from shared.extract.http_client import HttpClient
from shared.extract.paginators import (
    MISSING,
    Paginator,
    create_paginator,
    dotted_get,
    paginator_class,
    resume_paginator,
)
from shared.extract.responses import ResponseRules
from shared.extract.types import PageRequest, PageResponse


def records_at(body: Any, path: str | None, url: str) -> list:
    """The record list of a response body: at `path`, or the body itself when it is a list."""
    if path is None:
        if isinstance(body, list):
            return body
        raise RecordPathError(f"response from {url} is not a list: set `records:` to the path of the record list "
                              f"(the body is {_shape(body)})")
    found = dotted_get(body, path, MISSING)
    if found is MISSING:
        raise RecordPathError(f"record path '{path}' not found in the response from {url} (the body is {_shape(body)})")
    if found is None:
        return []
    if not isinstance(found, list):
        raise RecordPathError(f"record path '{path}' in the response from {url} is a {type(found).__name__}, "
                              "expected a list")
    return found


def _shape(body: Any) -> str:
    """What a body is, without its keys: in some APIs the top-level keys are data (ids, e-mails)."""
    if isinstance(body, dict):
        return f"an object of {len(body)} key(s)"
    return "a list" if isinstance(body, list) else type(body).__name__


@dataclass
class Position:
    """Where a model's paging stands: the request for the next page (None when there is none) and
    the paginator that has taken in every page before it."""

    request: PageRequest | None
    paginator: Paginator

    @property
    def done(self) -> bool:
        return self.request is None

    def state(self) -> dict[str, Any] | None:
        """The paginator's saved state, from which `PageStep.resume` takes up; None when done."""
        return None if self.done else self.paginator.state()


@dataclass
class StepPage:
    """One page as the step took it in: its records as received (not yet shaped) and its URL."""

    records: list
    url: str


class PageStep:
    """The page step of one API model: its first request, its paginator, its HTTP client."""

    def __init__(self, source: ApiSource, model: ApiModel, pagination: Any, client: HttpClient, first: PageRequest):
        self.source, self.model, self.pagination, self.client = source, model, pagination, client
        self._first = first
        self.rules = ResponseRules(source.responses_for(model))

    def first_request(self) -> PageRequest:
        """The model's request before paging: its URL, params and headers from the manifest."""
        return self._first.copy()

    def start(self) -> Position:
        """Before the first page."""
        paginator = create_paginator(self.pagination)
        request = self.first_request()
        paginator.init_request(request)
        return Position(request, paginator)

    def resume(self, state: dict[str, Any]) -> Position:
        """After the pages a saved state took in (ValueError for a state no paginator wrote)."""
        paginator = resume_paginator(self.pagination, state)
        if not paginator.has_next:
            raise ValueError("the saved paginator state has no next page")
        request = self.first_request()
        paginator.update_request(request)
        return Position(request, paginator)

    def planned(self, request: PageRequest, index: int) -> Position:
        """At page `index` of a random-access pagination, asked for by `request` (a page fetched out of
        order: the pages before it are fetched by others)."""
        cls = paginator_class(self.pagination)
        return Position(request, cls.resume(self.pagination, cls.planned_state(self.pagination, request, index)))

    def step(self, at: Position) -> StepPage:
        """Fetch the page `at` asks for and take it in; `at` moves on to the next page (or is done).
        `RateLimited` propagates with `at` unchanged."""
        if at.request is None:
            raise RuntimeError("the page step was asked for a page after the last one")
        return self.take(at, self.client.fetch(at.request, self.rules))

    def take(self, at: Position, response: PageResponse) -> StepPage:
        """Take in a page fetched for `at` (here or ahead of time, for random access). A page a
        response rule called empty has no records and ends the paging."""
        if response.empty:
            at.request = None
            return StepPage([], response.url)
        response = decoded(response, self.model.format, self.source.throttle.max_response_mb,
                           at.request.method if at.request is not None else "GET")
        if self.model.graphql is not None:
            check_graphql(response.body, response.url)
        records = records_at(response.body, self.model.records, response.url)
        paginator = at.paginator
        paginator.update_state(response, records)
        if paginator.has_next and at.request is not None:
            following = at.request.copy()
            paginator.update_request(following)
            at.request = following
        else:
            at.request = None
        return StepPage(records, response.url)
