// Management-group approach: govern many subscriptions with one custom role defined at a management
// group. Run AFTER main.bicep has created the guardrail (its outputs feed the parameters below):
//
//   az deployment mg create --management-group-id <mg> --location <region> \
//     --template-file infra/mg.bicep --parameters @infra/mg.parameters.json
//
// Bicep cannot enumerate the subscriptions under a management group, so pass them in
// governedSubscriptionIds (the README, "Management-group approach", shows how to list them). Each one gets the same
// modules/governed-subscription.bicep as main.bicep uses (topic, event subscription, role assignment).
targetScope = 'managementGroup'

@description('Subscription IDs under this management group that the guardrail governs.')
param governedSubscriptionIds array

@description('Region for the per-subscription events resource group.')
param location string

@description('Resource group created in each governed subscription to hold its Event Grid system topics.')
param eventsResourceGroupName string = 'rg-guardrail-events'

@description('main.bicep output GUARDRAIL_IDENTITY_PRINCIPAL_ID.')
param guardrailPrincipalId string

@description('main.bicep output GUARDRAIL_FUNCTION_APP_ID.')
param functionAppResourceId string

@description('main.bicep output GUARDRAIL_EVENTGRID_IDENTITY_ID.')
param eventGridIdentityResourceId string

@description('main.bicep output GUARDRAIL_STORAGE_ACCOUNT_ID.')
param deadLetterStorageAccountId string

@description('main.bicep output GUARDRAIL_DEADLETTER_CONTAINER.')
param deadLetterContainerName string = 'eventgrid-deadletter'

@description('Create the event subscriptions (the function code must already be deployed).')
param wireEventSubscriptions bool = true

@description('Also subscribe to Azure Resource Notifications.')
param enableResourceNotifications bool = false

@description('Grant diagnostic-settings read/write in the custom role (only when the diagnostics rule remediates).')
param diagnosticsRemediation bool = false

@description('Name of the management-group custom role (unique in the tenant, so it differs from the subscription-scoped role of main.bicep).')
param guardrailRoleName string = 'AI Services Network Guardrail (${managementGroup().name})'

@description('Tags applied to the per-subscription resources.')
param tags object = {
  application: 'ai-services-network-guardrail'
}

// Same list as main.bicep: exactly what the guardrail calls; never listKeys, never a wildcard.
var guardrailBaseActions = [
  'Microsoft.CognitiveServices/accounts/read'
  'Microsoft.CognitiveServices/accounts/write'
  'Microsoft.Network/virtualNetworks/subnets/joinViaServiceEndpoint/action'
  'Microsoft.Resources/subscriptions/read'
]
var guardrailDiagnosticsActions = [
  'Microsoft.Insights/diagnosticSettings/read'
  'Microsoft.Insights/diagnosticSettings/write'
]
var guardrailActions = diagnosticsRemediation ? concat(guardrailBaseActions, guardrailDiagnosticsActions) : guardrailBaseActions

resource guardrailRole 'Microsoft.Authorization/roleDefinitions@2022-04-01' = {
  name: guid(managementGroup().id, guardrailRoleName)
  properties: {
    roleName: guardrailRoleName
    description: 'Least privilege for the AI Services Network Guardrail: read and patch Microsoft.CognitiveServices/accounts network settings.'
    type: 'CustomRole'
    permissions: [
      {
        actions: guardrailActions
        notActions: []
        dataActions: []
        notDataActions: []
      }
    ]
    assignableScopes: [
      managementGroup().id
    ]
  }
}

module governedSubscriptions 'modules/governed-subscription.bicep' = [for id in governedSubscriptionIds: {
  name: 'guardrail-sub-${uniqueString(id, managementGroup().id)}'
  scope: subscription(id)
  params: {
    eventsResourceGroupName: eventsResourceGroupName
    location: location
    guardrailRoleDefinitionId: guardrailRole.id
    guardrailPrincipalId: guardrailPrincipalId
    functionAppResourceId: functionAppResourceId
    eventGridIdentityResourceId: eventGridIdentityResourceId
    deadLetterStorageAccountId: deadLetterStorageAccountId
    deadLetterContainerName: deadLetterContainerName
    wireEventSubscriptions: wireEventSubscriptions
    enableResourceNotifications: enableResourceNotifications
    tags: tags
  }
}]

output roleDefinitionId string = guardrailRole.id
