// Adds ONE subscription to the guardrail: a resource group for the Event Grid system topics, the
// guardrail's custom role assigned to its identity on the whole subscription, and the Event Grid wiring.
// Deploy with `scope: subscription(id)`; main.bicep and mg.bicep loop over this module.
targetScope = 'subscription'

@description('Resource group (in this subscription) that holds the Event Grid system topics.')
param eventsResourceGroupName string = 'rg-guardrail-events'

@description('Region of that resource group (the topics themselves are global).')
param location string

@description('Resource ID of the guardrail custom role definition to assign on this subscription.')
param guardrailRoleDefinitionId string

@description('Principal (object) ID of the guardrail\'s user-assigned identity.')
param guardrailPrincipalId string

@description('Resource ID of the guardrail Function App.')
param functionAppResourceId string

@description('Resource ID of the user-assigned identity Event Grid uses to write dead letters.')
param eventGridIdentityResourceId string

@description('Resource ID of the storage account that receives dead letters.')
param deadLetterStorageAccountId string

@description('Blob container that receives dead letters.')
param deadLetterContainerName string

@description('Create the event subscriptions (false until the function code is deployed).')
param wireEventSubscriptions bool = true

@description('Also subscribe to Azure Resource Notifications.')
param enableResourceNotifications bool = false

@description('Tags applied to the resource group and topics.')
param tags object = {}

resource eventsGroup 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: eventsResourceGroupName
  location: location
  tags: tags
}

// The guardrail's custom role on the whole subscription: read/patch AI services accounts, join subnets
// via service endpoints when writing virtual network rules, list the subscription (and, when enabled,
// diagnostic settings read/write).
resource guardrailRoleAssignment 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(subscription().id, guardrailPrincipalId, guardrailRoleDefinitionId)
  properties: {
    roleDefinitionId: guardrailRoleDefinitionId
    principalId: guardrailPrincipalId
    principalType: 'ServicePrincipal'
    description: 'AI Services Network Guardrail: keep Microsoft.CognitiveServices/accounts inside the network policy'
  }
}

module events 'subscription-events.bicep' = {
  name: 'guardrail-events-${uniqueString(subscription().id)}'
  scope: eventsGroup
  params: {
    functionAppResourceId: functionAppResourceId
    eventGridIdentityResourceId: eventGridIdentityResourceId
    deadLetterStorageAccountId: deadLetterStorageAccountId
    deadLetterContainerName: deadLetterContainerName
    wireEventSubscriptions: wireEventSubscriptions
    enableResourceNotifications: enableResourceNotifications
    tags: tags
  }
}

output subscriptionId string = subscription().subscriptionId
output systemTopicId string = events.outputs.systemTopicId
output roleAssignmentId string = guardrailRoleAssignment.id
