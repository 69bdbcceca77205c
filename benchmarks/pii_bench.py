"""µs per note of the free-text PII scan (`find_pii`, and `PiiStripper.apply_owned` on a record with
one scanned text column) over 3,000 sample customer notes, against a baseline measured in the same
run: one simple regex pass over the same notes (`re.compile(r"\\d").findall`), which is about what
touching each digit of these digit-dense notes once costs.

The notes mix order numbers, ISO dates, versions and amounts, and about a third of them hold an
e-mail, a phone number or an IBAN: the look-alikes are what a precise scanner spends its time on.

Target: the stripper's scan at most 2.5x the baseline pass (the scanner this replaced took about 6x):
under 10 µs a note where the baseline takes 4 µs, which keeps one scanned free-text column well
inside a pipeline budget of tens of thousands of records per second.
"""
from __future__ import annotations

import re
import time
from collections.abc import Callable

from samples.sample_api.data import customer
from shared.config.models import Column
from shared.detect.detectors import find_pii
from shared.pii.stripper import PiiStripper

NOTES = 3_000
REPEAT = 3   # best of: the machine's other work only ever slows a run down
TARGET = 2.5
PLAIN = "Customer called about the delivery and asked for a callback later this week."


def best_us(runs: dict[str, Callable[[], object]], prepare: Callable[[], object]) -> dict[str, float]:
    """Best µs per note of each run over REPEAT rounds. The runs take turns within a round, so a
    busy spell of the machine slows the baseline as much as the scans it is compared with;
    `prepare` (untimed) sets up fresh input before each of them."""
    best = dict.fromkeys(runs, float("inf"))
    for _ in range(REPEAT):
        for name, run in runs.items():
            prepare()
            started = time.perf_counter()
            run()
            best[name] = min(best[name], time.perf_counter() - started)
    return {name: seconds / NOTES * 1e6 for name, seconds in best.items()}


def main() -> bool:
    notes = [customer(index)["notes"] for index in range(1, NOTES + 1)]
    digits = re.compile(r"\d").findall
    stripper = PiiStripper({"notes": Column.model_validate({"type": "text"})}, scan="redact", key=None)
    records: list[dict] = []

    def fresh_records() -> None:   # apply_owned scrubs in place, so every run needs its own records
        records[:] = [{"notes": note} for note in notes]

    def strip_all() -> None:
        apply = stripper.apply_owned
        for record in records:
            apply(record)

    for note in notes[:200]:   # warm-up: imports, regex and scanner caches
        find_pii(note)
    us = best_us({"baseline": lambda: [digits(note) for note in notes],
                  "scan": lambda: [find_pii(note) for note in notes],
                  "strip": strip_all,
                  "plain": lambda: [find_pii(PLAIN) for _ in notes]}, fresh_records)
    found = sum(1 for note in notes if find_pii(note))

    ratio = us["strip"] / us["baseline"]
    met = ratio <= TARGET
    print(f"pii benchmark: {NOTES} sample notes ({found} with PII), best of {REPEAT}")
    print(f"  baseline r'\\d' findall {us['baseline']:6.2f} us/note | "
          f"find_pii {us['scan']:6.2f} us/note = {us['scan'] / us['baseline']:4.2f}x | "
          f"apply_owned (1 scanned column) {us['strip']:6.2f} us/note = {ratio:4.2f}x "
          f"(target <= {TARGET}x: {'met' if met else 'MISSED'}) | text without digits {us['plain']:5.2f} us")
    return met


if __name__ == "__main__":
    raise SystemExit(0 if main() else 1)
