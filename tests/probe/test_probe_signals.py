"""`probe` against loopback emulations of documented APIs (tests/helpers/recipe_apis.py, tests/helpers/probe_apis.py)
whose paging needs the newer signals: a last-record cursor with a `has_more` flag (Stripe), a POST
with its cursor in the JSON body (Notion), a list cursor in the body (Elasticsearch), a cursor in a
response header (Azure DevOps), and a `parent:` model proposed from two URLs (GitHub REST). Each
drafted manifest loads as printed and lands every record in the embedded run and the queue chain."""
from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
import yaml

from shared.config.project import Project, load_project
from tests.helpers.flow import TEST_KEY
from tests.helpers.http_stub import StubServer
from tests.helpers.parity import chained, embedded
from tests.helpers.probe import run_probe
from tests.helpers.probe_apis import GitHubRest, JiraSearch
from tests.helpers.recipe_apis import ENV, AzureDevOps, Elasticsearch, Emulation, Notion, Stripe

ADO_AUTH = "Basic " + base64.b64encode(f":{ENV['AZURE_DEVOPS_PAT']}".encode()).decode()
ES_QUERY = {"size": 50, "query": {"match_all": {}}, "sort": [{"@timestamp": "asc"}, {"event.id": "asc"}]}


def drafted(tmp_path: Path, text: str, env: dict[str, str]) -> Project:
    folder = tmp_path / "manifests"
    folder.mkdir()
    (folder / "connector_models.yml").write_text(text)
    (folder / "settings.yml").write_text(yaml.safe_dump({"target_url": f"sqlite:///{tmp_path / 'unused.db'}",
                                                        "storage": {"root": str(tmp_path / "storage")}}))
    return load_project(folder, env={"KSPYDER_PII_KEY": TEST_KEY, **env})


def probe_and_run(tmp_path: Path, api: Emulation, path: str, *args: str, env: dict[str, str] | None = None):
    """The probe's stdout and stderr, the drafted model, and the rows it lands in both modes."""
    with StubServer(handler=api) as server:
        result = run_probe(server.url(path), "--source", "probed", *args)
        assert result.exit_code == 0, result.output
        project = drafted(tmp_path, result.stdout, env or {})
        [ref] = project.models()
        (tmp_path / "embedded").mkdir()
        (tmp_path / "chained").mkdir()
        api.reset()
        tables, _, errors = embedded(project, tmp_path / "embedded")
        chain_tables, _, chain_errors = chained(project, tmp_path / "chained")
    assert errors == chain_errors == {ref.qualified: None}
    assert chain_tables == tables
    return result, ref.model, project.sources["probed"].pagination_for(ref.model), tables[ref.qualified]


def test_last_record_cursor_and_has_more_flag_stripe(tmp_path):
    api = Stripe()
    result, model, pagination, rows = probe_and_run(
        tmp_path, api, "/v1/customers?limit=100", "--bearer", ENV["STRIPE_SECRET_KEY"],
        env={"PROBED_TOKEN": ENV["STRIPE_SECRET_KEY"]})
    assert pagination.model_dump(exclude_defaults=True) == {
        "type": "cursor", "cursor_path": "data.-1.id", "param": "starting_after", "has_more_path": "has_more"}
    assert model.params == {"limit": 100}
    assert len(rows) == 250
    assert api.calls == {"/v1/customers": 6}    # 3 pages in each mode: no empty page after has_more: false
    assert "the last record's 'id', accepted back as ?starting_after=" in result.stderr
    assert "'has_more' says whether more pages follow" in result.stderr
    printed = result.stdout + result.stderr
    assert not [c for c in api.customers if c["id"] in printed or c["email"] in printed]   # the cursor's too


