// Everything the guardrail runs on, in its own resource group: identities, storage, monitoring
// (workspace, findings table, DCE/DCR, Application Insights, alert, workbook), Key Vault, optional ACS
// Email, and the Function App on the Flex Consumption plan.

@description('Region for the resources.')
param location string

@description('Short unique token used in resource names.')
param resourceToken string

@description('Tags applied to every resource.')
param tags object = {}

@description('Tag value azd uses to find the function app of service "guardrail".')
param azdServiceName string = 'guardrail'

// ---- guardrail settings (become app settings) ----
param policyPath string = ''
param policyYaml string = ''
param mode string = ''
param governedSubscriptionIds array
param sweepSchedule string = '0 0 */6 * * *'
param breakerMaxRemediations int = 3
param breakerWindowMinutes int = 30
param alertCooldownMinutes int = 60

// ---- alerts ----
@secure()
param teamsWebhookUrl string = ''
param teamsWebhookInVault bool = false
param alertEmailRecipients array = []
param alertEmailSender string = ''
param acsEndpoint string = ''
param createAcsEmail bool = false
param acsDataLocation string = 'United States'
param acsEmailRoleDefinitionId string = ''
param findingsAlertEnabled bool = true

// ---- sizing ----
param maximumInstanceCount int = 40
param instanceMemoryMB int = 2048
param logRetentionDays int = 90
// guardrail.state.TableNames with the default prefix "guardrail" (the store also creates them on first use).
param stateTableNames array = [
  'guardrailremediations'
  'guardrailbreakers'
  'guardrailevents'
  'guardrailalerts'
]

var names = {
  identity: 'id-guardrail-${resourceToken}'
  eventGridIdentity: 'id-guardrail-evg-${resourceToken}'
  storage: take('stguard${resourceToken}', 24)
  workspace: 'log-guardrail-${resourceToken}'
  appInsights: 'appi-guardrail-${resourceToken}'
  dce: 'dce-guardrail-${resourceToken}'
  dcr: 'dcr-guardrail-${resourceToken}'
  keyVault: take('kv-guard-${resourceToken}', 24)
  plan: 'plan-guardrail-${resourceToken}'
  functionApp: 'func-guardrail-${resourceToken}'
  actionGroup: 'ag-guardrail-${resourceToken}'
  alert: 'alert-guardrail-findings-${resourceToken}'
  emailService: 'ecs-guardrail-${resourceToken}'
  communicationService: 'acs-guardrail-${resourceToken}'
}
var deploymentContainerName = 'app-package-${take(resourceToken, 13)}'
var deadLetterContainerName = 'eventgrid-deadletter'
var findingsTableName = 'GuardrailFindings_CL'
var findingsStreamName = 'Custom-GuardrailFindings_CL'
var teamsSecretName = 'teams-webhook-url'

// GuardrailFindings_CL schema: the table and the DCR stream declaration use the same columns.
var findingsColumns = [
  {
    name: 'TimeGenerated'
    type: 'datetime'
  }
  {
    name: 'ResourceId'
    type: 'string'
  }
  {
    name: 'SubscriptionId'
    type: 'string'
  }
  {
    name: 'ResourceGroup'
    type: 'string'
  }
  {
    name: 'AccountName'
    type: 'string'
  }
  {
    name: 'Kind'
    type: 'string'
  }
  {
    name: 'Rule'
    type: 'string'
  }
  {
    name: 'Severity'
    type: 'string'
  }
  {
    name: 'Status'
    type: 'string'
  }
  {
    name: 'Message'
    type: 'string'
  }
  {
    name: 'Value'
    type: 'string'
  }
  {
    name: 'Before'
    type: 'dynamic'
  }
  {
    name: 'After'
    type: 'dynamic'
  }
  {
    name: 'Actor'
    type: 'string'
  }
  {
    name: 'CorrelationId'
    type: 'string'
  }
  {
    name: 'EventId'
    type: 'string'
  }
  {
    name: 'Trigger'
    type: 'string'
  }
  {
    name: 'Mode'
    type: 'string'
  }
  {
    name: 'GuardrailVersion'
    type: 'string'
  }
]

// Built-in role definition IDs (https://learn.microsoft.com/azure/role-based-access-control/built-in-roles).
var roles = {
  storageBlobDataOwner: 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
  storageBlobDataContributor: 'ba92f5b4-2d11-453d-a403-e96b0029c9fe'
  storageTableDataContributor: '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'
  storageQueueDataContributor: '974c5e8b-45b9-4653-ba55-5f855dd0fb88'
  monitoringMetricsPublisher: '3913510d-42f4-4e42-8a64-420c390055eb'
  keyVaultSecretsUser: '4633458b-17de-408a-b874-0445c86b69e6'
}

