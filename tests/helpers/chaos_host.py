"""`main.py host --once` as a process the chaos test can kill (tests/flows/test_chaos.py).

Two changes from the real host, both about time and duplicates, none about what the chain does:
- a received message stays hidden for KSPYDER_TEST_LEASE seconds instead of the host's ten minutes,
  so that the messages a killed host held come back within the test's time;
- with KSPYDER_TEST_DOUBLE=1, every message the chain sends to paginate, fetch or load is sent
  twice: a duplicate delivery, as Azure Queue Storage is allowed to make.

Usage: python -m tests.helpers.chaos_host [host options]
"""
from __future__ import annotations

import os
import sys


def main() -> None:
    from cli.main import cli
    from devhost import queues
    from shared.chain.names import FETCH, LOAD, PAGINATE
    from shared.chain.steps import Chain

    queues.LEASE = float(os.environ.get("KSPYDER_TEST_LEASE", queues.LEASE))
    if os.environ.get("KSPYDER_TEST_DOUBLE") == "1":
        send = Chain.send

        def send_twice(self, queue, message, delay=0.0):
            send(self, queue, message, delay)
            if queue in (PAGINATE, FETCH, LOAD):
                send(self, queue, message, delay)

        Chain.send = send_twice
    cli(["host", *sys.argv[1:]])


if __name__ == "__main__":
    main()
