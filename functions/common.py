"""What every chain function shares: the host.json queue settings the code depends on, the storage
clients and the target engine of this worker process, and a `Chain` per invocation.

The Functions host reuses a worker process for many invocations, so what is expensive and safe to
share lives here, created lazily on first use: one SQLAlchemy engine per target URL (its pool is
shared by the invocations the worker runs concurrently) and one blob/queue store per storage
setting, and the validated manifests (`current_project`), read again only when a manifest file or
an environment variable they read has changed. Everything that belongs to one message (the
`Chain`, its paginators, HTTP clients, loaders) is built per invocation, so nothing of one run leaks
into another.
"""
from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

import sqlalchemy as sa

from shared.chain.names import STORAGE_SETTING
from shared.chain.steps import Chain, EngineFactory
from shared.config.project import Project
from shared.config.project_cache import ProjectCache
from shared.schema.desired import target_schemas
from shared.storage.azure import AzureBlobStore
from shared.storage.queues import AzureQueueStore
from shared.target.dialects import create_target_engine

# host.json's `extensions.queues` values that the code relies on; tests/functions/test_function_app.py fails
# when host.json says otherwise, so the two cannot drift apart.
MAX_DEQUEUE_COUNT = 5          # a failure on this attempt is recorded as poisoned in the run ledger
MESSAGE_ENCODING = "base64"    # AzureQueueStore sends base64 (TextBase64EncodePolicy), as the host reads it
CONNECTION = STORAGE_SETTING   # the queue triggers' `connection`: AzureWebJobsStorage (or its __* identity form)

_lock = threading.Lock()
_engines: dict[tuple[str, tuple[str, ...]], sa.Engine] = {}
_stores: dict[tuple[tuple[str, str], ...], tuple[AzureBlobStore, AzureQueueStore]] = {}
projects = ProjectCache()   # the manifests, as every function of this worker reads them


def current_project() -> Project:
    """The project as the manifests and the environment define it now, for every function of this
    worker: read and validated again only when a manifest file or an environment variable it reads
    has changed (shared/config/project_cache.py)."""
    return projects.get()


def engine_factory(project: Project) -> EngineFactory:
    """The target engine of this worker process for the project's target URL (`KSPYDER_TARGET_URL`,
    else settings.yml's `target_url`), created on first use. The chain never disposes it."""
    url = project.settings.target_url
    key = (url, tuple(sorted(project.sources)))

    def factory() -> sa.Engine:
        with _lock:
            engine = _engines.get(key)
            if engine is None:
                # SQLite attaches schemas on connect: pipeline output schemas too (plan/apply create them)
                schemas = target_schemas(project) if url.startswith("sqlite") else project.sources
                engine = _engines[key] = create_target_engine(url, schemas)
            return engine

    return factory


def dispose_engines() -> None:
    """Close every cached engine (tests, or a worker shutting down)."""
    with _lock:
        engines = list(_engines.values())
        _engines.clear()
    for engine in engines:
        engine.dispose()


def stores(env: Mapping[str, str] | None = None) -> tuple[AzureBlobStore, AzureQueueStore]:
    """The blob and queue stores for the `AzureWebJobsStorage*` settings, one pair per process."""
    env = os.environ if env is None else env
    key = tuple(sorted((k, v) for k, v in env.items() if k == STORAGE_SETTING or k.startswith(STORAGE_SETTING + "__")))
    with _lock:
        pair = _stores.get(key)
        if pair is None:
            pair = _stores[key] = (AzureBlobStore.from_settings(env), AzureQueueStore.from_settings(env))
        return pair


@contextmanager
def open_chain(project: Project | None = None) -> Iterator[Chain]:
    """One invocation's `Chain` on the app's storage and the worker's target engine."""
    project = current_project() if project is None else project
    blobs, queues = stores()
    with Chain(project, blobs, queues, engine_factory(project), max_dequeue_count=MAX_DEQUEUE_COUNT) as chain:
        yield chain
