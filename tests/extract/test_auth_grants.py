"""Auth that fetches its own token (issue 14 §5): client credentials sent with HTTP Basic, the
refresh-token grant with rotation kept in the state folder under a lock (never one refresh token
burnt twice, across instances), and a login session re-opened once on a 401."""
from __future__ import annotations

import base64
import stat
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from shared.config import models as cfg
from shared.config.auth_types import OAuth2RefreshToken, SessionAuth
from shared.errors import FetchError
from shared.extract.auth import OAuth2ClientCredentialsAuth
from shared.extract.http_client import HttpClient
from shared.extract.refresh_token import FileTokenStore, OAuth2RefreshTokenAuth, seed_of
from shared.extract.session_auth import SessionTokenAuth
from shared.extract.types import PageRequest
from tests.helpers.http_stub import Reply, StubServer
from tests.helpers.oauth import CLIENT_ID, CLIENT_SECRET, FIRST_REFRESH, LoginApi, RotatingOAuthServer


# ---------------------------------------------------------------- client credentials
@pytest.mark.parametrize("method", ["client_secret_post", "client_secret_basic"])
def test_client_credentials_authenticate_in_the_form_or_with_basic(method):
    with StubServer([Reply(200, {"access_token": "tok", "expires_in": 60})]) as server:
        config = cfg.OAuth2ClientCredentials(type="oauth2_client_credentials", token_url=server.url("/token"),
                                             client_id=CLIENT_ID, client_secret=CLIENT_SECRET, auth_method=method)
        assert OAuth2ClientCredentialsAuth(config, requests.Session()).token() == "tok"
    seen = server.seen()[0]
    form = seen.form()
    assert form["grant_type"] == "client_credentials"
    if method == "client_secret_post":
        assert (form["client_id"], form["client_secret"]) == (CLIENT_ID, CLIENT_SECRET)
        assert "Authorization" not in seen.headers
    else:   # RFC 6749 §2.3.1: each part form-encoded, then Basic
        assert "client_secret" not in form and "client_id" not in form
        encoded = base64.b64encode(b"kspyder-client:s3cret%2F%2B%26%3D").decode()
        assert seen.headers["Authorization"] == f"Basic {encoded}"


def test_auth_method_defaults_to_the_form_as_before():
    config = cfg.OAuth2ClientCredentials(type="oauth2_client_credentials", token_url="http://x/t", client_id="a",
                                         client_secret="b")
    assert config.auth_method == "client_secret_post"


# ---------------------------------------------------------------- refresh tokens with rotation
def refresh_config(url: str, refresh: str = FIRST_REFRESH, method: str = "client_secret_basic") -> OAuth2RefreshToken:
    return OAuth2RefreshToken(type="oauth2_refresh_token", token_url=url, client_id=CLIENT_ID,
                              client_secret=CLIENT_SECRET, refresh_token=refresh, auth_method=method)


def instance(url: str, path: Path, refresh: str = FIRST_REFRESH) -> OAuth2RefreshTokenAuth:
    """One process's auth: its own object and file handles, the state file shared."""
    return OAuth2RefreshTokenAuth(refresh_config(url, refresh), requests.Session(), FileTokenStore(path, refresh))


def test_the_rotated_refresh_token_is_saved_0600_and_used_by_the_next_run(tmp_path):
    oauth = RotatingOAuthServer()
    path = tmp_path / "tokens" / "crm.json"
    with StubServer(handler=oauth) as server:
        first = instance(server.url("/oauth/token"), path)
        token = first.token()
        saved = FileTokenStore(path).read()
        assert saved is not None and saved["refresh_token"] in oauth.refresh_tokens
        assert saved["refresh_token"] != FIRST_REFRESH and saved["access_token"] == token
        assert saved["seed"] == seed_of(FIRST_REFRESH) and FIRST_REFRESH not in path.read_text()
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        # the next run takes the saved access token; refused, it refreshes with the saved refresh token
        second = instance(server.url("/oauth/token"), path)
        assert second.token() == token and oauth.grants == 1
        oauth.access_tokens.clear()
        second.invalidate(token)
        assert second.token() != token
    assert oauth.grants == 2 and oauth.reuses == 0


def test_instances_refreshing_together_never_burn_the_same_refresh_token(tmp_path):
    oauth = RotatingOAuthServer()
    path = tmp_path / "tokens" / "crm.json"
    with StubServer(handler=oauth) as server:
        url = server.url("/oauth/token")
        instances = [instance(url, path) for _ in range(8)]
        barrier = threading.Barrier(len(instances))

        def take(auth: OAuth2RefreshTokenAuth) -> str:
            barrier.wait()
            return auth.token()

        with ThreadPoolExecutor(len(instances)) as pool:
            tokens = set(pool.map(take, instances))
        assert len(tokens) == 1 and oauth.grants == 1   # one refreshed; the others read its access token
        oauth.access_tokens.clear()                      # the token is revoked: every instance meets a 401
        for auth in instances:
            auth.invalidate(auth.token())
        barrier.reset()
        with ThreadPoolExecutor(len(instances)) as pool:
            fresh = set(pool.map(take, instances))
    assert len(fresh) == 1 and fresh.isdisjoint(tokens)
    assert oauth.grants == 2 and oauth.reuses == 0 and not oauth.revoked


