// Event Grid wiring of ONE environment in ONE governed subscription (deployed into the subscription's
// events resource group).
//
// What is shared and what is the environment's own:
// * The system topic is SHARED by every environment that governs the subscription: Event Grid allows
//   only one system topic per source ("Only one Event Grid system topic is allowed per source"), so it
//   has a fixed per-subscription name, shared tags (no azd-env-name) and its own system-assigned identity,
//   which a second environment's PUT leaves as it is (a user-assigned identity would be replaced by the
//   last environment's).
// * The event subscriptions, the delivery alerts and the dead-letter grant are the ENVIRONMENT's: their
//   names carry the environment token, so a second environment adds its own next to the first one's.
//
// The write events: Microsoft.Resources.ResourceWriteSuccess whose data.operationName starts with
// "Microsoft.CognitiveServices/accounts/" (accounts and their child resources) go to the guardrail's
// `on_resource_write` function (destination AzureFunction, one event per batch), retried 30 times over
// 24 h and dead-lettered into the environment's storage container with the topic's identity.
// Optionally the Azure Resource Notifications system topic (Microsoft.ResourceNotifications.Resources),
// filtered to Microsoft.CognitiveServices/accounts, delivered to `on_resource_notification`.
//
// A subscription that already has a Microsoft.Resources.Subscriptions system topic: pass its name in
// subscriptionTopicName and deploy into its resource group (eventsResourceGroupName); the PUT keeps its
// source and type and gives it a system-assigned identity (docs/deploying.md, "Adding a subscription").

@description('Token of the environment (main.bicep resourceToken): in the name of everything this environment owns here.')
param environmentToken string

@description('Name of the Microsoft.Resources.Subscriptions system topic for this subscription (shared by every environment).')
param subscriptionTopicName string = 'evgt-guardrail-${subscription().subscriptionId}'

@description('Resource ID of the guardrail Function App (Microsoft.Web/sites).')
param functionAppResourceId string

@description('Resource ID of the storage account that receives dead letters.')
param deadLetterStorageAccountId string

@description('Blob container that receives dead letters.')
param deadLetterContainerName string

@description('The wiring pass: create the event subscriptions and their alerts (false until the function code is deployed: Event Grid checks that the function exists).')
param wireEventSubscriptions bool = true

@description('Also subscribe to Azure Resource Notifications (Microsoft.ResourceNotifications.Resources).')
param enableResourceNotifications bool = false

@description('Name of the Microsoft.ResourceNotifications.Resources system topic for this subscription (shared).')
param resourceNotificationsTopicName string = 'evgt-guardrail-arn-${subscription().subscriptionId}'

@description('Action group of the guardrail\'s health alerts; empty: no delivery alerts.')
param actionGroupId string = ''

@description('Tags of the environment\'s own resources (the alerts).')
param tags object = {}

@description('Tags of the shared topics (no azd-env-name).')
param sharedTags object = {}

var writeSubscriptionName = 'guardrail-writes-${environmentToken}'
var notificationSubscriptionName = 'guardrail-notifications-${environmentToken}'

// The topic's own identity writes the dead letters (granted on this environment's container below).
var deadLetter = {
  identity: {
    type: 'SystemAssigned'
  }
  deadLetterDestination: {
    endpointType: 'StorageBlob'
    properties: {
      resourceId: deadLetterStorageAccountId
      blobContainerName: deadLetterContainerName
    }
  }
}

var retryPolicy = {
  maxDeliveryAttempts: 30
  eventTimeToLiveInMinutes: 1440
}

resource subscriptionTopic 'Microsoft.EventGrid/systemTopics@2025-02-15' = {
  name: subscriptionTopicName
  location: 'global'
  tags: sharedTags
  identity: {
    type: 'SystemAssigned'
  }
  properties: {
    source: subscription().id
    topicType: 'Microsoft.Resources.Subscriptions'
  }
}

resource resourceWriteSubscription 'Microsoft.EventGrid/systemTopics/eventSubscriptions@2025-02-15' = if (wireEventSubscriptions) {
  parent: subscriptionTopic
  name: writeSubscriptionName
  properties: {
    destination: {
      endpointType: 'AzureFunction'
      properties: {
        resourceId: '${functionAppResourceId}/functions/on_resource_write'
        maxEventsPerBatch: 1
        preferredBatchSizeInKilobytes: 64
      }
    }
    filter: {
      includedEventTypes: [
        'Microsoft.Resources.ResourceWriteSuccess'
      ]
      enableAdvancedFilteringOnArrays: true
      advancedFilters: [
        {
          operatorType: 'StringBeginsWith'
          key: 'data.operationName'
          values: [
            'Microsoft.CognitiveServices/accounts/'
          ]
        }
      ]
    }
    eventDeliverySchema: 'EventGridSchema'
    retryPolicy: retryPolicy
    deadLetterWithResourceIdentity: deadLetter
  }
}

