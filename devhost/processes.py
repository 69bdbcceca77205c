"""Extra worker processes for the local host's queue triggers.

Azure scales a function app out to instances, each its own process, and one Python process can run
only one thread of Python code at a time; so `--workers` threads share one core's worth of Python,
while `--processes` gives each process its own. A worker process imports `function_app` afresh
(spawned, not forked: no storage client, socket or engine of the parent is shared), polls the same
queues with the same host.json settings, and runs until the parent stops it. Queues are the only
thing the processes share, as Azure instances share nothing else.

The parent decides when the queues are done: a message being handled in a child is hidden but not
deleted, so it still counts in the queue's length, and `QueueTriggers.idle()` sees it.
"""
from __future__ import annotations

import logging
import multiprocessing
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from devhost.settings import QueueSettings

log = logging.getLogger("kspyder.localhost")
JOIN_SECONDS = 60.0   # a stopping child finishes the invocations it has started


@dataclass
class ChildCounts:
    """What a child process handled, sent to the parent when it stops."""

    handled: dict[str, int] = field(default_factory=dict)
    failed: dict[str, int] = field(default_factory=dict)
    poisoned: dict[str, int] = field(default_factory=dict)


def _serve(module: str, env: dict[str, str], settings: QueueSettings, workers: int, stop: Any, results: Any,
           ready: Any) -> None:
    """A child's life: the queue triggers only (HTTP, timers and blob polling stay in the parent,
    so that each runs once)."""
    import os

    from devhost.bindings import load_app
    from devhost.host import LocalHost

    os.environ.clear()
    os.environ.update(env)   # the functions read their settings from the environment, as in Azure
    host = LocalHost(load_app(module), env=env, settings=settings, workers=workers, key="unused-in-queue-workers")
    host.blob_triggers = []

    def stop_when_told() -> None:
        stop.wait()
        host.stop()

    threading.Thread(target=stop_when_told, daemon=True).start()
    ready.release()
    counts = ChildCounts()
    try:
        host.run_queues(once=False)
    finally:
        for triggers in host.queue_triggers:
            for name in ("handled", "failed", "poisoned"):
                for queue, n in getattr(triggers.stats, name).items():
                    target = getattr(counts, name)
                    target[queue] = target.get(queue, 0) + n
        results.put(counts)


class WorkerProcesses:
    """`count` child processes serving the queue triggers with `workers` threads each."""

    def __init__(self, count: int, module: str, env: dict[str, str], settings: QueueSettings, workers: int):
        self._context = multiprocessing.get_context("spawn")
        self._stop = self._context.Event()
        self._results = self._context.Queue()
        self._ready = self._context.Semaphore(0)
        self._started = False
        self._children = [self._context.Process(target=_serve,
                                                args=(module, env, settings, workers, self._stop, self._results,
                                                      self._ready),
                                                name=f"localhost-process-{i + 1}", daemon=True)
                          for i in range(count)]

    def start(self, timeout: float = JOIN_SECONDS) -> None:
        """Start the children and wait until each has imported the app and is polling (a few
        seconds: each imports everything the functions import)."""
        if self._started:
            return
        self._started = True
        for child in self._children:
            child.start()
        deadline = time.monotonic() + timeout
        for _ in self._children:
            while not self._ready.acquire(timeout=0.2):
                dead = [c for c in self._children if c.exitcode is not None]
                if dead or time.monotonic() > deadline:
                    self._stop.set()
                    why = f"exited with code {dead[0].exitcode}" if dead else f"did not start within {timeout:.0f}s"
                    raise RuntimeError(f"a local host worker process {why} (its error is on stderr)")

    def stop(self) -> list[ChildCounts]:
        """Stop polling, let running invocations finish, and return what each child handled."""
        self._stop.set()
        counts = []
        for child in self._children:
            if child.pid is None or (child.exitcode is not None and child.exitcode != 0):
                continue
            try:
                counts.append(self._results.get(timeout=JOIN_SECONDS))
            except Exception:   # queue.Empty: a child that died; its messages come back after their lease
                log.warning("a worker process did not report back")
        for child in self._children:
            if child.pid is not None:
                child.join(timeout=JOIN_SECONDS)
                if child.is_alive():
                    child.terminate()
                elif child.exitcode:
                    log.warning("%s exited with code %s", child.name, child.exitcode)
        return counts
