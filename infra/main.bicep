// kspyder on Azure: one resource group holding the function app (Flex Consumption), its
// identity-only storage (queues, containers, lifecycle), Event Grid topic, monitoring, Key Vault,
// and optionally an Azure SQL serverless database and Cosmos DB for MongoDB.
// Deploy with `azd up` (parameters from main.parameters.json) or
// `az deployment sub create -l <region> -f infra/main.bicep -p environmentName=<name> location=<region>`.
targetScope = 'subscription'

@description('Name of the azd environment; names the resource group and seeds resource names.')
@minLength(1)
@maxLength(40)
param environmentName string

@description('Region for every resource (one that offers Flex Consumption).')
@minLength(1)
param location string

@description('Object id of the deploying user or service principal: gets data roles on storage and Key Vault. Empty: none.')
param principalId string = ''

@allowed([
  'User'
  'ServicePrincipal'
  'Group'
])
param principalType string = 'User'

@description('Flex Consumption: most instances EACH function scale group scales out to (every queue function scales on its own). Lowered to fit the target database, see targetConnectionLimit.')
@minValue(1)
@maxValue(1000)
param maximumInstanceCount int = 40

@description('Concurrent sessions the target database accepts (Azure SQL: its max concurrent workers; PostgreSQL/MariaDB: max_connections). 0: Azure SQL serverless\'s own from sqlMaxVCores when deploySql, else no cap from the database.')
@minValue(0)
param targetConnectionLimit int = 0

@description('Flex Consumption: memory per instance.')
@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int = 2048

@description('Days raw pages stay in kspyder-raw before the lifecycle policy deletes them.')
@minValue(1)
@maxValue(365)
param rawRetentionDays int = 7

@description('NCRONTAB (UTC, six fields) of the timer tick that starts the manifests\' scheduled sources.')
param schedule string = '0 */5 * * * *'

@allowed([
  'DEBUG'
  'INFO'
  'WARNING'
  'ERROR'
])
param logLevel string = 'INFO'

@description('More plain settings for the manifests\' \${VAR}s, on top of infra/manifest-variables.json.')
param manifestSettings object = {}

@description('More Key Vault-backed settings for the manifests\' \${VAR}s, on top of infra/manifest-variables.json.')
param manifestSecrets array = []

@description('More Key Vault secrets holding OAuth2 refresh tokens the app rotates, on top of infra/manifest-variables.json rotatedSecrets: secret names, each created first (docs/deploy.md).')
param rotatedSecretNames array = []

@description('Deploy an Azure SQL serverless database as the target (KSPYDER_TARGET_URL is set to it, Entra auth, no password).')
param deploySql bool = false

@description('Minutes of inactivity before the SQL database pauses.')
@minValue(15)
param sqlAutoPauseDelay int = 60

@allowed([
  1
  2
  4
  6
  8
])
param sqlMaxVCores int = 2

@description('Optional Entra group (object id and name) to be the SQL server\'s admin instead of the app identity.')
param sqlAdminGroupObjectId string = ''
param sqlAdminGroupName string = ''

@description('True once the SQL server exists (output AZURE_SQL_SERVER_EXISTS of the previous provision): its Entra admin is then set by child resources only, see app/sql.bicep.')
param sqlServerExists bool = false

@description('Deploy Cosmos DB for MongoDB (serverless) for document targets (KSPYDER_MONGO_URI).')
param deployCosmos bool = false

@description('Cosmos DB for MongoDB server version: pymongo 4 needs 4.4 or newer.')
@allowed([
  '6.0'
  '7.0'
])
param cosmosServerVersion string = '6.0'

@description('Key Vault purge protection: the PII key survives `azd down --purge` (recoverable for the retention days). Cannot be turned off once on. On for production; set AZURE_KEY_VAULT_PURGE_PROTECTION=false only for throwaway environments.')
param keyVaultPurgeProtection bool = true

var tags = {
  'azd-env-name': environmentName
  app: 'kspyder'
}
var token = toLower(uniqueString(subscription().id, environmentName, location))
var functionAppName = 'func-${token}'
var deploymentContainerName = 'app-package-${token}'
var sqlDatabaseName = 'kspyder'
// The manifests' ${VAR}s, kept in the repo next to the manifests (no secret values in it).
var manifestVariables = loadJsonContent('manifest-variables.json')
var mongoDatabaseName = 'kspyder'

// Scale: each queue function is its own scale group, so the load function alone can run
// instances x (batchSize + newBatchThreshold) invocations at once, each holding a database session.
// That product must stay under the target's limit, with a share left for transform, the HTTP routes
// and people (docs/deploy.md "Scale"). messagesPerInstance is host.json's sum; a test keeps them equal.
var messagesPerInstance = 3
var databaseSharePercent = 80
var sqlWorkersPerVCore = 75   // Azure SQL serverless Gen5: max concurrent workers = 75 x max vCores
var databaseLimit = targetConnectionLimit > 0 ? targetConnectionLimit : (deploySql ? sqlMaxVCores * sqlWorkersPerVCore : 0)
var instancesForDatabase = databaseLimit > 0 ? max(1, databaseLimit * databaseSharePercent / 100 / messagesPerInstance) : maximumInstanceCount
var instanceCap = min(maximumInstanceCount, instancesForDatabase)

resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: 'rg-${environmentName}'
  location: location
  tags: tags
}

module identity 'app/identity.bicep' = {
  scope: rg
  name: 'identity'
  params: {
    name: 'id-${token}'
    location: location
    tags: tags
  }
}

module storage 'app/storage.bicep' = {
  scope: rg
  name: 'storage'
  params: {
    name: 'st${token}'
    location: location
    tags: tags
    rawRetentionDays: rawRetentionDays
    deploymentContainerName: deploymentContainerName
  }
}

