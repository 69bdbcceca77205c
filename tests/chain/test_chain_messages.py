"""Chain messages round-trip and refuse anything else with an error naming the field (never the
value); the shared names agree with the modules that use them; raw pages keep their types."""
from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from shared.chain import names
from shared.chain.messages import (
    LoadJob,
    MessageError,
    PageJob,
    RunModel,
    TransformEvent,
    check_start,
    decode,
    encode,
)
from shared.chain.pages import (
    decode_key,
    decode_page,
    encode_key,
    encode_page,
    encode_start,
    raw_blob_name,
    request_to_json,
    start_blob_name,
)
from shared.config.models import ColumnType
from shared.extract.types import PageRequest
from shared.storage.queues import MAX_JSON_BYTES, check_queue
from shared.target.columns import StoredColumn

RUN = "20261124T001500Z-3f9a1c"
SECRET = "Ada Lovelace <ada@example.com>"

MESSAGES = [
    RunModel(RUN, "shop.customers"),
    PageJob(RUN, "shop.customers", 0),
    PageJob(RUN, "shop.events", 7, request={"url": "https://api.example.com/v1/events?skip=140", "params": {}},
            attempt=2, follow=True),
    PageJob(RUN, "erp.orders", 3, start="00112233445566aa", follow=True),
    LoadJob(RUN, "shop.customers", 5, raw_blob_name(RUN, "shop.customers", 5), 25, last=True),
    PageJob(RUN, "shop.customers", 15, request={"url": "https://api.example.com/v1/customers", "params": {"page": 16}},
            pages=5),
    LoadJob(RUN, "shop.customers", 1, raw_blob_name(RUN, "shop.customers", 1), 100, pages=9),
    TransformEvent(RUN, ("erp", "shop"), ("erp.orders", "shop.customers")),
]


@pytest.mark.parametrize("message", MESSAGES, ids=lambda m: type(m).__name__)
def test_messages_round_trip_through_json(message):
    body = encode(message)
    assert body["kind"] == type(message).__name__ and body["v"] == 1
    assert decode(json.loads(json.dumps(body))) == message


def good(message=None) -> dict:
    return encode(message or PageJob(RUN, "shop.customers", 4, request={"url": "http://h/p", "params": {"page": 5}}))


@pytest.mark.parametrize("change, error", [
    ({"index": "4"}, "PageJob.index: expected an integer"),
    ({"index": True}, "PageJob.index: expected an integer"),
    ({"index": -1}, "PageJob.index: expected an integer >= 0"),
    ({"run_id": "../../etc"}, "PageJob.run_id: expected a run id"),
    ({"model": "customers; DROP TABLE x"}, "PageJob.model: expected 'source.model'"),
    ({"token": SECRET}, "PageJob.token: expected a hex token"),
    ({"request": {"url": "file:///etc/passwd", "params": {}}}, r"PageJob.request.url: expected an http\(s\) URL"),
    ({"request": {"url": "http://h/p", "params": {"a": {"b": SECRET}}}}, "PageJob.request.params: expected text"),
    ({"request": SECRET}, "PageJob.request: expected an object with url and params"),
    ({"start": SECRET}, "PageJob.start: expected a 16-hex-digit digest"),
    ({"start": "00112233445566aa"}, "PageJob.start: expected no start for a job that carries its request"),
    ({"sql_after": ["SO-000048"]}, "PageJob: unexpected field sql_after"),
    ({"seen": [SECRET]}, "PageJob: unexpected field seen"),   # loop detection travels in the start blob
    ({"follow": "yes"}, "PageJob.follow: expected true or false"),
    ({"pages": 0}, "PageJob.pages: expected an integer from 1 to 10"),
    ({"pages": 11}, "PageJob.pages: expected an integer from 1 to 10"),
    ({"pages": "5"}, "PageJob.pages: expected an integer from 1 to 10"),
    ({"pages": 7}, r"PageJob.pages: expected pages within one completion group \(pages 10k to 10k\+9\)"),
    ({"v": 2}, "PageJob.v: expected version 1"),
    ({"kind": "Pickle"}, "message.kind: expected one of"),
    ({"records": SECRET}, "PageJob: unexpected field records"),
    ({SECRET: 1}, "PageJob: unexpected field$"),
])
def test_bad_messages_name_the_field_and_never_the_value(change, error):
    with pytest.raises(MessageError, match=error) as caught:
        decode({**good(), **change})
    assert SECRET not in str(caught.value) and "passwd" not in str(caught.value)


@pytest.mark.parametrize("stored, error", [
    ({"sql_after": [{"pickle": SECRET}]}, "PageJob.start.sql_after: expected key values"),
    ({"sql_after": []}, "PageJob.start.sql_after: expected a non-empty list"),
    ({"paginator": {"type": "cursor", "cursor": {"nested": SECRET}}}, "PageJob.start.paginator: expected text"),
    ({"paginator": {"cursor": "c"}}, "PageJob.start.paginator: expected a paginator state"),
    ({"paginator": None}, "PageJob.start.paginator: missing"),
    ({"paginator": {"type": "cursor"}, "sql_after": ["x"]}, "PageJob.start: expected a stored paginator state or "
                                                            "keyset bound"),
    ({"request": {"url": "http://h/p"}}, "PageJob.start: expected a stored paginator state or keyset bound"),
    ({SECRET: 1}, "PageJob.start: expected a stored paginator state or keyset bound"),
    ([SECRET], "PageJob.start: expected a stored paginator state or keyset bound"),
])
def test_bad_start_blobs_are_refused_like_messages(stored, error):
    with pytest.raises(MessageError, match=error) as caught:
        check_start(stored)
    assert SECRET not in str(caught.value) and "passwd" not in str(caught.value)