// ---------------------------------------------------------------------------------------------------
// Identities
// ---------------------------------------------------------------------------------------------------
resource guardrailIdentity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: names.identity
  location: location
  tags: tags
}

// Event Grid's own identity: only writes dead letters into one container.
resource eventGridIdentity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: names.eventGridIdentity
  location: location
  tags: tags
}

// ---------------------------------------------------------------------------------------------------
// Storage: Functions host (identity-based AzureWebJobsStorage), Flex deployment package, guardrail
// state tables, Event Grid dead letters. Shared keys are disabled.
// ---------------------------------------------------------------------------------------------------
resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  // checkov:skip=CKV_AZURE_43: the name is stguard + uniqueString() cut to 24 characters: lowercase letters and digits, 3 to 24 characters, which checkov cannot evaluate
  // checkov:skip=CKV_AZURE_35: the Flex Consumption app runs without VNet integration, so the host and Event Grid dead-lettering reach storage over the public endpoint; shared keys are disabled and every access is Entra ID + RBAC
  // checkov:skip=CKV_AZURE_59: same reason as CKV_AZURE_35 (no VNet integration); access is identity-only (allowSharedKeyAccess false)
  // checkov:skip=CKV_AZURE_206: state and dead letters are operational data that the sweep rebuilds; LRS is the Functions default; change sku.name here if your organisation requires geo-redundancy
  name: names.storage
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: 'Standard_LRS'
  }
  properties: {
    accessTier: 'Hot'
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    allowBlobPublicAccess: false
    allowSharedKeyAccess: false
    allowCrossTenantReplication: false
    defaultToOAuthAuthentication: true
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      defaultAction: 'Allow'
      bypass: 'AzureServices'
    }
    encryption: {
      keySource: 'Microsoft.Storage'
      requireInfrastructureEncryption: true
      services: {
        blob: {
          enabled: true
        }
        table: {
          enabled: true
          keyType: 'Account'
        }
        queue: {
          enabled: true
          keyType: 'Account'
        }
        file: {
          enabled: true
        }
      }
    }
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: storage
  name: 'default'
  properties: {
    deleteRetentionPolicy: {
      enabled: true
      days: 7
    }
    containerDeleteRetentionPolicy: {
      enabled: true
      days: 7
    }
  }
}

resource deploymentContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: deploymentContainerName
  properties: {
    publicAccess: 'None'
  }
}

resource deadLetterContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: deadLetterContainerName
  properties: {
    publicAccess: 'None'
  }
}

resource tableService 'Microsoft.Storage/storageAccounts/tableServices@2023-05-01' = {
  parent: storage
  name: 'default'
}

resource stateTables 'Microsoft.Storage/storageAccounts/tableServices/tables@2023-05-01' = [for tableName in stateTableNames: {
  parent: tableService
  name: tableName
}]

resource storageBlobOwner 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, guardrailIdentity.id, roles.storageBlobDataOwner)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataOwner)
    principalId: guardrailIdentity.properties.principalId
    principalType: 'ServicePrincipal'
    description: 'Functions host (AzureWebJobsStorage: leases, timer schedule) and Flex deployment package'
  }
}

resource storageTableContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, guardrailIdentity.id, roles.storageTableDataContributor)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageTableDataContributor)
    principalId: guardrailIdentity.properties.principalId
    principalType: 'ServicePrincipal'
    description: 'Guardrail state tables (breaker, alert cooldown, last-known state)'
  }
}

resource storageQueueContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, guardrailIdentity.id, roles.storageQueueDataContributor)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageQueueDataContributor)
    principalId: guardrailIdentity.properties.principalId
    principalType: 'ServicePrincipal'
    description: 'Functions host queues (AzureWebJobsStorage)'
  }
}

// Event Grid dead-lettering: blob write on the dead-letter container only.
resource deadLetterWriter 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(deadLetterContainer.id, eventGridIdentity.id, roles.storageBlobDataContributor)
  scope: deadLetterContainer
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataContributor)
    principalId: eventGridIdentity.properties.principalId
    principalType: 'ServicePrincipal'
    description: 'Event Grid dead letters for the guardrail event subscriptions'
  }
}

