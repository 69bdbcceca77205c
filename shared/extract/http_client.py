"""The throttled, retrying HTTP client every API source fetches through.

The retry loop is written out rather than built on `tenacity.Retrying`: the wait after a
failure depends on the response (Retry-After, which also pauses sibling threads), a 401 earns
one token refresh outside the retry budget, a 429 may raise instead of sleeping, and the final
error must carry the last status and attempt count. Each of those is a line here; with tenacity
they become callbacks reading state smuggled through exceptions, harder to follow and no shorter.
"""
from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable
from urllib.parse import urljoin, urlsplit, urlunsplit

import requests
import requests.exceptions as rex

from shared.config.models import Throttle
from shared.detect.redact_message import safe_excerpt, safe_url
from shared.errors import FetchError, RateLimited
from shared.extract.body_formats import decode_json
from shared.extract.limits import Deadline, DeadlineAdapter, LimitExceeded, read_body
from shared.extract.origins import OriginPolicy
from shared.extract.origins import origin as _origin
from shared.extract.paginators.paths import MISSING
from shared.extract.quota import QuotaGate, read_policy, read_quota
from shared.extract.request_body import body_arguments
from shared.extract.responses import Outcome, ResponseRules
from shared.extract.retry import (
    MAX_RETRY_AFTER,
    RETRY_AFTER_STATUSES,
    backoff_delay,
    classify,
    describe_exception,
    is_rate_limited,
    server_wait,
    short_reason,
    unsent,
)
from shared.extract.throttle import ConcurrencyLimit, TokenBucket
from shared.extract.types import PageRequest, PageResponse

if TYPE_CHECKING:
    from requests.sessions import _Settings

log = logging.getLogger("kspyder.http")


