"""Fewer garbage collections while records flow.

CPython runs a generation-0 collection every 700 net container allocations. An extraction
allocates about three containers per record (the record dict, a nested object, a list) that all
stay alive until their batch is written, so a 200,000-record run triggered about 1,200 collections,
each walking objects that are not garbage (and, every so often, the hundreds of thousands of
objects the imports left behind): 15-20% of the run (`benchmarks/run_bench.py`). Records are trees
of plain values and never form reference cycles, which is all the collector is for; reference
counting frees them as usual. So while pages flow the generation-0 threshold is raised; cyclic
garbage made meanwhile (by other code in the process) is still collected, only in larger steps.

Process-wide, like the collector itself, so nested or concurrent extractions share one raise:
the first in sets it, the last out restores what it found.
"""
from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

# At 10,000 a 200,000-record run still made about 40 collections of 13-18 ms each (the young
# generation then holds whole pages of live records); at 100,000, about 6 in all. Peak RSS unchanged.
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
