"""How close to a server's undeclared rate limit the client runs, and how often it meets a 429.

The sample API allows RATE requests/s (the manifest declares no rate), answering 429 + Retry-After
past it, as a token bucket (its default) and as a quota of RATE * WINDOW per fixed window. Measured in
the same run, each with the server announcing its limit as the IETF draft does (`RateLimit-Policy` for
the bucket, `RateLimit-Limit/-Remaining/-Reset` for the window; read by `shared/extract/quota.py`) and
without (only the 429 tells). Printed: the share of the limit served (between the bucket's first and
last request let through; in each whole window), and the share of requests answered 429. Targets
(issue 14 §4), with the limit announced: at least 0.95 of it, at most 2% of requests refused.
"""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

from samples.sample_api.server import ApiConfig, FixedWindow, SampleApi, TokenBucket
from shared.outputs.export import export_model
from tests.helpers.flow import api_source, project_for

RATE = 50.0          # requests/s the server allows
WINDOW = 2.0         # seconds per quota window
PAGES = 600          # about six windows' worth
PER_PAGE = 5
CONCURRENCY = 4
BURST = 5            # the token bucket's, a tenth of a second at RATE
TARGET_SHARE, TARGET_REFUSED = 0.95, 0.02
COLUMNS = {"id": {"type": "integer"}, "status": {"type": "string"}}


def extract(api: SampleApi, pages: int) -> float:
    """Seconds to export every page, the manifest declaring no rate."""
    with tempfile.TemporaryDirectory() as tmp:
        model = {"path": "/v1/customers", "records": "data", "primary_key": ["id"], "params": {"per_page": PER_PAGE},
                 "columns": COLUMNS, "pagination": {"type": "page_number", "total_pages_path": "meta.total_pages"}}
        throttle = {"concurrency": CONCURRENCY, "max_retries": 20, "backoff": 0.05}
        project = project_for(Path(tmp), {"shop": api_source(api.base_url, {"customers": model}, throttle=throttle)})
        [ref] = project.models(["shop.customers"])
        started = time.perf_counter()
        outcome = export_model(project, ref, "jsonl", tmp)
        if outcome.error or outcome.stats.records != pages * PER_PAGE:
            raise RuntimeError(outcome.error or f"{outcome.stats.records} records of {pages * PER_PAGE}")
        return time.perf_counter() - started


def token_bucket(headers: bool) -> tuple[float, float]:
    """Against the token bucket: (share of its rate served between the first and the last request
    it let through, share of requests answered 429)."""
    pages = PAGES // 2
    config = ApiConfig(customers=pages * PER_PAGE, rate=RATE, burst=BURST, latency_ms=5, quota_headers=headers)
    with SampleApi(config) as api:
        extract(api, pages)
        stats = api.stats()
        bucket = api.limit
        if not isinstance(bucket, TokenBucket):
            raise RuntimeError("the sample API runs without its token bucket")
        served_rate = (bucket.served - BURST) / (bucket.last_served - bucket.first_served)   # the first burst is free
    return served_rate / RATE, stats["throttled"] / stats["requests"]["total"]


def run(headers: bool) -> tuple[float, float]:
    """(share of the quota served per whole window, share of requests answered 429)."""
    config = ApiConfig(customers=PAGES * PER_PAGE, rate=RATE, window_s=WINDOW, quota_headers=headers, latency_ms=5)
    with SampleApi(config) as api:
        extract(api, PAGES)
        stats = api.stats()
        window = api.limit
        if not isinstance(window, FixedWindow):
            raise RuntimeError("the sample API runs without its quota window")
        served = sorted(window.served.items())
    whole = [count for _, count in served[1:-1]]   # the first and last windows are partly outside the run
    share = sum(whole) / (len(whole) * window.limit) if whole else 0.0
    return share, stats["throttled"] / stats["requests"]["total"]


def main() -> bool:
    print(f"quota benchmark: {RATE:g} req/s undeclared, as a token bucket (burst {BURST}, {PAGES // 2} pages) and "
          f"as a quota per {WINDOW:g}s window ({PAGES} pages); concurrency {CONCURRENCY}")
    met = True
    for kind, measure in (("token bucket", token_bucket), ("fixed window", run)):
        results = {headers: measure(headers) for headers in (False, True)}
        for headers, (share, refused) in results.items():
            told = "announced (RateLimit-*)" if headers else "only 429 + Retry-After"
            print(f"  {kind}, {told:<24} limit reached {share:5.3f} | requests answered 429 {refused:6.2%}")
        share, refused = results[True]
        ok = share >= TARGET_SHARE and refused <= TARGET_REFUSED
        met &= ok
        print(f"  {kind}, announced: {share:.3f} of the limit (target >= {TARGET_SHARE}), {refused:.2%} 429s "
              f"(target <= {TARGET_REFUSED:.0%}): {'met' if ok else 'MISSED'}")
    return met