class _HideQueryStrings(logging.Filter):
    """urllib3 logs every request line at DEBUG, query string and therefore any api_key included;
    a verbose run must not print keys, so its records lose everything after the '?'."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(a.split("?", 1)[0] + "?..." if isinstance(a, str) and "?" in a else a
                                for a in record.args)
        return True


logging.getLogger("urllib3.connectionpool").addFilter(_HideQueryStrings())

DEFAULT_HEADERS = {"Accept": "application/json"}
MAX_REDIRECTS = 10      # requests' own limit is 30; an API redirecting ten times is broken
LONG_WAIT = 5.0         # waits from this many seconds up are logged at INFO, the default level
# A POST or PUT the manifest does not call idempotent is sent once: after a 5xx or a timeout the server
# may have acted on it. A rate limit (429) or a connection never made is retried: nothing was processed.
NOT_REPEATED = ("; not sent again: the server may have processed this {method} "
                "(set idempotent: true on the model if repeating it is safe)")


class FetchStats:
    """Counters for the run summary, shared by the client's threads.
    `requests` counts HTTP attempts, `retries` the repeated ones, `throttled` the 429s received,
    `errors` the fetches that failed for good, `bytes` the response bodies received."""

    FIELDS = ("requests", "retries", "throttled", "errors", "bytes")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts = dict.fromkeys(self.FIELDS, 0)

    def add(self, name: str, amount: int = 1) -> None:
        if name not in self._counts:
            raise KeyError(f"unknown counter {name!r}; known: {', '.join(self.FIELDS)}")
        with self._lock:
            self._counts[name] += amount

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)

    def __getattr__(self, name: str) -> int:
        if name in FetchStats.FIELDS:
            return self.snapshot()[name]
        raise AttributeError(name)


class HttpClient:
    """One per source run. `sleep` and `clock` are injectable for tests and must agree: a fake
    sleep has to advance the fake clock, or a paused token bucket would wait forever."""

    def __init__(self, *, source: str, throttle: Throttle, auth: requests.auth.AuthBase | None = None,
                 headers: Mapping[str, str] | None = None, on_rate_limit: Literal["wait", "raise"] = "wait",
                 session: requests.Session | None = None, rng: random.Random | None = None,
                 sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic,
                 auth_origin: str | None = None, allowed_origins: Iterable[str] = (),
                 secret_headers: Iterable[str] = (), quota: QuotaGate | None = None):
        if on_rate_limit not in ("wait", "raise"):
            raise ValueError(f"on_rate_limit must be 'wait' or 'raise', not {on_rate_limit!r}")
        self.source, self.throttle, self.auth, self.on_rate_limit = source, throttle, auth, on_rate_limit
        self.headers = {**DEFAULT_HEADERS, **(headers or {})}
        self.session = session or requests.Session()
        # retries are ours (max_retries=0); the pool holds one connection per concurrent attempt
        adapter = DeadlineAdapter(pool_connections=4, pool_maxsize=throttle.concurrency, max_retries=0)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.bucket = TokenBucket(throttle.rate, throttle.burst, clock=clock, sleep=sleep)
        self.slots = ConcurrencyLimit(throttle.concurrency)
        # the server's announced quota, shared by the client's threads (and, given, by other clients)
        self.quota = quota or QuotaGate(clock)
        self.stats = FetchStats()
        self._rng = rng or random.Random()   # noqa: S311 - backoff jitter, not a secret
        self._rng_lock = threading.Lock()
        self._sleep, self._clock = sleep, clock
        self._redact: Callable[[str], str] = getattr(auth, "redact", None) or (lambda text: text)
        # A next link or a redirect may point at another host; the source's credentials (auth, and
        # headers from ${VAR}) go to its own origin and those it lists, never elsewhere.
        self.origins = OriginPolicy(auth_origin, allowed_origins, secret_headers)
        self._env_settings: dict[tuple[str, str], _Settings] = {}

    def fetch(self, request: PageRequest, rules: ResponseRules | None = None) -> PageResponse:
        """The page `request` asks for; `rules`: the model's `responses:`, asked before the status is."""
        try:
            return self._fetch(request, rules)
        except FetchError:
            self.stats.add("errors")
            raise

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> HttpClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ------------------------------------------------------------ the retry loop
    def _fetch(self, request: PageRequest, rules: ResponseRules | None) -> PageResponse:
        started = self._clock()
        prepared = self._prepare(request)
        url = self._safe_url(_url_of(prepared))   # before auth: an api_key in the query never gets in
        method = request.method
        attempt, retries, refreshed = 0, 0, False
        while True:
            attempt += 1
            sent, response, error = self._attempt(prepared, url, method)
            status = response.status_code if response is not None else None
            outcome: Outcome | None = None
            body: Any = MISSING
            if rules and response is not None:
                outcome, body = rules.match(response.status_code, response.headers, response.content)
            if outcome is not None and response is not None:
                if outcome.kind == "empty":
                    return PageResponse(url, response.status_code, response.headers, None, b"",
                                        self._clock() - started, empty=True)
                if outcome.kind == "fail":
                    raise FetchError(url, status, outcome.reason, attempt, method)
                limited, verdict = outcome.kind == "rate_limited", "retry"
            else:
                limited = response is not None and is_rate_limited(status, response.headers, response.content)
                verdict = "retry" if limited else classify(status, error)
            if verdict == "ok" and response is not None:   # "ok" is a 2xx status: there is a response
                return self._decode(url, response, started, method, body)
            if error is not None:
                reason = describe_exception(error)
            elif outcome is not None:
                reason = outcome.reason
            elif response is not None:
                reason = self._redact(short_reason(response))
            else:   # _attempt returns a response or an error (and classify refuses neither)
                raise FetchError(url, status, "no response and no error", attempt, method)
            if status == 401 and not refreshed and isinstance(self.auth, _RefreshableAuth):
                refreshed = True   # a stale token: refresh once, outside the retry budget
                self.auth.invalidate(self.auth.sent_token(sent))
                self.stats.add("retries")
                log.debug("%s %s: HTTP 401, refreshing the token and retrying", method, safe_url(url))
                continue
            retry_after = None
            if response is not None and (limited or status in RETRY_AFTER_STATUSES):
                retry_after = server_wait(response.headers, datetime.now(UTC), limited)
            if retry_after is not None and retry_after > self.throttle.max_backoff:
                asked = "over a hundred years" if retry_after >= MAX_RETRY_AFTER else f"{retry_after:.0f}s"
                raise FetchError(url, status, f"the server asks to wait {asked} before retrying, more than "
                                 f"throttle.max_backoff={self.throttle.max_backoff:g}s (raise it to wait)", attempt,
                                 method)
            if limited:
                self.stats.add("throttled")
                self.bucket.slow_down()
                if self.on_rate_limit == "raise":
                    delay = retry_after if retry_after is not None else max(self.throttle.backoff, 1.0)
                    self.bucket.pause_until(self._clock() + delay)
                    raise RateLimited(url, delay, method)
            if verdict == "fatal":
                raise FetchError(url, status, reason, attempt, method)
            if not (request.idempotent or limited or unsent(error)):   # it may have been processed
                raise FetchError(url, status, reason, attempt, method, NOT_REPEATED.format(method=method))
            if retries >= self.throttle.max_retries:
                raise FetchError(url, status, f"gave up: {reason}", attempt, method)
            retries += 1
            self.stats.add("retries")
            if retry_after is not None:
                wait = retry_after
                self.bucket.pause_until(self._clock() + wait)   # the whole source waits, not just us
            else:
                with self._rng_lock:
                    wait = backoff_delay(retries, self.throttle.backoff, self.throttle.max_backoff, self._rng)
            log.log(logging.INFO if wait >= LONG_WAIT else logging.DEBUG, "%s %s: %s, retry %d/%d in %.2fs%s",
                    method, safe_url(url), f"HTTP {status}" if status else safe_excerpt(reason), retries,
                    self.throttle.max_retries, wait, " (as the server asked)" if retry_after is not None else "")
            self._sleep(wait)
            if limited:
                self.quota.waited()

    def _prepare(self, request: PageRequest) -> requests.PreparedRequest:
        """Built without `Session.prepare_request`, which merges session hooks and reads ~/.netrc on
        every call (auth here is always explicit); the session's cookies are still sent."""
        headers = {**self.session.headers, **self.headers, **request.headers}
        prepared = requests.Request(request.method, request.url, params=request.params, headers=headers,
                                    **body_arguments(request.body)).prepare()
        if self.session.cookies:
            prepared.prepare_cookies(self.session.cookies)
        return prepared

    def _attempt(self, prepared: requests.PreparedRequest, url: str, method: str
                 ) -> tuple[requests.PreparedRequest, requests.Response | None, BaseException | None]:
        """One HTTP exchange under the rate and concurrency limits and within `timeout` (redirects
        included), returning what was last sent (with auth) and what came back. The body is read
        inside the slot: a slow download is in flight."""
        with self.slots.slot():
            # the token is taken inside the slot: taken before, it could wait out a slow response
            # and go out together with others, a burst over the rate by up to `concurrency`
            self.bucket.acquire()
            ticket = self._quota_ticket(url, method)
            self.stats.add("requests")
            with Deadline(self.throttle.timeout) as deadline:
                sent, response, error = self._send(prepared, deadline)
                if response is not None:
                    self.quota.observe(ticket, read_quota(response.headers, time.time()))
                    policy = read_policy(response.headers)
                    if policy is not None:
                        self.bucket.limit_to(policy)
                    try:
                        read_body(response, BODY_CHUNK, self.throttle.max_response_mb)
                    except (requests.RequestException, LimitExceeded) as exc:
                        response.close()
                        return sent, None, deadline.error(exc)
                    if deadline.expired:   # a body cut short without a length to tell
                        response.close()
                        return sent, None, deadline.exceeded()
        if error is not None or response is None:
            return sent, None, error
        self.stats.add("bytes", len(response.content))
        return sent, response, None

    def _quota_ticket(self, url: str, method: str) -> int:
        """Wait while the server's announced quota is spent (the 429 it would answer is not sent):
        the whole source waits, as after a 429; in "raise" mode the caller reschedules instead."""
        while True:
            ticket, wait = self.quota.take()
            if not wait:
                return ticket
            if wait > self.throttle.max_backoff:
                raise FetchError(url, None, f"the server's rate limit resets in {wait:.0f}s, more than "
                                 f"throttle.max_backoff={self.throttle.max_backoff:g}s (raise it to wait)", 1, method)
            if self.on_rate_limit == "raise":
                raise RateLimited(url, wait, method)
            self.bucket.pause_until(self._clock() + wait)
            log.log(logging.INFO if wait >= LONG_WAIT else logging.DEBUG,
                    "%s %s: the server's rate limit is spent, waiting %.2fs for its reset", method, safe_url(url), wait)
            self._sleep(wait)

    def _send(self, prepared: requests.PreparedRequest, deadline: Deadline
              ) -> tuple[requests.PreparedRequest, requests.Response | None, BaseException | None]:
        """Send, following redirects here rather than in requests, so that each hop's credentials
        are decided on the URL it goes to (requests checks only the first URL for auth, and keeps
        every header but Authorization)."""
        first_url, hop = _url_of(prepared), prepared
        for _ in range(MAX_REDIRECTS + 1):
            sent = self._credentials_for(hop, first_url)
            settings = self._environment_settings(_url_of(sent))
            try:
                response = self.session.send(sent, timeout=self.throttle.timeout, allow_redirects=False,
                                             proxies=settings["proxies"], stream=True,
                                             verify=settings["verify"], cert=settings["cert"])
            except requests.RequestException as exc:
                return sent, None, deadline.error(exc)
            target = self.session.get_redirect_target(response)
            if target is None:
                return sent, response, None
            response.close()   # the redirect's own body is not wanted
            hop = prepared.copy()
            hop.prepare_url(urljoin(response.url, target), None)
            hop.headers.pop("Cookie", None)   # the jar's cookies for the new URL, not the old one's
            hop.prepare_cookies(self.session.cookies)
        return sent, None, rex.TooManyRedirects(f"more than {MAX_REDIRECTS} redirects")

    def _credentials_for(self, prepared: requests.PreparedRequest, first_url: str) -> requests.PreparedRequest:
        """A copy of the request with the source's credentials when its URL's origin is trusted,
        and without any (auth nor secret headers) otherwise."""
        attempt = prepared.copy()
        if not self.origins.trusts(_url_of(attempt), first_url):
            return self.origins.strip(attempt)
        if self.auth is not None:
            attempt = self.auth(attempt)   # per attempt: a refreshed token must reach the retry
        return attempt

    def _environment_settings(self, url: str) -> _Settings:
        """Proxy and CA settings from the environment, read once per origin: requests would walk
        the whole environment on every request, a visible cost at thousands of pages per second."""
        key = _origin(url)
        settings = self._env_settings.get(key)
        if settings is None:
            settings = self._env_settings[key] = self.session.merge_environment_settings(url, {}, None, None, None)
        return settings

    def _decode(self, url: str, response: requests.Response, started: float, method: str,
                body: Any = MISSING) -> PageResponse:
        """The page, its body decoded on first use (or already, by a response rule: `body`)."""
        content = response.content
        status = response.status_code
        if status == 204 and not content.strip():
            return PageResponse(url, status, response.headers, None, content, self._clock() - started)
        if body is not MISSING:
            return PageResponse(url, status, response.headers, body, content, self._clock() - started)

        def decode(raw: bytes) -> Any:
            return decode_json(raw, url, status, method)

        return PageResponse(url, status, response.headers, content=content, elapsed=self._clock() - started,
                            decode=decode)

    def _safe_url(self, url: str) -> str:
        """The URL as errors and logs show it: no user:password@, and no secret the auth knows."""
        parts = urlsplit(url)
        if "@" in parts.netloc:
            parts = parts._replace(netloc=parts.netloc.rsplit("@", 1)[1])
        return self._redact(urlunsplit(parts))


# requests reads a body in 10 KiB pieces (`Response.content`), and every piece takes the interpreter
# lock again after its socket read; while the run's thread is busy that wait is a switch interval
# each time (docs/benchmarks.md). Read in pieces this large a page takes a few.
BODY_CHUNK = 1 << 20


@runtime_checkable
class _RefreshableAuth(Protocol):
    """An auth whose token can go stale (OAuth2 client credentials, Azure): told which token a 401 refused."""

    def invalidate(self, token: str | None = None) -> None: ...

    def sent_token(self, prepared: requests.PreparedRequest) -> str | None: ...


def _url_of(prepared: requests.PreparedRequest) -> str:
    """`prepare()` always sets the URL; requests types it optional for a request not yet prepared."""
    if prepared.url is None:
        raise ValueError("the request has no URL: it was not prepared")
    return prepared.url

