// One principal (an Event Grid system topic's identity) may write blobs into one container: Event Grid
// dead-lettering with deadLetterWithResourceIdentity. Deployed into the guardrail's resource group.

@description('Name of the guardrail storage account (in this resource group).')
param storageAccountName string

@description('The dead-letter container.')
param containerName string

@description('Principal (object) ID of the system topic\'s system-assigned identity.')
param principalId string

@description('Why the assignment exists.')
param description string

// Storage Blob Data Contributor (https://learn.microsoft.com/azure/role-based-access-control/built-in-roles).
var storageBlobDataContributor = 'ba92f5b4-2d11-453d-a403-e96b0029c9fe'

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName

  resource blobService 'blobServices' existing = {
    name: 'default'

    resource container 'containers' existing = {
      name: containerName
    }
  }
}

resource deadLetterWriter 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage::blobService::container.id, principalId, storageBlobDataContributor)
  scope: storage::blobService::container
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageBlobDataContributor)
    principalId: principalId
    principalType: 'ServicePrincipal'
    description: description
  }
}
