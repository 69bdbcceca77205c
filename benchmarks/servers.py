"""Benchmark servers run in their own process, so the server's work does not share the client's GIL."""
from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


ROOT = Path(__file__).resolve().parents[1]


@contextmanager
def page_server_process(records: int, per_page: int, latency_ms: float = 0.0, extra_args: tuple[str, ...] = (),
                        start_timeout: float | None = 60.0) -> Iterator[str]:
    """`benchmarks.page_server` in a child process; yields its base URL once it answers.
    `start_timeout=None` waits as long as the server lives (a million distinct pages take a while)."""
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "benchmarks.page_server", "--port", str(port),
                                "--records", str(records), "--per-page", str(per_page),
                                "--latency-ms", str(latency_ms), *extra_args], stderr=subprocess.DEVNULL, cwd=ROOT)
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = None if start_timeout is None else time.monotonic() + start_timeout
        while True:
            try:
                requests.get(f"{base_url}/_stats", timeout=1)
                break
            except requests.ConnectionError:
                if process.poll() is not None:
                    raise RuntimeError("the page server exited") from None
                if deadline is not None and time.monotonic() > deadline:
                    raise RuntimeError(f"the page server did not answer within {start_timeout:.0f}s") from None
                time.sleep(0.05)
        yield base_url
    finally:
        process.terminate()
        process.wait(timeout=10)
