// AI Services Network Guardrail: one deployment for the whole solution (azd up, or
// `az deployment sub create`). Subscription scope: creates the guardrail's resource group, the custom
// roles, everything in modules/host.bicep, and loops modules/governed-subscription.bicep over every
// governed subscription (`scope: subscription(id)`).
targetScope = 'subscription'

// ---- azd / placement ----
@minLength(1)
@maxLength(64)
@description('Environment name (azd: AZURE_ENV_NAME); used in the resource group name, tags and the unique name token.')
param environmentName string

@minLength(1)
@description('Region for the guardrail resources (azd: AZURE_LOCATION). Must offer the Flex Consumption plan.')
param location string

@description('Resource group for the guardrail; empty means rg-<environmentName>.')
param resourceGroupName string = ''

@description('Subscription IDs the guardrail governs (topic, event subscription and role assignment in each). Empty means only the deployment subscription.')
param governedSubscriptionIds array = []

@description('Resource group in each governed subscription that holds its Event Grid system topics. Shared by every environment that governs the subscription (a subscription can hold only one system topic per source), so keep the same name in every environment.')
param eventsResourceGroupName string = 'rg-guardrail-events'

@description('Wire each governed subscription from this template (custom role, role assignment, Event Grid). Set false when mg.bicep does it (management-group approach); the list still feeds GUARDRAIL_SUBSCRIPTIONS.')
param wireGovernedSubscriptions bool = true

@description('The wiring pass: create the Event Grid event subscriptions, the delivery alerts and the custom-role assignments. Event Grid refuses an AzureFunction destination whose function is not deployed yet, and a custom role assigned in the deployment that creates it can fail (RoleDefinitionDoesNotExist), so the first provision runs with false and the azd postdeploy hook re-provisions with true.')
param wireEventSubscriptions bool = true

@description('Also subscribe to Azure Resource Notifications (Microsoft.ResourceNotifications.Resources) and deliver to on_resource_notification.')
param enableResourceNotifications bool = false

// ---- guardrail behaviour (app settings) ----
@description('GUARDRAIL_POLICY_PATH: path of the policy YAML inside the deployed package. Set this or guardrailPolicy, not both (empty both: the built-in default policy).')
param guardrailPolicyPath string = ''

@description('GUARDRAIL_POLICY: the policy as inline YAML. Set this or guardrailPolicyPath, not both.')
param guardrailPolicy string = ''

@allowed([
  ''
  'audit'
  'enforce'
])
@description('GUARDRAIL_MODE: overrides the policy\'s mode; audit reports only, enforce also remediates the rules the policy marks as remediating; empty keeps the policy\'s mode.')
param guardrailMode string = ''

@description('GUARDRAIL_SWEEP_SCHEDULE: NCRONTAB (six fields) of the reconcile sweep.')
param sweepSchedule string = '0 0 */6 * * *'

@minValue(1)
@maxValue(24)
@description('Hours between two sweeps as sweepSchedule runs them (6 for the default); the heartbeat alert fires when no sweep completed for twice this.')
param sweepIntervalHours int = 6

@minValue(1)
@description('GUARDRAIL_BREAKER_MAX_REMEDIATIONS: remediations of one account within the window before the circuit breaker suspends remediation.')
param breakerMaxRemediations int = 3

@minValue(1)
@description('GUARDRAIL_BREAKER_WINDOW_MINUTES: circuit-breaker window.')
param breakerWindowMinutes int = 30

@minValue(0)
@description('GUARDRAIL_ALERT_COOLDOWN_MINUTES: minimum time between two alerts for the same account and rule.')
param alertCooldownMinutes int = 60

@description('Grant diagnostic-settings read/write in the custom role. Set true when the policy enables the diagnostics rule (it reads diagnostic settings, and writes one when it remediates).')
param diagnosticsRemediation bool = false

@description('Grant private endpoint connection read/write in the custom role, for the private-endpoint rule (it rejects connections the policy does not allow).')
param privateEndpointRemediation bool = false

@description('Grant the Foundry managed network write in the custom role, for the managed-network-internet-outbound fix (it sets isolationMode AllowOnlyApprovedOutbound; the policy must turn the fix on too).')
param managedNetworkRemediation bool = false

@description('Grant outbound rule delete on Foundry managed networks in the custom role, for the managed-network-outbound-rule-not-allowed fix (it deletes UserDefined rules the policy does not allow).')
param outboundRuleRemediation bool = false

@description('Prefix of the guardrail custom role name; the role is named "<prefix> (<environmentName>, <token>)", unique per environment in the tenant.')
param guardrailRoleName string = 'AI Services Network Guardrail'

