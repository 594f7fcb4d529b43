// Adds ONE subscription to one guardrail environment: the (shared) resource group for the Event Grid
// system topics, the environment's custom role assigned to its identity on the whole subscription, and
// the Event Grid wiring. Deploy with `scope: subscription(id)`; main.bicep and mg.bicep loop over it.
//
// The role assignment and the event subscriptions are made only in the wiring pass
// (wireEventSubscriptions=true), a later deployment than the one that created the role definition.
targetScope = 'subscription'

@description('Resource group (in this subscription) that holds the Event Grid system topics; shared by every environment governing the subscription.')
param eventsResourceGroupName string = 'rg-guardrail-events'

@description('Token of the environment: in the names of what the environment owns in this subscription.')
param environmentToken string

@description('Region of that resource group (the topics themselves are global).')
param location string

@description('Resource ID of the guardrail custom role definition to assign on this subscription.')
param guardrailRoleDefinitionId string

@description('Principal (object) ID of the guardrail\'s user-assigned identity.')
param guardrailPrincipalId string

@description('Resource ID of the guardrail Function App.')
param functionAppResourceId string

@description('Resource ID of the storage account that receives dead letters.')
param deadLetterStorageAccountId string

@description('Blob container that receives dead letters.')
param deadLetterContainerName string

@description('The wiring pass: assign the role and create the event subscriptions (false until the code is deployed and the role definition exists).')
param wireEventSubscriptions bool = true

@description('Also subscribe to Azure Resource Notifications.')
param enableResourceNotifications bool = false

@description('Action group of the health alerts (empty: none).')
param actionGroupId string = ''

@description('Tags of the environment\'s own resources.')
param tags object = {}

@description('Tags of the shared resource group and topics (no azd-env-name).')
param sharedTags object = {}

resource eventsGroup 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: eventsResourceGroupName
  location: location
  tags: sharedTags
}

// The guardrail's custom role on the whole subscription: read/patch AI services accounts, join subnets
// via service endpoints when writing virtual network rules, list the subscription (and, when enabled,
// diagnostic settings read/write).
resource guardrailRoleAssignment 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (wireEventSubscriptions) {
  name: guid(subscription().id, guardrailPrincipalId, guardrailRoleDefinitionId)
  properties: {
    roleDefinitionId: guardrailRoleDefinitionId
    principalId: guardrailPrincipalId
    principalType: 'ServicePrincipal'
    description: 'AI Services Network Guardrail: keep Microsoft.CognitiveServices/accounts inside the network policy'
  }
}

module events 'subscription-events.bicep' = {
  name: 'guardrail-events-${environmentToken}-${uniqueString(subscription().id)}'
  scope: eventsGroup
  params: {
    environmentToken: environmentToken
    functionAppResourceId: functionAppResourceId
    deadLetterStorageAccountId: deadLetterStorageAccountId
    deadLetterContainerName: deadLetterContainerName
    wireEventSubscriptions: wireEventSubscriptions
    enableResourceNotifications: enableResourceNotifications
    actionGroupId: actionGroupId
    tags: tags
    sharedTags: sharedTags
  }
}

output subscriptionId string = subscription().subscriptionId
output systemTopicId string = events.outputs.systemTopicId
output roleAssignmentId string = wireEventSubscriptions ? guardrailRoleAssignment.id : ''
output writeEventSubscriptionName string = events.outputs.writeEventSubscriptionName
