"""Code <-> infra drift: every queue, container and app setting the function app uses is provisioned
or set by infra/, and infra/ provisions or sets nothing the code no longer has.

The code side is read from the code itself (`app.get_functions()` bindings, shared/chain/names.py,
ENV_OVERRIDES, host.json, local.settings.sample.json, `KSPYDER_*` names in shared/ and functions/);
the infra side from the Bicep parse trees. Settings the app reads but Azure must not set are listed
below with the reason, and an entry that no longer matches the code is itself reported.
"""
from __future__ import annotations

import dataclasses
import json
import re
import shutil
from pathlib import Path

from shared.config.auth_types import KEY_VAULT_SECRET as SECRET_IDENTIFIER  # what key_vault_secret accepts
from shared.config.yaml_source import _ENV_REF as ENV_REFERENCE  # the loader's own ${VAR} pattern
from tests.helpers.infra import (
    INFRA,
    ROOT,
    BicepFile,
    CodeNames,
    app_settings,
    code_names,
    literal,
    load_infra,
    path_of,
    resource_names,
    text,
)

# where the lists below live, named in the problems they cause when they go stale
HERE = "tests/infra/test_infra_drift.py"
QUEUES = "Microsoft.Storage/storageAccounts/queueServices/queues"
CONTAINERS = "Microsoft.Storage/storageAccounts/blobServices/containers"
LIFECYCLE = "Microsoft.Storage/storageAccounts/managementPolicies"
STORAGE_SETTING = "AzureWebJobsStorage"
STORAGE_IDENTITY = {f"{STORAGE_SETTING}__accountName", f"{STORAGE_SETTING}__credential", f"{STORAGE_SETTING}__clientId"}
INFRA_SETTINGS = {"APPLICATIONINSIGHTS_CONNECTION_STRING", "APPLICATIONINSIGHTS_AUTHENTICATION_STRING"}

LOCAL_ONLY = {   # in local.settings.sample.json, not for Azure
    "FUNCTIONS_WORKER_RUNTIME": "Flex Consumption takes the runtime from functionAppConfig.runtime and rejects this "
                                "setting",
    "AzureWebJobsFeatureFlags": "EnableWorkerIndexing is the Azure host's default for the v2 programming model",
    "SAMPLE_API_URL": "the demo's sample API on 127.0.0.1; manifests' variables go in the manifestSettings parameter",
    "ERP_DB_URL": "the demo's sample database file; manifests' variables go in manifestSettings / manifestSecrets",
}
LEFT_TO_SETTINGS_YML = {   # an app setting would override manifests/settings.yml, so Azure leaves them unset
    "KSPYDER_OUTPUT_FORMAT": "settings.yml output.format",
    "KSPYDER_PII_SCAN": "settings.yml pii.scan",
}
NOT_IN_FUNCTION_APP = {   # read by CLI commands only
    "KSPYDER_HOST_KEY": "main.py host (the local Functions host)",
    "KSPYDER_PROBE_BEARER": "main.py probe",
    "KSPYDER_PROBE_API_KEY": "main.py probe",
}
# The Flex runtime: every pinned wheel of requirements.txt exists for it (checked with
# `pip download --python-version 3.12 --only-binary=:all: -r requirements.txt`, docs/deploy.md).
FLEX_PYTHON = "3.12"
KSPYDER_NAME = re.compile(r"\bkspyder-[a-z0-9-]*[a-z0-9]")
SETTING_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,126}$")
HOOK_VARIABLE = re.compile(r"\$\{?(AZURE_[A-Z0-9_]+)")
# '@Microsoft.KeyVault(SecretUri=${secrets}pii-key)'
KEY_VAULT_SECRET = re.compile(r"SecretUri=\$\{\w+\}([a-z0-9-]+)\)")
ROTATED_SECRET = re.compile(r"^\s*key_vault_secret:\s*['\"]?([^'\"#\s]+)")   # an auth's write-back secret
SECRET_NAME = re.compile(r"^[0-9A-Za-z-]{1,127}$")   # Key Vault's rule for secret names