// ---- alerting ----
@secure()
@description('Teams Workflows webhook URL; stored in Key Vault and referenced from TEAMS_WEBHOOK_URL. Empty disables Teams alerts. With azd, set it with `azd env set-secret TEAMS_WEBHOOK_URL` (the .env then holds only a Key Vault reference that azd resolves for this @secure() parameter).')
param teamsWebhookUrl string = ''

@description('The vault already holds the Teams webhook secret (an earlier deployment, or `az keyvault secret set`): keep TEAMS_WEBHOOK_URL pointing at it without passing teamsWebhookUrl again.')
param teamsWebhookInVault bool = false

@description('ALERT_EMAIL_RECIPIENTS and the action group email receivers: list of addresses.')
param alertEmailRecipients array = []

@description('ALERT_EMAIL_SENDER: sender address (MailFrom) for ACS email; empty with createAcsEmail uses DoNotReply@<Azure-managed domain>.')
param alertEmailSender string = ''

@description('ACS_ENDPOINT of an existing Communication Services resource (https://<name>.communication.azure.com). Ignored when createAcsEmail is true.')
param acsEndpoint string = ''

@description('Create a Communication Service + Email Service with an Azure-managed domain for alert email.')
param createAcsEmail bool = false

@description('Data location of the created ACS resources.')
param acsDataLocation string = 'United States'

@description('Enable the scheduled query alert on new high-severity findings.')
param findingsAlertEnabled bool = true

@description('Enable the alerts on the guardrail\'s own health (dead-lettered and failed deliveries, function failures, no heartbeat, lost role).')
param healthAlertsEnabled bool = true

@description('Recover the soft-deleted Key Vault of this environment instead of creating it (createMode recover). The azd preprovision hook sets GUARDRAIL_KEY_VAULT_RECOVER when it finds one; the postprovision hook clears it.')
param keyVaultRecover bool = false

// ---- sizing ----
@minValue(40)
@maxValue(1000)
@description('Flex Consumption maximum instance count (the Azure Flex Consumption samples allow 40 to 1000).')
param maximumInstanceCount int = 40

@allowed([
  512
  2048
  4096
])
@description('Flex Consumption instance memory (MB).')
param instanceMemoryMB int = 2048

@minValue(30)
@maxValue(730)
@description('Retention (days) of the workspace and GuardrailFindings_CL.')
param logRetentionDays int = 90

var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var tags = {
  'azd-env-name': environmentName
  application: 'ai-services-network-guardrail'
}
// Tags of what every environment governing a subscription shares (events resource group, system topic):
// no azd-env-name, so no environment claims it.
var sharedTags = {
  application: 'ai-services-network-guardrail'
  'guardrail-shared': 'per-subscription'
}
var governed = empty(governedSubscriptionIds) ? [
  subscription().subscriptionId
] : governedSubscriptionIds
var governedScopes = [for id in governed: '/subscriptions/${id}']
// The system topic of each governed subscription (shared by every environment; see modules/subscription-events.bicep).
var systemTopicIds = [for id in governed: '/subscriptions/${id}/resourceGroups/${eventsResourceGroupName}/providers/Microsoft.EventGrid/systemTopics/evgt-guardrail-${id}']
// Subscriptions this template wires itself (none when mg.bicep does it).
var wiredSubscriptions = wireGovernedSubscriptions ? governed : []

// Exactly what the guardrail calls at run time: guardrail/permissions.py is the one list (method, path,
// action, why); tests/infra/test_permissions.py holds these arrays to it. Never listKeys, never a wildcard.
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

// Per-environment names: two environments in one subscription (or tenant) never share a role.
var guardrailRoleDisplayName = '${guardrailRoleName} (${environmentName}, ${resourceToken})'
var acsEmailRoleDisplayName = '${guardrailRoleName} ACS email sender (${environmentName}, ${resourceToken})'

// Sending email through ACS with Entra ID: the actions Microsoft documents for an ACS email custom role
// (narrower than Contributor; assigned on the Communication Services resource only).
var acsEmailActions = [
  'Microsoft.Communication/CommunicationServices/Read'
  'Microsoft.Communication/CommunicationServices/Write'
  'Microsoft.Communication/EmailServices/write'
]

resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: empty(resourceGroupName) ? 'rg-${environmentName}' : resourceGroupName
  location: location
  tags: tags
}

// The custom roles are created in the first pass (wireEventSubscriptions=false) and assigned only in the
// wiring pass, a later deployment: no assignment races the definition's replication.
resource guardrailRole 'Microsoft.Authorization/roleDefinitions@2022-04-01' = if (wireGovernedSubscriptions) {
  name: guid(subscription().id, resourceToken, 'guardrail-role')
  properties: {
    roleName: guardrailRoleDisplayName
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
    // The deployment subscription stores the definition; every governed subscription can assign it.
    assignableScopes: union([
      subscription().id
    ], governedScopes)
  }
}

