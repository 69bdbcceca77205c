"""Auth types that obtain their token with a request of their own: a refresh-token grant whose
refresh tokens rotate, and a login session. Plain credentials stay in `models.py`."""
from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Self

from pydantic import Field, PrivateAttr, field_validator, model_validator

from shared.config.strict import Strict

if TYPE_CHECKING:
    from shared.storage.base import BlobStore

# https://learn.microsoft.com/en-us/azure/key-vault/general/about-keys-secrets-certificates#object-identifiers:
# a secret's identifier, without a version (the newest is read, a new one written). Plain http only
# to this machine, where tests emulate the vault.
KEY_VAULT_SECRET = re.compile(r"^(https://[A-Za-z0-9.-]+(:\d{1,5})?|http://(127\.0\.0\.1|localhost)(:\d{1,5})?)"
                              r"/secrets/[A-Za-z0-9-]{1,127}/?$")

# RFC 6749 §2.3.1: the client authenticates to the token endpoint in the form body, or with HTTP Basic.
ClientAuthMethod = Literal["client_secret_post", "client_secret_basic"]


class OAuth2RefreshToken(Strict):
    type: Literal["oauth2_refresh_token"]
    token_url: str
    client_id: str
    client_secret: str | None = Field(None, description="Unset for a public client.")
    refresh_token: str = Field(min_length=1, description="The first refresh token; rotated ones are kept "
                                                         "in the state folder.")
    scope: str | None = None
    auth_method: ClientAuthMethod = "client_secret_post"
    key_vault_secret: str | None = Field(
        None, description="https://<vault>.vault.azure.net/secrets/<name>: rotated tokens are written back there.")
    # Where rotated tokens are kept: set by the loader (`<state_dir>/tokens/<source>.json`); with
    # `key_vault_secret`, where instances claim a version before refreshing with it (the chain's blobs).
    _store_path: Path | None = PrivateAttr(default=None)
    _claims: BlobStore | None = PrivateAttr(default=None)

    @field_validator("key_vault_secret")
    @classmethod
    def _secret_identifier(cls, value: str | None) -> str | None:
        if value is not None and not KEY_VAULT_SECRET.match(value):
            raise ValueError("key_vault_secret must be a Key Vault secret identifier without a version: "
                             "https://<vault>.vault.azure.net/secrets/<name>")
        return value.rstrip("/") if value is not None else None

    @property
    def store_path(self) -> Path | None:
        return self._store_path

    def bind_store(self, path: Path) -> None:
        self._store_path = path

    @property
    def claims(self) -> BlobStore | None:
        return self._claims

    def bind_claims(self, store: BlobStore) -> None:
        self._claims = store


def bind_token_stores(state_dir: str, sources: dict[str, Any]) -> None:
    """Tell each refresh-token auth where its rotated tokens live: `<state_dir>/tokens/<source>.json`."""
    for name, source in sources.items():
        auth = getattr(source, "auth", None)
        if isinstance(auth, OAuth2RefreshToken):
            auth.bind_store(Path(state_dir) / "tokens" / f"{name}.json")


def bind_token_claims(sources: dict[str, Any], store: BlobStore) -> None:
    """Tell each refresh-token auth kept in Key Vault where instances claim a version: `store`, shared
    by every instance of the queue chain (embedded runs claim in the state folder)."""
    for source in sources.values():
        auth = getattr(source, "auth", None)
        if isinstance(auth, OAuth2RefreshToken) and auth.key_vault_secret is not None:
            auth.bind_claims(store)


class SessionLogin(Strict):
    """The request that opens a session: a POST of `json:` or `form:` to `path`."""

    path: str = Field(min_length=1, description="Login path (relative to base_url) or absolute URL.")
    json_body: dict[str, Any] | None = Field(None, alias="json")
    form: dict[str, str] | None = None
    token_path: str | None = Field(None, min_length=1, description="Dotted path to the token in the body.")
    token_header: str | None = Field(None, min_length=1, description="Response header holding the token.")
    expires_in_path: str | None = Field(None, min_length=1,
                                        description="Dotted path to the token's lifetime in seconds.")
    ttl: float = Field(3600.0, gt=0, description="Lifetime in seconds when the answer does not state one.")
    model_config = Strict.model_config | {"populate_by_name": True}

    @model_validator(mode="after")
    def _one_of_each(self) -> Self:
        if self.json_body is not None and self.form is not None:
            raise ValueError("give json or form, not both")
        if (self.token_path is None) == (self.token_header is None):
            raise ValueError("give exactly one of token_path or token_header")
        return self


class SessionAuth(Strict):
    type: Literal["session"]
    login: SessionLogin
    header: str = Field("Authorization", min_length=1, description="Header the token is sent in.")
    prefix: str = Field("Bearer ", description="Written before the token in that header.")
