"""Issue 12 §4: PII planted in every path an error takes (an API's error body, a next link's query,
a raw key in a conversion error, a body whose top-level keys are data, a source database's error
line) never reaches stderr (`main.py -vv run`), the run ledger files, the status API
(`Chain.run_status`), poison messages or the chain's log."""
from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import yaml

from shared.chain import sealed
from shared.chain.names import POISON_QUEUES, RAW
from shared.chain.poison import list_poison
from tests.helpers.chain import Harness
from tests.helpers.flow import TEST_KEY, project_for
from tests.helpers.http_stub import Reply, Seen, StubServer
from tests.helpers.paths import ROOT

PLANTED = ["jane.doe@example.com", "DE89370400440532013000", "DE89 3704 0044 0532 0130 00", "+44 20 7946 0958",
           "4111 1111 1111 1111", "4111111111111111", "planted@example.org", "person@example.net",
           "key.holder@example.com"]
TEXT = ("customer jane.doe@example.com (IBAN DE89 3704 0044 0532 0130 00, card 4111 1111 1111 1111, "
        "phone +44 20 7946 0958) is not allowed")


def handler(seen: Seen) -> Reply:
    path = seen.path
    if path == "/refused":
        return Reply(400, {"message": TEXT})
    if path == "/broken":
        return Reply(500, {"error": {"message": TEXT}})
    if path == "/linked":
        if "email" in seen.query:   # the next link, carrying PII in its query
            return Reply(422, {"detail": "unknown planted@example.org"})
        return Reply(200, {"items": [{"id": 1}], "next": "/linked?email=planted@example.org&page=2"})
    if path == "/badvalue":
        return Reply(200, {"items": [{"ref": "person@example.net", "n": "DE89370400440532013000"}]})
    if path == "/datakeys":
        return Reply(200, {"key.holder@example.com": [{"id": 1}]})
    return Reply(404, {"message": TEXT})


def sources(base_url: str, pg_url: str) -> dict:
    fast = {"backoff": 0.01, "max_backoff": 0.02, "max_retries": 1}
    return {
        "shop": {"type": "api", "base_url": base_url, "throttle": fast, "models": {
            "refused": {"path": "/refused", "records": "items", "primary_key": ["id"],
                        "columns": {"id": {"type": "integer"}}},
            "broken": {"path": "/broken", "records": "items", "primary_key": ["id"],
                       "columns": {"id": {"type": "integer"}}},
            "linked": {"path": "/linked", "records": "items", "primary_key": ["id"],
                       "columns": {"id": {"type": "integer"}},
                       "pagination": {"type": "next_link", "next_path": "next"}},
            "badvalue": {"path": "/badvalue", "records": "items", "primary_key": ["ref"],
                         "columns": {"ref": {"type": "string"}, "n": {"type": "integer"}}},
            "datakeys": {"path": "/datakeys", "records": "items", "primary_key": ["id"],
                         "columns": {"id": {"type": "integer"}}},
        }},
        "erp": {"type": "sql", "url": pg_url, "models": {
            "quoting": {"query": "SELECT CAST('jane.doe@example.com' AS integer) AS id",
                        "columns": {"id": {"type": "integer"}}},
        }},
    }


def leaks(text: str) -> list[str]:
    return [p for p in PLANTED if p in text]


def all_files(folder: Path) -> str:
    return "\n".join(p.read_text(errors="replace") for p in folder.rglob("*") if p.is_file())


def test_embedded_run_keeps_planted_pii_out_of_stderr_and_the_ledger(tmp_path, postgres_url):
    with StubServer(handler=handler) as server:
        folder = tmp_path / "manifests"
        folder.mkdir()
        declared = sources(server.url("").rstrip("/"), postgres_url)
        (folder / "connector_models.yml").write_text(yaml.safe_dump({"sources": declared}))
        storage = tmp_path / "storage"
        (folder / "settings.yml").write_text(yaml.safe_dump({
            "target_url": f"sqlite:///{tmp_path / 'target.db'}", "storage": {"root": str(storage)},
            "pii": {"scan_process": False}}))
        env = {**os.environ, "KSPYDER_PII_KEY": TEST_KEY}
        done = subprocess.run([sys.executable, "main.py", "--manifests", str(folder), "-vv", "run", "--apply"],
                              cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
        status = subprocess.run([sys.executable, "main.py", "--manifests", str(folder), "status"],
                                cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    stderr = done.stderr + done.stdout
    for model in ("shop.refused", "shop.broken", "shop.linked", "shop.badvalue", "shop.datakeys", "erp.quoting"):
        assert f"{model}: FAILED" in stderr, (model, stderr[-3000:])
    assert "HTTP 400" in stderr and "/linked?email=…&page=…" in stderr and "record #0" in stderr
    assert leaks(stderr) == [], stderr[-3000:]
    ledger = all_files(storage)
    assert "shop.badvalue" in ledger and leaks(ledger) == []
    assert leaks(status.stdout + status.stderr) == []


def test_chain_keeps_planted_pii_out_of_status_poison_and_log(tmp_path, postgres_url, caplog):
    with StubServer(handler=handler) as server:
        project = project_for(tmp_path, sources(server.url("").rstrip("/"), postgres_url))
        harness = Harness(tmp_path, project)
        try:
            with caplog.at_level(logging.DEBUG):
                run_id = harness.run(max_dequeue_count=2)
            status = harness.status(run_id)
        finally:
            harness.engine.dispose()
    text = json.dumps(status, default=str)
    assert "errors" in text and leaks(text) == [], text
    poisoned = [body for queue in POISON_QUEUES for body in harness.queues.inner.peek(queue, 32)]
    # whole bodies: the page after a next link names its start blob by digest, never the link
    assert any(b.get("model") == "shop.linked" and b.get("start") for b in poisoned), poisoned
    assert poisoned and leaks(json.dumps(poisoned)) == [], poisoned
    listing = [entry.describe() for queue in POISON_QUEUES for entry in list_poison(harness.queues.inner, queue)]
    assert len(listing) == len(poisoned) and leaks("\n".join(listing)) == []
    assert leaks(caplog.text) == [], caplog.text[-3000:]
    # The next link as the API gave it (what the page's job, or a replay, fetches with) waits in a start
    # blob sealed with the PII key's derived key: readable nowhere in storage, yet it opens.
    blobs = tmp_path / "blobs"
    starts = [p for p in blobs.rglob("*") if p.is_file() and p.relative_to(blobs).parts[:2] == (RAW, "starts")]
    assert starts and all(p.read_bytes().startswith(sealed.MARK) for p in starts)
    opened = "\n".join(sealed.unseal(p.read_bytes(), TEST_KEY).decode() for p in starts)
    assert leaks(opened) == ["planted@example.org"]
    everything = [p for p in blobs.rglob("*") if p.is_file()]
    assert leaks("\n".join(p.read_text(errors="replace") for p in everything)) == []