// ---------------------------------------------------------------------------------------------------
// Monitoring: workspace, findings table, Application Insights, DCE + DCR for Logs Ingestion.
// ---------------------------------------------------------------------------------------------------
resource workspace 'Microsoft.OperationalInsights/workspaces@2023-09-01' = {
  name: names.workspace
  location: location
  tags: tags
  properties: {
    sku: {
      name: 'PerGB2018'
    }
    retentionInDays: logRetentionDays
    features: {
      enableLogAccessUsingOnlyResourcePermissions: true
    }
  }
}

resource findingsTable 'Microsoft.OperationalInsights/workspaces/tables@2022-10-01' = {
  parent: workspace
  name: findingsTableName
  properties: {
    plan: 'Analytics'
    retentionInDays: logRetentionDays
    schema: {
      name: findingsTableName
      columns: findingsColumns
    }
  }
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' = {
  name: names.appInsights
  location: location
  tags: tags
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: workspace.id
    DisableLocalAuth: true
  }
}

// Application Insights with local auth disabled: the host sends telemetry with the identity.
resource appInsightsPublisher 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(appInsights.id, guardrailIdentity.id, roles.monitoringMetricsPublisher)
  scope: appInsights
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.monitoringMetricsPublisher)
    principalId: guardrailIdentity.properties.principalId
    principalType: 'ServicePrincipal'
    description: 'Functions host telemetry to Application Insights (Entra ID auth)'
  }
}

resource dce 'Microsoft.Insights/dataCollectionEndpoints@2023-03-11' = {
  name: names.dce
  location: location
  tags: tags
  properties: {
    networkAcls: {
      publicNetworkAccess: 'Enabled'
    }
  }
}

resource dcr 'Microsoft.Insights/dataCollectionRules@2023-03-11' = {
  name: names.dcr
  location: location
  tags: tags
  properties: {
    dataCollectionEndpointId: dce.id
    streamDeclarations: {
      'Custom-GuardrailFindings_CL': {
        columns: findingsColumns
      }
    }
    destinations: {
      logAnalytics: [
        {
          name: 'guardrailWorkspace'
          workspaceResourceId: workspace.id
        }
      ]
    }
    dataFlows: [
      {
        streams: [
          findingsStreamName
        ]
        destinations: [
          'guardrailWorkspace'
        ]
        transformKql: 'source'
        outputStream: findingsStreamName
      }
    ]
  }
  dependsOn: [
    findingsTable
  ]
}

resource dcrPublisher 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(dcr.id, guardrailIdentity.id, roles.monitoringMetricsPublisher)
  scope: dcr
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.monitoringMetricsPublisher)
    principalId: guardrailIdentity.properties.principalId
    principalType: 'ServicePrincipal'
    description: 'Logs Ingestion of guardrail findings into GuardrailFindings_CL'
  }
}

// ---------------------------------------------------------------------------------------------------
// Alerting: action group + scheduled query rule on new high-severity findings; workbook.
// ---------------------------------------------------------------------------------------------------
resource actionGroup 'Microsoft.Insights/actionGroups@2023-01-01' = {
  name: names.actionGroup
  location: 'Global'
  tags: tags
  properties: {
    groupShortName: 'guardrail'
    enabled: true
    emailReceivers: [for (address, i) in alertEmailRecipients: {
      name: 'email-${i}'
      emailAddress: address
      useCommonAlertSchema: true
    }]
  }
}

var highSeverityQuery = '''
GuardrailFindings_CL
| where Severity in ('critical', 'high')
| where Status in ('violation', 'remediation-failed', 'remediation-suspended')
| project TimeGenerated, ResourceId, AccountName, Rule, Severity, Status, Message, Actor, Mode, CorrelationId
'''

