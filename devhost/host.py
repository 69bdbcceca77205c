"""The local host: the app's functions by trigger, driven together.

    host = LocalHost(load_app(), env=os.environ)          # discovers bindings once
    port = host.start_http(port=7071)                     # HTTP routes in a thread
    host.run_queues(once=True, timeout=60)                # until every trigger queue is empty
    host.stop()

`run(once=...)` does all of it (timers and blob polling included) for `main.py host`.
"""
from __future__ import annotations

import logging
import os
import secrets
import threading
import time
from collections.abc import Mapping
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

from devhost.bindings import BlobFunction, Discovered, QueueFunction, discover
from devhost.blobs import BlobTriggers
from devhost.http import HttpTriggers, make_server, serve_in_thread
from devhost.processes import ChildCounts, WorkerProcesses
from devhost.queues import QueueTriggers
from devhost.settings import HostError, QueueSettings, load_host_json
from devhost.timers import TimerTriggers
from shared.chain.names import STORAGE_SETTING
from shared.storage.azure import AzureBlobStore
from shared.storage.queues import AzureQueueStore

log = logging.getLogger("kspyder.localhost")
KEY_SETTING = "KSPYDER_HOST_KEY"
FIRST_POLL = 0.05    # idle back-off starts here and doubles up to maxPollingInterval


def connection_env(connection: str, env: Mapping[str, str]) -> dict[str, str]:
    """A binding's `connection` (a setting name, or a prefix of identity settings `<name>__*`)
    re-keyed as the AzureWebJobsStorage* settings the storage classes read."""
    found = {STORAGE_SETTING + k[len(connection):]: v for k, v in env.items()
             if k == connection or k.startswith(connection + "__")}
    if not found:
        raise HostError(f"the connection setting {connection} (or {connection}__*) is not set: for Azurite, "
                        f"set {connection} to its connection string or UseDevelopmentStorage=true")
    return found


