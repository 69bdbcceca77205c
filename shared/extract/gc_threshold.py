"""Fewer garbage collections while records flow.

Records stay alive until their batch is written, so the default threshold makes collections walk
them over and over (what that cost: docs/benchmarks.md), yet records are trees of plain values that
never form reference cycles. So while pages flow the generation-0 threshold is raised; cyclic
garbage made meanwhile (by other code in the process) is still collected, only in larger steps.

Process-wide, like the collector itself, so nested or concurrent extractions share one raise:
the first in sets it, the last out restores what it found.
"""
from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

# Above whole pages of live records, so a run makes a handful of collections (docs/benchmarks.md).
GEN0_THRESHOLD = 100_000

_lock = threading.Lock()
_depth = 0
_saved: tuple[int, ...] = ()


@contextmanager
def fewer_collections() -> Iterator[None]:
    global _depth, _saved
    with _lock:
        if _depth == 0:
            _saved = gc.get_threshold()
            gc.set_threshold(max(GEN0_THRESHOLD, _saved[0]), *_saved[1:])
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                gc.set_threshold(*_saved)
