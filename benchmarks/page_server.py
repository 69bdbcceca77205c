"""A paginated API that serves pre-encoded pages from memory, for benchmarks.

The sample API builds every record on request, which is right for tests but makes the server the
bottleneck of a throughput benchmark. Here every page is encoded once at start-up, so what is
measured is the client. `GET /v1/customers?page=N&per_page=P` answers like the sample API
(`{"data": [...], "meta": {"page", "per_page", "total_pages", "total"}}`), with optional latency.

    python -m benchmarks.page_server --port 8800 --records 20000 --per-page 100 --latency-ms 10

`--distinct N` builds only the first N records and repeats them under new ids, so that a million
records start in seconds rather than a minute (the records' content does not matter to a loader).
"""
from __future__ import annotations

import argparse
import json
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from samples.sample_api.data import customer


def encode_pages(records: int, per_page: int) -> list[bytes]:
    total_pages = -(-records // per_page)
    pages = []
    for page in range(1, total_pages + 1):
        first = (page - 1) * per_page + 1
        data = [customer(i) for i in range(first, min(first + per_page, records + 1))]
        meta = {"page": page, "per_page": per_page, "total_pages": total_pages, "total": records}
        pages.append(json.dumps({"data": data, "meta": meta}).encode())
    return pages


def encode_repeating_pages(records: int, per_page: int, distinct: int) -> list[bytes]:
    """Like `encode_pages`, but record i is a copy of record ((i - 1) % distinct) + 1 with id i:
    every id is still unique, so an upsert writes `records` rows."""
    base = [customer(i) for i in range(1, min(distinct, records) + 1)]
    total_pages = -(-records // per_page)
    pages = []
    for page in range(1, total_pages + 1):
        first = (page - 1) * per_page + 1
        data = [{**base[(i - 1) % len(base)], "id": i} for i in range(first, min(first + per_page, records + 1))]
        meta = {"page": page, "per_page": per_page, "total_pages": total_pages, "total": records}
        pages.append(json.dumps({"data": data, "meta": meta}).encode())
    return pages


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: PageServer

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
        pass

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        if parts.path == "/_stats":
            return self._send(200, b"{}")
        query = parse_qs(parts.query)
        if parts.path != "/v1/customers" or int(query.get("per_page", ["0"])[0]) != self.server.per_page:
            return self._send(404, b'{"error": "only /v1/customers with the configured per_page"}')
        if self.server.latency:
            time.sleep(self.server.latency)
        page = int(query.get("page", ["1"])[0])
        pages = self.server.pages
        body = pages[page - 1] if 1 <= page <= len(pages) else b'{"data": [], "meta": {}}'
        self._send(200, body)

    def _send(self, status: int, body: bytes) -> None:
        head = f"HTTP/1.1 {status} OK\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        self.wfile.write(head.encode() + body)


class PageServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def __init__(self, port: int, records: int, per_page: int, latency_ms: float, distinct: int | None = None):
        self.pages = (encode_repeating_pages(records, per_page, distinct) if distinct
                      else encode_pages(records, per_page))
        self.per_page, self.latency = per_page, latency_ms / 1000
        super().__init__(("127.0.0.1", port), _Handler)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.page_server")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--records", type=int, required=True)
    parser.add_argument("--per-page", type=int, default=100)
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--distinct", type=int, help="build this many records and repeat them under new ids")
    args = parser.parse_args()
    server = PageServer(args.port, args.records, args.per_page, args.latency_ms, args.distinct)
    try:
        server.serve_forever(poll_interval=0.05)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
