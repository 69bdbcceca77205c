"""How close to a server's undeclared rate limit the client runs, and how often it meets a 429.

The sample API allows RATE requests/s as a quota of RATE * WINDOW per fixed window (the manifest
declares no rate), answering 429 + Retry-After past it. Measured in the same run: with the server
announcing its quota (`RateLimit-*`, read by `shared/extract/quota.py`), and without (only the 429
tells). Printed: the share of the quota served in each whole window, and the share of requests
answered 429. Targets (issue 14 §4): at least 0.95 of the limit, at most 2% of requests refused.
"""
from __future__ import annotations

import tempfile
from pathlib import Path

from samples.sample_api.server import ApiConfig, SampleApi
from shared.outputs.export import export_model
from tests.flow_helpers import api_source, project_for

RATE = 50.0          # requests/s the server allows
WINDOW = 2.0         # seconds per quota window
PAGES = 600          # about six windows' worth
PER_PAGE = 5
CONCURRENCY = 4
TARGET_SHARE, TARGET_REFUSED = 0.95, 0.02
COLUMNS = {"id": {"type": "integer"}, "status": {"type": "string"}}


def run(headers: bool) -> tuple[float, float]:
    """(share of the quota served per whole window, share of requests answered 429)."""
    config = ApiConfig(customers=PAGES * PER_PAGE, rate=RATE, window_s=WINDOW, quota_headers=headers, latency_ms=5)
    with SampleApi(config) as api, tempfile.TemporaryDirectory() as tmp:
        model = {"path": "/v1/customers", "records": "data", "primary_key": ["id"], "params": {"per_page": PER_PAGE},
                 "columns": COLUMNS, "pagination": {"type": "page_number", "total_pages_path": "meta.total_pages"}}
        throttle = {"concurrency": CONCURRENCY, "max_retries": 20, "backoff": 0.05}
        project = project_for(Path(tmp), {"shop": api_source(api.base_url, {"customers": model}, throttle=throttle)})
        [ref] = project.models(["shop.customers"])
        outcome = export_model(project, ref, "jsonl", tmp)
        if outcome.error or outcome.stats.records != PAGES * PER_PAGE:
            raise RuntimeError(outcome.error or f"{outcome.stats.records} records of {PAGES * PER_PAGE}")
        stats = api.stats()
        window = api._running().window
        if window is None:
            raise RuntimeError("the sample API runs without its quota window")
        served = sorted(window.served.items())
    whole = [count for _, count in served[1:-1]]   # the first and last windows are partly outside the run
    share = sum(whole) / (len(whole) * window.limit) if whole else 0.0
    return share, stats["throttled"] / stats["requests"]["total"]


def main() -> bool:
    print(f"quota benchmark: {PAGES} pages, {RATE:g} req/s undeclared as a quota per {WINDOW:g}s window, "
          f"concurrency {CONCURRENCY}")
    results = {headers: run(headers) for headers in (False, True)}
    for headers, (share, refused) in results.items():
        told = "quota announced (RateLimit-*)" if headers else "only 429 + Retry-After"
        print(f"  {told:<32} limit reached {share:5.3f} | requests answered 429 {refused:6.2%}")
    share, refused = results[True]
    met = share >= TARGET_SHARE and refused <= TARGET_REFUSED
    print(f"  with the quota announced: {share:.3f} of the limit (target >= {TARGET_SHARE}), {refused:.2%} 429s "
          f"(target <= {TARGET_REFUSED:.0%}): {'met' if met else 'MISSED'}")
    return met