def setting_problems(infra: list[BicepFile], code: CodeNames) -> list[str]:
    settings, bicep, problems = app_settings(infra)
    if bicep is None:
        return problems
    exempt = LOCAL_ONLY | LEFT_TO_SETTINGS_YML | NOT_IN_FUNCTION_APP
    for name, where in sorted(code.settings.items()):
        if name in exempt:
            if name in settings:
                problems.append(f"{settings[name]}: sets {name}, which must stay unset in Azure ({exempt[name]})")
        elif name == STORAGE_SETTING:
            if name in settings:
                problems.append(f"{settings[name]}: {name} must not be set (a connection string); use the identity "
                                "settings")
            for identity in sorted(STORAGE_IDENTITY - set(settings)):
                problems.append(f"{bicep.path.name}: {identity} is not set (identity-based {name}, used by {where})")
        elif name not in settings:
            problems.append(f"{bicep.path.name}: app setting {name} (used by {where}) is not set in var appSettings")
    identity = STORAGE_IDENTITY if STORAGE_SETTING in code.settings else set()
    known = (set(code.settings) - set(exempt)) | INFRA_SETTINGS | identity
    for name in sorted(set(settings) - known):
        problems.append(f"{settings[name]}: sets app setting {name}, which the code does not read")
    for name in sorted(LOCAL_ONLY):
        if name not in code.local_settings:
            problems.append(f"{HERE} LOCAL_ONLY: {name} is no longer in local.settings.sample.json")
    for name in sorted(set(LEFT_TO_SETTINGS_YML) - code.env_overrides):
        problems.append(f"{HERE} LEFT_TO_SETTINGS_YML: {name} is no longer in ENV_OVERRIDES")
    for name in sorted(set(NOT_IN_FUNCTION_APP) - set(code.settings)):
        problems.append(f"{HERE} NOT_IN_FUNCTION_APP: the code no longer reads {name}")
    return problems


def storage_problems(infra: list[BicepFile], code: CodeNames) -> list[str]:
    queues, problems = resource_names(infra, QUEUES)
    containers, found = resource_names(infra, CONTAINERS, {"deploymentContainerName"})
    problems += found
    for kind, provisioned, used in (("queue", queues, code.queues), ("container", containers, code.containers)):
        for name in sorted(set(used) - set(provisioned)):
            problems.append(f"{kind} {name} (used by {used[name]}) is not provisioned in infra/")
        for name in sorted(set(provisioned) - set(used)):
            problems.append(f"{provisioned[name]}: provisions {kind} {name}, which the code does not use")
    known = set(code.queues) | set(code.containers)
    for bicep in infra:
        for number, line in enumerate(bicep.source.splitlines(), 1):
            for match in KSPYDER_NAME.finditer(line.split("//", 1)[0]):
                if match.group(0) not in known:
                    problems.append(f"{bicep.path.name}:{number}: refers to {match.group(0)}, not a queue or container "
                                    "of the code")
        for policy in (r for r in bicep.resources if r.type == LIFECYCLE):
            for rule in path_of(policy.body, "properties", "policy", "rules").named_children:
                for prefix in bicep.strings(path_of(rule, "definition", "filters", "prefixMatch")) or []:
                    if prefix.split("/", 1)[0] not in containers:
                        problems.append(f"{bicep.path.name}:{policy.line}: lifecycle rule prefix {prefix} is not in a "
                                        "provisioned container")
    return problems


def runtime_problems(infra: list[BicepFile], code: CodeNames) -> list[str]:
    sites = [(b, r) for b in infra for r in b.resources if r.type == "Microsoft.Web/sites"]
    if len(sites) != 1:
        return [f"expected one Microsoft.Web/sites resource, found {len(sites)}"]
    bicep, site = sites[0]
    runtime = site.prop("properties", "functionAppConfig", "runtime")
    name, version = (literal(path_of(runtime, key)) for key in ("name", "version"))
    if (name, version) != ("python", FLEX_PYTHON):
        return [f"{bicep.path.name}:{site.line}: functionAppConfig.runtime is {name} {version}, expected python "
                f"{FLEX_PYTHON}"]
    return []


