// Optional Azure SQL serverless database (the Power BI target): Entra-only authentication, auto-
// pause so it costs storage only when idle. The server's Entra admin is the app's identity
// (kspyder creates schemas and tables, so it needs DDL rights), or an Entra group when one is
// given: then add the app identity to that group (docs/deploy.md).

param serverName string
param databaseName string
param location string
param tags object = {}

@description('Name shown for the Entra admin (the app identity\'s name).')
param adminLogin string

@description('Client (application) id of the app identity: an application admin\'s SID.')
param adminClientId string

@description('Object id of an Entra group to make admin instead of the app identity; empty: the app identity.')
param adminGroupObjectId string = ''

@description('Display name of that group.')
param adminGroupName string = ''

@description('Minutes of inactivity before the database pauses (-1: never; else at least 15).')
param autoPauseDelay int

@description('Upper vCore bound of the serverless database.')
@allowed([
  1
  2
  4
  6
  8
])
param maxVCores int

resource server 'Microsoft.Sql/servers@2023-08-01-preview' = {
  name: serverName
  location: location
  tags: tags
  properties: {
    minimalTlsVersion: '1.2'
    publicNetworkAccess: 'Enabled'
    administrators: {
      administratorType: 'ActiveDirectory'
      azureADOnlyAuthentication: true
      login: empty(adminGroupObjectId) ? adminLogin : adminGroupName
      sid: empty(adminGroupObjectId) ? adminClientId : adminGroupObjectId
      principalType: empty(adminGroupObjectId) ? 'Application' : 'Group'
      tenantId: subscription().tenantId
    }
  }
}

// Flex Consumption without a virtual network reaches SQL over the public endpoint; this rule
// admits Azure services only (0.0.0.0), and Entra-only auth still applies.
resource allowAzure 'Microsoft.Sql/servers/firewallRules@2023-08-01-preview' = {
  parent: server
  name: 'AllowAllWindowsAzureIps'
  properties: {
    startIpAddress: '0.0.0.0'
    endIpAddress: '0.0.0.0'
  }
}

resource database 'Microsoft.Sql/servers/databases@2023-08-01-preview' = {
  parent: server
  name: databaseName
  location: location
  tags: tags
  sku: {
    name: 'GP_S_Gen5'
    tier: 'GeneralPurpose'
    family: 'Gen5'
    capacity: maxVCores
  }
  properties: {
    autoPauseDelay: autoPauseDelay
    minCapacity: json('0.5')
    zoneRedundant: false
    requestedBackupStorageRedundancy: 'Local'
  }
}

output serverName string = server.name
output serverFqdn string = server.properties.fullyQualifiedDomainName
output databaseName string = database.name
