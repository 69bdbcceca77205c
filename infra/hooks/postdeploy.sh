#!/usr/bin/env bash
# azd `postdeploy` hook (azure.yaml): what needs the deployed code, so it cannot be in the Bicep.
# Idempotent: run it again any time (`azd hooks run postdeploy`).
#
#   1. The Event Grid subscription that feeds the inbox blob trigger (functions/inbox.py, source
#      EventGrid, the only blob trigger source on Flex Consumption): BlobCreated events under
#      kspyder-inbox/ go to the function's blobs webhook, whose URL carries the host's
#      blobs_extension key (it exists only once the code is deployed and the host started).
#   2. A restart, so the app re-reads its Key Vault references (secrets set since its last start).
#
# Needs: az (logged in). azd exports the Bicep outputs as environment variables; outside azd,
# export them yourself (`azd env get-values` lists them).
set -euo pipefail

: "${AZURE_RESOURCE_GROUP:?run through azd, or export the Bicep outputs (azd env get-values)}"
: "${AZURE_FUNCTION_APP_NAME:?}"
: "${AZURE_FUNCTION_APP_HOSTNAME:?}"
: "${AZURE_EVENTGRID_SYSTEM_TOPIC:?}"

INBOX_FUNCTION="inbox"                 # functions/inbox.py: @bp.function_name("inbox")
INBOX_CONTAINER="kspyder-inbox"        # shared/chain/names.py: INBOX
SUBSCRIPTION_NAME="kspyder-inbox-blob-created"

echo "kspyder postdeploy: Event Grid subscription $SUBSCRIPTION_NAME on $AZURE_EVENTGRID_SYSTEM_TOPIC"
blobs_key=""
for attempt in 1 2 3 4 5 6 7 8 9 10; do
  blobs_key="$(az functionapp keys list --resource-group "$AZURE_RESOURCE_GROUP" --name "$AZURE_FUNCTION_APP_NAME" \
    --query "systemKeys.blobs_extension" -o tsv 2>/dev/null || true)"
  [ -n "$blobs_key" ] && break
  echo "  waiting for the host's blobs_extension key ($attempt/10)..."
  sleep 30
done
if [ -z "$blobs_key" ]; then
  echo "the app has no blobs_extension system key yet: is the code deployed (azd deploy) and the host running?" >&2
  exit 1
fi
endpoint="https://${AZURE_FUNCTION_APP_HOSTNAME}/runtime/webhooks/blobs?functionName=Host.Functions.${INBOX_FUNCTION}&code=${blobs_key}"
filters=(--included-event-types Microsoft.Storage.BlobCreated
         --subject-begins-with "/blobServices/default/containers/${INBOX_CONTAINER}/"
         --max-delivery-attempts 30 --event-ttl 1440)
if az eventgrid system-topic event-subscription show --resource-group "$AZURE_RESOURCE_GROUP" \
     --system-topic-name "$AZURE_EVENTGRID_SYSTEM_TOPIC" --name "$SUBSCRIPTION_NAME" -o none 2>/dev/null; then
  az eventgrid system-topic event-subscription update --resource-group "$AZURE_RESOURCE_GROUP" \
    --system-topic-name "$AZURE_EVENTGRID_SYSTEM_TOPIC" --name "$SUBSCRIPTION_NAME" \
    --endpoint "$endpoint" --included-event-types Microsoft.Storage.BlobCreated \
    --subject-begins-with "/blobServices/default/containers/${INBOX_CONTAINER}/" -o none
  echo "  updated"
else
  az eventgrid system-topic event-subscription create --resource-group "$AZURE_RESOURCE_GROUP" \
    --system-topic-name "$AZURE_EVENTGRID_SYSTEM_TOPIC" --name "$SUBSCRIPTION_NAME" \
    --endpoint-type webhook --endpoint "$endpoint" "${filters[@]}" -o none
  echo "  created"
fi

echo "kspyder postdeploy: restarting $AZURE_FUNCTION_APP_NAME (re-reads Key Vault references)"
az functionapp restart --resource-group "$AZURE_RESOURCE_GROUP" --name "$AZURE_FUNCTION_APP_NAME" -o none
echo "kspyder postdeploy: done. App: https://${AZURE_FUNCTION_APP_HOSTNAME}"
