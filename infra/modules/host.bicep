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
@description('The wiring pass: assign the custom (ACS email) role, created by an earlier deployment.')
param assignCustomRoles bool = true
param findingsAlertEnabled bool = true
param healthAlertsEnabled bool = true
@description('Hours between two sweeps; the heartbeat alert fires after twice this without a heartbeat.')
param sweepIntervalHours int = 6
@description('Resource IDs of the governed subscriptions\' system topics (the workbook\'s dead-letter chart).')
param systemTopicIds array = []
@description('Recover the soft-deleted vault of this environment (createMode recover) instead of creating it.')
param keyVaultRecover bool = false

// ---- sizing ----
param maximumInstanceCount int = 40
param instanceMemoryMB int = 2048
param logRetentionDays int = 90
// guardrail.state.TableNames with the default prefix "guardrail" (the store also creates them on first use).
param stateTableNames array = [
  'guardrailremediations'
  'guardrailevents'
]

var names = {
  identity: 'id-guardrail-${resourceToken}'
  packageIdentity: 'id-guardrail-pkg-${resourceToken}'
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
  functionFailuresAlert: 'alert-guardrail-function-failures-${resourceToken}'
  heartbeatAlert: 'alert-guardrail-no-heartbeat-${resourceToken}'
  authorizationAlert: 'alert-guardrail-authorization-failed-${resourceToken}'
  emailService: 'ecs-guardrail-${resourceToken}'
  communicationService: 'acs-guardrail-${resourceToken}'
}
var deploymentContainerName = 'app-package-${take(resourceToken, 13)}'
var deadLetterContainerName = 'eventgrid-deadletter'
// The Functions host's own containers under identity-based AzureWebJobsStorage (leases, timer schedule
// status, function keys). Declared here because the runtime identity holds roles on these containers
// only, so it cannot create them.
var hostContainerNames = [
  'azure-webjobs-hosts'
  'azure-webjobs-secrets'
]
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
    name: 'ActorSource'
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

// The Flex deployment package's identity: the platform writes and reads the package with it; the
// runtime identity (AZURE_CLIENT_ID, AzureWebJobsStorage) holds no role on the package container.
resource packageIdentity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: names.packageIdentity
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

resource hostContainers 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = [for name in hostContainerNames: {
  parent: blobService
  name: name
  properties: {
    publicAccess: 'None'
  }
}]

resource tableService 'Microsoft.Storage/storageAccounts/tableServices@2023-05-01' = {
  parent: storage
  name: 'default'
}

resource stateTables 'Microsoft.Storage/storageAccounts/tableServices/tables@2023-05-01' = [for tableName in stateTableNames: {
  parent: tableService
  name: tableName
}]

// The reconcile sweep's fan-out queue (guardrail.fanout.SWEEP_QUEUE) and the poison queue the host moves
// a slice to after host.json's maxDequeueCount; the guardrail identity gets Storage Queue Data
// Contributor on these two queues only (the timer sends, the queue triggers receive and delete, the host
// moves poison messages), nothing account-wide.
var sweepQueueNames = [
  'guardrail-sweep'
  'guardrail-sweep-poison'
]

resource queueService 'Microsoft.Storage/storageAccounts/queueServices@2023-05-01' = {
  parent: storage
  name: 'default'
}

resource sweepQueues 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' = [for queueName in sweepQueueNames: {
  parent: queueService
  name: queueName
}]

resource sweepQueueContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for (queueName, i) in sweepQueueNames: {
  name: guid(sweepQueues[i].id, guardrailIdentity.id, roles.storageQueueDataContributor)
  scope: sweepQueues[i]
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageQueueDataContributor)
    principalId: guardrailIdentity.properties.principalId
    principalType: 'ServicePrincipal'
    description: 'Reconcile sweep fan-out: queue ${queueName} only'
  }
}]

// Storage Blob Data Owner on the host's two containers only (not the account: it cannot touch the
// deployment package or the dead letters).
resource storageBlobOwner 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for (name, i) in hostContainerNames: {
  name: guid(hostContainers[i].id, guardrailIdentity.id, roles.storageBlobDataOwner)
  scope: hostContainers[i]
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataOwner)
    principalId: guardrailIdentity.properties.principalId
    principalType: 'ServicePrincipal'
    description: 'Functions host (AzureWebJobsStorage): ${name}'
  }
}]

// The Flex deployment package: its own identity, on its container only.
resource packageWriter 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(deploymentContainer.id, packageIdentity.id, roles.storageBlobDataContributor)
  scope: deploymentContainer
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataContributor)
    principalId: packageIdentity.properties.principalId
    principalType: 'ServicePrincipal'
    description: 'Flex Consumption deployment package (functionAppConfig.deployment.storage)'
  }
}

// Storage Table Data Contributor on the account: the four state tables, which the store also creates on
// first use (creating a table needs the account scope).
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

