"""Auth objects against the stub server: what arrives on the wire, token caching, failures without secrets."""
from __future__ import annotations

import base64
import threading
from collections import namedtuple
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from shared.config import models as cfg
from shared.errors import ExtractError, FetchError
from shared.extract.auth import (
    ApiKeyHeaderAuth,
    ApiKeyQueryAuth,
    AzureTokenAuth,
    BasicAuth,
    BearerTokenAuth,
    OAuth2ClientCredentialsAuth,
    build_auth,
)
from tests.helpers.http_stub import FakeTime, Reply, Seen, StubServer

AccessToken = namedtuple("AccessToken", "token expires_on")   # the shape of azure.core.credentials.AccessToken
SECRET = "s3cr3t/+&= value"


def get(server: StubServer, auth, path: str = "/data", **params) -> Seen:
    with requests.Session() as session:
        assert session.get(server.url(path), params=params, auth=auth, timeout=5).status_code == 200
    return server.seen(path)[-1]


@pytest.fixture
def server():
    with StubServer() as stub:
        yield stub


def test_none():
    assert build_auth(cfg.NoAuth(type="none"), requests.Session()) is None


def test_bearer(server):
    auth = build_auth(cfg.BearerAuth(type="bearer", token="abc"), requests.Session())
    assert isinstance(auth, BearerTokenAuth)
    assert get(server, auth).headers["Authorization"] == "Bearer abc"


def test_api_key_header(server):
    auth = build_auth(cfg.ApiKeyAuth(type="api_key", name="X-API-Key", value="k1"), requests.Session())
    assert isinstance(auth, ApiKeyHeaderAuth)
    seen = get(server, auth)
    assert seen.headers["X-API-Key"] == "k1"
    assert "k1" not in seen.target


def test_api_key_query_is_encoded_and_keeps_other_params(server):
    auth = build_auth(cfg.ApiKeyAuth(type="api_key", name="api_key", value=SECRET, location="query"),
                      requests.Session())
    assert isinstance(auth, ApiKeyQueryAuth)
    seen = get(server, auth, page=2, q="a b")
    assert seen.query == {"page": ["2"], "q": ["a b"], "api_key": [SECRET]}
    assert SECRET not in seen.target           # percent-encoded on the wire
    assert auth.redact(f"bad key {SECRET} in /data?api_key={requests.utils.quote(SECRET, safe='')}") \
        == "bad key *** in /data?api_key=***"


def test_api_key_alias_in():
    auth = build_auth(cfg.ApiKeyAuth.model_validate({"type": "api_key", "name": "k", "value": "v", "in": "query"}),
                      requests.Session())
    assert isinstance(auth, ApiKeyQueryAuth)


def test_basic(server):
    auth = build_auth(cfg.BasicAuth(type="basic", username="ann", password="pw:1"), requests.Session())
    assert isinstance(auth, BasicAuth)
    header = get(server, auth).headers["Authorization"]
    assert base64.b64decode(header.removeprefix("Basic ")) == b"ann:pw:1"


# ---------------------------------------------------------------- OAuth2 client credentials
class TokenEndpoint:
    """Hands out tok1, tok2, ... on POST /token; anything else is a 200 data response."""

    def __init__(self, expires_in=3600):
        self.expires_in, self.issued = expires_in, 0
        self.lock = threading.Lock()

    def __call__(self, seen: Seen) -> Reply:
        if seen.path != "/token":
            return Reply(200, {"ok": True})
        with self.lock:
            self.issued += 1
            return Reply(200, {"access_token": f"tok{self.issued}", "token_type": "Bearer",
                               "expires_in": self.expires_in})


def oauth(server, scope="api://x/.default", clock=None):
    config = cfg.OAuth2ClientCredentials(type="oauth2_client_credentials", token_url=server.url("/token"),
                                         client_id="cid", client_secret=SECRET, scope=scope)
    session = requests.Session()
    if clock is None:
        return build_auth(config, session)
    return OAuth2ClientCredentialsAuth(config, session, clock=clock)


def test_oauth2_posts_the_form_and_sends_the_token():
    with StubServer(handler=TokenEndpoint()) as server:
        auth = oauth(server)
        assert isinstance(auth, OAuth2ClientCredentialsAuth)
        assert get(server, auth).headers["Authorization"] == "Bearer tok1"
        (token_call,) = server.seen("/token")
        assert token_call.method == "POST"
        assert token_call.form() == {"grant_type": "client_credentials", "client_id": "cid",
                                     "client_secret": SECRET, "scope": "api://x/.default"}


def test_oauth2_leaves_out_an_unset_scope():
    with StubServer(handler=TokenEndpoint()) as server:
        get(server, oauth(server, scope=None))
        assert "scope" not in server.seen("/token")[0].form()


