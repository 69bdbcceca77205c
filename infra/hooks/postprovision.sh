#!/usr/bin/env bash
# azd `postprovision` hook (azure.yaml): the secrets a template must not carry, created right after
# the Bicep and before the code is deployed, so the app never starts without them. Idempotent:
# run it again any time (`azd hooks run postprovision`).
#
#   1. Key Vault secret `pii-key` (KSPYDER_PII_KEY): generated once if missing, never replaced
#      (a new key would change every hashed value), never printed.
#   2. With Cosmos DB: its Mongo connection string copied into secret `mongo-uri` (the Mongo API
#      has no Entra sign-in), with the database name added, never printed.
#   3. Without Azure SQL: a warning if secret `target-url` (KSPYDER_TARGET_URL) is not set yet.
#
# Needs: az (logged in as the deploying principal, which has Key Vault Secrets Officer), openssl.
# azd exports the Bicep outputs as environment variables; outside azd, export them yourself
# (`azd env get-values` lists them).
set -euo pipefail

: "${AZURE_RESOURCE_GROUP:?run through azd, or export the Bicep outputs (azd env get-values)}"
: "${AZURE_KEY_VAULT_NAME:?}"
AZURE_SQL_SERVER_NAME="${AZURE_SQL_SERVER_NAME:-}"
AZURE_COSMOS_ACCOUNT_NAME="${AZURE_COSMOS_ACCOUNT_NAME:-}"
AZURE_COSMOS_DATABASE_NAME="${AZURE_COSMOS_DATABASE_NAME:-kspyder}"

secret_exists() {   # present / absent; an error reading the vault stops the script (never "absent")
  local count
  count="$(az keyvault secret list --vault-name "$AZURE_KEY_VAULT_NAME" --query "length([?name=='$1'])" -o tsv)" || {
    echo "cannot list the secrets of $AZURE_KEY_VAULT_NAME" >&2
    exit 1
  }
  [ "$count" != 0 ]
}

set_secret_from_stdin() {   # the value never appears on a command line or in the output
  local file status=0
  file="$(umask 077 && mktemp)"
  cat >"$file"
  az keyvault secret set --vault-name "$AZURE_KEY_VAULT_NAME" --name "$1" --file "$file" --encoding utf-8 \
    --query id -o tsv >/dev/null || status=$?
  rm -f "$file"
  return "$status"
}

echo "kspyder postprovision: Key Vault $AZURE_KEY_VAULT_NAME"
# Role assignments take a few minutes to reach Key Vault after a first provision.
for attempt in 1 2 3 4 5 6 7 8 9 10; do
  if az keyvault secret list --vault-name "$AZURE_KEY_VAULT_NAME" --query "[0].id" -o tsv >/dev/null 2>&1; then
    break
  fi
  if [ "$attempt" = 10 ]; then
    echo "cannot list secrets in $AZURE_KEY_VAULT_NAME: does your account have Key Vault Secrets Officer on it?" >&2
    exit 1
  fi
  echo "  waiting for the Key Vault role assignment ($attempt/10)..."
  sleep 30
done

if secret_exists pii-key; then
  echo "  pii-key: present (kept)"
else
  openssl rand -base64 48 | tr -d '\n' | set_secret_from_stdin pii-key
  echo "  pii-key: generated"
fi

if [ -n "$AZURE_COSMOS_ACCOUNT_NAME" ]; then
  if secret_exists mongo-uri; then
    echo "  mongo-uri: present (kept)"
  else
    az cosmosdb keys list --type connection-strings --resource-group "$AZURE_RESOURCE_GROUP" \
      --name "$AZURE_COSMOS_ACCOUNT_NAME" --query "connectionStrings[0].connectionString" -o tsv \
      | tr -d '\r\n' | sed "s#/?#/${AZURE_COSMOS_DATABASE_NAME}?#" | set_secret_from_stdin mongo-uri
    echo "  mongo-uri: copied from Cosmos DB account $AZURE_COSMOS_ACCOUNT_NAME"
  fi
fi

if [ -z "$AZURE_SQL_SERVER_NAME" ] && ! secret_exists target-url; then
  echo "  target-url: NOT SET. Set the target database URL before the first run:" >&2
  echo "    az keyvault secret set --vault-name $AZURE_KEY_VAULT_NAME --name target-url --value '<SQLAlchemy URL>'" >&2
fi
