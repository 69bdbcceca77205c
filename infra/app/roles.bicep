// Role assignments: what the app's identity needs, and the deploying user's own data roles (when
// principalId is given) so `python main.py poison ...`, Storage Explorer and the postdeploy hook
// reach the same storage and vault. Names are deterministic guid()s, so redeploying is a no-op.
// Every role is a built-in role by GUID; tests/infra/test_infra_security.py checks them against an
// allow-list with the role name written beside each.

param storageAccountName string
param keyVaultName string
param applicationInsightsName string

@description('Principal (object) id of the app\'s user-assigned identity.')
param appPrincipalId string

@description('Object id of the deploying user or service principal; empty: no user roles.')
param userPrincipalId string = ''

@allowed([
  'User'
  'ServicePrincipal'
  'Group'
])
param userPrincipalType string = 'User'

@description('Names of the Key Vault secrets holding OAuth2 refresh tokens the app rotates (auth key_vault_secret). Each must exist before the deployment: the app gets Secrets Officer on each of them only.')
param rotatedSecretNames array = []

var storageBlobDataOwner = 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b' // Storage Blob Data Owner
var storageQueueDataContributor = '974c5e8b-45b9-4653-ba55-5f855dd0fb88' // Storage Queue Data Contributor
var storageTableDataContributor = '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3' // Storage Table Data Contributor
var keyVaultSecretsUser = '4633458b-17de-408a-b874-0445c86b69e6' // Key Vault Secrets User
var keyVaultSecretsOfficer = 'b86a8fe4-44ce-4948-aee5-eccb2c155cd7' // Key Vault Secrets Officer
var monitoringMetricsPublisher = '3913510d-42f4-4e42-8a64-420c390055eb' // Monitoring Metrics Publisher

// Data roles only. Blob Data Owner: the host's leases and the deployment package, the chain's blobs,
// the inbox blob trigger (Event Grid source: it reads blobs and keeps its receipts in blobs too).
// Queue: the chain. Table: the host's diagnostic events. No control-plane role: Storage Account
// Contributor would list the account keys and could turn shared-key access back on, which the
// identity-only design rules out (tests/infra/test_infra_azure.py keeps this list).
var appStorageRoles = [
  storageBlobDataOwner
  storageQueueDataContributor
  storageTableDataContributor
]

var userStorageRoles = [
  storageBlobDataOwner
  storageQueueDataContributor
  storageTableDataContributor
]

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: keyVaultName
}

// Existing only: a role assignment needs its scope to exist, and a declared secret would need a value
// (the first refresh token, which the user sets with az keyvault secret set, docs/deploy.md).
resource rotatedSecrets 'Microsoft.KeyVault/vaults/secrets@2023-07-01' existing = [for name in rotatedSecretNames: {
  parent: vault
  name: name
}]

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: applicationInsightsName
}

resource appStorage 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for roleId in appStorageRoles: {
  name: guid(storage.id, appPrincipalId, roleId)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleId)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}]

resource appSecrets 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(vault.id, appPrincipalId, keyVaultSecretsUser)
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', keyVaultSecretsUser)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// A rotated refresh token is written back as the secret's next version: Secrets Officer, scoped to that
// secret alone, so the app can still only read every other secret (the PII key, the target URL).
resource appRotatedSecrets 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for i in range(0, length(rotatedSecretNames)): {
  name: guid(rotatedSecrets[i].id, appPrincipalId, keyVaultSecretsOfficer)
  scope: rotatedSecrets[i]
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', keyVaultSecretsOfficer)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}]

resource appTelemetry 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(applicationInsights.id, appPrincipalId, monitoringMetricsPublisher)
  scope: applicationInsights
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', monitoringMetricsPublisher)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource userStorage 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for roleId in userStorageRoles: if (!empty(userPrincipalId)) {
  name: guid(storage.id, userPrincipalId, roleId)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleId)
    principalId: userPrincipalId
    principalType: userPrincipalType
  }
}]

// The deploying user sets the secrets (the PII key, source credentials); the app only reads them.
resource userSecrets 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(userPrincipalId)) {
  name: guid(vault.id, userPrincipalId, keyVaultSecretsOfficer)
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', keyVaultSecretsOfficer)
    principalId: userPrincipalId
    principalType: userPrincipalType
  }
}
