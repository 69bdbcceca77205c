"""Progress on stderr for long work; silent when stderr is not a terminal (CI logs, pipes).

tqdm is imported only for a terminal: a silent bar would still cost its import and a monitor
thread, on every scheduled or piped run (docs/benchmarks.md, `sql`, start-up)."""
from __future__ import annotations

import sys
from typing import Any, Protocol

from shared.extract.base import ExtractStats
from shared.extract.types import Page


class Bar(Protocol):
    @property
    def disable(self) -> bool | None: ...

    def update(self, n: float = 1) -> Any: ...

    def set_postfix(self, ordered_dict: Any = None, refresh: bool | None = True, **kwargs: Any) -> None: ...

    def close(self) -> None: ...


class SilentBar:
    """What a bar does when nobody watches: nothing."""

    disable = True

    def update(self, n: float = 1) -> None:
        pass

    def set_postfix(self, ordered_dict: Any = None, refresh: bool | None = True, **kwargs: Any) -> None:
        pass

    def close(self) -> None:
        pass


def progress_bar(label: str, total: int | None = None) -> Bar:
    if not sys.stderr.isatty():
        return SilentBar()
    from tqdm import tqdm
    bar: Bar = tqdm(desc=label, total=total, unit=" rec", file=sys.stderr, dynamic_ncols=True, leave=False)
    return bar


class PageProgress:
    """Records and their rate from tqdm, plus pages, retries and 429s as they happen."""

    def __init__(self, label: str):
        self.bar = progress_bar(label)

    def __call__(self, page: Page, stats: ExtractStats) -> None:
        self.bar.update(len(page.records))
        if not self.bar.disable:
            self.bar.set_postfix(pages=stats.pages, retries=stats.retries, throttled=stats.throttled, refresh=False)

    def __enter__(self) -> PageProgress:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.bar.close()
