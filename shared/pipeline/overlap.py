"""Write batch N on a writer thread while the run's thread extracts and prepares batch N+1.

A batch's write to a database server is mostly waiting: on PostgreSQL for the server to take the
COPY and run the merge. Doing that wait on a second thread lets the run's thread decode, shape,
strip and fit the next pages in the meantime (what it gains: docs/benchmarks.md).

SQLite is written on the run's thread: there is no server to wait for, only binding values (which
holds the interpreter lock) and B-tree inserts in this process, and handing the lock back and forth
between two threads cost more than the inserts it overlapped (docs/benchmarks.md).

What stays as in a synchronous loop:
- one transaction per batch, batches committed in the order they were submitted (one writer, and
  at most one batch in flight: a batch is handed over only once the previous one has committed);
- memory: at most one batch being written plus the one being prepared;
- errors: a failed write is raised by the next `submit` or by `close`, so the run stops at the first
  failing batch, and nothing is written after it; `on_written` is called on the run's thread, in
  order, only for batches that committed, so a page is marked loaded only once it is;
- a run that stops for another reason (an extraction error) still waits for the batch in flight, and
  reports that batch's failure first, since a synchronous loop would have stopped there.

"""
from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import sqlalchemy as sa

from shared.load.loader import Loader, PreparedBatch
from shared.target.dialects import SQLITE

Written = Callable[[Any, int], None]   # (the tag given to `submit`, rows written)


class OverlappedWriter:
    """`submit` prepared batches in order; `close` once at the end (or use it as a context manager)."""

    def __init__(self, loader: Loader, engine: sa.Engine, on_written: Written):
        self._loader, self._on_written = loader, on_written
        self._pool = None if engine.dialect.name == SQLITE else ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="kspyder-writer")
        self._in_flight: tuple[Future, Any] | None = None

    def submit(self, batch: PreparedBatch, tag: Any) -> None:
        """Hand `batch` to the writer once the previous batch has committed; `tag` comes back to
        `on_written` with the rows written."""
        self._settle()
        if self._pool is None:
            self._on_written(tag, self._loader.write(batch))
            return
        self._in_flight = (self._pool.submit(self._loader.write, batch), tag)

    def close(self) -> None:
        """Wait for the batch in flight; raises its error if it failed."""
        try:
            self._settle()
        finally:
            if self._pool is not None:
                self._pool.shutdown(wait=True)

    def _settle(self) -> None:
        if self._in_flight is None:
            return
        future, tag = self._in_flight
        self._in_flight = None
        self._on_written(tag, future.result())

    def __enter__(self) -> OverlappedWriter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: Any) -> None:
        # Also when stopped by something else: the batch in flight lands (or fails) before we
        # return, and its failure is the one raised, having happened first in the data's order.
        self.close()
