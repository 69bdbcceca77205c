"""The free-text scan in a second process: the same result as scanning here, whatever the child
does; a child that fails, stops or cannot start leaves the scan to this process, with a warning."""
from __future__ import annotations

import pytest

from samples.sample_api.data import customer
from shared.detect.detectors import Scanner
from shared.detect.scrub import text_scrubber
from shared.pii import scan_process as scan_process_module
from shared.pii.page_scan import PageScan
from shared.pii.scan_process import ScanProcess, ScanProcessError
from shared.pii.stripper import PiiStripper

KEY = b"k" * 32
TERMS = ("Project Falcon", "Yara")
ODD = ["", "no pii at all", "ünïcode naïve café, mail jürgen@example.de", "x" * 5000, "\x00\n\t", "+44 20 7946 0018"]


def corpus() -> list:
    return [customer(i)["notes"] for i in range(1, 301)] + ODD + [None, 17]


@pytest.mark.parametrize("mode", ["redact", "hash"])
def test_the_child_scans_exactly_as_this_process_does(mode):
    values = corpus()
    here = text_scrubber(Scanner(TERMS), mode, KEY)
    expected = [here(v) if isinstance(v, str) else v for v in values]
    process = ScanProcess(TERMS, KEY)
    try:
        process.send([(mode, values), (mode, values[:10])])
        first, second = process.receive()
        assert first and all(expected[position] == value for position, value in first)
        scanned = list(values)
        for position, value in first:
            scanned[position] = value
        assert scanned == expected
        assert second == [change for change in first if change[0] < 10]
        process.send([(mode, ["plain"])])   # the next page, on the same child
        assert process.receive() == [[]]
    finally:
        peak = process.close()
    assert isinstance(peak, int) and peak > 0


def test_a_failing_scan_is_reported_by_type_only():
    process = ScanProcess((), None)   # no key: the child has no "hash" scrubber
    try:
        process.send([("hash", ["mail jane@example.com"])])
        with pytest.raises(ScanProcessError, match=r"^the scan process failed \(KeyError\)$"):
            process.receive()
    finally:
        process.close()


def test_a_child_that_dies_is_an_error_not_a_hang():
    process = ScanProcess((), None)
    process._process.kill()
    process._process.wait()
    with pytest.raises(ScanProcessError, match=r"the scan process stopped \(exited with code -9\)"):
        process.send([("redact", ["a"] * 100_000)])
        process.receive()
    assert process.close() is None


def stripper() -> PiiStripper:
    from shared.config.models import ApiModel
    model = ApiModel(path="/x", columns={"id": {"type": "integer"}, "note": {"type": "text"}})
    return PiiStripper(model.columns, scan="redact", key=None)


def records(count: int) -> list[dict]:
    return [{"id": i, "note": f"write to p{i}@example.com"} for i in range(count)]


def test_page_scan_falls_back_to_this_process_when_the_child_dies():
    warnings: list[str] = []
    scan = PageScan(stripper(), warnings.append, "s.m")
    first, second = records(3), records(2)
    scan.start(first)
    scan.finish(first)
    scan.start(second)
    scan._process._process.kill()   # dies with the page in flight
    scan.finish(second)
    third = records(2)
    scan.start(third)               # no child any more: scanned here
    scan.finish(third)
    scan.close()
    assert [r["note"] for r in first + second + third] == ["write to [EMAIL]"] * 7
    assert len(warnings) == 1 and warnings[0].startswith("s.m: the scan process stopped")
    assert warnings[0].endswith("free text is scanned on the run's thread from here on")


def test_page_scan_scans_here_when_the_child_cannot_start(monkeypatch):
    monkeypatch.setattr(scan_process_module.sys, "executable", "/nonexistent/python")
    warnings: list[str] = []
    scan = PageScan(stripper(), warnings.append, "s.m")
    page = records(2)
    scan.start(page)
    scan.finish(page)
    scan.close()
    assert [r["note"] for r in page] == ["write to [EMAIL]"] * 2
    assert warnings == ["s.m: [Errno 2] No such file or directory: '/nonexistent/python'; "
                        "free text is scanned on the run's thread from here on"]


def test_only_plain_scanned_text_columns_go_to_the_child():
    from shared.config.models import ApiModel
    model = ApiModel(path="/x", columns={
        "note": {"type": "text"}, "title": {"type": "string", "pii_scan": "hash"},
        "off": {"type": "text", "pii_scan": "off"},
        "tags": {"type": "json"}, "mail": {"type": "string", "pii": "drop"}, "n": {"type": "integer"}})
    strip = PiiStripper(model.columns, scan="redact", key=KEY)
    assert strip.scanned_columns == (("note", "redact"), ("title", "hash"))
    record = {"note": "a@example.com", "title": "b@example.com", "off": "c@example.com", "tags": ["d@example.com"],
              "mail": "x", "n": 1}
    unscanned = strip.apply_owned_unscanned(dict(record))
    assert unscanned == {"note": "a@example.com", "title": "b@example.com", "off": "c@example.com",
                         "tags": ["[EMAIL]"], "n": 1}