module monitoring 'app/monitoring.bicep' = {
  scope: rg
  name: 'monitoring'
  params: {
    logAnalyticsName: 'log-${token}'
    applicationInsightsName: 'appi-${token}'
    location: location
    tags: tags
  }
}

module vault 'app/keyvault.bicep' = {
  scope: rg
  name: 'keyvault'
  params: {
    name: 'kv-${token}'
    location: location
    tags: tags
    purgeProtection: keyVaultPurgeProtection
  }
}

module roles 'app/roles.bicep' = {
  scope: rg
  name: 'roles'
  params: {
    storageAccountName: storage.outputs.name
    keyVaultName: vault.outputs.name
    applicationInsightsName: monitoring.outputs.applicationInsightsName
    appPrincipalId: identity.outputs.principalId
    userPrincipalId: principalId
    userPrincipalType: principalType
    rotatedSecretNames: union(manifestVariables.?rotatedSecrets ?? [], rotatedSecretNames)
  }
}

module sql 'app/sql.bicep' = if (deploySql) {
  scope: rg
  name: 'sql'
  params: {
    serverName: 'sql-${token}'
    databaseName: sqlDatabaseName
    location: location
    tags: tags
    adminLogin: identity.outputs.name
    adminClientId: identity.outputs.clientId
    adminGroupObjectId: sqlAdminGroupObjectId
    adminGroupName: sqlAdminGroupName
    autoPauseDelay: sqlAutoPauseDelay
    maxVCores: sqlMaxVCores
    serverExists: sqlServerExists
  }
}

module cosmos 'app/cosmos.bicep' = if (deployCosmos) {
  scope: rg
  name: 'cosmos'
  params: {
    name: 'cosmos-${token}'
    databaseName: mongoDatabaseName
    location: location
    tags: tags
    serverVersion: cosmosServerVersion
  }
}

// Azure SQL: the app's identity signs in through the ODBC driver (no password anywhere). Without
// it, the target URL is a Key Vault secret the user sets (docs/deploy.md).
var sqlTargetUrl = 'mssql+pyodbc://${identity.outputs.clientId}@sql-${token}${environment().suffixes.sqlServerHostname}:1433/${sqlDatabaseName}?driver=ODBC+Driver+18+for+SQL+Server&authentication=ActiveDirectoryMsi&encrypt=yes'
var secrets = '${vault.outputs.uri}secrets/'

module function 'app/function.bicep' = {
  scope: rg
  name: 'function'
  params: {
    name: functionAppName
    planName: 'plan-${token}'
    location: location
    tags: tags
    identityId: identity.outputs.id
    identityClientId: identity.outputs.clientId
    storageAccountName: storage.outputs.name
    storageBlobEndpoint: storage.outputs.blobEndpoint
    deploymentContainerName: deploymentContainerName
    keyVaultUri: vault.outputs.uri
    applicationInsightsConnectionString: monitoring.outputs.connectionString
    maximumInstanceCount: instanceCap
    instanceMemoryMB: instanceMemoryMB
    targetUrl: deploySql ? sqlTargetUrl : '@Microsoft.KeyVault(SecretUri=${secrets}target-url)'
    mongoUri: deployCosmos ? '@Microsoft.KeyVault(SecretUri=${secrets}mongo-uri)' : ''
    schedule: schedule
    logLevel: logLevel
    manifestSettings: union(manifestVariables.settings, manifestSettings)
    manifestSecrets: union(manifestVariables.secrets, manifestSecrets)
  }
  dependsOn: [
    roles
  ]
}

module eventGrid 'app/eventgrid.bicep' = {
  scope: rg
  name: 'eventgrid'
  params: {
    name: 'evgt-${token}'
    location: location
    tags: tags
    storageAccountId: storage.outputs.id
  }
}

// azd stores these in the environment (.azure/<env>/.env); the postdeploy hook and docs use them.
output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_RESOURCE_GROUP string = rg.name
output AZURE_FUNCTION_APP_NAME string = function.outputs.name
output AZURE_FUNCTION_APP_URL string = function.outputs.uri
output AZURE_FUNCTION_APP_HOSTNAME string = function.outputs.defaultHostName
output AZURE_STORAGE_ACCOUNT_NAME string = storage.outputs.name
output AZURE_KEY_VAULT_NAME string = vault.outputs.name
output AZURE_KEY_VAULT_ENDPOINT string = vault.outputs.uri
output AZURE_EVENTGRID_SYSTEM_TOPIC string = eventGrid.outputs.name
output AZURE_APP_IDENTITY_CLIENT_ID string = identity.outputs.clientId
output AZURE_APP_IDENTITY_PRINCIPAL_ID string = identity.outputs.principalId
output APPLICATIONINSIGHTS_NAME string = monitoring.outputs.applicationInsightsName
output AZURE_SQL_SERVER_NAME string = deploySql ? sql.outputs.serverName : ''
output AZURE_SQL_DATABASE_NAME string = deploySql ? sql.outputs.databaseName : ''
output AZURE_COSMOS_ACCOUNT_NAME string = deployCosmos ? cosmos.outputs.name : ''
output AZURE_COSMOS_DATABASE_NAME string = deployCosmos ? cosmos.outputs.databaseName : ''
output AZURE_FUNCTION_INSTANCE_CAP int = instanceCap
// Read back by main.parameters.json (sqlServerExists) on the next provision: azd keeps outputs in its
// environment, so from the second provision on the server's creation-only admin block is left out.
output AZURE_SQL_SERVER_EXISTS bool = deploySql