def test_start_blobs_round_trip_and_are_named_by_their_content():
    bound = {"sql_after": ["SO-000048", 7, {"datetime": "2024-01-02T03:04:05+00:00"}, {"decimal": "1.50"}]}
    request = {"paginator": {"type": "next_link", "pages_seen": 3, "has_next": True,
                             "next_url": "https://api.example.com/v1/events?email=ada@example.com",
                             "seen": ["0123456789abcdef"]}}
    for stored in (bound, request):
        content, digest = encode_start(stored)
        assert check_start(json.loads(content)) == stored and encode_start(json.loads(content)) == (content, digest)
        name = start_blob_name(RUN, "erp.orders", 3, digest)
        assert name == f"starts/{RUN}/erp/orders/000003.{digest}.json" and not name.startswith(RUN)
        assert decode(encode(PageJob(RUN, "erp.orders", 3, start=digest, follow=True))).start == digest
    assert encode_start(bound)[1] != encode_start(request)[1]


def test_missing_fields_and_foreign_payloads():
    body = good()
    del body["index"]
    with pytest.raises(MessageError, match="PageJob.index: missing"):
        decode(body)
    body = good()
    del body["token"]   # no default token: a redelivery must keep the token of the first delivery
    with pytest.raises(MessageError, match="PageJob.token: missing"):
        decode(body)
    for payload in ([1, 2], "text", None, {"kind": 3}):
        with pytest.raises(MessageError, match="^message"):
            decode(payload)
    blob = raw_blob_name(RUN, "shop.other", 5)
    with pytest.raises(MessageError, match="LoadJob.blob: expected the raw blob name"):
        decode({**encode(LoadJob(RUN, "shop.customers", 5, raw_blob_name(RUN, "shop.customers", 5), 1)), "blob": blob})
    with pytest.raises(TypeError):
        encode({"kind": "PageJob"})


def test_optional_fields_may_be_left_out_by_hand_written_messages():
    body = {"kind": "PageJob", "v": 1, "run_id": RUN, "model": "shop.customers", "index": 0,
            "token": "0123456789abcdef"}
    assert decode(body) == PageJob(RUN, "shop.customers", 0, token="0123456789abcdef")


def test_a_long_chain_job_stays_far_under_the_queue_limit():
    job = PageJob(RUN, "shop.events", 10**6,
                  request={"url": "https://h/" + "x" * 7000, "params": {"cursor": "c" * 500}},
                  follow=True)
    assert len(json.dumps(encode(job))) < MAX_JSON_BYTES / 4


def test_names_are_valid_and_agree_with_the_modules_that_use_them():
    from shared.config.project import manifests_dir
    from shared.config.settings import ENV_OVERRIDES
    from shared.ledger import CONTAINER
    from shared.storage.azure import SETTING, check_container

    for queue in names.QUEUES + names.POISON_QUEUES:
        check_queue(queue)
    for container in names.CONTAINERS:
        check_container(container)
    assert names.RUNS == CONTAINER and names.STORAGE_SETTING == SETTING
    assert ENV_OVERRIDES[names.TARGET_URL_SETTING] == ("target_url",)
    assert ENV_OVERRIDES[names.PII_KEY_SETTING] == ("pii", "key")
    assert str(manifests_dir(None, {names.MANIFESTS_SETTING: "/m"})) == "/m"
    assert names.FETCH_POISON == "kspyder-fetch-poison" and len(set(names.POISON_QUEUES)) == 4


def test_raw_pages_keep_their_types_through_json_lines():
    columns = [StoredColumn("at", ColumnType.datetime), StoredColumn("day", ColumnType.date),
               StoredColumn("amount", ColumnType.decimal, precision=12, scale=2),
               StoredColumn("name", ColumnType.string),
               StoredColumn("doc", ColumnType.json)]
    records = [{"at": datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC), "day": date(2024, 2, 29),
                "amount": Decimal("12.30"), "name": "2024-01-01", "doc": {"n": [1, "é"]}},
               {"at": None, "day": None, "amount": None, "name": None, "doc": None}]
    assert decode_page(encode_page(records), columns) == records
    assert decode_page(b"", columns) == []
    # NaN is written as the standard encoder writes it, and read back (the loader then refuses it)
    [nan] = decode_page(encode_page([{"x": float("nan"), "at": "2024-01-02T03:04:05+00:00"}]), columns)
    assert nan["x"] != nan["x"] and nan["at"] == datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)


def test_keyset_bounds_and_requests_in_messages():
    key = ("SO-1", 3, datetime(2024, 1, 2, tzinfo=UTC), date(2024, 1, 2), Decimal("1.50"), None)
    assert decode_key(json.loads(json.dumps(encode_key(key)))) == key
    request = PageRequest("https://h/v1/x?skip=20&api_key=s3cr3t-value&top=20", {"api_key": "s3cr3t-value", "n": 1})
    clean = request_to_json(request, frozenset({"api_key"}))
    assert "s3cr3t" not in json.dumps(clean) and clean == {"url": "https://h/v1/x?skip=20&top=20", "params": {"n": 1}}
