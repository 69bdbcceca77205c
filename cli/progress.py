"""Progress on stderr for long work; silent when stderr is not a terminal (CI logs, pipes)."""
from __future__ import annotations

import sys

from tqdm import tqdm

from shared.extract.base import ExtractStats
from shared.extract.types import Page


def progress_bar(label: str, total: int | None = None) -> tqdm:
    return tqdm(desc=label, total=total, unit=" rec", file=sys.stderr, disable=not sys.stderr.isatty(),
                dynamic_ncols=True, leave=False)


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
