#!/usr/bin/env bash
# azd `postdeploy` hook (azure.yaml): what needs the deployed code, so it cannot be in the Bicep.
# Idempotent: run it again any time (`azd hooks run postdeploy`).
#
#   1. A warm-up: GET /api/health until the host answers, so an instance is running when Event Grid
#      sends the subscription's validation handshake (a cold Flex instance can miss it).
#   2. The Event Grid subscription that feeds the inbox blob trigger (functions/inbox.py, source
#      EventGrid, the only blob trigger source on Flex Consumption): BlobCreated events under
#      kspyder-inbox/ go to the function's blobs webhook, whose URL carries the host's
#      blobs_extension key (it exists only once the code is deployed and the host started).
#      Created in a bounded retry loop (ATTEMPTS tries, PAUSE seconds apart), warming up again
#      before each retry; if it still fails, run `azd hooks run postdeploy` again.
#   3. A restart, so the app re-reads its Key Vault references (secrets set since its last start).
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
ATTEMPTS="${KSPYDER_HOOK_ATTEMPTS:-6}"   # subscription create/update tries
PAUSE="${KSPYDER_HOOK_PAUSE:-20}"        # seconds between tries

# Any HTTP answer (401 without a key, 200, 500 for invalid manifests) means the host is up; only no
# answer at all (000) or a gateway error means it is still starting.
warm_up() {
  local code attempt
  for attempt in 1 2 3 4 5 6 7 8 9 10; do
    code="$(curl -s -o /dev/null -w '%{http_code}' --max-time 60 "https://${AZURE_FUNCTION_APP_HOSTNAME}/api/health" || true)"
    case "$code" in
      000|502|503|504) echo "  warming up the app: no answer yet ($code, $attempt/10)..."; sleep 15 ;;
      *) echo "  app is up (GET /api/health: $code)"; return 0 ;;
    esac
  done
  echo "  the app did not answer GET /api/health; trying the subscription anyway" >&2
}

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

subscribe() {   # create or update; Event Grid validates the endpoint during the call
  if az eventgrid system-topic event-subscription show --resource-group "$AZURE_RESOURCE_GROUP" \
       --system-topic-name "$AZURE_EVENTGRID_SYSTEM_TOPIC" --name "$SUBSCRIPTION_NAME" -o none 2>/dev/null; then
    az eventgrid system-topic event-subscription update --resource-group "$AZURE_RESOURCE_GROUP" \
      --system-topic-name "$AZURE_EVENTGRID_SYSTEM_TOPIC" --name "$SUBSCRIPTION_NAME" \
      --endpoint "$endpoint" --included-event-types Microsoft.Storage.BlobCreated \
      --subject-begins-with "/blobServices/default/containers/${INBOX_CONTAINER}/" -o none && echo "  updated"
  else
    az eventgrid system-topic event-subscription create --resource-group "$AZURE_RESOURCE_GROUP" \
      --system-topic-name "$AZURE_EVENTGRID_SYSTEM_TOPIC" --name "$SUBSCRIPTION_NAME" \
      --endpoint-type webhook --endpoint "$endpoint" "${filters[@]}" -o none && echo "  created"
  fi
}

subscribed=""
for attempt in $(seq 1 "$ATTEMPTS"); do
  warm_up
  if subscribe; then
    subscribed=yes
    break
  fi
  echo "  the subscription was not accepted (attempt $attempt/$ATTEMPTS): the endpoint validation may have timed out on a cold instance"
  [ "$attempt" -lt "$ATTEMPTS" ] && sleep "$PAUSE"
done
if [ -z "$subscribed" ]; then
  echo "the Event Grid subscription $SUBSCRIPTION_NAME could not be created after $ATTEMPTS attempts: run \`azd hooks run postdeploy\` again" >&2
  exit 1
fi

echo "kspyder postdeploy: restarting $AZURE_FUNCTION_APP_NAME (re-reads Key Vault references)"
az functionapp restart --resource-group "$AZURE_RESOURCE_GROUP" --name "$AZURE_FUNCTION_APP_NAME" -o none
echo "kspyder postdeploy: done. App: https://${AZURE_FUNCTION_APP_HOSTNAME}"