def test_oauth2_caches_until_a_minute_before_expiry():
    fake = FakeTime()
    with StubServer(handler=TokenEndpoint(expires_in=3600)) as server:
        auth = oauth(server, clock=fake.clock)
        for _ in range(3):
            assert get(server, auth).headers["Authorization"] == "Bearer tok1"
        fake.advance(3600 - 61)
        assert get(server, auth).headers["Authorization"] == "Bearer tok1"
        fake.advance(2)
        assert get(server, auth).headers["Authorization"] == "Bearer tok2"
        assert len(server.seen("/token")) == 2


def test_oauth2_short_lived_token_is_kept_for_half_its_life():
    fake = FakeTime()
    with StubServer(handler=TokenEndpoint(expires_in="30")) as server:   # a string, as some servers send
        auth = oauth(server, clock=fake.clock)
        get(server, auth), get(server, auth)
        fake.advance(16)
        assert get(server, auth).headers["Authorization"] == "Bearer tok2"


def test_oauth2_invalidate_only_drops_the_current_token():
    with StubServer(handler=TokenEndpoint()) as server:
        auth = oauth(server)
        assert auth.token() == "tok1"
        auth.invalidate("some-older-token")
        assert auth.token() == "tok1"
        auth.invalidate("tok1")
        assert auth.token() == "tok2"
        auth.invalidate()
        assert auth.token() == "tok3"


def test_oauth2_one_fetch_for_many_threads():
    with StubServer(handler=TokenEndpoint()) as server:
        auth = oauth(server)
        with ThreadPoolExecutor(8) as pool:
            tokens = set(pool.map(lambda _: auth.token(), range(40)))
        assert tokens == {"tok1"} and len(server.seen("/token")) == 1


def test_oauth2_rejection_names_url_and_status_but_not_the_secret():
    body = {"error": "invalid_client", "error_description": f"secret {SECRET} is wrong"}
    with StubServer(default=Reply(401, body)) as server:
        with pytest.raises(FetchError) as caught:
            get(server, oauth(server))
    message = str(caught.value)
    assert server.url("/token") in message and "401" in message and "is wrong" in message
    assert SECRET not in message and "s3cr3t" not in message
    assert caught.value.status == 401


@pytest.mark.parametrize("reply, reason", [
    (Reply(200, {"token_type": "Bearer"}), "no access_token"),
    (Reply(200, "<html>login</html>"), "no access_token"),
    (Reply(drop=True), "token request failed: ConnectionError"),
])
def test_oauth2_unusable_token_responses(reply, reason):
    with StubServer(default=reply) as server:
        with pytest.raises(FetchError, match=reason) as caught:
            oauth(server).token()
    assert "s3cr3t" not in str(caught.value)


# ---------------------------------------------------------------- Azure
class FakeCredential:
    def __init__(self, clock, lifetime=3600.0):
        self.clock, self.lifetime, self.calls, self.scopes = clock, lifetime, 0, []
        self.lock = threading.Lock()

    def get_token(self, *scopes):
        with self.lock:
            self.calls += 1
            self.scopes.append(scopes)
            return AccessToken(f"az{self.calls}", int(self.clock() + self.lifetime))


def test_azure_is_lazy():
    auth = build_auth(cfg.AzureAuth(type="azure"), requests.Session())
    assert isinstance(auth, AzureTokenAuth) and auth._credential is None   # nothing probed yet


def test_azure_one_call_for_many_requests_across_threads(server):
    fake = FakeTime(start=1_700_000_000.0)
    credential = FakeCredential(fake.clock)
    auth = AzureTokenAuth("https://vault.azure.net/.default", credential, clock=fake.clock)
    with ThreadPoolExecutor(16) as pool:
        headers = list(pool.map(lambda _: get(server, auth).headers["Authorization"], range(48)))
    assert set(headers) == {"Bearer az1"}
    assert credential.calls == 1 and credential.scopes == [("https://vault.azure.net/.default",)]


def test_azure_refreshes_five_minutes_before_expiry():
    fake = FakeTime(start=1_700_000_000.0)
    credential = FakeCredential(fake.clock)
    auth = build_auth(cfg.AzureAuth(type="azure"), requests.Session(), azure_credential=credential)
    auth._clock = fake.clock   # build_auth keeps the wall clock; the test needs to move it
    assert auth.token() == "az1"
    fake.advance(3600 - 301)
    assert auth.token() == "az1"
    fake.advance(2)
    assert auth.token() == "az2"


def test_azure_credential_failure_is_an_extract_error():
    class Broken:
        def get_token(self, *scopes):
            raise RuntimeError("DefaultAzureCredential failed to retrieve a token\nlong details...")

    with pytest.raises(ExtractError, match="Azure token for scope s/.default: DefaultAzureCredential failed"):
        AzureTokenAuth("s/.default", Broken()).token()
