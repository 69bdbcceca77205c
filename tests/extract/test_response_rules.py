"""Response rules (issue 14 §4): matching on status, header and body value, each action through the
HTTP client, and the quota read from rate-limit headers that slows a source down before the 429."""
from __future__ import annotations

import random
import time

import pytest
from requests.structures import CaseInsensitiveDict

from shared.config.models import ApiSource, Throttle
from shared.config.responses import RESPONSE_ACTIONS, ResponseRule
from shared.errors import FetchError, RateLimited
from shared.extract.http_client import HttpClient
from shared.extract.quota import Quota, QuotaGate, read_quota
from shared.extract.responses import ACTIONS, ResponseRules, action
from shared.extract.types import PageRequest
from tests.helpers.http_stub import FakeTime, Reply, StubServer

NOW = 1_800_000_000.0


def rules(*specs: dict) -> ResponseRules:
    return ResponseRules(ResponseRule(**spec) for spec in specs)


def test_registry_holds_the_actions_the_manifest_may_name():
    assert tuple(ACTIONS) == RESPONSE_ACTIONS
    with pytest.raises(KeyError, match="unknown response action 'skip'; known: empty, retry, rate_limited, fail"):
        action("skip")


@pytest.mark.parametrize("spec, status, headers, body, matched", [
    ({"status": 404}, 404, {}, b"", True),
    ({"status": [403, 404]}, 403, {}, b"", True),
    ({"status": 404}, 200, {}, b"", False),
    ({"header": "X-Limited"}, 200, {"x-limited": "yes"}, b"", True),
    ({"header": "X-Limited", "header_value": "0"}, 200, {"X-Limited": " 0 "}, b"", True),
    ({"header": "X-Limited", "header_value": "0"}, 200, {"X-Limited": "1"}, b"", False),
    ({"header": "X-Limited"}, 200, {}, b"", False),
    ({"body_path": "ok", "body_value": False}, 200, {}, b'{"ok": false, "error": "invalid_auth"}', True),
    ({"body_path": "ok", "body_value": False}, 200, {}, b'{"ok": true}', False),
    ({"body_path": "ok", "body_value": False}, 200, {}, b'{"ok": 0}', False),          # 0 is not false
    ({"body_path": "meta.code", "body_value": 7}, 200, {}, b'{"meta": {"code": 7}}', True),
    ({"body_path": "error"}, 200, {}, b'{"error": "x"}', True),                        # any value but null
    ({"body_path": "error"}, 200, {}, b'{"error": null}', False),
    ({"body_path": "ok", "body_value": False}, 200, {}, b"<html>not json</html>", False),
    ({"status": 200, "body_path": "ok", "body_value": False}, 429, {}, b'{"ok": false}', False),  # all must hold
])
def test_a_rule_matches_when_every_condition_it_states_holds(spec, status, headers, body, matched):
    found, _ = rules({**spec, "action": "fail"}).match(status, CaseInsensitiveDict(headers), body)
    assert (found is not None) == matched


def test_the_first_matching_rule_acts_and_model_rules_come_before_the_source_rules():
    source = ApiSource(type="api", base_url="http://x", responses=[{"status": 404, "action": "fail"}],
                       models={"m": {"path": "/m", "columns": {"id": {"type": "integer"}},
                                     "responses": [{"status": 404, "action": "empty"}]}})
    compiled = ResponseRules(source.responses_for(source.models["m"]))
    outcome, _ = compiled.match(404, CaseInsensitiveDict(), b"")
    assert outcome is not None and outcome.kind == "empty" and outcome.reason == "response rule 1: no records"


def client(fake: FakeTime | None = None, on_rate_limit="wait", **throttle) -> HttpClient:
    fake = fake or FakeTime()
    settings = {"max_retries": 3, "backoff": 0.5, "max_backoff": 30.0, "timeout": 5.0, **throttle}
    return HttpClient(source="test", throttle=Throttle(**settings), on_rate_limit=on_rate_limit,
                      rng=random.Random(3), sleep=fake.sleep, clock=fake.clock)


def test_empty_turns_a_404_into_a_page_without_records():
    with StubServer([Reply(404, {"message": "Not Found"})]) as server:
        response = client().fetch(PageRequest(server.url()), rules({"status": 404, "action": "empty"}))
    assert response.empty and response.body is None and response.status == 404


