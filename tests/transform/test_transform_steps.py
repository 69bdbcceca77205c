"""Every step on its own: results, empty frames, nulls, duplicate join keys, type mismatches."""
from __future__ import annotations

import pandas as pd
import pytest
from pydantic import ValidationError

from shared.transform.steps import CHUNK_SAFE, STEPS, Context, StepError


def step(name: str, raw):
    cls = STEPS[name]
    return cls(cls.Arguments.model_validate(cls.shorthand(raw)))


def run(name: str, raw, frame: pd.DataFrame | None, **frames: pd.DataFrame) -> pd.DataFrame:
    return step(name, raw).apply(frame, Context(dict(frames), "input 'x'"))


def orders() -> pd.DataFrame:
    return pd.DataFrame({
        "order_id": pd.Series(["a", "b", "c", "d"], dtype="str"),
        "customer_id": pd.Series([1, 2, None, 1], dtype="Int64"),
        "amount": [10.0, -5.0, None, 30.0],
        "status": pd.Series(["paid", "cancelled", "paid", None], dtype="str"),
        "created_at": pd.to_datetime(["2024-01-05", "2024-01-20", "2024-02-01", None]).tz_localize("UTC"),
    })


def empty(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.iloc[:0]


def test_registry_lists_every_step_of_the_issue():
    assert sorted(STEPS) == ["cast", "dedupe", "derive", "fillna", "filter", "group_by", "join", "limit", "pivot",
                             "rename", "select", "sort", "sql", "union", "unpivot"]
    assert CHUNK_SAFE == ("cast", "derive", "fillna", "filter", "rename", "select")


# ------------------------------------------------------------------ select / rename
def test_select_orders_columns_and_refuses_unknown_or_repeated():
    assert list(run("select", ["amount", "order_id"], orders()).columns) == ["amount", "order_id"]
    assert list(run("select", ["amount"], empty(orders())).columns) == ["amount"]
    with pytest.raises(StepError, match="column 'nope' is not produced by input 'x'") as info:
        run("select", ["amount", "nope"], orders())
    assert info.value.key == (1,)
    with pytest.raises(ValidationError, match="columns listed twice: amount"):
        step("select", ["amount", "amount"])
    with pytest.raises(ValidationError, match="expected at least one column"):
        step("select", [])


def test_rename():
    out = run("rename", {"amount": "total"}, orders())
    assert "total" in out.columns and "amount" not in out.columns
    with pytest.raises(StepError, match="two columns the name status"):
        run("rename", {"amount": "status"}, orders())
    with pytest.raises(StepError, match="column 'nope'") as info:
        run("rename", {"nope": "x"}, orders())
    assert info.value.key == ("nope",)


# ------------------------------------------------------------------ filter / derive
def test_filter_treats_null_as_false_and_keeps_dtypes_on_empty():
    out = run("filter", "amount > 0", orders())
    assert out["order_id"].tolist() == ["a", "d"]
    assert run("filter", "status == 'paid' and amount > 0", orders())["order_id"].tolist() == ["a"]
    assert run("filter", "status == None", orders())["order_id"].tolist() == ["d"]
    out = run("filter", "amount > 0", empty(orders()))
    assert len(out) == 0 and out.dtypes.equals(orders().dtypes)


def test_filter_must_be_boolean_and_types_must_compare():
    with pytest.raises(StepError, match="expected a true/false expression, got a float64 column"):
        run("filter", "amount * 2", orders())
    with pytest.raises(StepError, match="expected a true/false expression, got a single int64"):
        run("filter", "1", orders())
    with pytest.raises(StepError, match="'amount > \"x\"': "):
        run("filter", 'amount > "x"', orders())


def test_derive_in_order_with_nulls_and_scalars():
    out = run("derive", {"month": "created_at.dt.strftime('%Y-%m')", "double": "amount * 2",
                         "quad": "double * 2", "one": "1", "city": "coalesce(status, 'none').str.upper()"}, orders())
    assert out["month"].tolist()[:3] == ["2024-01", "2024-01", "2024-02"] and pd.isna(out["month"].iloc[3])
    assert out["quad"].tolist()[:2] == [40.0, -20.0] and pd.isna(out["quad"].iloc[2])
    assert out["one"].tolist() == [1, 1, 1, 1]
    assert out["city"].tolist() == ["PAID", "CANCELLED", "PAID", "NONE"]
    assert len(run("derive", {"x": "amount + 1"}, empty(orders()))) == 0


def test_derive_type_mismatch_names_the_column():
    with pytest.raises(StepError) as info:
        run("derive", {"m": "amount.dt.year"}, orders())
    assert info.value.key == ("m",) and "'amount.dt.year'" in str(info.value)
    with pytest.raises(StepError, match="column 'nope' is not produced by input 'x'"):
        run("derive", {"m": "nope + 1"}, orders())


# ------------------------------------------------------------------ cast / fillna
def test_cast_types_and_failures_without_values():
    frame = pd.DataFrame({"n": pd.Series(["1", "2", None, "x"], dtype="str"), "f": ["1.5", "2", None, "3"],
                          "d": ["2024-01-01", None, "2024-02-03T04:05:06Z", "bad"]})
    with pytest.raises(StepError) as info:
        run("cast", {"n": "integer"}, frame)
    assert "column 'n': some values are not valid integer" in str(info.value) and "'x'" not in str(info.value)
    out = run("cast", {"n": {"type": "integer", "on_error": "null"}, "f": "float",
                       "d": {"type": "datetime", "on_error": "null"}}, frame)
    assert str(out["n"].dtype) == "Int64" and out["n"].tolist()[:2] == [1, 2]
    assert out["n"].isna().tolist()[2:] == [True, True]
    assert out["f"].tolist()[:2] == [1.5, 2.0]
    assert str(out["d"].dtype) == "datetime64[us, UTC]" and out["d"].isna().tolist() == [False, True, False, True]
    assert run("cast", {"amount": "text"}, orders())["amount"].tolist()[:2] == ["10.0", "-5.0"]
    assert str(run("cast", {"amount": "integer"}, empty(orders()))["amount"].dtype) == "Int64"
    with pytest.raises(StepError, match="some values are not valid integer"):
        run("cast", {"amount": "integer"}, pd.DataFrame({"amount": [1.5]}))


def test_fillna_checks_the_literal_type():
    out = run("fillna", {"amount": 0, "status": "unknown", "customer_id": -1}, orders())
    assert out["amount"].tolist() == [10.0, -5.0, 0.0, 30.0]
    assert out["status"].tolist()[3] == "unknown" and out["customer_id"].tolist()[2] == -1
    out = run("fillna", {"created_at": "2000-01-01"}, orders())
    assert out["created_at"].iloc[3] == pd.Timestamp("2000-01-01", tz="UTC")
    with pytest.raises(StepError, match="column 'customer_id' is Int64: a float does not fit"):
        run("fillna", {"customer_id": 1.5}, orders())
    with pytest.raises(StepError, match="column 'created_at' is datetime64"):
        run("fillna", {"created_at": "not a date"}, orders())


# ------------------------------------------------------------------ dedupe / sort / limit
def test_dedupe_keeps_first_or_last_per_key_and_null_is_a_key():
    frame = orders()
    assert run("dedupe", ["customer_id"], frame)["order_id"].tolist() == ["a", "b", "c"]
    assert run("dedupe", {"subset": ["customer_id"], "keep": "last"}, frame)["order_id"].tolist() == ["b", "c", "d"]
    assert len(run("dedupe", None, pd.concat([frame, frame]))) == 4
    assert len(run("dedupe", ["customer_id"], empty(frame))) == 0


def test_sort_is_stable_with_nulls_last_by_default():
    out = run("sort", {"by": ["status", "amount"], "ascending": [True, False]}, orders())
    assert out["order_id"].tolist() == ["b", "a", "c", "d"]
    assert run("sort", {"by": "amount", "nulls": "first"}, orders())["order_id"].tolist() == ["c", "b", "a", "d"]
    with pytest.raises(ValidationError, match="ascending has 1 values for 2 columns"):
        step("sort", {"by": ["a", "b"], "ascending": [True]})


def test_limit():
    assert run("limit", 2, orders())["order_id"].tolist() == ["a", "b"]
    assert len(run("limit", 0, orders())) == 0 and len(run("limit", 5, empty(orders()))) == 0


# ------------------------------------------------------------------ join / union
def customers() -> pd.DataFrame:
    return pd.DataFrame({"id": pd.Series([1, 1, 3], dtype="Int64"), "city": ["Berlin", "Bonn", "Paris"],
                         "created_at": pd.to_datetime(["2020-01-01"] * 3).tz_localize("UTC")})


def test_join_kinds_duplicate_keys_and_null_keys():
    o, c = orders(), customers()
    inner = run("join", {"left": "o", "right": "c", "left_on": "customer_id", "right_on": "id"}, None, o=o, c=c)
    assert sorted(inner["order_id"].tolist()) == ["a", "a", "d", "d"]   # key 1 twice on the right: every combination
    on = {"left": "o", "right": "c", "left_on": "customer_id", "right_on": "id"}
    left = run("join", {**on, "how": "left"}, None, o=o, c=c)
    assert len(left) == 6 and left.loc[left["order_id"] == "c", "city"].isna().all()   # a null key matches nothing
    assert "created_at_c" in left.columns and "created_at" in left.columns
    right = run("join", {**on, "how": "right"}, None, o=o, c=c)
    assert right.loc[right["id"] == 3, "order_id"].isna().all()
    outer = run("join", {**on, "how": "outer"}, None, o=o, c=c)
    assert len(outer) == 7   # a&d twice each, b, c (null key), customer 3
    with pytest.raises(StepError, match="join keys are not many to one") as info:
        run("join", {"left": "o", "right": "c", "left_on": "customer_id", "right_on": "id", "validate": "many_to_one"},
            None, o=o, c=c)
    assert info.value.key == ("validate",)


def test_join_on_current_frame_with_shared_key_and_empty_sides():
    c = customers().rename(columns={"id": "customer_id"})
    out = run("join", {"right": "c", "on": "customer_id", "suffix": "_cust"}, orders(), c=c)
    assert "created_at_cust" in out.columns and list(out.columns).count("customer_id") == 1
    out = run("join", {"right": "c", "on": ["customer_id"], "how": "left"}, empty(orders()), c=c)
    assert len(out) == 0 and "city" in out.columns
    out = run("join", {"right": "c", "on": "customer_id", "how": "left"}, orders(), c=empty(c))
    assert len(out) == 4 and out["city"].isna().all()


def test_join_type_mismatch_and_missing_keys():
    with pytest.raises(StepError, match=r"cannot join order_id \(str\) with id \(Int64\): cast one of them first"):
        run("join", {"left": "o", "right": "c", "left_on": "order_id", "right_on": "id"}, None, o=orders(),
            c=customers())
    with pytest.raises(StepError, match="column 'nope' is not produced by frame 'c'") as info:
        run("join", {"left": "o", "right": "c", "left_on": "customer_id", "right_on": "nope"}, None, o=orders(),
            c=customers())
    assert info.value.key == ("right_on",)
    with pytest.raises(ValidationError, match="use either on, or left_on and right_on"):
        step("join", {"right": "c", "on": "a", "left_on": "b"})


def test_union_needs_the_same_columns_and_types():
    a = pd.DataFrame({"k": [1], "v": ["x"]})
    b = pd.DataFrame({"v": ["y"], "k": [2]})
    assert run("union", ["a", "b"], None, a=a, b=b).to_dict("records") == [{"k": 1, "v": "x"}, {"k": 2, "v": "y"}]
    assert len(run("union", ["b"], a, b=b)) == 2
    assert len(run("union", ["b"], empty(a), b=empty(b))) == 0
    with pytest.raises(StepError, match=r"frame 'c' does not have the columns of frame 'a' \(missing: v\) \(extra: "
                                        r"w\)") as info:
        run("union", ["a", "c"], None, a=a, c=pd.DataFrame({"k": [1], "w": [1]}))
    assert info.value.key == ("frames", 1)
    with pytest.raises(StepError, match="column k is str in frame 'c' but int64 in frame 'a'"):
        run("union", ["a", "c"], None, a=a, c=pd.DataFrame({"k": ["1"], "v": ["x"]}))


# ------------------------------------------------------------------ group_by / pivot / unpivot
def test_group_by_named_aggregations_null_keys_and_empty():
    out = run("group_by", {"by": ["status"], "agg": {"revenue": ["amount", "sum"], "orders": ["order_id", "count"],
                                                     "customers": ["customer_id", "nunique"],
                                                     "top": ["amount", "max"]}},
              orders())
    rows = {r["status"] if isinstance(r["status"], str) else None: r for r in out.to_dict("records")}
    assert rows["paid"]["revenue"] == 10.0 and rows["paid"]["orders"] == 2 and rows["paid"]["customers"] == 1
    assert rows[None]["orders"] == 1   # a null key is a group of its own
    assert out["status"].tolist()[:2] == ["cancelled", "paid"]
    empty_out = run("group_by", {"by": "status", "agg": {"revenue": ["amount", "sum"], "n": ["order_id", "count"]}},
                    empty(orders()))
    assert list(empty_out.columns) == ["status", "revenue", "n"] and len(empty_out) == 0
    assert str(empty_out["n"].dtype) == "int64"


def test_group_by_refuses_wrong_columns_and_types():
    with pytest.raises(StepError, match="sum needs a numeric column, status is str"):
        run("group_by", {"by": "order_id", "agg": {"s": ["status", "sum"]}}, orders())
    with pytest.raises(StepError, match="column 'nope'") as info:
        run("group_by", {"by": "status", "agg": {"s": ["nope", "max"]}}, orders())
    assert info.value.key == ("agg", "s", 0)
    with pytest.raises(StepError, match="output column status is also a group_by column"):
        run("group_by", {"by": "status", "agg": {"status": ["amount", "max"]}}, orders())
    with pytest.raises(ValidationError):
        step("group_by", {"by": "status", "agg": {}})


def test_pivot_into_declared_columns_ignoring_other_values():
    frame = pd.DataFrame({"month": ["m1", "m1", "m2", "m2"], "city": ["Berlin", "Paris", "Berlin", "Rome"],
                          "revenue": [1.0, 2.0, 3.0, 4.0]})
    out = run("pivot", {"index": "month", "columns": "city", "values": "revenue",
                        "into": {"Berlin": "berlin", "Paris": "paris", "Oslo": "oslo"}}, frame)
    assert list(out.columns) == ["month", "berlin", "paris", "oslo"]
    assert out["berlin"].tolist() == [1.0, 3.0] and pd.isna(out["paris"].iloc[1]) and out["oslo"].isna().all()
    counted = run("pivot", {"index": ["month"], "columns": "city", "values": "revenue", "agg": "count", "fill": 0,
                            "into": {"Berlin": "berlin", "Paris": "paris"}}, frame)
    assert counted["paris"].tolist() == [1, 0] and str(counted["paris"].dtype) == "Int64"
    none = run("pivot", {"index": "month", "columns": "city", "values": "revenue", "into": {"Berlin": "berlin"}},
               empty(frame))
    assert list(none.columns) == ["month", "berlin"] and len(none) == 0 and str(none["berlin"].dtype) == "float64"


def test_unpivot_interleaves_rows_in_index_order():
    frame = pd.DataFrame({"month": ["m1", "m2"], "berlin": [1.0, 3.0], "paris": [2.0, None]})
    out = run("unpivot", {"index": "month", "columns": ["berlin", "paris"], "name": "city", "value": "revenue"}, frame)
    assert out[["month", "city"]].values.tolist() == [["m1", "berlin"], ["m1", "paris"], ["m2", "berlin"],
                                                      ["m2", "paris"]]
    assert pd.isna(out["revenue"].iloc[3])
    assert len(run("unpivot", {"index": "month", "columns": ["berlin"]}, empty(frame))) == 0
    with pytest.raises(StepError, match="mix numbers and other types"):
        run("unpivot", {"index": "month", "columns": ["berlin", "month"]}, frame.assign(month2=frame["month"]))


# ------------------------------------------------------------------ sql
def test_sql_declares_and_casts_its_columns():
    sql = step("sql", {"query": "SELECT 1", "columns": {"n": "integer", "label": "text"}})
    dry = sql.apply(None, Context({}, "no step"))
    assert list(dry.columns) == ["n", "label"] and str(dry["n"].dtype) == "Int64" and len(dry) == 0
    live = sql.apply(None, Context({}, "no step", query=lambda q: pd.DataFrame({"n": [1, None], "label": ["a", None],
                                                                                     "extra": [0, 0]})))
    assert live["n"].tolist()[0] == 1 and live["n"].isna().tolist() == [False, True]
    assert list(live.columns) == ["n", "label"]
    with pytest.raises(StepError, match="the query returned no column label \\(it returned: n\\)"):
        sql.apply(None, Context({}, "no step", query=lambda q: pd.DataFrame({"n": [1]})))
    stored = step("sql", {"query": "SELECT 1", "columns": {"n": "integer"}, "as": "extra"})
    frames: dict = {}
    assert stored.apply(orders(), Context(frames, "x")) is not None and list(frames) == ["extra"]


def test_null_keys_never_match_each_other():
    left = pd.DataFrame({"k": pd.Series([1, None], dtype="Int64"), "l": ["one", "none"]})
    right = pd.DataFrame({"k": pd.Series([None, 1], dtype="Int64"), "r": ["null", "uno"]})
    inner = run("join", {"left": "a", "right": "b", "on": "k"}, None, a=left, b=right)
    assert inner[["l", "r"]].values.tolist() == [["one", "uno"]]
    outer = run("join", {"left": "a", "right": "b", "on": "k", "how": "outer"}, None, a=left, b=right)
    assert sorted(map(str, outer[["l", "r"]].astype(object).values.tolist())) == sorted(
        map(str, [["one", "uno"], ["none", float("nan")], [float("nan"), "null"]]))


def test_pandas_messages_lose_the_values_they_quote():
    from shared.transform.expressions import reason
    assert reason(ValueError('Unable to parse string "john.doe@example.com" at position 0')) == \
        "Unable to parse string '...' at position 0"
    assert reason(ValueError("Cannot infer dst time from 2024-10-27 02:30:00")) == \
        "Cannot infer dst time from ...-...-... ...:...:..."
    assert reason(TypeError("Invalid comparison between dtype=float64 and str")) == \
        "Invalid comparison between dtype=float64 and str"
    assert reason(TypeError("unsupported operand type(s) for +: 'float' and 'str'")).endswith("'float' and 'str'")
