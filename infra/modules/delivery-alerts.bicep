// Two metric alerts on one environment's event subscription of an Event Grid system topic, to the
// guardrail's action group (issue 17, "who guards the guardrail"). The topic is shared by every
// environment of the subscription, so each alert is split to this environment's event subscription
// with the EventSubscriptionName dimension.
//
// * DeadLetteredCount > 0 over 15 minutes: Event Grid gave up on an event (30 attempts or 24 h) and wrote
//   it to the dead-letter container; the change it reported was not checked by the event path (the sweep
//   catches it later; `guardrail replay-deadletter` puts it back through).
// * DeliveryAttemptFailCount > 0 over 15 minutes: the function refused or failed deliveries (it is down,
//   failing, or was redeployed without the function); Event Grid is retrying.

@description('Resource ID of the system topic.')
param topicId string

@description('This environment\'s event subscription on it.')
param eventSubscriptionName string

@description('Action group to notify.')
param actionGroupId string

@description('Prefix of the alert names (carries the environment token).')
param namePrefix string

@description('Tags of the alerts.')
param tags object = {}

var metrics = [
  {
    suffix: 'deadlettered'
    metricName: 'DeadLetteredCount'
    severity: 1
    displayName: 'dead-lettered events'
    description: 'Event Grid dead-lettered events of the guardrail event subscription ${eventSubscriptionName}: they were not checked by the event path.'
  }
  {
    suffix: 'deliveryfailed'
    metricName: 'DeliveryAttemptFailCount'
    severity: 2
    displayName: 'failed deliveries'
    description: 'Event Grid could not deliver events of ${eventSubscriptionName} to the guardrail function (it is retrying; they dead-letter after 24 h).'
  }
]

resource alerts 'Microsoft.Insights/metricAlerts@2018-03-01' = [for m in metrics: {
  name: '${namePrefix}-${m.suffix}'
  location: 'global'
  tags: tags
  properties: {
    description: m.description
    severity: m.severity
    enabled: true
    scopes: [
      topicId
    ]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT15M'
    criteria: {
      'odata.type': 'Microsoft.Azure.Monitor.SingleResourceMultipleMetricCriteria'
      allOf: [
        {
          criterionType: 'StaticThresholdCriterion'
          name: m.metricName
          metricNamespace: 'Microsoft.EventGrid/systemTopics'
          metricName: m.metricName
          dimensions: [
            {
              name: 'EventSubscriptionName'
              operator: 'Include'
              values: [
                eventSubscriptionName
              ]
            }
          ]
          operator: 'GreaterThan'
          threshold: 0
          timeAggregation: 'Total'
        }
      ]
    }
    autoMitigate: true
    actions: [
      {
        actionGroupId: actionGroupId
      }
    ]
  }
}]