def test_fail_carries_the_fixed_message_never_the_body():
    body = {"ok": False, "error": "invalid_auth", "user": "jane@example.com"}
    with StubServer([Reply(200, body)]) as server:
        http = client()
        with pytest.raises(FetchError) as caught:
            http.fetch(PageRequest(server.url()), rules({"body_path": "ok", "body_value": False, "action": "fail",
                                                         "message": "Slack answered ok: false"}))
    assert str(caught.value) == f"GET {server.url()} failed: HTTP 200 (Slack answered ok: false)"
    assert "invalid_auth" not in str(caught.value) and "jane" not in str(caught.value)
    assert server.count == 1 and http.stats.errors == 1


def test_retry_repeats_a_200_the_rule_calls_transient_then_gives_up_with_the_rule_named():
    fake = FakeTime()
    busy = Reply(200, {"status": "busy"})
    with StubServer([busy, busy, Reply(200, {"status": "ok", "data": [1]})]) as server:
        http = client(fake)
        retry = rules({"body_path": "status", "body_value": "busy", "action": "retry"})
        assert http.fetch(PageRequest(server.url()), retry).body["data"] == [1]
    assert server.count == 3 and http.stats.retries == 2 and len(fake.sleeps) == 2
    with StubServer(default=busy) as server, pytest.raises(FetchError) as caught:
        client(FakeTime()).fetch(PageRequest(server.url()), retry)
    assert str(caught.value).endswith("after 4 attempts: HTTP 200 (gave up: response rule 1 asks to retry)")


def test_rate_limited_waits_the_retry_after_of_a_403_the_rule_names():
    fake = FakeTime()
    limited = Reply(403, {"message": "API rate limit"}, headers={"Retry-After": "7"})
    with StubServer([limited, Reply(200, [1])]) as server:
        http = client(fake)
        response = http.fetch(PageRequest(server.url()), rules({"status": 403, "action": "rate_limited"}))
    assert response.body == [1] and fake.sleeps == [7.0] and http.stats.throttled == 1


def test_rate_limited_raises_for_the_queue_chain_to_reschedule():
    limited = Reply(200, {"error": "ratelimited"}, headers={"Retry-After": "3"})
    with StubServer([limited]) as server, pytest.raises(RateLimited) as caught:
        client(on_rate_limit="raise").fetch(PageRequest(server.url()),
                                            rules({"body_path": "error", "body_value": "ratelimited",
                                                   "action": "rate_limited"}))
    assert caught.value.delay == 3.0


def test_without_rules_the_status_decides_as_before():
    with StubServer([Reply(404, {"message": "gone"})]) as server, pytest.raises(FetchError, match="HTTP 404"):
        client().fetch(PageRequest(server.url()))


