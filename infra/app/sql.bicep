// Optional Azure SQL serverless database (the Power BI target): Entra-only authentication, auto-
// pause so it costs storage only when idle. The server's Entra admin is the app's identity
// (kspyder creates schemas and tables, so it needs DDL rights), or an Entra group when one is
// given: then add the app identity to that group (docs/deploy.md).
//
// The Entra admin and Entra-only authentication are child resources (administrators 'ActiveDirectory',
// azureADOnlyAuthentications 'Default'), applied on every provision: the server's inline
// `administrators` block is honored only when the server is created, and an update that carries it
// with azureADOnlyAuthentication fails (AadOnlyAuthenticationIsEnabled). A server cannot be created
// without an admin of some kind, so the inline block is sent only while `serverExists` is false:
// main.bicep outputs AZURE_SQL_SERVER_EXISTS, which azd keeps and passes back on the next provision.

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

@description('True once the server exists (azd env AZURE_SQL_SERVER_EXISTS, an output of the previous provision): its admin is then set by the child resources only.')
param serverExists bool = false

var admin = {
  administratorType: 'ActiveDirectory'
  login: empty(adminGroupObjectId) ? adminLogin : adminGroupName
  sid: empty(adminGroupObjectId) ? adminClientId : adminGroupObjectId
  principalType: empty(adminGroupObjectId) ? 'Application' : 'Group'
  tenantId: subscription().tenantId
}

// Sent on creation only (see above): Entra-only from the first moment, no SQL login ever exists.
var creation = serverExists ? {} : {
  administrators: union(admin, {
    azureADOnlyAuthentication: true
  })
}

resource server 'Microsoft.Sql/servers@2023-08-01-preview' = {
  name: serverName
  location: location
  tags: tags
  properties: union({
    minimalTlsVersion: '1.2'
    publicNetworkAccess: 'Enabled'
  }, creation)
}

resource entraAdmin 'Microsoft.Sql/servers/administrators@2023-08-01-preview' = {
  parent: server
  name: 'ActiveDirectory'
  properties: {
    administratorType: 'ActiveDirectory'
    login: admin.login
    sid: admin.sid
    tenantId: admin.tenantId
  }
}

resource entraOnly 'Microsoft.Sql/servers/azureADOnlyAuthentications@2023-08-01-preview' = {
  parent: server
  name: 'Default'
  properties: {
    azureADOnlyAuthentication: true
  }
  dependsOn: [
    entraAdmin
  ]
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
