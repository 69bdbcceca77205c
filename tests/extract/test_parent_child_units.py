"""Parent-child models over bare objects: the template function, the included columns, the walk's
saved state (read back from storage, so checked) and what a chain start may hold."""
from __future__ import annotations

import json
from typing import Any

import pytest

from shared.chain.messages import MessageError, check_start
from shared.config.parents import ITEM_KEY, PARENT_KEY, for_each_items, with_parent_columns
from shared.config.project import Project
from shared.config.templates import TemplateValueError, parse, placeholders, substitute
from shared.extract.api import model_url
from shared.extract.parent_walk import ParentRecord, Scope, WalkStep
from shared.extract.types import PageRequest, PageResponse
from tests.helpers.flow import project_for


# ---------------------------------------------------------------- templates
def test_placeholders_name_their_depth_and_field():
    found = list(placeholders("/repos/{parent.owner.login}/{parent.parent.id}/{item}/{parent.item}"))
    assert [(p.depth, p.field) for p in found] == [(1, "owner.login"), (2, "id"), (0, "item"), (1, "item")]
    assert [p.is_item for p in found] == [False, False, True, True]


def test_other_braces_are_left_alone():
    text = '{"filter": "{x}"} and {parent} and {parents.id}'
    assert list(placeholders(text)) == []
    assert substitute(text, lambda p: pytest.fail("no placeholder here")) == text


def test_substitute_encodes_each_value_and_spells_booleans_as_json():
    values = {"name": "a b/c", "open": True, "n": 7}
    quoted = substitute("/r/{parent.name}/{parent.open}/{parent.n}", lambda p: values[p.field],
                        lambda text: text.replace("/", "%2F").replace(" ", "%20"))
    assert quoted == "/r/a%20b%2Fc/true/7"


@pytest.mark.parametrize("value, message", [(None, "placeholder {parent.x} has no value"),
                                            ({"a": 1}, "placeholder {parent.x} has a dict, not a scalar")])
def test_a_missing_or_structured_value_names_the_placeholder_only(value, message):
    with pytest.raises(TemplateValueError) as info:
        substitute("/r/{parent.x}", lambda p: value)
    assert str(info.value) == message


def test_parse_of_a_grandparents_item():
    placeholder = parse("parent.parent.item")
    assert (placeholder.depth, placeholder.is_item, placeholder.text) == (2, True, "{parent.parent.item}")


# ---------------------------------------------------------------- config helpers
def test_for_each_text_is_split_on_commas_and_trimmed(tmp_path):
    project = project_for(tmp_path, {"s": {"type": "api", "base_url": "http://127.0.0.1:1", "models": {
        "m": {"for_each": "${ACCOUNTS}", "path": "/a/{item}", "columns": {"id": {"type": "integer"}}}}}},
        env={"ACCOUNTS": " a1, a2 ,,a3 "})
    assert for_each_items(project.sources["s"].models["m"]) == ["a1", "a2", "a3"]


def test_included_parent_fields_become_columns_ruled_like_the_parents():
    data = {"sources": {"s": {"type": "api", "models": {
        "p": {"columns": {"id": {"type": "integer"}, "email": {"type": "string", "pii": "hash", "path": "e.mail"}}},
        "c": {"parent": "p", "include_from_parent": ["id", "email"], "columns": {"x": {"type": "integer"}}},
        "g": {"parent": "c", "include_from_parent": ["p_email"], "columns": {"y": {"type": "integer"}}},
        "r": {"for_each": ["eu"], "for_each_column": "region", "columns": {"z": {"type": "integer"}}}}}}}
    models = with_parent_columns(data)["sources"]["s"]["models"]
    assert models["c"]["columns"] == {"x": {"type": "integer"},
                                      "p_id": {"type": "integer", "path": f"{PARENT_KEY}.id"},
                                      "p_email": {"type": "string", "pii": "hash", "path": f"{PARENT_KEY}.email"}}
    assert models["g"]["columns"]["c_p_email"] == {"type": "string", "pii": "hash", "path": f"{PARENT_KEY}.p_email"}
    assert models["r"]["columns"]["region"] == {"type": "string", "path": ITEM_KEY}
    assert data["sources"]["s"]["models"]["c"]["columns"] == {"x": {"type": "integer"}}   # not changed in place


# ---------------------------------------------------------------- the walk's saved state
class FakeClient:
    """Answers each request from a table keyed by path; counts nothing, waits for nothing."""

    def __init__(self, bodies: dict[str, Any]):
        self.bodies = bodies
        self.seen: list[str] = []
        self.requests: list[PageRequest] = []

    def fetch(self, request: PageRequest, rules: object = None) -> PageResponse:   # rules: as HttpClient.fetch
        path = request.url.split("127.0.0.1:1", 1)[1]
        self.seen.append(path)
        self.requests.append(request)
        body = self.bodies[path]
        return PageResponse(request.url, 200, {}, body=body, content=json.dumps(body).encode())