resource resourceNotificationsTopic 'Microsoft.EventGrid/systemTopics@2025-02-15' = if (enableResourceNotifications) {
  name: resourceNotificationsTopicName
  location: 'global'
  tags: sharedTags
  identity: {
    type: 'SystemAssigned'
  }
  properties: {
    source: subscription().id
    topicType: 'Microsoft.ResourceNotifications.Resources'
  }
}

resource resourceNotificationsSubscription 'Microsoft.EventGrid/systemTopics/eventSubscriptions@2025-02-15' = if (enableResourceNotifications && wireEventSubscriptions) {
  parent: resourceNotificationsTopic
  name: notificationSubscriptionName
  properties: {
    destination: {
      endpointType: 'AzureFunction'
      properties: {
        resourceId: '${functionAppResourceId}/functions/on_resource_notification'
        maxEventsPerBatch: 1
        preferredBatchSizeInKilobytes: 64
      }
    }
    filter: {
      includedEventTypes: [
        'Microsoft.ResourceNotifications.Resources.CreatedOrUpdated'
        'Microsoft.ResourceNotifications.Resources.Deleted'
      ]
      advancedFilters: [
        {
          operatorType: 'StringIn'
          key: 'data.resourceInfo.type'
          values: [
            'Microsoft.CognitiveServices/accounts'
          ]
        }
      ]
    }
    eventDeliverySchema: 'EventGridSchema'
    retryPolicy: retryPolicy
    deadLetterWithResourceIdentity: deadLetter
  }
}

// The topics' identities may write dead letters into this environment's container, and nothing else.
var deadLetterStorageParts = split(deadLetterStorageAccountId, '/')

module subscriptionTopicDeadLetterAccess 'deadletter-access.bicep' = {
  name: 'guardrail-dl-${environmentToken}-${uniqueString(subscriptionTopic.id)}'
  scope: resourceGroup(deadLetterStorageParts[2], deadLetterStorageParts[4])
  params: {
    storageAccountName: last(deadLetterStorageParts)
    containerName: deadLetterContainerName
    principalId: subscriptionTopic.identity.principalId
    description: 'Event Grid dead letters from ${subscriptionTopic.id}'
  }
}

module resourceNotificationsDeadLetterAccess 'deadletter-access.bicep' = if (enableResourceNotifications) {
  name: 'guardrail-dl-${environmentToken}-${uniqueString(subscription().id, 'arn')}'
  scope: resourceGroup(deadLetterStorageParts[2], deadLetterStorageParts[4])
  params: {
    storageAccountName: last(deadLetterStorageParts)
    containerName: deadLetterContainerName
    principalId: enableResourceNotifications ? resourceNotificationsTopic.identity.principalId : ''
    description: 'Event Grid dead letters from the Resource Notifications topic of ${subscription().id}'
  }
}

// Health alerts (issue 17): this environment's dead-lettered and failed deliveries on each topic.
module writeDeliveryAlerts 'delivery-alerts.bicep' = if (wireEventSubscriptions && !empty(actionGroupId)) {
  name: 'guardrail-delivery-alerts-${environmentToken}'
  params: {
    topicId: subscriptionTopic.id
    eventSubscriptionName: writeSubscriptionName
    actionGroupId: actionGroupId
    namePrefix: 'alert-guardrail-writes-${environmentToken}'
    tags: tags
  }
}

module notificationDeliveryAlerts 'delivery-alerts.bicep' = if (enableResourceNotifications && wireEventSubscriptions && !empty(actionGroupId)) {
  name: 'guardrail-arn-delivery-alerts-${environmentToken}'
  params: {
    topicId: enableResourceNotifications ? resourceNotificationsTopic.id : ''
    eventSubscriptionName: notificationSubscriptionName
    actionGroupId: actionGroupId
    namePrefix: 'alert-guardrail-notifications-${environmentToken}'
    tags: tags
  }
}

output systemTopicId string = subscriptionTopic.id
output writeEventSubscriptionName string = writeSubscriptionName
output eventSubscriptionsWired bool = wireEventSubscriptions
