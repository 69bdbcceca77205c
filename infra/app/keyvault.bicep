// Key Vault in RBAC mode for the PII hash key and source credentials. Secrets are never set here
// (a template would have to carry them): infra/hooks/postprovision.sh creates the PII key once, and
// docs/deploy.md shows how to add the rest with `az keyvault secret set`.

param name string
param location string
param tags object = {}

@description('Purge protection: a deleted vault (and the PII key in it) can be recovered for softDeleteRetentionInDays and cannot be purged before. Once on, it cannot be turned off. On for production.')
param purgeProtection bool

@description('Days a deleted vault or secret stays recoverable.')
@minValue(7)
@maxValue(90)
param softDeleteRetentionInDays int = 7

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    tenantId: subscription().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: softDeleteRetentionInDays
    // true, or left out: Key Vault refuses `false` once protection was ever on
    enablePurgeProtection: purgeProtection ? true : null
    enabledForDeployment: false
    enabledForTemplateDeployment: false
    enabledForDiskEncryption: false
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      bypass: 'AzureServices'
      defaultAction: 'Allow'
    }
  }
}

output id string = vault.id
output name string = vault.name
output uri string = vault.properties.vaultUri