resource findingsAlert 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = {
  name: names.alert
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: 'Guardrail: new high-severity findings on AI services accounts'
    description: 'A critical or high finding that is still a violation, or whose remediation failed or was suspended by the circuit breaker.'
    severity: 1
    enabled: findingsAlertEnabled
    evaluationFrequency: 'PT5M'
    windowSize: 'PT5M'
    scopes: [
      workspace.id
    ]
    criteria: {
      allOf: [
        {
          query: highSeverityQuery
          timeAggregation: 'Count'
          operator: 'GreaterThan'
          threshold: 0
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    autoMitigate: false
    actions: {
      actionGroups: [
        actionGroup.id
      ]
    }
  }
  dependsOn: [
    findingsTable
  ]
}

var workbookContent = {
  version: 'Notebook/1.0'
  items: [
    {
      type: 1
      name: 'title'
      content: {
        json: '## AI Services Network Guardrail\nFindings written by the guardrail to `GuardrailFindings_CL`.'
      }
    }
    {
      type: 9
      name: 'parameters'
      content: {
        version: 'KqlParameterItem/1.0'
        parameters: [
          {
            id: 'time-range'
            version: 'KqlParameterItem/1.0'
            name: 'TimeRange'
            type: 4
            isRequired: true
            value: {
              durationMs: 604800000
            }
            typeSettings: {
              allowCustom: true
            }
          }
        ]
      }
    }
    {
      type: 3
      name: 'findings-over-time'
      content: {
        version: 'KqlItem/1.0'
        title: 'Findings over time by status'
        query: 'GuardrailFindings_CL\n| where TimeGenerated {TimeRange}\n| summarize Findings = count() by Status, bin(TimeGenerated, {TimeRange:grain})\n| render timechart'
        size: 0
        queryType: 0
        resourceType: 'microsoft.operationalinsights/workspaces'
        visualization: 'timechart'
      }
    }
    {
      type: 3
      name: 'top-accounts'
      content: {
        version: 'KqlItem/1.0'
        title: 'Top accounts with violations'
        query: 'GuardrailFindings_CL\n| where TimeGenerated {TimeRange}\n| where Status in (\'violation\', \'audit\', \'remediation-failed\', \'remediation-suspended\')\n| summarize Findings = count(), Rules = make_set(Rule), LastSeen = max(TimeGenerated) by AccountName, ResourceGroup, SubscriptionId\n| top 20 by Findings desc'
        size: 0
        queryType: 0
        resourceType: 'microsoft.operationalinsights/workspaces'
        visualization: 'table'
      }
    }
    {
      type: 3
      name: 'top-actors'
      content: {
        version: 'KqlItem/1.0'
        title: 'Top actors behind violating changes'
        query: 'GuardrailFindings_CL\n| where TimeGenerated {TimeRange}\n| where isnotempty(Actor) and Status in (\'violation\', \'audit\')\n| summarize Changes = count(), Accounts = dcount(ResourceId) by Actor\n| top 20 by Changes desc'
        size: 0
        queryType: 0
        resourceType: 'microsoft.operationalinsights/workspaces'
        visualization: 'table'
      }
    }
    {
      type: 3
      name: 'time-to-remediate'
      content: {
        version: 'KqlItem/1.0'
        title: 'Time to remediate (minutes from first violation to remediation)'
        query: 'let detected = GuardrailFindings_CL\n| where TimeGenerated {TimeRange}\n| where Status == \'violation\'\n| summarize Detected = min(TimeGenerated) by ResourceId, Rule;\nlet fixed = GuardrailFindings_CL\n| where TimeGenerated {TimeRange}\n| where Status == \'remediated\'\n| summarize Remediated = min(TimeGenerated) by ResourceId, Rule;\ndetected\n| join kind=inner fixed on ResourceId, Rule\n| where Remediated >= Detected\n| extend Minutes = datetime_diff(\'second\', Remediated, Detected) / 60.0\n| summarize Remediations = count(), AvgMinutes = round(avg(Minutes), 1), P50 = round(percentile(Minutes, 50), 1), P95 = round(percentile(Minutes, 95), 1) by Rule'
        size: 0
        queryType: 0
        resourceType: 'microsoft.operationalinsights/workspaces'
        visualization: 'table'
      }
    }
  ]
  isLocked: false
  fallbackResourceIds: [
    workspace.id
  ]
}

resource workbook 'Microsoft.Insights/workbooks@2023-06-01' = {
  name: guid(resourceGroup().id, 'guardrail-findings-workbook')
  location: location
  tags: tags
  kind: 'shared'
  properties: {
    displayName: 'AI Services Network Guardrail findings'
    category: 'workbook'
    sourceId: workspace.id
    serializedData: string(workbookContent)
  }
  dependsOn: [
    findingsTable
  ]
}

// ---------------------------------------------------------------------------------------------------
// Key Vault (RBAC mode, purge protection) with the Teams Workflows webhook URL.
// ---------------------------------------------------------------------------------------------------
resource keyVault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  // checkov:skip=CKV_AZURE_109: App Service resolves Key Vault references over the public endpoint when the app has no VNet integration; access is RBAC-only (enableRbacAuthorization) and limited to one secret reader
  // checkov:skip=CKV_AZURE_189: same reason as CKV_AZURE_109
  name: names.keyVault
  location: location
  tags: tags
  properties: {
    tenantId: tenant().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    enableRbacAuthorization: true
    enablePurgeProtection: true
    enableSoftDelete: true
    softDeleteRetentionInDays: 90
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      defaultAction: 'Allow'
      bypass: 'AzureServices'
    }
  }
}