def hook_problems(infra: Path, parsed: list[BicepFile], code: CodeNames) -> list[str]:
    """The postdeploy hook subscribes the EventGrid blob trigger and reads main.bicep's outputs."""
    hook = infra / "hooks" / "postdeploy.sh"
    if not hook.is_file():
        return ["infra/hooks/postdeploy.sh is missing (it creates the Event Grid subscription)"]
    script = hook.read_text()
    problems = []
    if len(code.blob_triggers) != 1:
        problems.append(f"the hook subscribes one EventGrid blob trigger, the app has {sorted(code.blob_triggers)}")
    for function, container in code.blob_triggers.items():
        if f'INBOX_FUNCTION="{function}"' not in script or "Host.Functions.${INBOX_FUNCTION}" not in script:
            problems.append(f"postdeploy.sh: the webhook must name Host.Functions.{function} (INBOX_FUNCTION)")
        if f'INBOX_CONTAINER="{container}"' not in script:
            problems.append(f"postdeploy.sh: INBOX_CONTAINER must be {container}, the blob trigger's container")
    main = [b for b in parsed if b.path.name == "main.bicep"]
    outputs = set(main[0].outputs) if main else set()
    secrets_hook = infra / "hooks" / "postprovision.sh"
    secrets_script = secrets_hook.read_text() if secrets_hook.is_file() else ""
    for name, source in (("postdeploy.sh", script), ("postprovision.sh", secrets_script)):
        for variable in sorted(set(HOOK_VARIABLE.findall(source)) - outputs):
            problems.append(f"{name} reads {variable}, which main.bicep does not output")
    for secret in sorted({s for b in parsed for s in KEY_VAULT_SECRET.findall(b.source)}):
        if f"secret_exists {secret}" not in secrets_script:
            problems.append(f"Key Vault secret {secret} is referenced by the Bicep but postprovision.sh does not "
                            "handle it")
    topics = [r for b in parsed for r in b.resources if r.type == "Microsoft.EventGrid/systemTopics"]
    storage_topic = any(literal(r.prop("properties", "topicType")) == "Microsoft.Storage.StorageAccounts"
                        for r in topics)
    if code.blob_triggers and not storage_topic:
        problems.append("no Event Grid system topic on the storage account for the blob trigger")
    return problems


def manifest_variable_problems(infra: Path, parsed: list[BicepFile], manifests: Path) -> list[str]:
    """Every `${VAR}` without a default in the deployed manifests arrives as an app setting."""
    variables = json.loads((infra / "manifest-variables.json").read_text())
    settings, _, _ = app_settings(parsed)
    provided = set(variables["settings"]) | set(variables["secrets"]) | set(settings)
    problems = [f"manifest-variables.json: secret {name} is not a setting name" for name in variables["secrets"]
                if not SETTING_NAME.match(name)]
    for path in sorted(manifests.glob("*.yml")):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if line.lstrip().startswith("#"):
                continue
            for match in ENV_REFERENCE.finditer(line):
                name, default = match.group(1), match.group(2)
                if name and default is None and name not in provided:
                    problems.append(f"{path.name}:{number}: ${{{name}}} has no default and is not in "
                                    "infra/manifest-variables.json")
    return problems


def rotated_secret_problems(infra: Path, manifests: Path) -> list[str]:
    """Every `key_vault_secret` of the deployed manifests is in manifest-variables.json rotatedSecrets,
    which grants the app Secrets Officer on it (infra/app/roles.bicep): else the write-back is refused."""
    variables = json.loads((infra / "manifest-variables.json").read_text())
    rotated = variables.get("rotatedSecrets", [])   # optional: main.bicep reads it with .? and ?? []
    if not isinstance(rotated, list):
        return ["manifest-variables.json: rotatedSecrets must be a list of Key Vault secret names"]
    problems = [f"manifest-variables.json: rotatedSecrets {name} is not a Key Vault secret name" for name in rotated
                if not (isinstance(name, str) and SECRET_NAME.match(name))]

    def resolve(match: re.Match[str]) -> str:
        value = variables["settings"].get(match.group(1), match.group(2))
        return match.group(0) if value is None else str(value)

    for path in sorted(manifests.glob("*.yml")):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            found = ROTATED_SECRET.match(line)
            if found is None:
                continue
            where = f"{path.name}:{number}"
            url = ENV_REFERENCE.sub(resolve, found.group(1))
            if not SECRET_IDENTIFIER.match(url):
                problems.append(f"{where}: key_vault_secret is not a secret identifier once the settings of "
                                "manifest-variables.json are applied")
            elif (name := url.rstrip("/").rsplit("/", 1)[-1]) not in rotated:
                problems.append(f"{where}: key_vault_secret names secret {name}, which is not in "
                                "manifest-variables.json rotatedSecrets (the app could not write rotated tokens back)")
    return problems


