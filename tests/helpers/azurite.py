"""Azurite, the Azure Storage emulator, for tests that must talk to real blob and queue endpoints.

It comes from npm (`package.json` pins it; `npm ci` installs it into node_modules). Each test
session starts its own on free loopback ports with its data in a temporary folder, so runs never
share state with each other or with a developer's own Azurite on the default ports.
"""
from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.helpers.paths import ROOT
from tests.helpers.services import services_required

AZURITE_BIN = ROOT / "node_modules" / ".bin" / "azurite"

# The emulator's well-known development account; documented by Microsoft, not a secret.
ACCOUNT = "devstoreaccount1"
ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="

START_TIMEOUT = 20.0
START_ATTEMPTS = 3  # a free port picked here can be taken by someone else before Azurite binds it


@dataclass(frozen=True)
class Azurite:
    connection_string: str
    blob_port: int
    queue_port: int
    table_port: int


def connection_string(blob_port: int, queue_port: int, table_port: int) -> str:
    """Explicit endpoints, because `UseDevelopmentStorage=true` means the fixed default ports."""
    base = "http://127.0.0.1:{}/" + ACCOUNT
    return (
        f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={ACCOUNT_KEY};"
        f"BlobEndpoint={base.format(blob_port)};QueueEndpoint={base.format(queue_port)};"
        f"TableEndpoint={base.format(table_port)};"
    )


def _free_ports(count: int) -> list[int]:
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def _accepts(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
        return True
    return False


def _require_installed() -> None:
    """Skip on a laptop without Azurite; fail where services are required (CI), never pass green."""
    problem = None
    if not AZURITE_BIN.exists():
        problem = f"Azurite is not installed ({AZURITE_BIN.relative_to(ROOT)} missing): run `npm ci` in {ROOT}"
    elif shutil.which("node") is None:
        problem = "Azurite needs Node.js, and `node` is not on PATH"
    if problem is None:
        return
    if services_required():
        pytest.fail(problem + " (required: KSPYDER_REQUIRE_SERVICES=1 or CI=true)")
    pytest.skip(problem)


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


def _start_once(location: Path, log_path: Path) -> tuple[Azurite, subprocess.Popen] | None:
    """Azurite on fresh ports, or None when it exited early (most likely a port was taken)."""
    blob, queue, table = _free_ports(3)
    command = [
        str(AZURITE_BIN),
        "--blobHost", "127.0.0.1", "--blobPort", str(blob),
        "--queueHost", "127.0.0.1", "--queuePort", str(queue),
        "--tableHost", "127.0.0.1", "--tablePort", str(table),
        "--inMemoryPersistence",  # test data dies with the process anyway; disk writes only slowed every call
        "--silent", "--loose",
        "--skipApiVersionCheck",  # the Python SDKs send newer API versions than Azurite knows
        "--disableTelemetry",  # no network beyond loopback here, and none wanted
    ]
    with open(log_path, "ab") as log:
        process = subprocess.Popen(command, cwd=location, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return None
        if all(_accepts(port) for port in (blob, queue, table)):
            return Azurite(connection_string(blob, queue, table), blob, queue, table), process
        time.sleep(0.1)
    _stop(process)
    return None


@contextlib.contextmanager
def running_azurite() -> Iterator[Azurite]:
    """A private Azurite for the duration of the block, stopped (and its data removed) after."""
    _require_installed()
    with tempfile.TemporaryDirectory(prefix="kspyder-azurite-") as tmp:
        location, log_path = Path(tmp) / "data", Path(tmp) / "azurite.log"
        location.mkdir()
        for _ in range(START_ATTEMPTS):
            started = _start_once(location, log_path)
            if started is not None:
                break
        else:
            log = log_path.read_text(errors="replace")[-2000:] if log_path.exists() else ""
            pytest.fail(f"Azurite did not start within {START_TIMEOUT:.0f}s after {START_ATTEMPTS} attempts:\n{log}")
        azurite, process = started
        try:
            yield azurite
        finally:
            _stop(process)