def test_post_with_a_json_body_pages_in_the_body_notion(tmp_path):
    api = Notion()
    body = json.dumps({"page_size": 100})
    result, model, pagination, rows = probe_and_run(
        tmp_path, api, f"/v1/databases/{ENV['NOTION_DATABASE_ID']}/query", "--method", "post", "--json", body,
        "--bearer", ENV["NOTION_TOKEN"], "--header", "Notion-Version: 2022-06-28",
        env={"PROBED_TOKEN": ENV["NOTION_TOKEN"]})
    assert pagination.model_dump(exclude_defaults=True, by_alias=True) == {
        "type": "cursor", "cursor_path": "next_cursor", "param": "start_cursor", "in": "body",
        "has_more_path": "has_more"}
    assert (model.http_method, model.json_body, model.records) == ("POST", {"page_size": 100}, "results")
    assert len(rows) == 230
    assert "method: POST" in result.stdout and "add idempotent: true" in result.stdout
    assert "    pagination: {type: cursor, cursor_path: next_cursor, param: start_cursor, in: body, has_more_path: " \
           "has_more}  # " in result.stdout   # as docs/manifest-reference.md shows it
    assert "probe: POST " in result.stderr and "accepted back as 'start_cursor' in the body" in result.stderr


def test_list_cursor_from_the_last_hit_in_the_body_elasticsearch(tmp_path):
    api = Elasticsearch()
    _, model, pagination, rows = probe_and_run(
        tmp_path, api, "/logs-app/_search", "--method", "POST", "--json", json.dumps(ES_QUERY),
        "--header", f"Authorization: ApiKey {ENV['ES_API_KEY']}",
        env={"PROBED_AUTHORIZATION": f"ApiKey {ENV['ES_API_KEY']}"})
    assert pagination.model_dump(exclude_defaults=True, by_alias=True) == {
        "type": "cursor", "cursor_path": "hits.hits.-1.sort", "param": "search_after", "in": "body"}
    assert model.json_body == ES_QUERY and model.records == "hits.hits"
    assert len(rows) == 120
    assert [s.get("search_after") for s in api.searches[-4:]] == [   # the chain's, as the embedded run's
        None, [api.docs[49]["ts"], "evt-00049"], [api.docs[99]["ts"], "evt-00099"], [api.docs[119]["ts"], "evt-00119"]]


def test_cursor_in_a_response_header_azure_devops(tmp_path):
    api = AzureDevOps()
    result, model, pagination, rows = probe_and_run(
        tmp_path, api, "/fabrikam/_apis/projects?api-version=7.1&$top=25", "--header", f"Authorization: {ADO_AUTH}",
        env={"PROBED_AUTHORIZATION": ADO_AUTH})
    assert pagination.model_dump(exclude_defaults=True) == {
        "type": "header_cursor", "header": "x-ms-continuationtoken", "param": "continuationToken"}
    assert model.params == {"api-version": "7.1", "$top": 25}
    assert len(rows) == 75
    assert "a cursor in the x-ms-continuationtoken header, accepted back as ?continuationToken=" in result.stderr


def test_offset_paging_in_a_post_body_jira(tmp_path):
    body = {"jql": "project = KAN ORDER BY created", "startAt": 0, "maxResults": 50}
    _, model, pagination, rows = probe_and_run(
        tmp_path, JiraSearch(), "/rest/api/3/search", "--method", "POST", "--json", json.dumps(body),
        "--header", f"Authorization: {JiraSearch.AUTH}", env={"PROBED_AUTHORIZATION": JiraSearch.AUTH})
    assert pagination.model_dump(exclude_defaults=True, by_alias=True) == {
        "type": "offset", "offset_param": "startAt", "limit_param": "maxResults", "limit": 50, "in": "body",
        "total_path": "total"}
    assert model.json_body == {"jql": "project = KAN ORDER BY created"}   # the paging fields are the paginator's
    assert len(rows) == 130


# ---------------------------------------------------------------- parent models
PARENT_DRAFT = """\
      repos:
        path: /orgs/acme/repos
        pagination: {type: link_header}"""
CHILD_DRAFT = """\
      issues:
        parent: repos                                     # its path takes owner_login, name from each repos record
        path: /repos/{parent.owner_login}/{parent.name}/issues
        pagination: {type: link_header}                   # a Link header with rel="next"
        params: {per_page: 4}
        include_from_parent: [id]                         # stored as repos_id: joins each row to its parent
        primary_key: [repos_id, id]                       # the children of one repos record were seen: unique \
within a parent"""