module teamsWebhookSecret 'keyvault-secret.bicep' = if (!empty(teamsWebhookUrl)) {
  name: 'guardrail-teams-webhook-secret'
  params: {
    keyVaultName: keyVault.name
    secretName: teamsSecretName
    secretValue: teamsWebhookUrl
  }
}

resource keyVaultSecretsUser 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(keyVault.id, guardrailIdentity.id, roles.keyVaultSecretsUser)
  scope: keyVault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.keyVaultSecretsUser)
    principalId: guardrailIdentity.properties.principalId
    principalType: 'ServicePrincipal'
    description: 'Resolve the TEAMS_WEBHOOK_URL Key Vault reference'
  }
}

// ---------------------------------------------------------------------------------------------------
// Optional: Azure Communication Services Email with an Azure-managed domain.
// ---------------------------------------------------------------------------------------------------
resource emailService 'Microsoft.Communication/emailServices@2023-04-01' = if (createAcsEmail) {
  name: names.emailService
  location: 'global'
  tags: tags
  properties: {
    dataLocation: acsDataLocation
  }
}

resource emailDomain 'Microsoft.Communication/emailServices/domains@2023-04-01' = if (createAcsEmail) {
  parent: emailService
  name: 'AzureManagedDomain'
  location: 'global'
  tags: tags
  properties: {
    domainManagement: 'AzureManaged'
    userEngagementTracking: 'Disabled'
  }
}

resource communicationService 'Microsoft.Communication/communicationServices@2023-04-01' = if (createAcsEmail) {
  name: names.communicationService
  location: 'global'
  tags: tags
  properties: {
    dataLocation: acsDataLocation
    linkedDomains: [
      emailDomain.id
    ]
  }
}

resource acsEmailSender 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (createAcsEmail && (!empty(acsEmailRoleDefinitionId))) {
  name: guid(names.communicationService, guardrailIdentity.id, acsEmailRoleDefinitionId)
  scope: communicationService
  properties: {
    roleDefinitionId: acsEmailRoleDefinitionId
    principalId: guardrailIdentity.properties.principalId
    principalType: 'ServicePrincipal'
    description: 'Send alert email through Azure Communication Services with Entra ID'
  }
}

// Versionless reference: follows `az keyvault secret set` rotation without a redeploy.
var teamsAlertsEnabled = (!empty(teamsWebhookUrl)) || teamsWebhookInVault
var teamsWebhookReference = '@Microsoft.KeyVault(SecretUri=${keyVault.properties.vaultUri}secrets/${teamsSecretName})'
var effectiveAcsEndpoint = createAcsEmail ? 'https://${communicationService.properties.hostName}' : acsEndpoint
var effectiveEmailSender = createAcsEmail && empty(alertEmailSender) ? 'DoNotReply@${emailDomain.properties.mailFromSenderDomain}' : alertEmailSender

// ---------------------------------------------------------------------------------------------------
// Function App on Flex Consumption (Linux, Python 3.11), user-assigned identity everywhere.
// ---------------------------------------------------------------------------------------------------
resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  // checkov:skip=CKV_AZURE_225: zone redundancy on Flex Consumption is region-dependent and billed as always-ready instances; the guardrail tolerates a zone outage (Event Grid retries for 24 h, the sweep reconciles)
  name: names.plan
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    tier: 'FlexConsumption'
    name: 'FC1'
  }
  properties: {
    reserved: true
  }
}

resource functionApp 'Microsoft.Web/sites@2024-04-01' = {
  // checkov:skip=CKV_AZURE_17: client certificates are not used by Event Grid AzureFunction delivery
  // checkov:skip=CKV_AZURE_222: Event Grid delivers to the function over its public HTTPS endpoint (system key); this deployment has no VNet integration or private endpoint
  // checkov:skip=CKV_AZURE_212: Flex Consumption scales per event from zero; there is no fixed minimum instance count
  // checkov:skip=CKV_AZURE_213: App Service health check pings every instance every minute and would keep Flex instances alive; use the `health` HTTP function from an external probe instead
  name: names.functionApp
  location: location
  tags: union(tags, {
    'azd-service-name': azdServiceName
  })
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${guardrailIdentity.id}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    publicNetworkAccess: 'Enabled'
    clientCertEnabled: false
    keyVaultReferenceIdentity: guardrailIdentity.id
    siteConfig: {
      minTlsVersion: '1.2'
      ftpsState: 'Disabled'
      http20Enabled: true
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${storage.properties.primaryEndpoints.blob}${deploymentContainerName}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: guardrailIdentity.id
          }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: instanceMemoryMB
      }
      runtime: {
        name: 'python'
        version: '3.11'
      }
    }
  }
  dependsOn: [
    storageBlobOwner
    storageQueueContributor
    storageTableContributor
  ]
}