def test_a_new_refresh_token_in_the_manifest_starts_over_from_it(tmp_path):
    oauth = RotatingOAuthServer()
    path = tmp_path / "crm.json"
    with StubServer(handler=oauth) as server:
        instance(server.url("/oauth/token"), path).token()
        oauth.refresh_tokens.add("rt-authorized-again")
        oauth.access_tokens.clear()
        again = instance(server.url("/oauth/token"), path, "rt-authorized-again")
        again.token()
        saved = FileTokenStore(path).read()
    assert saved is not None and saved["seed"] == seed_of("rt-authorized-again") and oauth.grants == 2


def test_a_refused_refresh_names_the_endpoint_never_a_token(tmp_path):
    with StubServer(handler=RotatingOAuthServer()) as server:
        auth = instance(server.url("/oauth/token"), tmp_path / "crm.json", "rt-unknown-token-123")
        with pytest.raises(FetchError) as caught:
            auth.token()
    message = str(caught.value)
    assert "HTTP 400" in message and "rt-unknown-token-123" not in message and CLIENT_SECRET not in message


def test_a_401_refreshes_once_through_the_client(tmp_path):
    oauth = RotatingOAuthServer()
    with StubServer(handler=oauth) as server:
        auth = instance(server.url("/oauth/token"), tmp_path / "crm.json")
        http = HttpClient(source="s", throttle=cfg.Throttle(max_retries=0), auth=auth)
        assert http.fetch(PageRequest(server.url("/items"))).body["items"][0] == {"id": 1}
        oauth.access_tokens.clear()
        assert http.fetch(PageRequest(server.url("/items"))).status == 200
    assert oauth.grants == 2 and http.stats.retries == 1


# ---------------------------------------------------------------- login sessions
def session_config(**login) -> SessionAuth:
    return SessionAuth.model_validate({"type": "session", "login": {"path": "/auth/login", **login}})


def test_a_session_logs_in_once_and_sends_the_body_token_until_it_expires():
    api = LoginApi()
    with StubServer(handler=api) as server:
        auth = SessionTokenAuth(session_config(json={"user": "etl", "password": "pa55word!"}, token_path="data.token",
                                               expires_in_path="data.expires"), requests.Session(), server.url(""))
        http = HttpClient(source="s", throttle=cfg.Throttle(), auth=auth)
        for _ in range(3):
            http.fetch(PageRequest(server.url("/items")))
    assert api.logins == 1 and auth._refresh_at == pytest.approx(auth._clock() + 900 - 60, abs=5)
    assert [s.headers["Authorization"] for s in server.seen("/items")] == ["Bearer session-1"] * 3


def test_a_session_token_from_a_header_is_sent_in_the_header_named_and_a_401_logs_in_again_once():
    api = LoginApi()
    with StubServer(handler=api) as server:
        config = SessionAuth.model_validate({"type": "session", "header": "X-Auth-Token", "prefix": "",
                                             "login": {"path": "/auth/login", "token_header": "X-Session", "ttl": 60,
                                                       "form": {"user": "etl", "password": "pa55word!"}}})
        auth = SessionTokenAuth(config, requests.Session(), server.url(""))
        http = HttpClient(source="s", throttle=cfg.Throttle(max_retries=0), auth=auth)
        http.fetch(PageRequest(server.url("/items")))
        api.valid = set()   # the server ended the session: one new login, and on
        http.fetch(PageRequest(server.url("/items")))
        api.refuse = True   # a server refusing every session: one new login, then the failure, never a loop
        with pytest.raises(FetchError, match="HTTP 401"):
            http.fetch(PageRequest(server.url("/items")))
    assert api.logins == 3
    assert [s.headers["X-Auth-Token"] for s in server.seen("/items")] == ["session-1", "session-1", "session-2",
                                                                          "session-2", "session-3"]


def test_a_refused_login_never_shows_the_credentials():
    with StubServer(handler=LoginApi()) as server:
        auth = SessionTokenAuth(session_config(json={"user": "etl-user", "password": "wrong-password"},
                                               token_path="data.token"), requests.Session(), server.url(""))
        with pytest.raises(FetchError) as caught:
            auth.token()
    assert "HTTP 401" in str(caught.value) and "wrong-password" not in str(caught.value)
    assert "etl-user" not in str(caught.value)


def test_a_public_client_names_itself_in_the_form_whatever_the_auth_method(tmp_path):
    with StubServer([Reply(200, {"access_token": "tok", "refresh_token": "rt-next"})]) as server:
        config = OAuth2RefreshToken(type="oauth2_refresh_token", token_url=server.url("/token"), client_id="public-app",
                                    refresh_token="rt-first", auth_method="client_secret_basic")
        auth = OAuth2RefreshTokenAuth(config, requests.Session(), FileTokenStore(tmp_path / "t.json", "rt-first"))
        assert auth.token() == "tok"
    seen = server.seen()[0]
    assert seen.form() == {"grant_type": "refresh_token", "refresh_token": "rt-first", "client_id": "public-app"}
    assert "Authorization" not in seen.headers