def family(tmp_path) -> Project:
    return project_for(tmp_path, {"gh": {"type": "api", "base_url": "http://127.0.0.1:1", "models": {
        "orgs": {"path": "/orgs", "primary_key": ["login"], "columns": {"login": {"type": "string"}}},
        "repos": {"parent": "orgs", "path": "/orgs/{parent.login}/repos", "primary_key": ["id"],
                  "columns": {"id": {"type": "integer"}, "name": {"type": "string"},
                              "secret": {"type": "string", "pii": "drop"}}},
        "issues": {"parent": "repos", "path": "/repos/{parent.parent.login}/{parent.name}/issues",
                   "params": {"tag": "{parent.secret}", "per_page": 5}, "headers": {"X-Repo": "r-{parent.id}"},
                   "include_from_parent": ["id"],
                   "primary_key": ["id"], "columns": {"id": {"type": "integer"}}}}}})


BODIES = {"/orgs": [{"login": "acme"}, {"login": "zen"}],
          "/orgs/acme/repos": [{"id": 1, "name": "a/1", "secret": "s1"}, {"id": 2, "name": "b", "secret": "s2"}],
          "/orgs/zen/repos": [],
          "/repos/acme/a%2F1/issues": [{"id": 10}], "/repos/acme/b/issues": [{"id": 20}, {"id": 21}]}


def walk_of(tmp_path, client: Any) -> WalkStep:
    project = family(tmp_path)
    return WalkStep("gh", project.sources["gh"], "issues", client, model_url)


def test_a_grandchild_walk_reads_values_before_stripping_and_quotes_them_in_the_path(tmp_path):
    client = FakeClient(BODIES)
    walk = walk_of(tmp_path, client)
    at = walk.start()
    scopes = walk.next_scopes(at)
    assert [s.label() for s in scopes] == ["repos 1 of orgs acme", "repos 2 of orgs acme"]
    assert scopes[0].parent is not None and scopes[0].parent.values == {"name": "a/1", "secret": "s1", "id": 1}
    lanes = [walk.lane(s) for s in scopes]
    assert [lane.records for lane in lanes] == [[{"id": 10, PARENT_KEY: {"id": 1}}],   # what it includes only
                                                [{"id": 20, PARENT_KEY: {"id": 2}}, {"id": 21, PARENT_KEY: {"id": 2}}]]
    assert walk.next_scopes(at) == [] and at.done   # zen has no repos
    assert client.seen == ["/orgs", "/orgs/acme/repos", "/repos/acme/a%2F1/issues", "/repos/acme/b/issues",
                           "/orgs/zen/repos"]
    assert scopes[1].identity() == (("orgs", ("acme",)), ("repos", (2,)))
    issue_requests = [r for r in client.requests if r.url.endswith("/issues")]
    assert [(r.params, r.headers) for r in issue_requests] == [
        ({"tag": "s1", "per_page": 5}, {"X-Repo": "r-1"}), ({"tag": "s2", "per_page": 5}, {"X-Repo": "r-2"})]


def test_a_saved_walk_takes_up_where_it_stopped(tmp_path):
    client = FakeClient(BODIES)
    walk = walk_of(tmp_path, client)
    at = walk.start()
    first = walk.next_scopes(at)
    state = json.loads(json.dumps(at.state()))
    again = walk_of(tmp_path, client)
    resumed = again.resume(state)
    assert again.next_scopes(resumed) == [] and resumed.done
    assert [again.checked_scope(json.loads(json.dumps(s.to_json()))) for s in first] == first


@pytest.mark.parametrize("broken", [
    {"type": "walk", "v": 2, "frames": [], "skipped": []},
    {"type": "walk", "v": 1, "frames": [], "skipped": []},
    {"type": "walk", "v": 1, "frames": [{"level": 5, "scope": {}, "position": None, "pending": [],
                                         "exhausted": False, "seen": 0}], "skipped": []},
    {"type": "walk", "v": 1, "frames": [{"level": 0, "scope": {}, "position": None, "pending": [{"model": "x"}],
                                         "exhausted": False, "seen": 0}], "skipped": []},
    {"type": "walk", "v": 1, "frames": [{"level": 0, "scope": {}, "position": None, "pending": [],
                                         "exhausted": False, "seen": -1}], "skipped": []},
])
def test_a_walk_state_it_cannot_have_written_is_refused(tmp_path, broken):
    with pytest.raises(ValueError):
        walk_of(tmp_path, FakeClient(BODIES)).resume(broken)


def test_a_lane_scope_of_another_depth_is_refused(tmp_path):
    walk = walk_of(tmp_path, FakeClient(BODIES))
    shallow = Scope(parent=ParentRecord("repos", 0, {}, [1], True))
    with pytest.raises(ValueError):
        walk.checked_scope(shallow.to_json())


def test_a_chain_start_holds_a_walk_or_a_lane_as_an_object():
    assert check_start({"walk": {"type": "walk"}}) == {"walk": {"type": "walk"}}
    assert check_start({"lane": {"parent": {}}}) == {"lane": {"parent": {}}}
    with pytest.raises(MessageError, match="expected a stored walk"):
        check_start({"lane": ["x"]})


def test_a_document_model_without_columns_still_declares_what_it_includes():
    data = {"sources": {"s": {"type": "api", "store": "mongo", "models": {
        "p": {"columns": {"email": {"type": "string", "pii": "hash"}}},
        "c": {"parent": "p", "include_from_parent": ["email"]}}}}}
    columns = with_parent_columns(data)["sources"]["s"]["models"]["c"]["columns"]
    assert columns == {"p_email": {"type": "string", "pii": "hash", "path": f"{PARENT_KEY}.email"}}
