"""Rotating refresh tokens and login sessions in both modes (issue 14 §5): the embedded run and the
queue chain (a client per Fetch invocation) share the state folder's refresh token, so the whole of
both runs takes one refresh grant and never presents a refresh token twice."""
from __future__ import annotations

from tests.helpers.http_stub import StubServer
from tests.helpers.oauth import (
    CLIENT_ID,
    CLIENT_SECRET,
    FIRST_REFRESH,
    PAGES,
    LoginApi,
    RotatingOAuthServer,
    build,
    paged,
)
from tests.helpers.parity import chained, embedded


def test_a_rotating_refresh_token_serves_both_modes_with_one_grant(tmp_path):
    oauth = RotatingOAuthServer()
    with StubServer(handler=paged(oauth)) as server:
        auth = {"type": "oauth2_refresh_token", "token_url": server.url("/oauth/token"), "client_id": CLIENT_ID,
                "client_secret": "${CRM_SECRET}", "refresh_token": "${CRM_REFRESH}",
                "auth_method": "client_secret_basic"}
        project = build(tmp_path, server.url(""), auth, {"CRM_SECRET": CLIENT_SECRET, "CRM_REFRESH": FIRST_REFRESH})
        tables, _, errors = embedded(project, tmp_path)
        chain_tables, _, chain_errors = chained(project, tmp_path)
    assert errors == chain_errors == {"crm.items": None}
    assert tables == chain_tables and len(tables["crm.items"]) == 3 * PAGES
    assert oauth.grants == 1 and oauth.reuses == 0
    saved = (tmp_path / "state" / "tokens" / "crm.json").read_text()
    assert FIRST_REFRESH not in saved and CLIENT_SECRET not in saved


def test_a_login_session_serves_both_modes(tmp_path):
    api = LoginApi()
    with StubServer(handler=paged(api)) as server:
        auth = {"type": "session", "login": {"path": "/auth/login", "json": {"user": "etl", "password": "${PASS}"},
                                             "token_path": "data.token", "expires_in_path": "data.expires"}}
        project = build(tmp_path, server.url(""), auth, {"PASS": "pa55word!"})
        tables, _, errors = embedded(project, tmp_path)
        logins = api.logins
        chain_tables, _, chain_errors = chained(project, tmp_path)
    assert errors == chain_errors == {"crm.items": None}
    assert tables == chain_tables and len(tables["crm.items"]) == 3 * PAGES
    assert logins == 1 and "pa55word!" in project.masker.secrets