def drift_problems(infra: Path = INFRA, code: CodeNames | None = None,
                   manifests: Path = ROOT / "manifests") -> list[str]:
    code = code_names() if code is None else code
    parsed = load_infra(infra)
    return (storage_problems(parsed, code) + setting_problems(parsed, code) + runtime_problems(parsed, code)
            + hook_problems(infra, parsed, code) + manifest_variable_problems(infra, parsed, manifests)
            + rotated_secret_problems(infra, manifests))


# ---------------------------------------------------------------- tests

def new_problems(**changed) -> list[str]:
    """The problems a changed copy has beyond those of the repository as it is: each test below
    proves one fault is caught, whatever else test_infra_provisions_exactly_what_the_code_uses finds."""
    baseline = set(drift_problems())
    return [p for p in drift_problems(**changed) if p not in baseline]


def copy_infra(tmp_path: Path) -> Path:
    return Path(shutil.copytree(INFRA, tmp_path / "infra"))


def edit(path: Path, old: str, new: str) -> None:
    source = path.read_text()
    assert source.count(old) == 1, old
    path.write_text(source.replace(old, new))


def test_infra_provisions_exactly_what_the_code_uses():
    assert drift_problems() == []


def test_the_code_side_is_read_from_the_app():
    code = code_names()
    assert {"kspyder-paginate", "kspyder-fetch-poison", "kspyder-transform"} <= set(code.queues)
    assert code.blob_triggers == {"inbox": "kspyder-inbox"}
    assert code.settings["KSPYDER_SCHEDULE"] and "AzureWebJobsStorage" in code.settings
    assert {"KSPYDER_PII_KEY", "KSPYDER_TARGET_URL", "KSPYDER_STATE_DIR"} <= set(code.settings)


def test_a_queue_only_the_bicep_has_is_reported(tmp_path):
    infra = copy_infra(tmp_path)
    edit(infra / "app" / "storage.bicep", "  'kspyder-load'\n", "  'kspyder-load'\n  'kspyder-bogus'\n")
    problems = new_problems(infra=infra)
    assert any(p.startswith("storage.bicep:") and "provisions queue kspyder-bogus" in p for p in problems), problems


def test_a_queue_the_code_uses_but_the_bicep_lacks_is_reported(tmp_path):
    infra = copy_infra(tmp_path)
    edit(infra / "app" / "storage.bicep", "  'kspyder-load-poison'\n", "")
    assert new_problems(infra=infra) == ["queue kspyder-load-poison (used by shared/chain/names.py) is not provisioned "
                                         "in infra/"]
    code = code_names()
    extra = dataclasses.replace(code, queues={**code.queues, "kspyder-merge": "function merge"})
    assert "queue kspyder-merge (used by function merge) is not provisioned in infra/" in new_problems(code=extra)


def test_a_missing_container_and_a_stray_name_are_reported(tmp_path):
    infra = copy_infra(tmp_path)
    edit(infra / "app" / "storage.bicep", "  'kspyder-outputs'\n", "")
    edit(infra / "app" / "storage.bicep", "'kspyder-raw/'", "'kspyder-old-raw/'")
    problems = new_problems(infra=infra)
    assert "container kspyder-outputs (used by shared/chain/names.py) is not provisioned in infra/" in problems
    assert any("refers to kspyder-old-raw" in p for p in problems), problems
    assert any("lifecycle rule prefix kspyder-old-raw/" in p for p in problems), problems


