"""The queue chain (local host on Azurite) against `main.py run` embedded, on the same job, in one run.

One page server (`benchmarks.page_server`, a child process serving pre-encoded pages) and the
run_bench customer model with its PII policy (name hashed, e-mail dropped, `pii_scan: redact` on
`notes`), 1,000 records a page, into a fresh SQLite target for each side (tables by plan + apply):

- embedded: `run_models` in this process, as `main.py run` does (prefetching pages, loading in
  batches), timed around the run only;
- chain: a private Azurite (`tests.helpers.azurite`, free ports), `Chain.start_run` (what
  `POST /api/runs` calls) and then `LocalHost(load_app(), processes=2).run_queues(once=True)` (two processes, one
  per core, as Azure would run two instances; one thread each) until every queue is
  empty: the real decorated Paginate -> Fetch -> Load -> Transform functions with host.json's
  queue settings, page blobs and ledger in Azurite. Timed from `start_run` to the queues' being empty.

Printed: both rates, the ratio (target: the chain takes at most 2x the embedded run's time on this
2-core machine), the chain's per-message overhead `(chain time - embedded time) / messages`, and
per step the time each Fetch and Load invocation spends outside the work the embedded run also does
(Fetch: the HTTP request and decoding of `ApiPages.fetch`, shaping and PII of `ApiPages.shape`; Load: `Loader.load`), i.e.
blob writes and reads, ledger markers, claims and messages.

The per-step figures are measured in the host's own process (the other process is not
instrumented), over the messages that process handled.

    python -m benchmarks.chain_bench [--records 200000] [--processes 2] [--workers 1] [--pages-per-message 10]
"""
from __future__ import annotations

import argparse
import logging
import os
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

from benchmarks.run_bench import PER_PAGE, RECORDS, SOURCE, count_rows, kspyder_project, page_server, verdict, warm_up

TARGET_RATIO = 2.0      # chain time / embedded time, at most
PROCESSES = 2           # one per core: threads of one process share one core's worth of Python
WORKERS = 1             # threads per process
# settings `chain.pages_per_message` (default 1): each Fetch or Load message costs about ten storage
# calls whatever it carries; ten of the fanned-out pages to a message amortize them (5: about 1.9x)
PAGES_PER_MESSAGE = 10
TIMEOUT = 3600.0        # seconds the chain may take before the benchmark gives up
HOST_KEY = "chain-bench-key"


