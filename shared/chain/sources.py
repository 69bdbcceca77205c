"""One page from a source, for one invocation: the extraction core's pieces, driven page by page.

The embedded run keeps a paginator alive across a model's pages; a queue-triggered function sees
one page and then exits. So each call here builds a fresh paginator and tells it how many pages
came before and what it asked for (`Paginator.resume`), which is all the positional styles need (an
offset read back from the request, the page size from the page); cursor and link styles take
their next value from the page itself. Loop detection across invocations is the caller's
(`steps.py` carries request digests in the job), since a fresh paginator remembers nothing.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterator

from shared.config.models import ApiSource
from shared.config.project import ModelRef, Project
from shared.extract.api import ApiExtractor, new_client, records_at
from shared.extract.http_client import HttpClient
from shared.extract.paginators import Paginator, create_paginator
from shared.extract.sql import SqlExtractor
from shared.extract.types import PageRequest
from shared.pii import PiiStripper
from .pages import content_digest, shape_records

ClientFactory = Callable[[str, ApiSource], HttpClient]


def queue_client(source_name: str, source: ApiSource) -> HttpClient:
    """The source's client, except that a 429 raises `RateLimited` instead of sleeping: the job
    goes back on the queue with the server's Retry-After as its visibility delay."""
    return new_client(source_name, source, on_rate_limit="raise")


def hidden_params(source: ApiSource) -> frozenset[str]:
    """Query parameters that carry credentials and so must not travel in a queue message."""
    auth = source.auth
    return frozenset({auth.name}) if auth.type == "api_key" and auth.location == "query" else frozenset()


def _stripper(project: Project, ref: ModelRef) -> PiiStripper:
    return PiiStripper.for_model(ref.model, project.settings.pii, ref.pii_scan, documents=ref.documents,
                                 where=ref.qualified)


@dataclass
class ApiPage:
    raw: list                            # the response's records, not yet shaped or PII-stripped
    has_next: bool
    next_request: PageRequest | None     # the request for the page after this one, when there is one
    paginator: Paginator                 # random access: `request_for_page`, `total_pages`
    digest: str | None                   # of the response body, to spot an API serving one page forever
    url: str


class ApiPages:
    """Pages of one API model. Holds an HTTP client: use as a context manager."""

    def __init__(self, project: Project, ref: ModelRef, client_factory: ClientFactory = queue_client):
        self.ref = ref
        self.client = client_factory(ref.source_name, ref.source)
        self.extractor = ApiExtractor(ref, _stripper(project, ref), client=self.client)
        self.pagination = self.extractor.pagination
        self.hidden = hidden_params(ref.source)

    def __enter__(self) -> "ApiPages":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.client.close()

    @property
    def headers(self) -> dict[str, str]:
        return dict(self.ref.model.headers)

    def first_request(self) -> PageRequest:
        request = self.extractor.first_request()
        create_paginator(self.pagination).init_request(request)   # positional styles set page 1 here
        return request

    def fetch(self, request: PageRequest, index: int) -> ApiPage:
        """Page `index` (0-based), decoded and with its next request, but not yet shaped (`shape`):
        the caller hands the next page to another instance first. `RateLimited` propagates for the
        caller to reschedule."""
        paginator = create_paginator(self.pagination)
        paginator.resume(request, index)      # as if this paginator had taken in the pages before
        response = self.client.fetch(request)
        raw = records_at(response.body, self.extractor.model.records, response.url)
        paginator.update_state(response, raw)
        next_request = None
        if paginator.has_next:
            next_request = request.copy()
            paginator.update_request(next_request)
        digest = content_digest(response.content) if response.content and raw else None
        return ApiPage(raw, paginator.has_next, next_request, paginator, digest, response.url)

    def shape(self, page: ApiPage) -> list[dict[str, Any]]:
        """Typed and PII-stripped records, exactly as the embedded run makes them."""
        return shape_records(self.extractor, page.raw)


class SqlPages:
    """Chunks of one SQL model. With a primary key, one keyset chunk per call (re-readable from its
    lower bound); without one, the whole query streamed in one invocation (`stream`), because no
    bound can resume it."""

    def __init__(self, project: Project, ref: ModelRef):
        self.project, self.ref = project, ref
        model = ref.model
        self.keys = [(model.columns[k].path or k) for k in model.primary_key]
        self.chunk_size = model.chunk_size

    def _extractor(self, after: tuple | None) -> SqlExtractor:
        return SqlExtractor(self.ref, _stripper(self.project, self.ref), after=after)

    def chunk(self, after: tuple | None, index: int) -> tuple[list[dict[str, Any]], tuple | None]:
        """(records, the bound the next chunk starts after, or None when this was the last)."""
        extractor = self._extractor(after)
        pages = extractor.raw_pages()
        try:
            raw = next(pages, None)
        finally:
            pages.close()
            extractor.close()
        rows = raw.records if raw is not None else []
        records = shape_records(extractor, rows, index * self.chunk_size)
        more = len(rows) >= self.chunk_size
        return records, (tuple(rows[-1][k] for k in self.keys) if more else None)

    def stream(self) -> Iterator[list[dict[str, Any]]]:
        extractor = self._extractor(None)
        position = 0
        try:
            for raw in extractor.raw_pages():
                yield shape_records(extractor, raw.records, position)
                position += len(raw.records)
        finally:
            extractor.close()