# ---------------------------------------------------------------- quota headers
@pytest.mark.parametrize("headers, quota", [
    ({"RateLimit-Remaining": "5", "RateLimit-Reset": "30"}, Quota(5, 30.0)),
    ({"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(int(NOW) + 12)}, Quota(0, 12.0)),   # GitHub: epoch
    ({"X-RateLimit-Remaining": "9", "X-RateLimit-Reset": "2.5"}, Quota(9, 2.5)),                 # a delay
    ({"RateLimit": "limit=100, remaining=50, reset=5"}, Quota(50, 5.0)),
    ({"RateLimit": '"default";r=3;t=10'}, Quota(3, 10.0)),
    ({"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(int(NOW) - 5)}, Quota(0, 0.0)),     # past: now
    ({"RateLimit-Remaining": "5"}, None),
    ({"RateLimit-Remaining": "many", "RateLimit-Reset": "3"}, None),
    ({}, None),
])
def test_quota_is_read_from_the_ietf_draft_and_the_x_ratelimit_headers(headers, quota):
    assert read_quota(CaseInsensitiveDict(headers), NOW) == quota


def test_the_gate_counts_requests_sent_after_the_answer_that_announced_the_quota():
    fake = FakeTime()
    gate = QuotaGate(fake.clock)
    first, wait = gate.take()
    assert wait == 0
    second, _ = gate.take()            # in flight when the first answer arrives
    gate.observe(first, Quota(2, 10.0))
    assert gate.take()[1] == 0         # 2 left at the first answer, the second request took one
    ticket, wait = gate.take()
    assert ticket == 0 and wait == pytest.approx(10.0)
    gate.observe(second, Quota(5, 10.0))   # a newer answer: its own count
    assert gate.take()[1] == 0
    fake.sleep(10.0)


def test_an_older_answer_does_not_overwrite_a_newer_one_and_a_reset_quota_is_forgotten():
    fake = FakeTime()
    gate = QuotaGate(fake.clock)
    one, _ = gate.take()
    two, _ = gate.take()
    gate.observe(two, Quota(0, 4.0))
    gate.observe(one, Quota(100, 4.0))
    assert gate.take() == (0, pytest.approx(4.0))
    fake.sleep(4.0)
    assert gate.take()[1] == 0


def test_a_spent_quota_holds_the_next_request_until_its_reset_instead_of_meeting_the_429():
    fake = FakeTime()
    spent = {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(int(time.time()) + 5)}
    with StubServer([Reply(200, [1], headers=spent), Reply(200, [2])]) as server:
        http = client(fake)
        http.fetch(PageRequest(server.url()))
        assert http.fetch(PageRequest(server.url())).body == [2]
    assert len(fake.sleeps) == 1 and 3.5 <= fake.sleeps[0] <= 5.0 and http.stats.throttled == 0


def test_a_spent_quota_raises_in_the_queue_chain_and_a_reset_past_max_backoff_fails():
    spent = {"RateLimit-Remaining": "0", "RateLimit-Reset": "20"}
    with StubServer(default=Reply(200, [1], headers=spent)) as server:
        http = client(on_rate_limit="raise")
        http.fetch(PageRequest(server.url()))
        with pytest.raises(RateLimited) as caught:
            http.fetch(PageRequest(server.url()))
        assert caught.value.delay == pytest.approx(20.0, abs=0.5) and server.count == 1
        slow = client(max_backoff=10.0)
        slow.fetch(PageRequest(server.url()))
        with pytest.raises(FetchError, match=r"rate limit resets in 20s, more than throttle.max_backoff=10s"):
            slow.fetch(PageRequest(server.url()))


def test_a_429_waits_for_the_reset_of_a_spent_ietf_quota():
    fake = FakeTime()
    with StubServer([Reply(429, headers={"RateLimit-Remaining": "0", "RateLimit-Reset": "6"}),
                     Reply(200, [1])]) as server:
        http = client(fake)
        assert http.fetch(PageRequest(server.url())).body == [1]
    assert fake.sleeps[0] == pytest.approx(6.0, abs=0.1)


def test_a_body_a_rule_read_is_the_page_body_and_a_large_body_is_read_too():
    big = {"ok": True, "items": [{"id": i, "text": "x" * 100} for i in range(20_000)]}   # about 2 MB
    slack = {"body_path": "ok", "body_value": False, "action": "fail"}
    with StubServer([Reply(200, big), Reply(200, {**big, "ok": False})]) as server:
        http = client()
        response = http.fetch(PageRequest(server.url()), rules(slack))
        with pytest.raises(FetchError, match="the response matched a fail rule"):
            http.fetch(PageRequest(server.url()), rules(slack))
    assert response.body["items"][-1]["id"] == 19_999 and len(response.content) > 2_000_000


@pytest.mark.parametrize("field, rate", [
    ("50;w=1", 50.0),
    ("100;w=60, 10;w=1", 100 / 60),            # the strictest of several
    ('"default";q=300;w=60', 5.0),             # later drafts' structured form
    ("burst;w=1", None),
    ("10;w=0", None),
])
def test_a_policy_announces_the_sustained_rate(field, rate):
    from shared.extract.quota import read_policy
    assert read_policy(CaseInsensitiveDict({"RateLimit-Policy": field})) == (pytest.approx(rate) if rate else None)


def test_an_announced_policy_paces_a_source_without_a_rate_and_never_speeds_one_up():
    from shared.extract.throttle import TokenBucket
    fake = FakeTime()
    unlimited = TokenBucket(None, clock=fake.clock, sleep=fake.sleep)
    unlimited.limit_to(10.0)
    for _ in range(12):
        unlimited.acquire()
    assert unlimited.rate == 10.0 and unlimited.burst == 2 and sum(fake.sleeps) == pytest.approx(1.1)   # 1 free
    slow = TokenBucket(2.0, clock=fake.clock, sleep=fake.sleep)
    slow.limit_to(10.0)
    assert slow.rate == 2.0 and slow.burst == 1


def test_the_client_takes_the_rate_a_server_announces():
    with StubServer(default=Reply(200, [1], headers={"RateLimit-Policy": "20;w=1"})) as server:
        http = client()
        http.fetch(PageRequest(server.url()))
    assert http.bucket.rate == 20.0
