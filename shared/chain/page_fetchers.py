"""Page fetchers of the queue chain: one step of the extraction core's page step per invocation.

The embedded run keeps a paginator alive across a model's pages; a queue-triggered function takes
one step (or one block of steps) and exits. So a Fetch resumes the model's paginator from the state
the page before it saved (`PageStep.resume`), or, for a page fanned out ahead of time, from its
request (`PageStep.planned`); loop detection and `max_pages` come with the paginator.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from shared.config.models import ApiSource, SqlModel
from shared.config.project import ModelRef, Project
from shared.extract.api import ApiExtractor, new_client
from shared.extract.cursor import Cursor
from shared.extract.factory import build_extractor
from shared.extract.http_client import HttpClient
from shared.extract.page_step import PageStep, Position, StepPage
from shared.extract.parent_walk import WalkStep
from shared.extract.quota import QuotaGate
from shared.extract.sql import SqlExtractor

ClientFactory = Callable[[str, ApiSource], HttpClient]


# The quota each source's server announced, kept by the process across Fetch invocations (each has a
# client of its own): a worker that saw the quota spent reschedules its next pages for the reset
# instead of sending them into a 429.
_quotas: dict[tuple[str, str], QuotaGate] = {}
_quotas_lock = threading.Lock()


def queue_client(source_name: str, source: ApiSource) -> HttpClient:
    """The source's client, except that a 429 (or a spent quota) raises `RateLimited` instead of
    sleeping: the job goes back on the queue with the server's wait as its visibility delay."""
    with _quotas_lock:
        quota = _quotas.setdefault((source_name, source.base_url), QuotaGate(time.monotonic))
    return new_client(source_name, source, on_rate_limit="raise", quota=quota)


def hidden_params(source: ApiSource) -> frozenset[str]:
    """Query parameters that carry credentials and so must not travel in a queue message."""
    auth = source.auth
    return frozenset({auth.name}) if auth.type == "api_key" and auth.location == "query" else frozenset()


class ApiPages:
    """Pages of one API model through its page step. Holds an HTTP client: use as a context manager."""

    def __init__(self, project: Project, ref: ModelRef, client_factory: ClientFactory = queue_client):
        source = ref.source
        if not isinstance(source, ApiSource):
            raise TypeError(f"{ref.qualified} is a {source.type} model, not an API model")
        self.ref = ref
        self.client = client_factory(ref.source_name, source)
        extractor = build_extractor(project, ref, client=self.client, scan_process=False)   # shapes in process
        if not isinstance(extractor, ApiExtractor):
            raise TypeError(f"{ref.qualified} is not an API model")
        self.extractor = extractor
        self.pagination = self.extractor.pagination
        self.step: PageStep = self.extractor.page_step()
        self.walk: WalkStep | None = self.extractor.walk_step()   # a child model: its parents' walk
        self.hidden = hidden_params(source)

    def __enter__(self) -> ApiPages:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.client.close()

    @property
    def headers(self) -> dict[str, str]:
        return dict(self.extractor.model.headers)

    def fetch(self, at: Position) -> StepPage:
        """The page `at` asks for, taken in (`at` moves on), not yet shaped (`shape`): the caller
        hands the next page to another instance first. `RateLimited` propagates for the caller to
        reschedule."""
        return self.step.step(at)

    def shape(self, page: StepPage) -> list[dict[str, Any]]:
        """Typed and PII-stripped records, exactly as the embedded run makes them."""
        return self.extractor.shape_page(page.records)


class SqlPages:
    """Chunks of one SQL model. With a primary key, one keyset chunk per call (`SqlExtractor.chunk`,
    the step the embedded run loops over); without one, the whole query streamed in one invocation
    (`stream`), because no bound can resume it."""

    def __init__(self, project: Project, ref: ModelRef, committed: Cursor | None = None):
        """`committed`: an incremental model's cursor the run started from."""
        self.project, self.ref, self.committed = project, ref, committed
        if not isinstance(ref.model, SqlModel):
            raise TypeError(f"{ref.qualified} is not a SQL model")
        self.chunk_size = ref.model.chunk_size
        self.checkpoint: Cursor | None = None   # the cursor the last chunk allows (incremental models)

    def _extractor(self) -> SqlExtractor:
        extractor = build_extractor(self.project, self.ref, scan_process=False)
        if not isinstance(extractor, SqlExtractor):
            raise TypeError(f"{self.ref.qualified} is not a SQL model")
        extractor.start_after(self.committed)
        return extractor

    def chunk(self, after: tuple | None, index: int) -> tuple[list[dict[str, Any]], tuple | None]:
        """(records, the bound the next chunk starts after, or None when this was the last)."""
        extractor = self._extractor()
        try:
            raw, following = extractor.chunk(after)
        finally:
            extractor.close()
        self.checkpoint = raw.checkpoint if raw is not None else None
        return extractor.shape_page(raw.records if raw is not None else [], index * self.chunk_size), following

    def stream(self) -> Iterator[list[dict[str, Any]]]:
        extractor = self._extractor()
        position = 0
        try:
            for raw in extractor.raw_pages():
                yield extractor.shape_page(raw.records, position)
                position += len(raw.records)
        finally:
            extractor.close()
