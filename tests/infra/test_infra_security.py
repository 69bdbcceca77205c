"""Security rules over infra/ (static, no Azure): no key-based access anywhere, nothing public,
secrets only through Key Vault references, no secret in a parameter default, and every role
assignment a built-in role from the allow-list, by GUID, with its name written beside it, a
deterministic guid() name, and only at the scopes allowed for its principal. Each rule is shown to
fire on a broken copy."""
from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

from tests.helpers.infra import INFRA, BicepFile, Resource, load_infra, properties, text

ROLES = {   # built-in role GUID -> role name; the Bicep must say the name in a comment beside the GUID
    "b7e6dc6d-f1e8-4753-8033-0f276bb0955b": "Storage Blob Data Owner",
    "974c5e8b-45b9-4653-ba55-5f855dd0fb88": "Storage Queue Data Contributor",
    "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3": "Storage Table Data Contributor",
    "4633458b-17de-408a-b874-0445c86b69e6": "Key Vault Secrets User",
    "b86a8fe4-44ce-4948-aee5-eccb2c155cd7": "Key Vault Secrets Officer",
    "3913510d-42f4-4e42-8a64-420c390055eb": "Monitoring Metrics Publisher",
}
APP, USER = "appPrincipalId", "userPrincipalId"   # roles.bicep's principals
STORAGE, VAULT, SECRET = ("Microsoft.Storage/storageAccounts", "Microsoft.KeyVault/vaults",
                          "Microsoft.KeyVault/vaults/secrets")
SCOPES = {   # role GUID -> principal -> resource types an assignment may be scoped to
    "b7e6dc6d-f1e8-4753-8033-0f276bb0955b": {APP: {STORAGE}, USER: {STORAGE}},
    "974c5e8b-45b9-4653-ba55-5f855dd0fb88": {APP: {STORAGE}, USER: {STORAGE}},
    "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3": {APP: {STORAGE}, USER: {STORAGE}},
    "4633458b-17de-408a-b874-0445c86b69e6": {APP: {VAULT}},
    # the app writes rotated refresh tokens back, to the secrets named for it and nowhere else
    "b86a8fe4-44ce-4948-aee5-eccb2c155cd7": {APP: {SECRET}, USER: {VAULT}},
    "3913510d-42f4-4e42-8a64-420c390055eb": {APP: {"Microsoft.Insights/components"}},
}
FORBIDDEN = ("listKeys(", "listConnectionStrings(", "listAccountSas(", "listServiceSas(", "AccountKey=",
             "SharedAccessKey=", "SharedAccessSignature=", "Password=", "PWD=", "administratorLoginPassword")
GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
SECRET_NAME = re.compile(r"(?i)(password|pwd|secret(?!s?(name|uri))|token|connectionstring|apikey|piikey"
                         r"|accountkey|sas)")
REQUIRED = {   # resource type -> property path -> required literal value (as the Bicep text spells it)
    "Microsoft.Storage/storageAccounts": {("properties", "allowBlobPublicAccess"): "false",
                                          ("properties", "allowSharedKeyAccess"): "false",
                                          ("properties", "minimumTlsVersion"): "'TLS1_2'",
                                          ("properties", "supportsHttpsTrafficOnly"): "true"},
    "Microsoft.Storage/storageAccounts/blobServices/containers": {("properties", "publicAccess"): "'None'"},
    "Microsoft.Web/sites": {("properties", "httpsOnly"): "true",
                            ("properties", "siteConfig", "minTlsVersion"): "'1.2'"},
    "Microsoft.Web/sites/basicPublishingCredentialsPolicies": {("properties", "allow"): "false"},
    "Microsoft.KeyVault/vaults": {("properties", "enableRbacAuthorization"): "true"},
    "Microsoft.Insights/components": {("properties", "DisableLocalAuth"): "true"},
    "Microsoft.OperationalInsights/workspaces": {("properties", "features", "disableLocalAuth"): "true"},
    "Microsoft.Sql/servers/azureADOnlyAuthentications": {("properties", "azureADOnlyAuthentication"): "true"},
}
KEY_VAULT_SETTINGS = ("KSPYDER_PII_KEY",)   # app settings whose value must be a Key Vault reference


