"""Issue 18's infra fixes, checked on the Bicep parse trees and the hooks without Azure: Cosmos DB
at a server version pymongo speaks to, the SQL Entra admin as child resources (the inline block only
on creation), least-privilege roles, purge protection, the scale cap against the database's limit,
pyodbc pinned, no ftpsState on Flex, and the postdeploy hook's warm-up and bounded retry (run with
fake `az` and `curl`)."""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pymongo.common

from tests.helpers.infra import INFRA, ROOT, literal, load_bicep, path_of, text

SQL_WORKERS_PER_VCORE = 75   # Azure SQL serverless Gen5 max concurrent workers per max vCore (Microsoft's limits table)


def version(value: str) -> tuple[int, ...]:
    return tuple(int(part) for part in value.split("."))


def allowed(param) -> list[str]:
    return [d for d in param.decorators if d.startswith("allowed(")]


def test_cosmos_is_created_at_a_server_version_the_driver_supports():
    cosmos, main = load_bicep(INFRA / "app" / "cosmos.bicep"), load_bicep(INFRA / "main.bicep")
    [account] = [r for r in cosmos.resources if r.type == "Microsoft.DocumentDB/databaseAccounts"]
    assert text(account.prop("properties", "apiProperties", "serverVersion")) == "serverVersion"
    minimum = version(pymongo.common.MIN_SUPPORTED_SERVER_VERSION)
    for bicep, name in ((cosmos, "serverVersion"), (main, "cosmosServerVersion")):
        param = bicep.params[name]
        assert version(literal(param.default)) >= (6, 0) > minimum
        for choice in allowed(param)[0].split("'")[1::2]:
            assert version(choice) >= minimum, (name, choice)
    assert "serverVersion: cosmosServerVersion" in main.source


def test_the_sql_admin_is_set_by_child_resources_and_inline_only_on_creation():
    sql = load_bicep(INFRA / "app" / "sql.bicep")
    [server] = [r for r in sql.resources if r.type == "Microsoft.Sql/servers"]
    properties = server.prop("properties")
    assert properties.type == "call_expression" and text(properties).startswith("union(")
    base = next(c for c in properties.named_children[-1].named_children if c.type == "object")
    assert text(path_of(base, "minimalTlsVersion")) == "'1.2'" and path_of(base, "administrators") is None
    creation = text(sql.variables["creation"])
    assert creation.startswith("serverExists ? {} : {") and "azureADOnlyAuthentication: true" in creation
    [admin] = [r for r in sql.resources if r.type == "Microsoft.Sql/servers/administrators"]
    [only] = [r for r in sql.resources if r.type == "Microsoft.Sql/servers/azureADOnlyAuthentications"]
    assert literal(admin.prop("name")) == "ActiveDirectory" and literal(only.prop("name")) == "Default"
    assert literal(admin.prop("properties", "administratorType")) == "ActiveDirectory"
    assert text(only.prop("properties", "azureADOnlyAuthentication")) == "true"
    assert "entraAdmin" in text(only.prop("dependsOn"))
    main = load_bicep(INFRA / "main.bicep")
    parameters = json.loads((INFRA / "main.parameters.json").read_text())["parameters"]
    assert parameters["sqlServerExists"]["value"] == "${AZURE_SQL_SERVER_EXISTS=false}"
    assert "AZURE_SQL_SERVER_EXISTS" in main.outputs   # azd keeps it: the next provision passes true


def test_the_app_identity_has_data_roles_only():
    roles = load_bicep(INFRA / "app" / "roles.bicep")
    assert roles.strings(roles.variables["appStorageRoles"]) == [
        "b7e6dc6d-f1e8-4753-8033-0f276bb0955b",   # Storage Blob Data Owner
        "974c5e8b-45b9-4653-ba55-5f855dd0fb88",   # Storage Queue Data Contributor
        "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3",   # Storage Table Data Contributor
    ]
    storage_account_contributor = "17d1049b-9a84-46fb-8f53-869881c3d3ab"
    assert not any(storage_account_contributor in p.read_text() for p in INFRA.rglob("*.bicep"))


def test_key_vault_purge_protection_is_a_parameter_on_by_default():
    vault, main = load_bicep(INFRA / "app" / "keyvault.bicep"), load_bicep(INFRA / "main.bicep")
    [resource] = [r for r in vault.resources if r.type == "Microsoft.KeyVault/vaults"]
    assert text(resource.prop("properties", "enablePurgeProtection")) == "purgeProtection ? true : null"
    assert text(main.params["keyVaultPurgeProtection"].default) == "true"
    assert "purgeProtection: keyVaultPurgeProtection" in main.source
    parameters = json.loads((INFRA / "main.parameters.json").read_text())["parameters"]
    assert parameters["keyVaultPurgeProtection"]["value"] == "${AZURE_KEY_VAULT_PURGE_PROTECTION=true}"