def test_parents_proposes_a_child_model_whose_path_takes_parent_fields(tmp_path):
    api = GitHubRest()
    with StubServer(handler=api) as server:
        result = run_probe(server.url("/orgs/acme/repos?per_page=3"),
                           server.url("/repos/acme/gizmos/issues?per_page=4"), "--source", "github", "--parents")
        assert result.exit_code == 0, result.output
        project = drafted(tmp_path, result.stdout, {})
        (tmp_path / "embedded").mkdir()
        (tmp_path / "chained").mkdir()
        tables, _, errors = embedded(project, tmp_path / "embedded")
        chain_tables, _, chain_errors = chained(project, tmp_path / "chained")
    assert errors == chain_errors == {"github.repos": None, "github.issues": None}
    assert chain_tables == tables
    assert len(tables["github.repos"]) == len(api.repos)
    assert len(tables["github.issues"]) == sum(len(issues) for issues in api.issues.values())   # every repo's
    assert PARENT_DRAFT in result.stdout and CHILD_DRAFT in result.stdout
    assert "probe: parent repos: the path takes owner_login, name from its records (checked with a second record)" \
        in result.stderr
    manifest = yaml.safe_load(result.stdout)["sources"]["github"]
    assert manifest["models"]["repos"]["columns"]["owner_login"] == {"type": "string", "path": "owner.login",
                                                                     "length": 50}
    assert manifest["models"]["repos"]["params"] == {"per_page": 3}
    assert "pagination" not in manifest and "parent" not in manifest["models"]["repos"]
    assert "repos_id" in project.sources["github"].models["issues"].columns


def test_a_coincidental_segment_is_not_proposed_once_another_record_fails(tmp_path):
    with StubServer(handler=GitHubRest()) as server:
        result = run_probe(server.url("/orgs/acme/repos"), server.url("/orgs/acme/teams/widgets/members"),
                           "--source", "github", "--parents")
    assert result.exit_code == 0, result.output
    assert "parent:" not in result.stdout and "path: /orgs/acme/teams/widgets/members" in result.stdout
    assert ("probe: parent repos.owner_login, repos.name not proposed: the path made from another repos record "
            f"failed: GET http://127.0.0.1:{server.port}/orgs/{{parent.owner_login}}/teams/{{parent.name}}/members "
            "failed: HTTP 404") in result.stderr
    assert "gadgets" not in result.stdout + result.stderr   # a value of the second record, never printed


def test_several_urls_without_parents_make_one_source(tmp_path):
    with StubServer(handler=GitHubRest()) as server:
        result = run_probe(server.url("/orgs/acme/repos"), server.url("/repos/acme/gizmos/issues"))
        assert result.exit_code == 0, result.output
        project = drafted(tmp_path, result.stdout, {})
    assert list(project.sources["api"].models) == ["repos", "issues"]
    assert project.sources["api"].models["issues"].path == "/repos/acme/gizmos/issues"
    assert "parent:" not in result.stdout


@pytest.mark.parametrize("args, message", [
    (["--parents"], "--parents looks for a parent among several URLs: give two or more"),
    (["--json", "[1]", "--method", "POST"], "--json must be a JSON object, not a list"),
    (["--json", "{oops", "--method", "POST"], "--json is not valid JSON (line 1, column 2)"),
    (["--json", "{}"], "--json: a GET request has no body: add --method POST (or PUT)"),
])
def test_bad_option_combinations_are_usage_errors(args, message):
    result = run_probe("http://127.0.0.1:9/v1/x", *args)
    assert result.exit_code == 2 and message in result.output


def test_one_url_options_are_refused_with_several():
    result = run_probe("http://127.0.0.1:9/a", "http://127.0.0.1:9/b", "--model", "m")
    assert result.exit_code == 2 and "--model only applies to one URL" in result.output
    result = run_probe("sqlite:///x.db", "http://127.0.0.1:9/b")
    assert result.exit_code == 2 and "a database URL is probed on its own" in result.output
