"""A child model in the embedded run: the parents walked on this thread, their children (lanes) read
`concurrency` at a time by a thread pool through the source's one HTTP client, so parents and
children draw on one rate bucket. Lanes are yielded in the walk's order, one page each, and their
warnings reported after the walk's own, in the order the queue chain reports them."""
from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor

from shared.extract.base import RawPage
from shared.extract.parent_walk import Lane, Scope, WalkStep


def walk_pages(walk: WalkStep, width: int, warn: Callable[[str], None], name: str) -> Iterator[RawPage]:
    at = walk.start()
    waiting: deque[Scope] = deque()
    window: deque[Future[Lane]] = deque()
    warnings: list[str] = []
    with ThreadPoolExecutor(max_workers=width, thread_name_prefix=name) as pool:
        try:
            while True:
                while len(window) < width and (waiting or not at.done):
                    if waiting:
                        window.append(pool.submit(walk.lane, waiting.popleft()))
                    else:
                        waiting.extend(walk.next_scopes(at))
                if not window:
                    break
                lane = window.popleft().result()
                warnings += lane.warnings
                yield RawPage(lane.records, lane.url, checkpoint=lane.checkpoint)
        finally:
            for future in window:
                future.cancel()
    for warning in [*at.skipped, *warnings]:
        warn(warning)
