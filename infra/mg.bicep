// Management-group approach: govern many subscriptions with one custom role defined at a management
// group. Run AFTER main.bicep has created the guardrail (its outputs feed the parameters below), twice
// like main.bicep: first with wireEventSubscriptions=false (role definition, topics), then with true
// (role assignments and event subscriptions, a later deployment than the role's creation):
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

@description('main.bicep output GUARDRAIL_ENVIRONMENT_TOKEN: in the names of the environment\'s event subscriptions and role.')
param environmentToken string

@description('main.bicep output GUARDRAIL_ACTION_GROUP_ID: action group of the delivery alerts (empty: none).')
param actionGroupId string = ''

@description('main.bicep output GUARDRAIL_STORAGE_ACCOUNT_ID.')
param deadLetterStorageAccountId string

@description('main.bicep output GUARDRAIL_DEADLETTER_CONTAINER.')
param deadLetterContainerName string = 'eventgrid-deadletter'

@description('The wiring pass: role assignments and event subscriptions (the function code must be deployed, and the role definition created by an earlier run).')
param wireEventSubscriptions bool = true

@description('Also subscribe to Azure Resource Notifications.')
param enableResourceNotifications bool = false

@description('Grant diagnostic-settings read/write in the custom role (when the policy enables the diagnostics rule).')
param diagnosticsRemediation bool = false

@description('Grant private endpoint connection read/write in the custom role (the private-endpoint rule).')
param privateEndpointRemediation bool = false

@description('Grant the Foundry managed network write in the custom role (the managed-network-internet-outbound fix).')
param managedNetworkRemediation bool = false

@description('Grant outbound rule delete on Foundry managed networks in the custom role (the managed-network-outbound-rule-not-allowed fix).')
param outboundRuleRemediation bool = false

@description('Prefix of the management-group custom role name; the role is named "<prefix> (<mg name>, <token>)", unique per environment in the tenant.')
param guardrailRoleName string = 'AI Services Network Guardrail'

@description('Tags applied to the environment\'s own per-subscription resources.')
param tags object = {
  application: 'ai-services-network-guardrail'
}

// Same list as main.bicep (guardrail/permissions.py is the source; tests hold both to it).
var guardrailBaseActions = [
  'Microsoft.Resources/subscriptions/read'
  'Microsoft.CognitiveServices/accounts/read'
  'Microsoft.CognitiveServices/accounts/write'
  'Microsoft.Network/virtualNetworks/subnets/joinViaServiceEndpoint/action'
  'Microsoft.CognitiveServices/locations/operationresults/read'
  'Microsoft.CognitiveServices/accounts/managedNetworks/read'
  'Microsoft.CognitiveServices/accounts/managedNetworks/outboundRules/read'
  'Microsoft.CognitiveServices/accounts/capabilityHosts/read'
  'Microsoft.CognitiveServices/accounts/networkSecurityPerimeterConfigurations/read'
  'Microsoft.MachineLearningServices/locations/mfeOperationsStatus/read'
]
var guardrailDiagnosticsActions = [
  'Microsoft.Insights/diagnosticSettings/read'
  'Microsoft.Insights/diagnosticSettings/write'
]
var guardrailPrivateEndpointActions = [
  'Microsoft.CognitiveServices/accounts/privateEndpointConnections/read'
  'Microsoft.CognitiveServices/accounts/privateEndpointConnections/write'
]
var guardrailManagedNetworkActions = [
  'Microsoft.CognitiveServices/accounts/managedNetworks/write'
]
var guardrailOutboundRuleActions = [
  'Microsoft.CognitiveServices/accounts/managedNetworks/outboundRules/delete'
]
var guardrailActions = concat(guardrailBaseActions, diagnosticsRemediation ? guardrailDiagnosticsActions : [], privateEndpointRemediation ? guardrailPrivateEndpointActions : [], managedNetworkRemediation ? guardrailManagedNetworkActions : [], outboundRuleRemediation ? guardrailOutboundRuleActions : [])
var sharedTags = {
  application: 'ai-services-network-guardrail'
  'guardrail-shared': 'per-subscription'
}

resource guardrailRole 'Microsoft.Authorization/roleDefinitions@2022-04-01' = {
  name: guid(managementGroup().id, environmentToken, 'guardrail-role')
  properties: {
    roleName: '${guardrailRoleName} (${managementGroup().name}, ${environmentToken})'
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
  name: 'guardrail-sub-${uniqueString(id, managementGroup().id, environmentToken)}'
  scope: subscription(id)
  params: {
    eventsResourceGroupName: eventsResourceGroupName
    location: location
    environmentToken: environmentToken
    guardrailRoleDefinitionId: guardrailRole.id
    guardrailPrincipalId: guardrailPrincipalId
    functionAppResourceId: functionAppResourceId
    deadLetterStorageAccountId: deadLetterStorageAccountId
    deadLetterContainerName: deadLetterContainerName
    wireEventSubscriptions: wireEventSubscriptions
    enableResourceNotifications: enableResourceNotifications
    actionGroupId: actionGroupId
    tags: tags
    sharedTags: sharedTags
  }
}]

output roleDefinitionId string = guardrailRole.id