// Event Grid dead letters: each governed subscription's system topic identity gets blob write on the
// dead-letter container (modules/deadletter-access.bicep, deployed from subscription-events.bicep).

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
| project TimeGenerated, ResourceId, AccountName, Rule, Severity, Status, Message, Actor, ActorSource, Mode, CorrelationId
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
    // GuardrailFindings_CL is created in this same deployment: the query would fail validation (SEM0100)
    // until the table is known to the query service.
    skipQueryValidation: true
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

// ---------------------------------------------------------------------------------------------------
// Health alerts (issue 17): the guardrail's own failures, to the same action group. Each query is what
// the alert counts; the delivery alerts on the system topics are in delivery-alerts.bicep.
// ---------------------------------------------------------------------------------------------------
// Failed invocations of any guardrail function (on_resource_write, on_resource_notification,
// reconcile_sweep, health) as Application Insights records them in the workspace.
var functionFailuresQuery = '''
AppRequests
| where Success == false
| project TimeGenerated, Name, OperationName, ResultCode, DurationMs, AppRoleName
'''

// The sweep leaves one `guardrail-heartbeat` record per completed sweep; none for twice the sweep
// interval means the sweep is not running or not finishing.
var heartbeatWindowHours = 2 * sweepIntervalHours
// (A '''multi-line''' string would not interpolate the window.)
var heartbeatQuery = 'GuardrailFindings_CL\n| where Rule == \'guardrail-heartbeat\'\n| where TimeGenerated > ago(${heartbeatWindowHours}h)'

// The identity lost its role (or the role lost an action): a remediation failed with 403
// AuthorizationFailed or LinkedAuthorizationFailed.
var authorizationQuery = '''
GuardrailFindings_CL
| where Status == 'remediation-failed'
| where Message contains 'AuthorizationFailed'
| project TimeGenerated, ResourceId, AccountName, Rule, Message, SubscriptionId
'''

var healthAlerts = [
  {
    name: names.functionFailuresAlert
    displayName: 'Guardrail: function invocations failed'
    description: 'A guardrail function failed (exception or non-success result): events are being retried, or the sweep did not finish.'
    severity: 1
    query: functionFailuresQuery
    operator: 'GreaterThan'
    threshold: 0
    evaluationFrequency: 'PT5M'
    windowSize: 'PT15M'
    overrideQueryTimeRange: ''
  }
  {
    name: names.heartbeatAlert
    displayName: 'Guardrail: no sweep heartbeat'
    description: 'No guardrail-heartbeat record for ${heartbeatWindowHours} hours (twice the sweep interval): the reconcile sweep is not completing.'
    severity: 1
    query: heartbeatQuery
    operator: 'LessThan'
    threshold: 1
    evaluationFrequency: 'PT1H'
    windowSize: 'PT1H'
    overrideQueryTimeRange: 'PT${heartbeatWindowHours}H'
  }
  {
    name: names.authorizationAlert
    displayName: 'Guardrail: identity not authorized (role lost?)'
    description: 'A remediation failed with AuthorizationFailed: the guardrail identity lost its role assignment, or the role lacks an action.'
    severity: 1
    query: authorizationQuery
    operator: 'GreaterThan'
    threshold: 0
    evaluationFrequency: 'PT5M'
    windowSize: 'PT15M'
    overrideQueryTimeRange: ''
  }
]