def test_a_removed_setting_is_reported(tmp_path):
    infra = copy_infra(tmp_path)
    edit(infra / "app" / "function.bicep", "  KSPYDER_SCHEDULE: schedule\n", "")
    problems = new_problems(infra=infra)
    assert problems == ["function.bicep: app setting KSPYDER_SCHEDULE (used by shared/chain/names.py) is not set in "
                        "var appSettings"]


def test_a_setting_the_code_does_not_read_is_reported(tmp_path):
    infra = copy_infra(tmp_path)
    edit(infra / "app" / "function.bicep", "  KSPYDER_STORAGE_MODE: 'azure'\n",
         "  KSPYDER_STORAGE_MODE: 'azure'\n  KSPYDER_RETIRED_SETTING: 'x'\n")
    problems = new_problems(infra=infra)
    assert len(problems) == 1 and problems[0].startswith("function.bicep:")
    assert problems[0].endswith("sets app setting KSPYDER_RETIRED_SETTING, which the code does not read")


def test_a_new_setting_in_the_code_is_reported():
    code = code_names()
    extra = dataclasses.replace(code, settings={**code.settings, "KSPYDER_NEW_THING": "shared/new.py"})
    assert new_problems(code=extra) == [
        "function.bicep: app setting KSPYDER_NEW_THING (used by shared/new.py) is not set in var appSettings"]


def test_a_storage_connection_string_or_an_exempt_setting_is_reported(tmp_path):
    infra = copy_infra(tmp_path)
    edit(infra / "app" / "function.bicep", "  AzureWebJobsStorage__credential: 'managedidentity'\n",
         "  AzureWebJobsStorage: storageAccountName\n  KSPYDER_PII_SCAN: 'drop'\n")
    problems = new_problems(infra=infra)
    assert any("AzureWebJobsStorage must not be set" in p for p in problems), problems
    # the expected message kept whole, to be found in the code by grep
    assert "function.bicep: AzureWebJobsStorage__credential is not set (identity-based AzureWebJobsStorage, used by shared/chain/names.py)" in problems  # noqa: E501
    assert any("sets KSPYDER_PII_SCAN, which must stay unset in Azure" in p for p in problems), problems


def test_the_hook_must_match_the_blob_trigger_and_the_outputs(tmp_path):
    infra = copy_infra(tmp_path)
    edit(infra / "hooks" / "postdeploy.sh", 'INBOX_FUNCTION="inbox"', 'INBOX_FUNCTION="blob_drop"')
    edit(infra / "main.bicep", "output AZURE_EVENTGRID_SYSTEM_TOPIC string", "output EVENTGRID_TOPIC string")
    assert new_problems(infra=infra) == [
        "postdeploy.sh: the webhook must name Host.Functions.inbox (INBOX_FUNCTION)",
        "postdeploy.sh reads AZURE_EVENTGRID_SYSTEM_TOPIC, which main.bicep does not output"]


def test_key_vault_secrets_and_the_secrets_hook_agree(tmp_path):
    infra = copy_infra(tmp_path)
    edit(infra / "hooks" / "postprovision.sh", "if secret_exists pii-key; then", "if secret_exists pii_key; then")
    assert new_problems(infra=infra) == ["Key Vault secret pii-key is referenced by the Bicep but postprovision.sh "
                                         "does not handle it"]


def test_stale_exemptions_are_reported():
    code = code_names()
    trimmed = dataclasses.replace(code, local_settings=code.local_settings - {"SAMPLE_API_URL"},
                                  settings={k: v for k, v in code.settings.items() if k != "KSPYDER_HOST_KEY"})
    problems = new_problems(code=trimmed)
    assert f"{HERE} LOCAL_ONLY: SAMPLE_API_URL is no longer in local.settings.sample.json" in problems
    assert f"{HERE} NOT_IN_FUNCTION_APP: the code no longer reads KSPYDER_HOST_KEY" in problems


def test_manifest_variables_without_a_default_must_be_provided(tmp_path):
    manifests = Path(shutil.copytree(ROOT / "manifests", tmp_path / "manifests"))
    edit(manifests / "connector_models.yml", "${SAMPLE_API_URL:-http://127.0.0.1:8765}", "${SHOP_URL}")
    problems = new_problems(manifests=manifests)
    assert len(problems) == 1
    assert problems[0].startswith("connector_models.yml:") and "${SHOP_URL} has no default" in problems[0]
    infra = copy_infra(tmp_path)
    (infra / "manifest-variables.json").write_text(json.dumps({"settings": {"SHOP_URL": "https://shop"},
                                                               "secrets": ["BAD-NAME"]}))
    assert new_problems(infra=infra, manifests=manifests) == ["manifest-variables.json: secret BAD-NAME is not a "
                                                              "setting name"]