resource acsEmailRole 'Microsoft.Authorization/roleDefinitions@2022-04-01' = if (createAcsEmail) {
  name: guid(subscription().id, resourceToken, 'guardrail-acs-email-role')
  properties: {
    roleName: acsEmailRoleDisplayName
    description: 'Send email through one Azure Communication Services resource with Entra ID.'
    type: 'CustomRole'
    permissions: [
      {
        actions: acsEmailActions
        notActions: []
        dataActions: []
        notDataActions: []
      }
    ]
    assignableScopes: [
      rg.id
    ]
  }
}

module host 'modules/host.bicep' = {
  name: 'guardrail-host'
  scope: rg
  params: {
    location: location
    resourceToken: resourceToken
    tags: tags
    policyPath: guardrailPolicyPath
    policyYaml: guardrailPolicy
    mode: guardrailMode
    governedSubscriptionIds: governed
    sweepSchedule: sweepSchedule
    breakerMaxRemediations: breakerMaxRemediations
    breakerWindowMinutes: breakerWindowMinutes
    alertCooldownMinutes: alertCooldownMinutes
    teamsWebhookUrl: teamsWebhookUrl
    teamsWebhookInVault: teamsWebhookInVault
    alertEmailRecipients: alertEmailRecipients
    alertEmailSender: alertEmailSender
    acsEndpoint: acsEndpoint
    createAcsEmail: createAcsEmail
    acsDataLocation: acsDataLocation
    acsEmailRoleDefinitionId: createAcsEmail ? acsEmailRole.id : ''
    assignCustomRoles: wireEventSubscriptions
    findingsAlertEnabled: findingsAlertEnabled
    healthAlertsEnabled: healthAlertsEnabled
    sweepIntervalHours: sweepIntervalHours
    systemTopicIds: systemTopicIds
    keyVaultRecover: keyVaultRecover
    maximumInstanceCount: maximumInstanceCount
    instanceMemoryMB: instanceMemoryMB
    logRetentionDays: logRetentionDays
  }
}

module governedSubscriptions 'modules/governed-subscription.bicep' = [for id in wiredSubscriptions: {
  name: 'guardrail-sub-${uniqueString(id, environmentName)}'
  scope: subscription(id)
  params: {
    eventsResourceGroupName: eventsResourceGroupName
    location: location
    environmentToken: resourceToken
    guardrailRoleDefinitionId: guardrailRole.id
    guardrailPrincipalId: host.outputs.guardrailPrincipalId
    functionAppResourceId: host.outputs.functionAppResourceId
    deadLetterStorageAccountId: host.outputs.storageAccountId
    deadLetterContainerName: host.outputs.deadLetterContainerName
    wireEventSubscriptions: wireEventSubscriptions
    enableResourceNotifications: enableResourceNotifications
    actionGroupId: healthAlertsEnabled ? host.outputs.actionGroupId : ''
    tags: tags
    sharedTags: sharedTags
  }
}]

// azd reads these into the environment (.azure/<env>/.env).
output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_RESOURCE_GROUP string = rg.name
output AZURE_FUNCTION_APP_NAME string = host.outputs.functionAppName
output GUARDRAIL_FUNCTION_APP_ID string = host.outputs.functionAppResourceId
output GUARDRAIL_IDENTITY_CLIENT_ID string = host.outputs.guardrailClientId
output GUARDRAIL_IDENTITY_PRINCIPAL_ID string = host.outputs.guardrailPrincipalId
output GUARDRAIL_ENVIRONMENT_TOKEN string = resourceToken
output GUARDRAIL_EVENTS_RESOURCE_GROUP string = eventsResourceGroupName
output GUARDRAIL_GOVERNED_SUBSCRIPTIONS string = join(governed, ',')
output GUARDRAIL_ACTION_GROUP_ID string = host.outputs.actionGroupId
output GUARDRAIL_STORAGE_ACCOUNT_ID string = host.outputs.storageAccountId
output GUARDRAIL_DEADLETTER_CONTAINER string = host.outputs.deadLetterContainerName
output GUARDRAIL_ROLE_DEFINITION_ID string = wireGovernedSubscriptions ? guardrailRole.id : ''
output GUARDRAIL_ACS_ROLE_DEFINITION_ID string = createAcsEmail ? acsEmailRole.id : ''
output MONITOR_DCE_ENDPOINT string = host.outputs.dceLogsIngestionEndpoint
output MONITOR_DCR_IMMUTABLE_ID string = host.outputs.dcrImmutableId
output GUARDRAIL_KEY_VAULT_NAME string = host.outputs.keyVaultName
