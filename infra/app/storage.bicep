// Storage for the app and the Functions host: identity-only (no shared keys), nothing public.
// Queue and container names are spelled as in shared/chain/names.py; tests/infra/test_infra_drift.py
// fails when the two differ.

@description('Storage account name (3-24 lowercase letters and digits).')
param name string
param location string
param tags object = {}

@description('Days after which raw pages (kspyder-raw) are deleted: they are expendable once loaded.')
@minValue(1)
@maxValue(365)
param rawRetentionDays int

@description('Container holding the deployment package of the Flex Consumption app.')
param deploymentContainerName string

// The chain's queues and the -poison twins the Functions host moves failed messages to.
var queueNames = [
  'kspyder-paginate'
  'kspyder-fetch'
  'kspyder-load'
  'kspyder-transform'
  'kspyder-paginate-poison'
  'kspyder-fetch-poison'
  'kspyder-load-poison'
  'kspyder-transform-poison'
]

// raw pages, the run ledger, the blob drop, file outputs.
var containerNames = [
  'kspyder-raw'
  'kspyder-runs'
  'kspyder-inbox'
  'kspyder-outputs'
]

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: name
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: 'Standard_LRS'
  }
  properties: {
    accessTier: 'Hot'
    allowBlobPublicAccess: false
    allowSharedKeyAccess: false
    allowCrossTenantReplication: false
    defaultToOAuthAuthentication: true
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      bypass: 'AzureServices'
      defaultAction: 'Allow'
    }
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: storage
  name: 'default'
}

resource containers 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = [for container in containerNames: {
  parent: blobService
  name: container
  properties: {
    publicAccess: 'None'
  }
}]

resource deploymentContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: deploymentContainerName
  properties: {
    publicAccess: 'None'
  }
}

resource queueService 'Microsoft.Storage/storageAccounts/queueServices@2023-05-01' = {
  parent: storage
  name: 'default'
}

resource queues 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' = [for queue in queueNames: {
  parent: queueService
  name: queue
}]

resource tableService 'Microsoft.Storage/storageAccounts/tableServices@2023-05-01' = {
  parent: storage
  name: 'default'
}

// Raw pages are a claim-check between Fetch and Load; once loaded they are only useful for a
// short replay window, so they expire. Nothing else is deleted automatically.
resource lifecycle 'Microsoft.Storage/storageAccounts/managementPolicies@2023-05-01' = {
  parent: storage
  name: 'default'
  properties: {
    policy: {
      rules: [
        {
          name: 'delete-raw-pages'
          enabled: true
          type: 'Lifecycle'
          definition: {
            filters: {
              blobTypes: [
                'blockBlob'
              ]
              prefixMatch: [
                'kspyder-raw/'
              ]
            }
            actions: {
              baseBlob: {
                delete: {
                  daysAfterModificationGreaterThan: rawRetentionDays
                }
              }
            }
          }
        }
      ]
    }
  }
  dependsOn: [
    containers
  ]
}

output id string = storage.id
output name string = storage.name
output blobEndpoint string = storage.properties.primaryEndpoints.blob
output queueEndpoint string = storage.properties.primaryEndpoints.queue
output tableEndpoint string = storage.properties.primaryEndpoints.table
