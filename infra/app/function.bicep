// The function app on Flex Consumption (FC1): Python 3.12, a user-assigned identity for
// everything (storage, deployment package, Key Vault references, telemetry), HTTPS only, FTP and
// basic-auth publishing off (Flex has no FTP, so no ftpsState). App setting names are checked against the code by
// tests/infra/test_infra_drift.py.

param name string
param planName string
param location string
param tags object = {}

param identityId string
param identityClientId string
param storageAccountName string
param storageBlobEndpoint string
param deploymentContainerName string
param keyVaultUri string
param applicationInsightsConnectionString string

@description('Upper bound on instances of EACH function scale group (every queue function scales on its own), each running host.json batchSize + newBatchThreshold messages at once. main.bicep sizes it to the target database.')
@minValue(1)
@maxValue(1000)
param maximumInstanceCount int

@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int

@description('KSPYDER_TARGET_URL: a database URL without a password, or a Key Vault reference.')
param targetUrl string

@description('KSPYDER_MONGO_URI: a Key Vault reference, or empty when no MongoDB target is deployed.')
param mongoUri string

@description('NCRONTAB (UTC) of the app\'s timer tick (KSPYDER_SCHEDULE).')
param schedule string

@allowed([
  'DEBUG'
  'INFO'
  'WARNING'
  'ERROR'
])
param logLevel string

@description('Extra plain settings for the manifests\' \${VAR} references (no secrets here).')
param manifestSettings object

@description('Names of settings the manifests reference whose values are Key Vault secrets (SHOP_TOKEN reads secret SHOP-TOKEN).')
param manifestSecrets array

var kvSecrets = '${keyVaultUri}secrets/'

// Local files go to /tmp: the deployed package is read-only.
var appSettings = {
  AzureWebJobsStorage__accountName: storageAccountName
  AzureWebJobsStorage__credential: 'managedidentity'
  AzureWebJobsStorage__clientId: identityClientId
  APPLICATIONINSIGHTS_CONNECTION_STRING: applicationInsightsConnectionString
  APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'ClientId=${identityClientId};Authorization=AAD'
  KSPYDER_MANIFESTS: 'manifests'
  KSPYDER_PII_KEY: '@Microsoft.KeyVault(SecretUri=${kvSecrets}pii-key)'
  KSPYDER_TARGET_URL: targetUrl
  KSPYDER_MONGO_URI: mongoUri
  KSPYDER_STORAGE_MODE: 'azure'
  KSPYDER_SCHEDULE: schedule
  KSPYDER_LOG_LEVEL: logLevel
  KSPYDER_STATE_DIR: '/tmp/kspyder'
  KSPYDER_OUTPUT_DIR: '/tmp/kspyder/output'
  KSPYDER_STORAGE_ROOT: '/tmp/kspyder/storage'
}

var secretSettings = toObject(manifestSecrets, setting => setting, setting => '@Microsoft.KeyVault(SecretUri=${kvSecrets}${replace(setting, '_', '-')})')

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    tier: 'FlexConsumption'
    name: 'FC1'
  }
  properties: {
    reserved: true
  }
}

resource app 'Microsoft.Web/sites@2024-04-01' = {
  name: name
  location: location
  tags: union(tags, {
    'azd-service-name': 'api'
  })
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    keyVaultReferenceIdentity: identityId
    siteConfig: {
      minTlsVersion: '1.2'
      scmMinTlsVersion: '1.2'
      http20Enabled: true
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${storageBlobEndpoint}${deploymentContainerName}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: instanceMemoryMB
      }
      runtime: {
        name: 'python'
        version: '3.12'
      }
    }
  }
}

resource settings 'Microsoft.Web/sites/config@2024-04-01' = {
  parent: app
  name: 'appsettings'
  properties: union(manifestSettings, secretSettings, appSettings)
}

resource ftp 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: app
  name: 'ftp'
  properties: {
    allow: false
  }
}

resource scm 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: app
  name: 'scm'
  properties: {
    allow: false
  }
}

output name string = app.name
output defaultHostName string = app.properties.defaultHostName
output uri string = 'https://${app.properties.defaultHostName}'
