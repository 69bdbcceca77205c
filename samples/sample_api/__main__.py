"""`python -m samples.sample_api`: serve the sample API in the foreground for the demo and for
manual runs against a fixed port, until Ctrl-C or SIGTERM."""
from __future__ import annotations

import argparse
import sys

from samples.background import serve_until_signalled
from samples.sample_api.server import ApiConfig, SampleApi


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m samples.sample_api", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    defaults = ApiConfig()
    for name in ("customers", "products", "orders", "events", "tickets", "seed"):
        parser.add_argument(f"--{name}", type=int, default=getattr(defaults, name))
    parser.add_argument("--rate", type=float, default=None, help="requests per second; unlimited if omitted")
    parser.add_argument("--burst", type=int, default=1)
    parser.add_argument("--retry-after-format", choices=("seconds", "http-date"), default="seconds")
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--token", default=None, help="require 'Authorization: Bearer TOKEN' on /v1/*")
    parser.add_argument("--api-key", default=None, help="require X-API-Key (or ?api_key=) on /v1/*")
    parser.add_argument("--client-id", default=None)
    parser.add_argument("--client-secret", default=None)
    return parser.parse_args(argv)


def config_from(args: argparse.Namespace) -> ApiConfig:
    return ApiConfig(customers=args.customers, products=args.products, orders=args.orders, events=args.events,
                     tickets=args.tickets, rate=args.rate, burst=args.burst,
                     retry_after_format=args.retry_after_format, latency_ms=args.latency_ms, token=args.token,
                     api_key=args.api_key, seed=args.seed, client_id=args.client_id,
                     client_secret=args.client_secret)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        config = config_from(args)
    except ValueError as exc:
        print(f"sample API: {exc}", file=sys.stderr)
        return 2
    return serve_until_signalled(SampleApi(config, host=args.host, port=args.port), "sample API")

if __name__ == "__main__":
    sys.exit(main())
