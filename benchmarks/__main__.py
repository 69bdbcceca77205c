"""`python -m benchmarks [name ...]` (or `make bench`): run the benchmarks, print rates and ratios."""
from __future__ import annotations

import sys

from benchmarks import (
    chain_bench,
    extract_bench,
    incremental_bench,
    manifest_bench,
    pii_bench,
    quota_bench,
    run_bench,
    sql_bench,
    transform_bench,
)

BENCHMARKS = {"extract": extract_bench.main, "run": run_bench.main, "pii": pii_bench.main, "chain": chain_bench.main,
              "transform": transform_bench.main, "sql": sql_bench.main, "manifest": manifest_bench.main,
              "incremental": incremental_bench.main, "quota": quota_bench.main}


def main(argv: list[str]) -> int:
    names = argv or list(BENCHMARKS)
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        print(f"unknown benchmark(s) {', '.join(unknown)}; available: {', '.join(BENCHMARKS)}", file=sys.stderr)
        return 2
    failed = [name for name in names if not BENCHMARKS[name]()]
    if failed:
        print(f"targets missed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
