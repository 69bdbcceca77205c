"""`python -m samples.arm_api`: serve the ARM sample in the foreground until Ctrl-C or SIGTERM."""
from __future__ import annotations

import argparse
import sys

from samples.arm_api.estate import SUBSCRIPTION
from samples.arm_api.handlers import ArmConfig
from samples.arm_api.server import ArmApi
from samples.background import serve_until_signalled


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m samples.arm_api", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8766)
    parser.add_argument("--token", default=ArmConfig.token, help="bearer token clients must send")
    parser.add_argument("--page-size", type=int, default=ArmConfig.page_size)
    parser.add_argument("--cost-page-size", type=int, default=ArmConfig.cost_page_size)
    parser.add_argument("--seed", type=int, default=ArmConfig.seed)
    args = parser.parse_args(argv)
    try:
        config = ArmConfig(token=args.token, page_size=args.page_size, cost_page_size=args.cost_page_size,
                           seed=args.seed)
    except ValueError as exc:
        print(f"ARM sample API: {exc}", file=sys.stderr)
        return 2
    return serve_until_signalled(ArmApi(config, host=args.host, port=args.port), "ARM sample API",
                                 f" (subscription {SUBSCRIPTION})")

if __name__ == "__main__":
    sys.exit(main())
