"""The order in which the probe tries paging styles, most certain and cheapest first, and what every
guess of a style that sends values back learns from the page: where the values go, and the API's
"more pages follow" flag."""
from __future__ import annotations

from collections.abc import Iterator

from shared.config.models import NoPagination, SentPagination
from shared.probe.detect_pagination import (
    RESPONSE_HINTS,
    TEST_REQUESTS,
    URL_HINTS,
    Candidate,
    FetchRecords,
    Finder,
    FirstPage,
)
from shared.probe.detect_signals import header_cursors, last_record_cursors, more_flag

FINDERS: tuple[Finder, ...] = (*RESPONSE_HINTS, header_cursors, *URL_HINTS, last_record_cursors, *TEST_REQUESTS)


def candidates(first: FirstPage, fetch: FetchRecords) -> Iterator[Candidate]:
    """Every plausible paging style, most certain first; `none` always comes last."""
    flag = more_flag(first)
    for finder in FINDERS:
        for candidate in finder(first, fetch):
            yield _signalled(candidate, first, flag)
    yield Candidate(NoPagination(type="none"), "no paging hint in the response")


def _signalled(candidate: Candidate, first: FirstPage, flag: str | None) -> Candidate:
    """The guess with `in: body` when the values go in the body, and `has_more_path` when the page
    states a flag; validated again, so the options read as set (and printed) like the others."""
    if not isinstance(candidate.config, SentPagination) or (first.location == "query" and flag is None):
        return candidate
    options = candidate.config.model_dump(exclude_unset=True, by_alias=True)
    if first.location == "body":
        options["in"] = "body"
    how = candidate.how
    if flag is not None:
        options["has_more_path"] = flag
        how = f"{how}; '{flag}' says whether more pages follow"
    config = type(candidate.config).model_validate(options)
    return Candidate(config, how, candidate.owned_params)
