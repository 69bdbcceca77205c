"""Rotated refresh tokens written back to Key Vault (issue 14 §5) against an emulation of its REST
API: each version is claimed by one instance only (a conditional create in the chain's storage), so
instances refreshing together never send the same refresh token twice; the chain claims in its blobs."""
from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from shared.config.auth_types import OAuth2RefreshToken
from shared.errors import ExtractError, FetchError
from shared.extract.key_vault import CLAIMS, KeyVaultSecret, KeyVaultTokenStore
from shared.extract.refresh_token import OAuth2RefreshTokenAuth
from shared.storage import LocalBlobStore
from tests.helpers.http_stub import StubServer
from tests.helpers.key_vault import TOKEN as KV_TOKEN
from tests.helpers.key_vault import FakeCredential, KeyVaultApi
from tests.helpers.oauth import CLIENT_ID, CLIENT_SECRET, FIRST_REFRESH, RotatingOAuthServer, build, paged
from tests.helpers.parity import chained, embedded


class Both:
    """The authorization server and the vault on one loopback server."""

    def __init__(self) -> None:
        self.oauth, self.vault = RotatingOAuthServer(), KeyVaultApi()
        self.first = self.vault.seed("crm-refresh", FIRST_REFRESH)

    def __call__(self, seen):
        return (self.vault if seen.path.startswith("/secrets/") else paged(self.oauth))(seen)


def config(server: StubServer) -> OAuth2RefreshToken:
    return OAuth2RefreshToken(type="oauth2_refresh_token", token_url=server.url("/oauth/token"), client_id=CLIENT_ID,
                              client_secret=CLIENT_SECRET, refresh_token=FIRST_REFRESH,
                              key_vault_secret=server.url("/secrets/crm-refresh"))


def instance(server: StubServer, claims: LocalBlobStore, **store) -> OAuth2RefreshTokenAuth:
    """One instance: its own auth, vault client and access-token memory; the claims store shared."""
    secret = KeyVaultSecret(server.url("/secrets/crm-refresh"), FakeCredential())
    kept = KeyVaultTokenStore(secret, claims, sleep=lambda _: time.sleep(0.01), granted={}, **store)
    return OAuth2RefreshTokenAuth(config(server), requests.Session(), kept)


def versions(server: StubServer) -> list[tuple[str, str | None]]:
    """(version, its `kspyder-previous` tag) in creation order, read as an operator would: get-secret-versions."""
    listed = requests.get(server.url("/secrets/crm-refresh/versions"), params={"api-version": "7.4"},
                          headers={"Authorization": f"Bearer {KV_TOKEN}"}, timeout=10).json()["value"]
    return [(item["id"].rsplit("/", 1)[1], item["tags"].get("kspyder-previous")) for item in listed]


def test_the_rotated_token_is_written_back_as_the_next_version(tmp_path):
    both = Both()
    with StubServer(handler=both) as server:
        auth = instance(server, LocalBlobStore(tmp_path))
        token = auth.token()
    values = both.vault.values("crm-refresh")
    assert len(values) == 2 and values[0] == FIRST_REFRESH and values[1] in both.oauth.refresh_tokens
    assert both.oauth.grants == 1 and token in both.oauth.access_tokens
    versions = both.vault.secrets["crm-refresh"]
    assert versions[1]["tags"] == {"kspyder-previous": both.first}
    assert versions[1]["contentType"] == "application/vnd.kspyder.oauth2-refresh-token"
    assert LocalBlobStore(tmp_path).list(CLAIMS, "tokens/") != []


def test_instances_refreshing_together_each_claim_a_version_of_their_own(tmp_path):
    both = Both()
    claims = LocalBlobStore(tmp_path)
    with StubServer(handler=both) as server:
        instances = [instance(server, claims) for _ in range(6)]
        barrier = threading.Barrier(len(instances))

        def take(auth: OAuth2RefreshTokenAuth) -> str:
            barrier.wait()
            return auth.token()

        with ThreadPoolExecutor(len(instances)) as pool:
            tokens = list(pool.map(take, instances))
        chain = versions(server)
    assert len(set(tokens)) == 6 and both.oauth.grants == 6
    assert both.oauth.reuses == 0 and not both.oauth.revoked
    # every version replaced the one before it: none was refreshed from twice
    assert len(chain) == 7 and [previous for _, previous in chain] == [None] + [v for v, _ in chain[:-1]]


def test_a_version_claimed_by_an_instance_that_died_stops_the_others_with_what_to_do(tmp_path):
    both = Both()
    claims = LocalBlobStore(tmp_path)
    with StubServer(handler=both) as server:
        dead = KeyVaultTokenStore(KeyVaultSecret(server.url("/secrets/crm-refresh"), FakeCredential()), claims)
        claims.create(CLAIMS, dead.claim_name(both.first), b"{}")   # claimed, and nothing written after it
        with pytest.raises(ExtractError) as caught:
            instance(server, claims, wait=0.1).token()
    assert f"(version {both.first}) was claimed by another instance" in str(caught.value)
    assert "authorize again" in str(caught.value) and both.oauth.grants == 0


def test_one_process_refreshes_once_for_all_its_clients(tmp_path):
    both = Both()
    with StubServer(handler=both) as server:
        secret_url = server.url("/secrets/crm-refresh")
        granted: dict = {}
        tokens = {OAuth2RefreshTokenAuth(config(server), requests.Session(), KeyVaultTokenStore(
            KeyVaultSecret(secret_url, FakeCredential()), LocalBlobStore(tmp_path), granted=granted)).token()
            for _ in range(3)}
    assert len(tokens) == 1 and both.oauth.grants == 1


def test_a_vault_refusal_names_its_code_never_a_token(tmp_path):
    both = Both()
    with StubServer(handler=both) as server:
        class Wrong(FakeCredential):
            def get_token(self, *scopes):
                token = super().get_token(*scopes)
                token.token = "not-the-app-identity"
                return token
        secret = KeyVaultSecret(server.url("/secrets/crm-refresh"), Wrong())
        with pytest.raises(FetchError) as caught:
            secret.latest()
    assert "HTTP 401" in str(caught.value) and "Key Vault refused: Unauthorized" in str(caught.value)


def test_the_chain_claims_in_its_storage_and_both_modes_land_the_same_rows(tmp_path, monkeypatch):
    both = Both()
    credential = FakeCredential()
    monkeypatch.setattr("azure.identity.DefaultAzureCredential", lambda: credential)
    with StubServer(handler=both) as server:
        auth = {"type": "oauth2_refresh_token", "token_url": server.url("/oauth/token"), "client_id": CLIENT_ID,
                "client_secret": "${CRM_SECRET}", "refresh_token": "${CRM_REFRESH}",
                "key_vault_secret": server.url("/secrets/crm-refresh")}
        project = build(tmp_path, server.url(""), auth, {"CRM_SECRET": CLIENT_SECRET, "CRM_REFRESH": FIRST_REFRESH})
        chain_tables, _, chain_errors = chained(project, tmp_path)
        tables, _, errors = embedded(project, tmp_path)
    assert errors == chain_errors == {"crm.items": None} and tables == chain_tables and len(tables["crm.items"]) == 9
    assert both.oauth.reuses == 0 and both.oauth.grants >= 1
    assert credential.scopes and set(credential.scopes) == {"https://vault.azure.net/.default"}
    claimed = Path(tmp_path / "chain" / "blobs" / CLAIMS / "tokens")
    assert claimed.is_dir() and len(list(claimed.rglob("*"))) >= 1
    assert not (tmp_path / "state" / "tokens" / "crm.json").exists()   # the vault, not the state folder