def role_problems(bicep: BicepFile) -> list[str]:
    problems = []
    for number, line in enumerate(bicep.source.splitlines(), 1):
        for guid in GUID.findall(line):
            role = ROLES.get(guid.lower())
            if role is None:
                problems.append(f"{bicep.path.name}:{number}: {guid} is not an allow-listed built-in role")
            elif not re.search(rf"//\s*{re.escape(role)}\s*$", line):
                problems.append(f"{bicep.path.name}:{number}: role {guid} needs the comment // {role}")
    for resource in (r for r in bicep.resources if r.type == "Microsoft.Authorization/roleAssignments"):
        where = f"{bicep.path.name}:{resource.line}"
        name = resource.prop("name")
        if name is None or name.type != "call_expression" or not text(name).startswith("guid("):
            problems.append(f"{where}: role assignment name must be a deterministic guid(...)")
        definition = resource.prop("properties", "roleDefinitionId")
        call = text(definition) if definition is not None else ""
        prefix = "subscriptionResourceId('Microsoft.Authorization/roleDefinitions',"
        if not call.startswith(prefix) or definition.type != "call_expression":
            problems.append(f"{where}: roleDefinitionId must be {prefix} <role GUID>)")
            continue
        argument = [c for c in definition.named_children[-1].named_children if c.type != "comment"][-1]
        guids = bicep.strings(argument, resource.loop)
        if not guids:
            problems.append(f"{where}: cannot tell which role {text(argument)} is (use a var holding the GUID)")
        for guid in guids or []:
            if guid.lower() not in ROLES:
                problems.append(f"{where}: role {guid} is not in the allow-list")
            else:
                problems += scope_problems(bicep, resource, guid.lower())
    return problems


def scope_problems(bicep: BicepFile, assignment: Resource, guid: str) -> list[str]:
    """The assignment's scope is a resource declared in the same file (indexed when looped), of a
    type allowed for this role and principal; no scope would mean the whole resource group."""
    where, role = f"{bicep.path.name}:{assignment.line}", ROLES[guid]
    principal_node = assignment.prop("properties", "principalId")
    principal = text(principal_node) if principal_node is not None else "?"
    allowed = SCOPES.get(guid, {}).get(principal, set())
    scope = assignment.prop("scope")
    symbol = re.sub(r"\[[^\]]*\]$", "", text(scope)) if scope is not None else None
    declared = re.search(rf"^resource\s+{re.escape(symbol)}\s+'([^'@]+)@", bicep.source, re.M) if symbol else None
    kind = declared.group(1) if declared else f"scope {symbol}" if symbol else "the resource group"
    if kind in allowed:
        return []
    listed = ", ".join(sorted(allowed)) or "none"
    return [f"{where}: {role} for {principal} is not allowed at {kind} (allowed: {listed})"]


def param_problems(bicep: BicepFile) -> list[str]:
    problems = []
    for param in bicep.params.values():
        where = f"{bicep.path.name}:{param.line}"
        empty = param.default is None or text(param.default) in ("''", "[]", "{}")
        secure = any(d.startswith("secure(") for d in param.decorators)
        if (secure or SECRET_NAME.search(param.name)) and not empty:
            problems.append(f"{where}: parameter {param.name} must not have a default (a secret)")
    return problems


def setting_problems(bicep: BicepFile) -> list[str]:
    problems = []
    for key, value in _app_settings(bicep).items():
        if key in KEY_VAULT_SETTINGS and not text(value).startswith("'@Microsoft.KeyVault(SecretUri="):
            problems.append(f"{bicep.where(value)}: {key} must be a Key Vault reference")
    return problems


def _app_settings(bicep: BicepFile) -> dict:
    return properties(bicep.variables.get("appSettings"))


def required_problems(bicep: BicepFile) -> list[str]:
    problems = []
    for resource in bicep.resources:
        if resource.existing:
            continue
        for keys, expected in REQUIRED.get(resource.type, {}).items():
            value = resource.prop(*keys)
            if value is None or text(value) != expected:
                found = "missing" if value is None else text(value)
                problems.append(f"{bicep.path.name}:{resource.line}: {resource.type} {'.'.join(keys)} must be "
                                f"{expected} ({found})")
    return problems


def security_problems(infra: Path = INFRA) -> list[str]:
    problems: list[str] = []
    for bicep in load_infra(infra):
        for number, line in enumerate(bicep.source.splitlines(), 1):
            for word in FORBIDDEN:
                if word.lower() in line.lower():
                    problems.append(f"{bicep.path.name}:{number}: {word} (key-based access) is not allowed")
        problems += required_problems(bicep) + role_problems(bicep) + param_problems(bicep) + setting_problems(bicep)
    variables = json.loads((infra / "manifest-variables.json").read_text())
    for name, value in variables["settings"].items():   # plain settings: visible in the portal and the repo
        if SECRET_NAME.search(name) or any(word.lower() in str(value).lower() for word in FORBIDDEN):
            problems.append(f"manifest-variables.json: {name} looks like a secret: list it under secrets (Key Vault)")
    for name, entry in json.loads((infra / "main.parameters.json").read_text())["parameters"].items():
        value = entry.get("value")
        if SECRET_NAME.search(name) and not (isinstance(value, str) and value.startswith("${") and "=" not in value):
            problems.append(f"main.parameters.json: {name} must come from the azd environment without a default")
    return problems