resource healthAlertRules 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = [for a in healthAlerts: {
  name: a.name
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: union({
    displayName: a.displayName
    description: a.description
    severity: a.severity
    enabled: healthAlertsEnabled
    evaluationFrequency: a.evaluationFrequency
    windowSize: a.windowSize
    // The custom table and the Application Insights tables are new in this deployment (SEM0100).
    skipQueryValidation: true
    scopes: [
      workspace.id
    ]
    criteria: {
      allOf: [
        {
          query: a.query
          timeAggregation: 'Count'
          operator: a.operator
          threshold: a.threshold
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    autoMitigate: true
    actions: {
      actionGroups: [
        actionGroup.id
      ]
    }
  }, empty(a.overrideQueryTimeRange) ? {} : {
    overrideQueryTimeRange: a.overrideQueryTimeRange
  })
  dependsOn: [
    findingsTable
    appInsights
  ]
}]

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
      type: 11
      name: 'tabs'
      content: {
        version: 'LinkItem/1.0'
        style: 'tabs'
        links: [
          {
            id: 'tab-findings'
            cellValue: 'selectedTab'
            linkTarget: 'parameter'
            linkLabel: 'Findings'
            subTarget: 'findings'
            style: 'link'
          }
          {
            id: 'tab-health'
            cellValue: 'selectedTab'
            linkTarget: 'parameter'
            linkLabel: 'Health'
            subTarget: 'health'
            style: 'link'
          }
        ]
      }
    }
    {
      type: 12
      name: 'findings'
      conditionalVisibility: {
        parameterName: 'selectedTab'
        comparison: 'isNotEqualTo'
        value: 'health'
      }
      content: {
        version: 'NotebookGroup/1.0'
        groupType: 'editable'
        items: [
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
      }
    }
    {
      type: 12
      name: 'health'
      conditionalVisibility: {
        parameterName: 'selectedTab'
        comparison: 'isEqualTo'
        value: 'health'
      }
      content: {
        version: 'NotebookGroup/1.0'
        groupType: 'editable'
        items: [
          {
            type: 3
            name: 'last-sweep'
            content: {
              version: 'KqlItem/1.0'
              title: 'Last completed sweeps (guardrail-heartbeat records)'
              query: 'GuardrailFindings_CL\n| where TimeGenerated {TimeRange}\n| where Rule == \'guardrail-heartbeat\'\n| summarize LastSweep = max(TimeGenerated), Sweeps = count(), arg_max(TimeGenerated, Message, Value) by SubscriptionId\n| extend HoursAgo = round(datetime_diff(\'minute\', now(), LastSweep) / 60.0, 1)\n| project SubscriptionId, LastSweep, HoursAgo, Sweeps, Message, Value'
              size: 0
              queryType: 0
              resourceType: 'microsoft.operationalinsights/workspaces'
              visualization: 'table'
            }
          }
          {
            type: 3
            name: 'function-failures'
            content: {
              version: 'KqlItem/1.0'
              title: 'Function invocations and failures'
              query: 'AppRequests\n| where TimeGenerated {TimeRange}\n| summarize Invocations = count(), Failures = countif(Success == false) by Name, bin(TimeGenerated, {TimeRange:grain})\n| render timechart'
              size: 0
              queryType: 0
              resourceType: 'microsoft.operationalinsights/workspaces'
              visualization: 'timechart'
            }
          }
          {
            type: 3
            name: 'authorization-failures'
            content: {
              version: 'KqlItem/1.0'
              title: 'Remediations refused for authorization (identity lost its role?)'
              query: 'GuardrailFindings_CL\n| where TimeGenerated {TimeRange}\n| where Status == \'remediation-failed\'\n| where Message contains \'AuthorizationFailed\'\n| summarize Failures = count(), LastSeen = max(TimeGenerated) by SubscriptionId, Rule'
              size: 0
              queryType: 0
              resourceType: 'microsoft.operationalinsights/workspaces'
              visualization: 'table'
            }
          }
          {
            type: 10
            name: 'dead-letters'
            content: {
              chartId: 'guardrail-dead-letters'
              version: 'MetricsItem/2.0'
              title: 'Dead-lettered and failed deliveries (system topics)'
              size: 0
              chartType: 2
              resourceType: 'microsoft.eventgrid/systemtopics'
              metricScope: 0
              resourceIds: systemTopicIds
              timeContextFromParameter: 'TimeRange'
              metrics: [
                {
                  namespace: 'microsoft.eventgrid/systemtopics'
                  metric: 'microsoft.eventgrid/systemtopics--DeadLetteredCount'
                  aggregation: 1
                }
                {
                  namespace: 'microsoft.eventgrid/systemtopics'
                  metric: 'microsoft.eventgrid/systemtopics--DeliveryAttemptFailCount'
                  aggregation: 1
                }
              ]
            }
          }
          {
            type: 3
            name: 'latency'
            content: {
              version: 'KqlItem/1.0'
              title: 'Invocation latency per function (ms)'
              query: 'AppRequests\n| where TimeGenerated {TimeRange}\n| summarize Invocations = count(), P50 = percentile(DurationMs, 50), P95 = percentile(DurationMs, 95), P99 = percentile(DurationMs, 99) by Name'
              size: 0
              queryType: 0
              resourceType: 'microsoft.operationalinsights/workspaces'
              visualization: 'table'
            }
          }
        ]
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
    // azd down cannot purge a purge-protected vault, and the name is the same on the next `azd up` of
    // this environment: the preprovision hook finds the soft-deleted vault and sets keyVaultRecover.
    createMode: keyVaultRecover ? 'recover' : 'default'
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

resource acsEmailSender 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (createAcsEmail && assignCustomRoles && (!empty(acsEmailRoleDefinitionId))) {
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
      '${packageIdentity.id}': {}
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
            userAssignedIdentityResourceId: packageIdentity.id
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
    packageWriter
    sweepQueueContributor
    storageTableContributor
  ]
}

// No basic (user name and password) publishing: azd and Core Tools deploy with Entra ID.
resource basicPublishingCredentials 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = [for policy in [
  'scm'
  'ftp'
]: {
  parent: functionApp
  name: policy
  properties: {
    allow: false
  }
}]

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
output actionGroupId string = actionGroup.id
output storageAccountId string = storage.id
output storageAccountName string = storage.name
output deadLetterContainerName string = deadLetterContainerName
output workspaceId string = workspace.id
output dceLogsIngestionEndpoint string = dce.properties.logsIngestion.endpoint
output dcrImmutableId string = dcr.properties.immutableId
output keyVaultName string = keyVault.name
output acsEndpoint string = effectiveAcsEndpoint