resource functionAppSettings 'Microsoft.Web/sites/config@2024-04-01' = {
  // This is the 'appsettings' config, not the 'web' config that checkov's Microsoft.Web/sites/config checks inspect:
  // checkov:skip=CKV_AZURE_63: HTTP logging belongs to the 'web' config; Functions logs go to Application Insights
  // checkov:skip=CKV_AZURE_65: detailed error pages belong to the 'web' config and are not used by Functions
  // checkov:skip=CKV_AZURE_66: failed request tracing belongs to the 'web' config; Functions traces go to Application Insights
  // checkov:skip=CKV_AZURE_13: the app has no user-facing HTTP API: Event Grid calls the functions with the Event Grid system key and `health` is a function-key endpoint, so App Service Authentication adds nothing
  // checkov:skip=CKV_AZURE_80: .NET framework version does not apply to a Python app
  // checkov:skip=CKV_AZURE_88: Flex Consumption does not use Azure Files; the package lives in a blob container
  // checkov:skip=CKV_AZURE_222: see the same skip on the site (public HTTPS endpoint for Event Grid delivery)
  parent: functionApp
  name: 'appsettings'
  properties: {
    // Functions host: identity-based storage and Application Insights.
    AzureWebJobsStorage__accountName: storage.name
    AzureWebJobsStorage__credential: 'managedidentity'
    AzureWebJobsStorage__clientId: guardrailIdentity.properties.clientId
    APPLICATIONINSIGHTS_CONNECTION_STRING: appInsights.properties.ConnectionString
    APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'ClientId=${guardrailIdentity.properties.clientId};Authorization=AAD'
    // Guardrail.
    GUARDRAIL_POLICY_PATH: policyPath
    GUARDRAIL_POLICY: policyYaml
    GUARDRAIL_MODE: mode
    GUARDRAIL_SUBSCRIPTIONS: join(governedSubscriptionIds, ',')
    GUARDRAIL_SWEEP_SCHEDULE: sweepSchedule
    GUARDRAIL_BREAKER_MAX_REMEDIATIONS: string(breakerMaxRemediations)
    GUARDRAIL_BREAKER_WINDOW_MINUTES: string(breakerWindowMinutes)
    GUARDRAIL_ALERT_COOLDOWN_MINUTES: string(alertCooldownMinutes)
    MONITOR_DCE_ENDPOINT: dce.properties.logsIngestion.endpoint
    MONITOR_DCR_IMMUTABLE_ID: dcr.properties.immutableId
    MONITOR_STREAM_NAME: findingsStreamName
    TEAMS_WEBHOOK_URL: teamsAlertsEnabled ? teamsWebhookReference : ''
    ACS_ENDPOINT: effectiveAcsEndpoint
    ALERT_EMAIL_SENDER: effectiveEmailSender
    ALERT_EMAIL_RECIPIENTS: join(alertEmailRecipients, ',')
    AZURE_CLIENT_ID: guardrailIdentity.properties.clientId
  }
  dependsOn: [
    keyVaultSecretsUser
    teamsWebhookSecret
    dcrPublisher
    appInsightsPublisher
  ]
}

output functionAppName string = functionApp.name
output functionAppResourceId string = functionApp.id
output guardrailIdentityResourceId string = guardrailIdentity.id
output guardrailPrincipalId string = guardrailIdentity.properties.principalId
output guardrailClientId string = guardrailIdentity.properties.clientId
output eventGridIdentityResourceId string = eventGridIdentity.id
output storageAccountId string = storage.id
output storageAccountName string = storage.name
output deadLetterContainerName string = deadLetterContainerName
output workspaceId string = workspace.id
output dceLogsIngestionEndpoint string = dce.properties.logsIngestion.endpoint
output dcrImmutableId string = dcr.properties.immutableId
output keyVaultName string = keyVault.name
output acsEndpoint string = effectiveAcsEndpoint