# ---------------------------------------------------------------- tests

def broken(tmp_path: Path, file: str, old: str, new: str) -> list[str]:
    infra = Path(shutil.copytree(INFRA, tmp_path / "infra"))
    path = infra / file
    source = path.read_text()
    assert source.count(old) == 1, old
    path.write_text(source.replace(old, new))
    return security_problems(infra)


def line_of(file: str, start: str) -> int:
    """The number of the first line of infra/<file> starting with `start`."""
    lines = (INFRA / file).read_text().splitlines()
    return 1 + next(i for i, line in enumerate(lines) if line.lstrip().startswith(start))


def test_infra_passes_the_security_rules():
    assert security_problems() == []


def test_every_role_the_app_needs_is_assigned():
    roles = (INFRA / "app" / "roles.bicep").read_text()
    for guid, name in ROLES.items():
        assert f"'{guid}' // {name}" in roles
    assert set(SCOPES) == set(ROLES)   # every allowed role has its allowed scopes


def test_key_based_access_is_reported(tmp_path):
    problems = broken(tmp_path, "app/function.bicep", "  KSPYDER_STORAGE_MODE: 'azure'\n",
                      "  KSPYDER_STORAGE_MODE: 'azure'\n  X: storage.listKeys().keys[0].value\n")
    assert len(problems) == 1 and problems[0].endswith("listKeys( (key-based access) is not allowed")
    problems = broken(tmp_path / "b", "app/monitoring.bicep", "param retentionInDays int = 30",
                      "param retentionInDays int = 30\nvar c = 'DefaultEndpointsProtocol=https;AccountKey=abc'")
    assert problems == [f"monitoring.bicep:{line_of('app/monitoring.bicep', 'param retentionInDays') + 1}: AccountKey= "
                        "(key-based access) is not allowed"]


def test_public_or_key_enabled_storage_is_reported(tmp_path):
    problems = broken(tmp_path, "app/storage.bicep", "allowSharedKeyAccess: false", "allowSharedKeyAccess: true")
    assert problems == [f"storage.bicep:{line_of('app/storage.bicep', 'resource storage ')}: "
                        "Microsoft.Storage/storageAccounts properties.allowSharedKeyAccess must be false (true)"]
    problems = broken(tmp_path / "b", "app/storage.bicep", "  name: deploymentContainerName\n  properties: {\n    "
                                                           "publicAccess: 'None'\n",
                      "  name: deploymentContainerName\n  properties: {\n    publicAccess: 'Blob'\n")
    assert problems == [f"storage.bicep:{line_of('app/storage.bicep', 'resource deploymentContainer ')}: "
                        "Microsoft.Storage/storageAccounts/blobServices/containers properties.publicAccess must be "
                        "'None' ('Blob')"]


def test_site_and_monitoring_rules_are_reported(tmp_path):
    problems = broken(tmp_path, "app/function.bicep", "      minTlsVersion: '1.2'\n", "")
    assert problems == [f"function.bicep:{line_of('app/function.bicep', 'resource app ')}: Microsoft.Web/sites "
                        "properties.siteConfig.minTlsVersion must be '1.2' (missing)"]
    problems = broken(tmp_path / "b", "app/monitoring.bicep", "DisableLocalAuth: true", "DisableLocalAuth: false")
    assert problems == [f"monitoring.bicep:{line_of('app/monitoring.bicep', 'resource applicationInsights ')}: "
                        "Microsoft.Insights/components properties.DisableLocalAuth must be true (false)"]


def test_a_secret_in_a_parameter_default_is_reported(tmp_path):
    problems = broken(tmp_path, "app/function.bicep", "param targetUrl string",
                      "param targetUrl string\n@secure()\nparam piiKey string = 'hunter2'\nparam sqlPassword string = "
                      "'x'")
    assert [p.split(": ", 1)[1] for p in problems] == ["parameter piiKey must not have a default (a secret)",
                                                      "parameter sqlPassword must not have a default (a secret)"]


def test_a_plain_pii_key_setting_is_reported(tmp_path):
    problems = broken(tmp_path, "app/function.bicep", "  KSPYDER_PII_KEY: "
                                                      "'@Microsoft.KeyVault(SecretUri=${kvSecrets}pii-key)'\n",
                      "  KSPYDER_PII_KEY: targetUrl\n")
    assert len(problems) == 1 and problems[0].endswith("KSPYDER_PII_KEY must be a Key Vault reference")


