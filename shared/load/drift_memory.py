"""Drift checks remembered by the process for a while, in both modes.

Checking a table against the manifest reflects it (a few catalog queries), the same answer for
every page of a run and for every model a run loads right after its plan: a queue-chain worker
trusts a table it found in line for DRIFT_CHECK_SECONDS per target, model and manifest text, and
forgets it when a load into that table fails, so the retry looks again and names the drift rather
than a database error; `main.py run` trusts the plan it has just made (or applied) as long.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import sqlalchemy as sa

from shared.config.project import ModelRef

if TYPE_CHECKING:
    from shared.load.loader import Loader

DRIFT_CHECK_SECONDS = 30.0
Key = tuple[str, str, str]
_checked: dict[Key, float] = {}
_lock = threading.Lock()


def drift_key(engine: sa.Engine, ref: ModelRef) -> Key:
    tables = "".join(column.model_dump_json() for column in ref.model.tables.values())   # child tables' columns
    return (str(engine.url), ref.qualified, ref.model.model_dump_json() + tables)


def check_once(key: Key, check: Callable[[], None]) -> None:
    """`check()` (raising on drift) unless it passed for `key` within DRIFT_CHECK_SECONDS."""
    now = time.monotonic()
    with _lock:
        checked = _checked.get(key)
    if checked is not None and now - checked < DRIFT_CHECK_SECONDS:
        return
    check()
    with _lock:
        _checked[key] = now


def check_loader(key: Key, loader: Loader) -> None:
    """`loader.check_drift()` unless `key` passed within DRIFT_CHECK_SECONDS; either way the loader
    then loads without reflecting its table again."""
    check_once(key, loader.check_drift)
    loader.drift_checked_elsewhere()


def passed(key: Key) -> None:
    """Record that `key`'s table was found in line just now (by a plan that compared it)."""
    with _lock:
        _checked[key] = time.monotonic()


def forget(key: Key) -> None:
    with _lock:
        _checked.pop(key, None)
