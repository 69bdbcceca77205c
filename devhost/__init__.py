"""A small local Functions host: runs the real decorated functions of `function_app.py` with real
`azure.functions` objects against Azurite (or Azure Storage), honoring host.json's queue settings.

`python main.py host` uses it; see `devhost/host.py` for the pieces and docs in the module
docstrings for where it differs from the Azure host.
"""
from __future__ import annotations

from devhost.bindings import (
    BlobFunction,
    Discovered,
    HttpFunction,
    QueueFunction,
    TimerFunction,
    discover,
    load_app,
)
from devhost.host import LocalHost
from devhost.settings import HostError, QueueSettings, load_host_json
from shared.ncrontab import Schedule, parse_schedule

__all__ = [
    "BlobFunction", "Discovered", "HttpFunction", "QueueFunction", "TimerFunction", "discover", "load_app",
    "LocalHost", "Schedule", "parse_schedule", "HostError", "QueueSettings", "load_host_json",
]
