"""Settings that arrive as an unresolved Key Vault reference (Azure passes the reference text
through when the app cannot read the secret) are refused, naming the setting, never used."""
from __future__ import annotations

import pytest

from shared.config.errors import ConfigError
from shared.config.project import load_project

REFERENCE = "@Microsoft.KeyVault(SecretUri=https://kv-demo.vault.azure.net/secrets/pii-key/)"
EXPECTED = ("is an unresolved Key Vault reference: the app could not read the secret (check the app identity's "
            "Key Vault Secrets User role and the secret's name)")


@pytest.mark.parametrize("variable", ["KSPYDER_PII_KEY", "KSPYDER_TARGET_URL", "KSPYDER_MONGO_URI"])
def test_an_unresolved_reference_is_refused(variable):
    with pytest.raises(ConfigError) as caught:
        load_project("manifests", env={"KSPYDER_PII_KEY": "a-real-key", variable: REFERENCE})
    assert str(caught.value) == f"environment {variable} {EXPECTED}"


def test_a_resolved_secret_is_used():
    project = load_project("manifests", env={"KSPYDER_PII_KEY": "a-real-key"})
    assert project.settings.pii.key == "a-real-key"
