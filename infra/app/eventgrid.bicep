// The storage account's Event Grid system topic. The inbox blob trigger (functions/inbox.py,
// source EventGrid: the only blob trigger source on Flex Consumption) needs a subscription on it
// delivering BlobCreated events of kspyder-inbox to the function's blobs webhook. That webhook URL
// carries the host's blobs_extension key, which exists only once the code is deployed, so
// infra/hooks/postdeploy.sh creates the subscription after `azd deploy`.

param name string
param location string
param tags object = {}
param storageAccountId string

resource topic 'Microsoft.EventGrid/systemTopics@2022-06-15' = {
  name: name
  location: location
  tags: tags
  properties: {
    source: storageAccountId
    topicType: 'Microsoft.Storage.StorageAccounts'
  }
}

output name string = topic.name
