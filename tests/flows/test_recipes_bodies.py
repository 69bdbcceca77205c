"""The docs/recipes.md manifests of issue 14 §1-§2 (Stripe, Notion, Elasticsearch, GitHub GraphQL, Azure
DevOps) against their loopback emulations (`tests/helpers/recipe_apis.py`), exactly as documented: the
embedded run (`run_models`, as `main.py run`) and the queue chain (pumped in process) land the same
rows, every record arrives, and no page is asked for after the API said there is no more."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from shared.config.project import Project, load_project
from tests.helpers.flow import TEST_KEY
from tests.helpers.http_stub import StubServer
from tests.helpers.parity import chained, embedded
from tests.helpers.recipe_apis import ENV, RECIPES, Elasticsearch, Emulation, GitHubGraphQL
from tests.helpers.recipes import recipe_yaml

# heading -> (records, requests per run: pages the API has, no empty page after a "no more")
EXPECTED = {
    "Stripe": (250, 3),
    "Notion": (230, 3),
    "Elasticsearch": (120, 4),          # no "more" flag: the empty page is how a search_after ends
    "GitHub GraphQL": (130, 2),
    "Azure DevOps (header cursor)": (75, 2),
}


def recipe_project(folder: Path, heading: str, base_url: str, text: str | None = None) -> Project:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "connector_models.yml").write_text(text or recipe_yaml(heading, base_url))
    (folder / "settings.yml").write_text(yaml.safe_dump({"target_url": f"sqlite:///{folder / 'unused.db'}",
                                                        "storage": {"root": str(folder / "storage")}}))
    return load_project(folder, env={"KSPYDER_PII_KEY": TEST_KEY, **ENV})


def both_modes(tmp_path: Path, heading: str, api: Emulation, text: str | None = None):
    """(embedded, chained) results and the requests each made, against one emulation."""
    with StubServer(handler=api) as server:
        project = recipe_project(tmp_path / "manifests", heading, server.url(""), text)
        first = embedded(project, tmp_path / "embedded")
        calls = dict(api.calls)
        api.reset()
        second = chained(project, tmp_path / "chained")
        return project, (first, calls), (second, dict(api.calls))


@pytest.mark.parametrize("heading", list(EXPECTED))
def test_recipe_lands_the_same_rows_in_both_modes_without_an_extra_page(tmp_path, heading):
    (tmp_path / "embedded").mkdir()
    (tmp_path / "chained").mkdir()
    api = RECIPES[heading]()
    project, ((tables, warnings, errors), calls), ((chain_tables, chain_warnings, chain_errors), chain_calls) = \
        both_modes(tmp_path, heading, api)
    [model] = [ref.qualified for ref in project.models()]
    records, requests = EXPECTED[heading]
    assert errors == chain_errors == {model: None}
    assert warnings == chain_warnings == {model: []}
    assert len(tables[model]) == records
    assert chain_tables == tables
    assert sum(calls.values()) == sum(chain_calls.values()) == requests


def test_the_last_record_cursor_is_sent_back_as_a_list_in_the_body(tmp_path):
    (tmp_path / "embedded").mkdir()
    (tmp_path / "chained").mkdir()
    api = Elasticsearch()
    both_modes(tmp_path, "Elasticsearch", api)
    embedded_searches = api.searches[:4]
    assert [s.get("search_after") for s in embedded_searches] == [
        None, [api.docs[49]["ts"], "evt-00049"], [api.docs[99]["ts"], "evt-00099"], [api.docs[119]["ts"], "evt-00119"]]
    assert all(s["size"] == 50 and s["query"] == {"match_all": {}} for s in api.searches)
    assert api.searches[4:] == embedded_searches   # the chain asked exactly the same


def test_graphql_errors_fail_the_model_in_both_modes_with_scrubbed_messages(tmp_path):
    (tmp_path / "embedded").mkdir()
    (tmp_path / "chained").mkdir()
    text = recipe_yaml("GitHub GraphQL", "http://placeholder").replace(
        "variables: {owner: octo-org, name: octo-repo}", "variables: {owner: jane.doe@example.com, name: octo-repo}")
    api = GitHubGraphQL()
    with StubServer(handler=api) as server:
        project = recipe_project(tmp_path / "manifests", "GitHub GraphQL", server.url(""),
                                 text.replace("http://placeholder", server.url("")))
        (_, _, errors) = embedded(project, tmp_path / "embedded")
        (_, _, chain_errors) = chained(project, tmp_path / "chained")
    error = errors["github.issues"]
    assert error == chain_errors["github.issues"]
    assert "the GraphQL response has 1 error(s): Could not resolve to a Repository with the name" in error
    assert "jane.doe" not in error and "[EMAIL]" in error


def test_the_notion_query_body_carries_the_cursor_and_never_rides_in_a_queue_message(tmp_path, harness_for):
    api = RECIPES["Notion"]()
    with StubServer(handler=api) as server:
        project = recipe_project(tmp_path / "manifests", "Notion", server.url(""))
        harness = harness_for(project)
        harness.run()
        bodies = [json.loads(s.body) for s in server.seen()]
    assert [b.get("start_cursor") for b in bodies] == [None, "00000000-0000-4000-8000-000000000100",
                                                       "00000000-0000-4000-8000-000000000200"]
    assert all(b["page_size"] == 100 and b["sorts"] == [{"timestamp": "created_time", "direction": "ascending"}]
               for b in bodies)
    messages = json.dumps([body for _, body, _ in harness.queues.sent])
    assert "00000000-0000-4000-8000-000000000100" not in messages and "created_time" not in messages