def test_roles_outside_the_allow_list_or_without_their_name_are_reported(tmp_path):
    owner = "8e3af657-a8ff-443c-a75c-2fe8c4bcb635"   # Owner: never needed
    problems = broken(tmp_path, "app/roles.bicep",
                      "var storageTableDataContributor = '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3' // Storage Table Data "
                      "Contributor",
                      f"var storageTableDataContributor = '{owner}' // Owner")
    line = line_of("app/roles.bicep", "var storageTableDataContributor ")
    assert f"roles.bicep:{line}: {owner} is not an allow-listed built-in role" in problems
    assert any(p.endswith(f"role {owner} is not in the allow-list") for p in problems), problems
    problems = broken(tmp_path / "b", "app/roles.bicep", "'4633458b-17de-408a-b874-0445c86b69e6' // Key Vault Secrets "
                                                         "User",
                      "'4633458b-17de-408a-b874-0445c86b69e6'")
    assert problems == [f"roles.bicep:{line_of('app/roles.bicep', 'var keyVaultSecretsUser ')}: role "
                        "4633458b-17de-408a-b874-0445c86b69e6 needs the comment // Key Vault Secrets User"]


def test_role_assignment_names_must_be_deterministic(tmp_path):
    problems = broken(tmp_path, "app/roles.bicep", "  name: guid(vault.id, appPrincipalId, keyVaultSecretsUser)\n",
                      "  name: 'a-fixed-name'\n")
    assert problems == [f"roles.bicep:{line_of('app/roles.bicep', 'resource appSecrets ')}: role assignment name must "
                        "be a deterministic guid(...)"]


def test_a_secret_in_the_manifest_settings_is_reported(tmp_path):
    infra = Path(shutil.copytree(INFRA, tmp_path / "infra"))
    (infra / "manifest-variables.json").write_text(json.dumps(
        {"settings": {"SHOP_URL": "https://shop", "SHOP_TOKEN": "abc", "ERP_URL": "Server=x;Password=y"},
         "secrets": []}))
    assert security_problems(infra) == [
        "manifest-variables.json: SHOP_TOKEN looks like a secret: list it under secrets (Key Vault)",
        "manifest-variables.json: ERP_URL looks like a secret: list it under secrets (Key Vault)"]


def test_secrets_officer_for_the_app_only_on_the_rotated_secrets(tmp_path):
    roles = (INFRA / "app" / "roles.bicep").read_text()
    assert "  scope: rotatedSecrets[i]\n" in roles and "param rotatedSecretNames array = []" in roles
    line = line_of("app/roles.bicep", "resource appRotatedSecrets ")
    problems = broken(tmp_path, "app/roles.bicep", "  scope: rotatedSecrets[i]\n", "  scope: vault\n")
    assert problems == [f"roles.bicep:{line}: Key Vault Secrets Officer for appPrincipalId is not allowed at "
                        "Microsoft.KeyVault/vaults (allowed: Microsoft.KeyVault/vaults/secrets)"]
    problems = broken(tmp_path / "b", "app/roles.bicep", "  scope: rotatedSecrets[i]\n", "")
    assert problems == [f"roles.bicep:{line}: Key Vault Secrets Officer for appPrincipalId is not allowed at the "
                        "resource group (allowed: Microsoft.KeyVault/vaults/secrets)"]


def test_a_role_for_the_wrong_principal_or_scope_is_reported(tmp_path):
    line = line_of("app/roles.bicep", "resource appSecrets ")
    problems = broken(tmp_path, "app/roles.bicep", "  name: guid(vault.id, appPrincipalId, keyVaultSecretsUser)\n"
                                                   "  scope: vault\n", "  name: guid(vault.id, appPrincipalId, "
                                                                        "keyVaultSecretsUser)\n  scope: storage\n")
    assert problems == [f"roles.bicep:{line}: Key Vault Secrets User for appPrincipalId is not allowed at "
                        "Microsoft.Storage/storageAccounts (allowed: Microsoft.KeyVault/vaults)"]
    line = line_of("app/roles.bicep", "resource userSecrets ")
    problems = broken(tmp_path / "b", "app/roles.bicep", "  scope: vault\n  properties: {\n    roleDefinitionId: "
                      "subscriptionResourceId('Microsoft.Authorization/roleDefinitions', keyVaultSecretsOfficer)\n"
                      "    principalId: userPrincipalId\n",
                      "  scope: rotatedSecrets[0]\n  properties: {\n    roleDefinitionId: "
                      "subscriptionResourceId('Microsoft.Authorization/roleDefinitions', keyVaultSecretsOfficer)\n"
                      "    principalId: userPrincipalId\n")
    assert problems == [f"roles.bicep:{line}: Key Vault Secrets Officer for userPrincipalId is not allowed at "
                        "Microsoft.KeyVault/vaults/secrets (allowed: Microsoft.KeyVault/vaults)"]
