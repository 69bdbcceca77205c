"""How a child model's parents name their partition of `_kspyder_state` (`extract/parent_state.py`):
top-down keys, a for_each item by its value, ruled keys hashed, long names digested."""
from __future__ import annotations

import json

from shared.config.models import ApiModel, ApiSource
from shared.detect.digest import keyed_hash
from shared.extract.api import model_url, new_client
from shared.extract.cursor import read_cursor
from shared.extract.parent_state import PARTITION_LENGTH, Partitions
from shared.extract.parent_walk import ParentRecord, Scope, WalkStep
from shared.extract.partition_cursor import PartitionCursor, partition_cursors
from tests.helpers.flow import TEST_KEY, project_for


def walk_of(tmp_path, models: dict, name: str) -> WalkStep:
    project = project_for(tmp_path, {"src": {"type": "api", "base_url": "http://127.0.0.1:1", "models": models}})
    source = project.sources["src"]
    assert isinstance(source, ApiSource) and isinstance(source.models[name], ApiModel)
    return WalkStep("src", source, name, new_client("src", source), model_url)   # no request is made


INCREMENTAL = {"cursor_path": "updated_at", "param": "since"}


def test_a_for_each_item_is_named_by_its_value(tmp_path):
    walk = walk_of(tmp_path, {"things": {"path": "/regions/{item}/things", "for_each": ["eu", "us"],
                                         "primary_key": ["id"], "columns": {"id": {"type": "integer"}},
                                         "incremental": INCREMENTAL}}, "things")
    partitions = Partitions(walk, TEST_KEY)
    assert partitions.of(Scope(item_index=1)) == '[["item","us"]]'


def test_a_grandchild_is_named_top_down_and_a_ruled_key_by_its_hash(tmp_path):
    models = {"orgs": {"path": "/orgs", "primary_key": ["login"],
                       "columns": {"login": {"type": "string", "pii": "hash"}}},
              "repos": {"parent": "orgs", "path": "/orgs/{parent.login}/repos", "primary_key": ["id"],
                        "columns": {"id": {"type": "integer"}, "name": {"type": "string"}}},
              "issues": {"parent": "repos", "path": "/repos/{parent.parent.login}/{parent.name}/issues",
                         "primary_key": ["id"], "columns": {"id": {"type": "integer"}}, "incremental": INCREMENTAL}}
    walk = walk_of(tmp_path, models, "issues")
    org = ParentRecord("orgs", 0, {"login": "jane-doe"}, ["jane-doe"], False)
    repo = ParentRecord("repos", 3, {"name": "app"}, [7], True, Scope(parent=org))
    named = Partitions(walk, TEST_KEY).of(Scope(parent=repo))
    assert json.loads(named) == [["orgs", [keyed_hash(TEST_KEY.encode(), "jane-doe")]], ["repos", [7]]]
    assert "jane-doe" not in named


def test_a_long_name_is_digested_to_fit_the_column(tmp_path):
    models = {"repos": {"path": "/repos", "primary_key": ["name"], "columns": {"name": {"type": "text"}}},
              "issues": {"parent": "repos", "path": "/repos/{parent.name}/issues", "primary_key": ["id"],
                         "columns": {"id": {"type": "integer"}}, "incremental": INCREMENTAL}}
    walk = walk_of(tmp_path, models, "issues")
    long_name = "x" * 300
    named = Partitions(walk, None).of(Scope(parent=ParentRecord("repos", 0, {"name": long_name}, [long_name], True)))
    assert named.startswith("sha256:") and len(named) <= PARTITION_LENGTH


def test_each_partition_commits_its_highest_cursor():
    early, late = read_cursor("2024-01-01T00:00:00Z", None, "t"), read_cursor("2024-02-01T00:00:00Z", None, "t")
    assert early is not None and late is not None
    found = partition_cursors([PartitionCursor("a", late), None, PartitionCursor("a", early),
                               PartitionCursor("b", early), early])
    assert found == {"a": late, "b": early}
