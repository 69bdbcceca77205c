// Optional Cosmos DB for MongoDB (serverless) for document data. The Mongo API authenticates with
// account keys only, so its connection string is never handled here: infra/hooks/postprovision.sh
// copies it into Key Vault (secret mongo-uri) and the app reads it through a Key Vault reference.

param name string
param databaseName string
param location string
param tags object = {}

// pymongo 4.x speaks to servers of wire version 9 (MongoDB 4.4) or newer: a 4.2 account refuses every
// connection. shared/mongo/client.py checks the server's wire version at startup; tests/infra/test_infra_azure.py
// keeps this at or above the driver's minimum.
@description('Cosmos DB for MongoDB server version (API); at least 4.4 for pymongo 4, 6.0 or newer recommended.')
@allowed([
  '6.0'
  '7.0'
])
param serverVersion string = '6.0'

resource account 'Microsoft.DocumentDB/databaseAccounts@2024-05-15' = {
  name: name
  location: location
  tags: tags
  kind: 'MongoDB'
  properties: {
    databaseAccountOfferType: 'Standard'
    consistencyPolicy: {
      defaultConsistencyLevel: 'Session'
    }
    locations: [
      {
        locationName: location
        failoverPriority: 0
        isZoneRedundant: false
      }
    ]
    capabilities: [
      {
        name: 'EnableMongo'
      }
      {
        name: 'EnableServerless'
      }
    ]
    apiProperties: {
      serverVersion: serverVersion
    }
    minimalTlsVersion: 'Tls12'
    disableKeyBasedMetadataWriteAccess: true
    publicNetworkAccess: 'Enabled'
  }
}

resource database 'Microsoft.DocumentDB/databaseAccounts/mongodbDatabases@2024-05-15' = {
  parent: account
  name: databaseName
  properties: {
    resource: {
      id: databaseName
    }
  }
}

output name string = account.name
output databaseName string = database.name
