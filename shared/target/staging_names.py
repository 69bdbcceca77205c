"""Staging table names: derived, never stored, so the run's Loader, a later step of the queue chain
and the next run all compute the same one; `plan`, `apply` and the drift check skip them."""
from __future__ import annotations

import hashlib
import re

from shared.config.models import MAX_IDENTIFIER

PREFIX = "_kspyder_stg_"
SWAP_PREFIXES = ("_kspyder_new_", "_kspyder_old_")   # a transformation output's transient names on MariaDB
RUN_TAG = 10          # hex digits naming the run
TABLE_HASH = 8        # hex digits standing for the end of a table name too long to fit
_NAME = re.compile(rf"^{PREFIX}([0-9a-f]{{{RUN_TAG}}})_(.+)$")


def _hex(text: str, digits: int) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:digits]


def _table_part(table: str) -> str:
    """The table's name as it fits after the prefix and run tag, within the identifier limit."""
    room = MAX_IDENTIFIER - len(PREFIX) - RUN_TAG - 1
    if len(table) <= room:
        return table
    return f"{table[:room - TABLE_HASH - 1]}_{_hex(table, TABLE_HASH)}"


def staging_name(table: str, run_id: str) -> str:
    """The staging table of `table` for run `run_id`: the same in every process of the run."""
    return f"{PREFIX}{_hex(run_id, RUN_TAG)}_{_table_part(table)}"


def is_staging(name: str) -> bool:
    """A staging table, or one a swap left behind when its process was killed mid-way."""
    return _NAME.match(name) is not None or name.startswith(SWAP_PREFIXES)


def stale_staging(names: list[str], table: str, run_id: str) -> list[str]:
    """The staging tables of `table` among `names` that belong to other runs than `run_id`."""
    own, part = staging_name(table, run_id), _table_part(table)
    return sorted(n for n in names if n != own and (m := _NAME.match(n)) is not None and m.group(2) == part)