def test_the_runtime_is_python_312(tmp_path):
    infra = copy_infra(tmp_path)
    edit(infra / "app" / "function.bicep", "version: '3.12'", "version: '3.11'")
    assert any("expected python 3.12" in p for p in new_problems(infra=infra))



def test_a_rotated_secret_the_deployment_does_not_grant_is_reported(tmp_path):
    manifests = Path(shutil.copytree(ROOT / "manifests", tmp_path / "manifests"))
    (manifests / "crm.yml").write_text(
        "sources:\n  crm:\n    auth:\n      type: oauth2_refresh_token\n"
        "      key_vault_secret: https://kv-demo.vault.azure.net/secrets/crm-refresh\n"
        "  erp:\n    auth:\n      key_vault_secret: \"${ERP_TOKEN_SECRET}\"\n"
        "  ads:\n    auth:\n      key_vault_secret: ${ADS_SECRET:-https://kv-demo.vault.azure.net/secrets/ads}\n")
    infra = copy_infra(tmp_path)
    listed = {"settings": {"ERP_TOKEN_SECRET": "https://kv-demo.vault.azure.net/secrets/erp-refresh/"},
              "secrets": [], "rotatedSecrets": ["crm-refresh"]}
    (infra / "manifest-variables.json").write_text(json.dumps(listed))
    assert new_problems(infra=infra, manifests=manifests) == [
        "crm.yml:8: key_vault_secret names secret erp-refresh, which is not in manifest-variables.json "
        "rotatedSecrets (the app could not write rotated tokens back)",
        "crm.yml:11: key_vault_secret names secret ads, which is not in manifest-variables.json rotatedSecrets "
        "(the app could not write rotated tokens back)"]
    listed["rotatedSecrets"] += ["erp-refresh", "ads"]
    (infra / "manifest-variables.json").write_text(json.dumps(listed))
    assert new_problems(infra=infra, manifests=manifests) == []


def test_rotated_secrets_must_be_secret_names_and_readable(tmp_path):
    manifests = Path(shutil.copytree(ROOT / "manifests", tmp_path / "manifests"))
    (manifests / "crm.yml").write_text("sources:\n  crm:\n    auth:\n      key_vault_secret: ${CRM_SECRET_URL}\n")
    infra = copy_infra(tmp_path)
    (infra / "manifest-variables.json").write_text(json.dumps({"settings": {}, "secrets": ["CRM_SECRET_URL"],
                                                               "rotatedSecrets": ["crm_refresh"]}))
    assert new_problems(infra=infra, manifests=manifests) == [
        "manifest-variables.json: rotatedSecrets crm_refresh is not a Key Vault secret name",
        "crm.yml:4: key_vault_secret is not a secret identifier once the settings of manifest-variables.json are "
        "applied"]
    (infra / "manifest-variables.json").write_text(json.dumps({"settings": {}, "secrets": ["CRM_SECRET_URL"],
                                                               "rotatedSecrets": "crm-refresh"}))
    assert new_problems(infra=infra, manifests=manifests) == [
        "manifest-variables.json: rotatedSecrets must be a list of Key Vault secret names"]


def test_main_grants_the_listed_and_the_parameter_rotated_secrets():
    main = load_infra(INFRA)
    [bicep] = [b for b in main if b.path.name == "main.bicep"]
    assert "rotatedSecretNames: union(manifestVariables.?rotatedSecrets ?? [], rotatedSecretNames)" in bicep.source
    assert text(bicep.params["rotatedSecretNames"].default) == "[]"
    values = json.loads((INFRA / "main.parameters.json").read_text())["parameters"]
    assert values["rotatedSecretNames"]["value"] == "${AZURE_KEY_VAULT_ROTATED_SECRETS=[]}"
