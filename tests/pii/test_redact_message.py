"""`shared/detect/redact_message.py`: the one gate between data and diagnostics."""
from __future__ import annotations

from shared.detect.redact_message import safe_excerpt, safe_url, scrub_message, scrub_strings


def test_safe_url_keeps_host_path_and_query_names_only() -> None:
    url = "https://user:pw@api.example.com:8443/v1/people/ann@example.com?email=bob@example.org&page=2&page=3#frag"
    assert safe_url(url) == "https://api.example.com:8443/v1/people/[EMAIL]?email=…&page=…"


def test_scrub_message_reduces_urls_and_scrubs_the_rest() -> None:
    text = ("GET http://10.1.2.3:80/x?token=abc failed: HTTP 400 (customer jane@doe.org, IBAN "
            "DE89370400440532013000, card 4111 1111 1111 1111, phone +44 20 7946 0958).")
    assert scrub_message(text) == ("GET http://10.1.2.3:80/x?token=… failed: HTTP 400 (customer [EMAIL], IBAN [IBAN], "
                                   "card [CARD], phone [PHONE]).")


def test_an_excerpt_is_scrubbed_before_it_is_cut() -> None:
    text = "x" * 110 + " person@example.com and more"
    excerpt = safe_excerpt(text, 120)
    assert len(excerpt) <= 120 and "person" not in excerpt


def test_a_long_message_is_cut_between_words_so_no_half_value_survives() -> None:
    text = "a " * 999 + "someone@example.com" * 3
    assert "someone" not in scrub_message(text)


def test_scrub_strings_walks_summaries_and_leaves_identifiers() -> None:
    summary = {"models": [{"model": "shop.people", "error": "key (ann@example.com) exists", "records": 3,
                           "started": "2024-05-01T12:00:00+00:00"}]}
    assert scrub_strings(summary) == {"models": [{"model": "shop.people", "error": "key ([EMAIL]) exists", "records": 3,
                                                  "started": "2024-05-01T12:00:00+00:00"}]}
