"""Progress on stderr for long work; silent when stderr is not a terminal (CI logs, pipes)."""
from __future__ import annotations

import sys

from tqdm import tqdm


def progress_bar(label: str, total: int | None = None) -> tqdm:
    return tqdm(desc=label, total=total, unit=" rec", file=sys.stderr, disable=not sys.stderr.isatty(),
                dynamic_ncols=True, leave=False)