class LocalHost:
    def __init__(self, app: Any, env: Mapping[str, str] | None = None, *, settings: QueueSettings | None = None,
                 host_json: str | Path = "host.json", key: str | None = None, workers: int = 1,
                 processes: int = 1, app_module: str = "function_app"):
        self.env = dict(os.environ if env is None else env)
        self.settings = settings if settings is not None else load_host_json(host_json)
        self.functions: Discovered = discover(app)    # get_functions(): once per app object
        if workers < 1:
            raise HostError("--workers must be at least 1")
        if processes < 1:
            raise HostError("--processes must be at least 1")
        self.workers, self.processes, self.app_module = workers, processes, app_module
        given = key if key is not None else self.env.get(KEY_SETTING, "").strip()
        self.key_generated = not given
        self.key = given or secrets.token_urlsafe(24)
        self.queue_triggers: list[QueueTriggers] = []
        queues_by_connection: dict[str, list[QueueFunction]] = {}
        for queue_function in self.functions.queues:
            queues_by_connection.setdefault(queue_function.connection, []).append(queue_function)
        for connection, queue_functions in queues_by_connection.items():
            store = AzureQueueStore.from_settings(connection_env(connection, self.env))
            self.queue_triggers.append(QueueTriggers(tuple(queue_functions), store, self.settings))
        self.blob_triggers: list[BlobTriggers] = []
        blobs_by_connection: dict[str, list[BlobFunction]] = {}
        for blob_function in self.functions.blobs:
            blobs_by_connection.setdefault(blob_function.connection, []).append(blob_function)
        for connection, blob_functions in blobs_by_connection.items():
            storage = connection_env(connection, self.env)
            self.blob_triggers.append(BlobTriggers(tuple(blob_functions), AzureBlobStore.from_settings(storage).service,
                                                   AzureQueueStore.from_settings(storage).service,
                                                   self.settings.max_dequeue_count))
        self.timers = TimerTriggers(self.functions.timers, self.env)
        self.http = HttpTriggers(self.functions.http, self.key, self.settings.route_prefix)
        self._stop = threading.Event()
        self._children: WorkerProcesses | None = None
        self._poll_lock = threading.Lock()
        self._next_poll: dict[tuple[int, str], tuple[float, float]] = {}   # (triggers, queue): (due, wait)
        self._server: ThreadingHTTPServer | None = None
        self._threads: list[threading.Thread] = []

    # ------------------------------------------------------------------ HTTP
    def start_http(self, port: int = 7071, host: str = "127.0.0.1") -> int:
        """Serve the HTTP routes in a background thread; returns the port (0 picks a free one)."""
        if self._server is not None:
            raise HostError("the HTTP server is already running")
        try:
            server = make_server(self.http, host, port)
        except OSError as exc:
            raise HostError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
        self._server = server
        serve_in_thread(server)
        return server.server_port

    def routes(self) -> list[str]:
        prefix = f"/{self.settings.route_prefix}" if self.settings.route_prefix else ""
        return [f"{','.join(f.methods)} {prefix}/{f.route} ({f.auth_level})" for f in self.functions.http]

    # ------------------------------------------------------------------ queues and blobs
    def poll_once(self, ceiling: float | None = None) -> int:
        """One receive on every trigger queue that is due and one scan of every blob trigger:
        invocations run. As the Functions host does, each queue backs off on its own: an empty
        receive doubles that queue's wait (from FIRST_POLL up to `ceiling`, by default host.json's
        maxPollingInterval), a receive that finds messages makes it due again at once. Polling
        every queue after every message would double the storage requests of a busy chain."""
        ceiling = self.settings.max_polling_interval if ceiling is None else ceiling
        moved = 0
        for triggers in self.queue_triggers:
            for queue in triggers.functions:
                if self._stop.is_set():
                    return moved
                key = (id(triggers), queue)
                with self._poll_lock:
                    due, wait = self._next_poll.get(key, (0.0, 0.0))
                if time.monotonic() < due:
                    continue
                got = triggers.poll(queue)
                wait = 0.0 if got else min(max(wait * 2, FIRST_POLL), ceiling)
                with self._poll_lock:
                    self._next_poll[key] = (time.monotonic() + wait, wait)
                moved += got
        for blobs in self.blob_triggers:
            moved += blobs.scan()
        return moved

    def _next_due(self) -> float:
        """Seconds until the next queue is due (0 when one is)."""
        with self._poll_lock:
            soonest = min((due for due, _ in self._next_poll.values()), default=0.0)
        return max(soonest - time.monotonic(), 0.0)

    def idle(self) -> bool:
        """Every trigger queue empty and no blob delivery running or waiting for a retry."""
        return all(t.idle() for t in self.queue_triggers) and all(b.idle() for b in self.blob_triggers)

    def run_queues(self, once: bool = False, timeout: float | None = None) -> None:
        """`workers` threads polling the trigger queues (and blob containers) until stop(), or with
        `once` until everything is empty, delayed and retrying messages included (TimeoutError
        after `timeout` seconds)."""
        done = threading.Event()
        errors: list[BaseException] = []
        deadline = None if timeout is None else time.monotonic() + timeout
        ceiling = min(self.settings.max_polling_interval, 0.5) if once else self.settings.max_polling_interval

        def worker() -> None:
            delay = FIRST_POLL
            try:
                while not (self._stop.is_set() or done.is_set()):
                    if self.poll_once(ceiling):
                        delay = FIRST_POLL
                        continue
                    if once and self.idle() and not any(b.scan() for b in self.blob_triggers) and self.idle():
                        done.set()
                        return
                    if deadline is not None and time.monotonic() > deadline:
                        raise TimeoutError(f"the queues were not empty within {timeout}s")
                    self._stop.wait(max(min(delay, self._next_due()), 0.005))
                    delay = min(delay * 2, ceiling)
            except BaseException as exc:   # surfaced to the caller; the other workers stop too
                errors.append(exc)
                done.set()

        children = self.start_processes()
        threads = [threading.Thread(target=worker, name=f"localhost-worker-{i}", daemon=True)
                   for i in range(self.workers)]
        try:
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        finally:
            if children is not None:
                self._children = None
                self._add_counts(children.stop())
        if errors:
            raise errors[0]

    def start_processes(self) -> WorkerProcesses | None:
        """The extra worker processes (`processes` - 1), started and polling; `run_queues` starts
        them itself, a caller that times a run may start them before."""
        if self.processes > 1 and self.queue_triggers and self._children is None:
            self._children = WorkerProcesses(self.processes - 1, self.app_module, self.env, self.settings,
                                              self.workers)
            self._children.start()
        return self._children

    def _add_counts(self, counts: list[ChildCounts]) -> None:
        """The worker processes' counts into this host's stats, so they cover every process."""
        for child in counts:
            for name in ("handled", "failed", "poisoned"):
                for queue, n in getattr(child, name).items():
                    for triggers in self.queue_triggers:
                        if queue in triggers.functions:
                            for _ in range(n):
                                triggers.stats.add(name, queue)

    # ------------------------------------------------------------------ everything
    def run(self, once: bool = False, port: int | None = 7071, timeout: float | None = None) -> None:
        """Timers (runOnStartup first), HTTP (unless `port` is None), queue and blob pollers, until
        stop() (or, with `once`, until the queues are empty)."""
        try:
            self.timers.start_up()
            if port is not None:
                self.start_http(port)
            if not once and self.timers.schedules:
                thread = threading.Thread(target=self.timers.run, args=(self._stop,), name="localhost-timers",
                                          daemon=True)
                thread.start()
                self._threads.append(thread)
            if once or self.queue_triggers or self.blob_triggers:
                self.run_queues(once=once, timeout=timeout)
            if not once:
                self._stop.wait()
        finally:
            self.stop()

    def stop(self) -> None:
        """Stop polling (running invocations finish), worker processes, timers and the HTTP server."""
        self._stop.set()
        children, self._children = self._children, None
        if children is not None:
            self._add_counts(children.stop())
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        for thread in self._threads:
            thread.join(timeout=5)
        self._threads.clear()
