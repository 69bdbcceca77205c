"""Global settings (`manifests/settings.yml`, optional): every setting has a default, and
`KSPYDER_*` environment variables override the file so one manifest folder serves a laptop and Azure."""
from __future__ import annotations

import os
import re
from typing import Literal, TypeVar

from pydantic import Field, field_validator, model_validator

from shared.config.models import PiiScan, Strict

KEY_VAULT_REFERENCE = "@Microsoft.KeyVault("
PROJECT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}\Z")
_Setting = TypeVar("_Setting", bound=str | None)


def resolved(value: _Setting) -> _Setting:
    """Azure hands an app setting's `@Microsoft.KeyVault(...)` reference over verbatim when it cannot
    read the secret; used as a key or URL, that text would silently hash PII with a known string or
    point nowhere, so it is refused with the likely cause."""
    if value is not None and value.strip().startswith(KEY_VAULT_REFERENCE):
        raise ValueError("is an unresolved Key Vault reference: the app could not read the secret (check the "
                         "app identity's Key Vault Secrets User role and the secret's name)")
    return value


class OutputSettings(Strict):
    format: Literal["none", "jsonl", "json", "csv"] = "none"
    folder: str = ".kspyder/output"


class PiiSettings(Strict):
    scan: PiiScan = "redact"
    key: str | None = Field(None, description="HMAC key for the hash rule; prefer KSPYDER_PII_KEY.")
    redaction: str = Field("[REDACTED]", min_length=1)
    scan_process: bool = Field(True, description="Run the free-text scan of `main.py run`/`extract` in a second "
                                                 "process (a second CPU core); false: on the run's thread.")

    @field_validator("key")
    @classmethod
    def _key_resolved(cls, key: str | None) -> str | None:
        return resolved(key)


class StorageSettings(Strict):
    mode: Literal["local", "azure"] = "local"
    root: str = ".kspyder/storage"   # left unset: <state_dir>/storage (`Settings`)


class ChainSettings(Strict):
    pages_per_message: Literal[1, 2, 5, 10] = Field(
        1, description="Pages one Fetch or Load message of the queue chain carries, for paginations whose pages "
                       "are all known from the first (page_number, offset). Each message costs about ten storage "
                       "calls; 5 makes a large run much cheaper. A message's pages are fetched back to back, so "
                       "with a `throttle.rate` its Fetch waits for the rate between them. A divisor of 10, so "
                       "that a message's pages stay in one completion group.")


class LoadSettings(Strict):
    batch_size: int = Field(
        5000, ge=1, le=1_000_000,
        description="Records written to a table per transaction, in every mode (run, queue chain, inbox drop): "
                    "memory holds one batch of records; larger batches make fewer transactions.")


class LeaseSettings(Strict):
    ttl_seconds: float = Field(
        60.0, gt=0, le=86400,
        description="Seconds a run's lease on a table lasts without a heartbeat; the holder renews it every third "
                    "of that, so a killed run blocks the table for at most this long, and is shown `abandoned` "
                    "once it has passed.")


class Settings(Strict):
    target_url: str = "sqlite:///.kspyder/target.db"
    project: str | None = Field(
        None,
        description="This project's id, marked on every schema `apply` creates, so that `plan`, `apply --prune` "
                    "and `rebuild` touch only this project's schemas on a shared server. Unset: an id generated "
                    "by the first apply and kept in the target's default schema (docs/target.md).")
    state_dir: str = ".kspyder"
    output: OutputSettings = Field(default_factory=OutputSettings)
    pii: PiiSettings = Field(default_factory=PiiSettings)
    storage: StorageSettings = Field(default_factory=StorageSettings)
    chain: ChainSettings = Field(default_factory=ChainSettings)
    leases: LeaseSettings = Field(default_factory=LeaseSettings)
    load: LoadSettings = Field(default_factory=LoadSettings)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    mongo_uri: str | None = Field(None, description="MongoDB / Cosmos DB for MongoDB; "
                                                    "unset: the embedded document store.")

    @model_validator(mode="after")
    def _storage_under_state_dir(self) -> Settings:
        """The run ledger is local state: without its own `storage.root`, it lives in `state_dir`
        (`<state_dir>/storage`), so moving `state_dir` moves all of it."""
        if "root" not in self.storage.model_fields_set:
            storage = self.storage.model_copy(update={"root": os.path.join(self.state_dir, "storage")})
            object.__setattr__(self, "storage", storage)   # frozen model: set once, while validating
        return self

    @field_validator("target_url")
    @classmethod
    def _target_resolved(cls, url: str) -> str:
        return resolved(url)

    @field_validator("project")
    @classmethod
    def _project_id(cls, project: str | None) -> str | None:
        if project is not None and not PROJECT_ID.match(project):
            raise ValueError("project must be 1 to 64 letters, digits, '_', '.' or '-', "
                             "starting with a letter or digit")
        return project

    @field_validator("mongo_uri")
    @classmethod
    def _mongo_scheme(cls, uri: str | None) -> str | None:
        resolved(uri)
        if uri is not None and not uri.startswith(("mongodb://", "mongodb+srv://")):
            raise ValueError("mongo_uri must start with mongodb:// or mongodb+srv://")
        return uri or None


# Environment variable -> key path in settings.yml. The docs' settings table is generated from this.
ENV_OVERRIDES: dict[str, tuple[str, ...]] = {
    "KSPYDER_TARGET_URL": ("target_url",),
    "KSPYDER_STATE_DIR": ("state_dir",),
    "KSPYDER_OUTPUT_FORMAT": ("output", "format"),
    "KSPYDER_OUTPUT_DIR": ("output", "folder"),
    "KSPYDER_PII_SCAN": ("pii", "scan"),
    "KSPYDER_PII_KEY": ("pii", "key"),
    "KSPYDER_STORAGE_MODE": ("storage", "mode"),
    "KSPYDER_STORAGE_ROOT": ("storage", "root"),
    "KSPYDER_LOG_LEVEL": ("log_level",),
    "KSPYDER_MONGO_URI": ("mongo_uri",),
}
