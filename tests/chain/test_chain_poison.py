"""Poisoned messages: listed by identifiers, replayed onto their queue (one run or all)."""
from __future__ import annotations

import pytest
from click.testing import CliRunner

from cli.main import cli
from shared.chain.names import FETCH, FETCH_POISON, LOAD
from shared.chain.poison import PoisonError, list_poison, replay, step_queue
from shared.storage.queues import LocalQueueStore


def job(run_id: str, index: int) -> dict:
    return {"kind": "PageJob", "v": 1, "run_id": run_id, "model": "shop.customers", "index": index, "token": "t"}


@pytest.mark.parametrize("name", ["fetch", "kspyder-fetch", "kspyder-fetch-poison"])
def test_queue_names_are_forgiving(name):
    assert step_queue(name) == FETCH


def test_unknown_queue_lists_the_valid_ones():
    with pytest.raises(PoisonError, match="unknown queue 'fetchh' \\(one of: paginate, fetch, load, transform\\)"):
        step_queue("fetchh")


def test_list_then_replay_one_run(tmp_path):
    queues = LocalQueueStore(tmp_path)
    for index, run_id in enumerate(["run-a", "run-b", "run-a"]):
        queues.send(FETCH_POISON, job(run_id, index))
    entries = list_poison(queues, "fetch")
    assert sorted((e.run_id, e.index) for e in entries) == [("run-a", 0), ("run-a", 2), ("run-b", 1)]
    assert entries[0].describe().split() == ["PageJob", "run", "run-a", "shop.customers", "page", "0"]
    assert replay(queues, "fetch", run_id="run-a") == 2
    moved = queues.receive(FETCH, 10)
    assert sorted(m.body["index"] for m in moved) == [0, 2] and all(m.body["token"] == "t" for m in moved)
    assert queues.receive(LOAD, 10) == []


def test_cli_on_azurite(azurite, monkeypatch):
    from shared.storage.queues import AzureQueueStore

    monkeypatch.setenv("AzureWebJobsStorage", azurite.connection_string)
    queues = AzureQueueStore.from_connection_string(azurite.connection_string)
    queues.send(FETCH_POISON, job("run-cli", 7))
    runner = CliRunner()
    listed = runner.invoke(cli, ["poison", "list", "fetch"])
    assert listed.exit_code == 0 and "run run-cli" in listed.stdout and "shop.customers page 7" in listed.stdout
    replayed = runner.invoke(cli, ["poison", "replay", "fetch", "--run", "run-cli"])
    assert replayed.exit_code == 0, replayed.output
    assert replayed.stdout.strip() == "replayed 1 message onto fetch"
    back = [m for m in queues.receive(FETCH, 32, 5) if m.body.get("run_id") == "run-cli"]
    assert [m.body["index"] for m in back] == [7]
    for message in back:
        queues.delete(FETCH, message)


def test_cli_without_storage_settings_says_what_to_set(monkeypatch):
    for name in [k for k in __import__("os").environ if k.startswith("AzureWebJobsStorage")]:
        monkeypatch.delenv(name)
    result = CliRunner().invoke(cli, ["poison", "list", "fetch"])
    assert result.exit_code == 1 and "set AzureWebJobsStorage" in result.stderr
