"""Global settings (`manifests/settings.yml`, optional): every setting has a default, and
`KSPYDER_*` environment variables override the file so one manifest folder serves a laptop and Azure."""
from __future__ import annotations

from typing import Literal

from pydantic import Field

from .models import PiiScan, Strict


class OutputSettings(Strict):
    format: Literal["none", "jsonl", "json", "csv"] = "none"
    folder: str = ".kspyder/output"


class PiiSettings(Strict):
    scan: PiiScan = "redact"
    key: str | None = Field(None, description="HMAC key for the hash rule; prefer KSPYDER_PII_KEY.")
    redaction: str = Field("[REDACTED]", min_length=1)


class StorageSettings(Strict):
    mode: Literal["local", "azure"] = "local"
    root: str = ".kspyder/storage"


class Settings(Strict):
    target_url: str = "sqlite:///.kspyder/target.db"
    state_dir: str = ".kspyder"
    output: OutputSettings = Field(default_factory=OutputSettings)
    pii: PiiSettings = Field(default_factory=PiiSettings)
    storage: StorageSettings = Field(default_factory=StorageSettings)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"


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
}
