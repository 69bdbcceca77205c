"""Response rules at work: which rule an answer matches, and what its action makes of it.

The HTTP client asks `ResponseRules.match` about every answer before its own status rules; the
action named by the first matching rule decides instead (see `Outcome`). Actions are a registry,
so a name the manifest got wrong is reported with the valid ones.
"""
from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import msgspec

from shared.config.responses import DEFAULT_FAIL_MESSAGE, ResponseRule
from shared.extract.paginators.paths import MISSING, dotted_get

OutcomeKind = Literal["empty", "retry", "rate_limited", "fail"]
_decode = msgspec.json.Decoder().decode


@dataclass(frozen=True)
class Outcome:
    """What the client does with a matched answer: `empty` returns it as a page without records
    (and the end of paging), `retry` retries it with backoff, `rate_limited` waits as for a 429,
    `fail` fails the fetch with `message` (fixed in the manifest, never taken from the body)."""

    kind: OutcomeKind
    reason: str


class Action(ABC):
    name: ClassVar[str]

    @abstractmethod
    def outcome(self, rule: ResponseRule, position: int) -> Outcome:
        """The outcome of rule number `position` (1-based, as a user counts its `responses:`)."""


class Empty(Action):
    name = "empty"

    def outcome(self, rule: ResponseRule, position: int) -> Outcome:
        return Outcome("empty", f"response rule {position}: no records")


class Retry(Action):
    name = "retry"

    def outcome(self, rule: ResponseRule, position: int) -> Outcome:
        return Outcome("retry", f"response rule {position} asks to retry")


class RateLimitedAction(Action):
    name = "rate_limited"

    def outcome(self, rule: ResponseRule, position: int) -> Outcome:
        return Outcome("rate_limited", f"response rule {position}: rate limited")


class Fail(Action):
    name = "fail"

    def outcome(self, rule: ResponseRule, position: int) -> Outcome:
        return Outcome("fail", rule.message or DEFAULT_FAIL_MESSAGE)


ACTIONS: dict[str, Action] = {a.name: a for a in (Empty(), Retry(), RateLimitedAction(), Fail())}


def action(name: str) -> Action:
    found = ACTIONS.get(name)
    if found is None:
        raise KeyError(f"unknown response action {name!r}; known: {', '.join(ACTIONS)}")
    return found


class ResponseRules:
    """A model's rules followed by its source's, compiled once per page step."""

    def __init__(self, rules: Iterable[ResponseRule]):
        self.rules = [(rule, action(rule.action)) for rule in rules]

    def __bool__(self) -> bool:
        return bool(self.rules)

    def match(self, status: int, headers: Mapping[str, str], content: bytes) -> tuple[Outcome | None, Any]:
        """The outcome of the first rule the answer matches (None when none does), and the body if a
        rule decoded it (MISSING otherwise, or when it is not JSON): the page need not be decoded twice."""
        body: Any = MISSING
        decoded = False
        for position, (rule, act) in enumerate(self.rules, 1):
            if rule.status and status not in rule.status:
                continue
            if rule.header is not None:
                value = headers.get(rule.header)
                if value is None or (rule.header_value is not None and value.strip() != rule.header_value):
                    continue
            if rule.body_path is not None:
                if not decoded:
                    body, decoded = _json(content), True
                if not _body_matches(body, rule.body_path, rule.body_value):
                    continue
            return act.outcome(rule, position), body
        return None, body


def _json(content: bytes) -> Any:
    """The JSON body, MISSING when there is none (the page's own decoder then says why)."""
    if not content:
        return MISSING
    try:
        return _decode(content)
    except msgspec.DecodeError:
        try:
            return json.loads(content)
        except (ValueError, RecursionError):
            return MISSING
    except RecursionError:
        return MISSING


def _body_matches(body: Any, path: str, expected: Any) -> bool:
    if not isinstance(body, (dict, list)):
        return False
    found = dotted_get(body, path, MISSING)
    if found is MISSING or found is None:
        return False
    if expected is None:
        return True
    if isinstance(expected, bool) or isinstance(found, bool):   # `true` is not `1`
        return type(expected) is type(found) and expected == found
    return bool(found == expected)