class Timings:
    """Seconds and calls per label, summed over threads."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self._lock = threading.Lock()

    def add(self, label: str, seconds: float) -> None:
        with self._lock:
            self.seconds[label] += seconds
            self.calls[label] += 1

    def wrap(self, label: str, function):
        def timed(*args, **kwargs):
            started = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                self.add(label, time.perf_counter() - started)
        return timed


@contextmanager
def patched(owner: object, name: str, value: object) -> Iterator[None]:
    original = getattr(owner, name)
    setattr(owner, name, value)
    try:
        yield
    finally:
        setattr(owner, name, original)


@contextmanager
def environment(values: dict[str, str]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def run_embedded(api: str, records: int) -> tuple[float, int]:
    """Seconds of `run_models` and the pages it loaded."""
    from shared.config.project import load_project
    from shared.pipeline.run import run_models
    from tests.helpers.flow import TEST_KEY
    with tempfile.TemporaryDirectory(prefix="kspyder-chain-bench-") as tmp:
        url = f"sqlite:///{Path(tmp) / 'target.db'}"
        manifests = kspyder_project(Path(tmp), api, url, "redact")
        project = load_project(manifests, env={"KSPYDER_PII_KEY": TEST_KEY})
        started = time.perf_counter()
        summary = run_models(project, project.models([SOURCE]))
        seconds = time.perf_counter() - started
        if not summary.ok:
            raise RuntimeError(summary.render())
        rows = count_rows(f"sqlite:///{Path(tmp) / f'target.{SOURCE}.db'}", "customers")
        if rows != records:
            raise RuntimeError(f"embedded: expected {records} rows, found {rows}")
        return seconds, summary.results[0].stats.pages


def run_chain(api: str, records: int, processes: int, workers: int, pages_per_message: int) -> dict:
    from devhost import LocalHost, load_app, load_host_json
    from functions import common
    from shared.chain.names import STORAGE_SETTING
    from shared.chain.page_fetchers import ApiPages
    from shared.config.project import load_project
    from shared.load.loader import Loader
    from tests.helpers.azurite import running_azurite
    from tests.helpers.flow import TEST_KEY

    timings = Timings()
    with running_azurite() as azurite, tempfile.TemporaryDirectory(prefix="kspyder-chain-bench-") as tmp:
        url = f"sqlite:///{Path(tmp) / 'target.db'}"
        manifests = kspyder_project(Path(tmp), api, url, "redact",
                                    {"chain": {"pages_per_message": pages_per_message}})
        env = {STORAGE_SETTING: azurite.connection_string, "KSPYDER_MANIFESTS": str(manifests),
               "KSPYDER_PII_KEY": TEST_KEY, "KSPYDER_TARGET_URL": url, "KSPYDER_HOST_KEY": HOST_KEY,
               "KSPYDER_SCHEDULE": "0 0 0 1 1 *"}
        with environment(env), \
                patched(ApiPages, "fetch", timings.wrap("fetch work", ApiPages.fetch)), \
                patched(ApiPages, "shape", timings.wrap("fetch work", ApiPages.shape)), \
                patched(Loader, "load", timings.wrap("load work", Loader.load)):
            # host.json's queue settings, but a failed message (a SQLite lock, say) retried at once
            # rather than after 30 s, so that one retry does not dominate the timing
            settings = replace(load_host_json(Path(__file__).resolve().parent.parent / "host.json"),
                               visibility_timeout=0.0)
            host = LocalHost(load_app(), settings=settings, workers=workers, processes=processes)
            for triggers in host.queue_triggers:
                for queue, function in triggers.functions.items():
                    object.__setattr__(function, "function", timings.wrap(queue, function.function))
            try:
                project = load_project(manifests)
                host.start_processes()   # spawned and importing the app before the clock starts
                started = time.perf_counter()
                with common.open_chain(project) as chain:
                    run_id = chain.start_run([SOURCE], trigger="bench")
                host.run_queues(once=True, timeout=TIMEOUT)
                seconds = time.perf_counter() - started
                with common.open_chain(project) as chain:
                    status = chain.run_status(run_id)
            finally:
                host.stop()
                common.dispose_engines()
        rows = count_rows(f"sqlite:///{Path(tmp) / f'target.{SOURCE}.db'}", "customers")
    if rows != records:
        raise RuntimeError(f"chain: expected {records} rows, found {rows}")
    if not status or not status["done"]:
        raise RuntimeError(f"chain: the run is not done: {status}")
    handled, failed = defaultdict(int), defaultdict(int)
    for triggers in host.queue_triggers:
        for queue, n in triggers.stats.handled.items():
            handled[queue] += n
        for queue, n in triggers.stats.failed.items():
            failed[queue] += n
    return {"seconds": seconds, "handled": dict(handled), "failed": dict(failed), "timings": timings}


def main(argv: list[str] | None = None) -> bool:
    from shared.chain.names import FETCH, LOAD, PAGINATE
    parser = argparse.ArgumentParser(prog="python -m benchmarks.chain_bench")
    parser.add_argument("--records", type=int, default=RECORDS)
    parser.add_argument("--processes", type=int, default=PROCESSES, help="local host processes")
    parser.add_argument("--workers", type=int, default=WORKERS, help="local host worker threads per process")
    parser.add_argument("--pages-per-message", type=int, choices=(1, 2, 5, 10), default=PAGES_PER_MESSAGE,
                        help="settings chain.pages_per_message")
    args = parser.parse_args(argv or [])
    n, processes, workers, block = args.records, args.processes, args.workers, args.pages_per_message
    logging.getLogger("kspyder").setLevel(logging.ERROR)   # a retried message is counted below, not logged
    print(f"chain benchmark: {n:,} records, {PER_PAGE:,} per page, SQLite target, PII policy of run_bench; "
          f"embedded `run_models` vs the local host on Azurite ({processes} process(es) x {workers} worker thread(s), "
          f"{block} page(s) per message), one after the other")
    with page_server(n) as api:
        warm_up(api, n)
        embedded, pages = run_embedded(api, n)
        print(f"  {'embedded run (main.py run)':<44} {n / embedded:>10,.0f} rec/s {embedded:>7.1f} s", flush=True)
        chain = run_chain(api, n, processes, workers, block)
    seconds, handled, t = chain["seconds"], chain["handled"], chain["timings"]
    print(f"  {'queue chain (local host, Azurite)':<44} {n / seconds:>10,.0f} rec/s {seconds:>7.1f} s")
    messages = sum(handled.values())
    print(f"  messages handled: {messages:,} ({', '.join(f'{q} {c:,}' for q, c in sorted(handled.items()))}); "
          f"failed and retried: {sum(chain['failed'].values()):,}; pages: {pages:,}")
    value = seconds / embedded
    ok = value <= TARGET_RATIO
    print(f"  {'chain time / embedded time':<44} {value:>6.2f}x  (target <= {TARGET_RATIO}x: {verdict(ok)})")
    print(f"  {'overhead per message (chain - embedded)':<44} {(seconds - embedded) / messages * 1000:>8.1f} ms "
          f"(wall clock, {processes * workers} workers)")
    # measured in this process only: its own invocations (t.calls), not the worker processes'
    fetches = t.calls[FETCH] + t.calls[PAGINATE]   # Paginate fetches the first page
    fetch_fn = t.seconds[FETCH] + t.seconds[PAGINATE]
    for step, count, whole, work, what in (
            ("Fetch", fetches, fetch_fn, t.seconds["fetch work"], "HTTP + decode + shape + PII"),
            ("Load", t.calls[LOAD], t.seconds[LOAD], t.seconds["load work"], "Loader.load")):
        if count:
            print(f"  {step + ' per message':<44} {whole / count * 1000:>8.1f} ms in the function, "
                  f"{work / count * 1000:.1f} ms of it {what}: overhead {(whole - work) / count * 1000:.1f} ms")
    functions = sum(t.seconds[q] for q in handled)
    own = sum(t.calls[q] for q in handled)
    host_share = max(seconds * workers - functions, 0.0)
    if own:
        print(f"  {'host (receive, delete, polling, idle)':<44} {host_share / own * 1000:>8.1f} ms per message "
              f"of worker time outside the functions (this process: {own:,} of the messages)")
    return ok


if __name__ == "__main__":
    import sys
    sys.exit(0 if main(sys.argv[1:]) else 1)