def instance_cap(main, deploy_sql: bool, max_vcores: int, requested: int, limit: int = 0) -> int:
    """main.bicep's instanceCap, from its own numbers (the vars are read from the parse tree)."""
    number = lambda name: int(text(main.variables[name]))   # noqa: E731
    assert number("sqlWorkersPerVCore") == SQL_WORKERS_PER_VCORE
    database = limit if limit > 0 else (max_vcores * number("sqlWorkersPerVCore") if deploy_sql else 0)
    if database == 0:
        return requested
    return min(requested, max(1, database * number("databaseSharePercent") // 100 // number("messagesPerInstance")))


def test_the_load_functions_concurrency_stays_under_the_databases_limit():
    main = load_bicep(INFRA / "main.bicep")
    queues = json.loads((ROOT / "host.json").read_text())["extensions"]["queues"]
    per_instance = queues["batchSize"] + queues["newBatchThreshold"]
    assert int(text(main.variables["messagesPerInstance"])) == per_instance
    expression = text(main.variables["instancesForDatabase"])
    assert expression == ("databaseLimit > 0 ? max(1, databaseLimit * databaseSharePercent / 100 / messagesPerInstance)"
                          " : maximumInstanceCount")
    assert text(main.variables["instanceCap"]) == "min(maximumInstanceCount, instancesForDatabase)"
    assert "maximumInstanceCount: instanceCap" in main.source
    requested = int(text(main.params["maximumInstanceCount"].default))
    for vcores in (1, 2, 4, 6, 8):
        cap = instance_cap(main, True, vcores, requested)
        assert cap * per_instance <= 0.8 * vcores * SQL_WORKERS_PER_VCORE, vcores
    # the defaults: 2 vCores (150 workers) take the default cap of 40, 40 x 3 = 120 concurrent loads
    assert instance_cap(main, True, int(text(main.params["sqlMaxVCores"].default)), requested) == 40
    assert instance_cap(main, False, 2, requested, limit=50) * per_instance <= 40   # a B1ms PostgreSQL: 50
    assert instance_cap(main, False, 2, requested) == requested


def test_pyodbc_is_pinned_for_the_azure_sql_option():
    lines = [line.strip() for line in (ROOT / "requirements.txt").read_text().splitlines()]
    assert any(line.startswith("pyodbc~=") for line in lines)
    assert "ODBC+Driver+18+for+SQL+Server" in load_bicep(INFRA / "main.bicep").source


def test_the_flex_site_has_no_ftps_state():
    function = load_bicep(INFRA / "app" / "function.bicep")
    [site] = [r for r in function.resources if r.type == "Microsoft.Web/sites"]
    assert site.prop("properties", "siteConfig", "ftpsState") is None


# ---------------------------------------------------------------- the postdeploy hook, with fakes

FAKE_AZ = """#!/usr/bin/env bash
echo "$*" >> "$CALLS"
case "$*" in
  "functionapp keys list"*) echo blobskey ;;
  "eventgrid system-topic event-subscription show"*) exit 3 ;;
  "eventgrid system-topic event-subscription create"*)
    n=$(cat "$COUNT" 2>/dev/null || echo 0); n=$((n + 1)); echo "$n" > "$COUNT"
    [ "$n" -ge "$SUCCEED_ON" ] || { echo "validation handshake timed out" >&2; exit 1; } ;;
esac
"""
FAKE_CURL = """#!/usr/bin/env bash
echo "curl $*" >> "$CALLS"
printf 401
"""


def run_postdeploy(tmp_path: Path, succeed_on: int) -> tuple[subprocess.CompletedProcess, list[str]]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, body in (("az", FAKE_AZ), ("curl", FAKE_CURL), ("sleep", "#!/usr/bin/env bash\n")):
        (bin_dir / name).write_text(body)
        (bin_dir / name).chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "CALLS": str(tmp_path / "calls"),
           "COUNT": str(tmp_path / "count"), "SUCCEED_ON": str(succeed_on), "KSPYDER_HOOK_ATTEMPTS": "4",
           "AZURE_RESOURCE_GROUP": "rg", "AZURE_FUNCTION_APP_NAME": "func-x",
           "AZURE_FUNCTION_APP_HOSTNAME": "func-x.azurewebsites.net", "AZURE_EVENTGRID_SYSTEM_TOPIC": "evgt-x"}
    result = subprocess.run(["bash", str(INFRA / "hooks" / "postdeploy.sh")], env=env, capture_output=True, text=True)
    return result, (tmp_path / "calls").read_text().splitlines()


def test_postdeploy_warms_up_then_retries_the_subscription(tmp_path):
    result, calls = run_postdeploy(tmp_path, succeed_on=3)
    assert result.returncode == 0, result.stderr
    creates = [i for i, c in enumerate(calls) if c.startswith("eventgrid system-topic event-subscription create")]
    warmups = [i for i, c in enumerate(calls) if c.startswith("curl") and "/api/health" in c]
    assert len(creates) == 3 and len(warmups) == 3 and all(w < c for w, c in zip(warmups, creates, strict=True))
    assert calls[-1].startswith("functionapp restart")


def test_postdeploy_gives_up_after_its_attempts_with_the_rerun_command(tmp_path):
    result, calls = run_postdeploy(tmp_path, succeed_on=99)
    assert result.returncode == 1
    assert sum(c.startswith("eventgrid system-topic event-subscription create") for c in calls) == 4
    assert "azd hooks run postdeploy" in result.stderr and not any(c.startswith("functionapp restart") for c in calls)
