// Event Grid wiring for ONE governed subscription (deployed into a resource group of that subscription).
//
// * A system topic on the subscription (topic type Microsoft.Resources.Subscriptions, location global)
//   with an event subscription that delivers Microsoft.Resources.ResourceWriteSuccess events whose
//   data.operationName starts with "Microsoft.CognitiveServices/accounts/" (accounts and their child
//   resources) to the guardrail's `on_resource_write` function (destination AzureFunction, one event per
//   batch), retrying 30 times over 24 h and dead-lettering to the guardrail's storage container with a
//   user-assigned identity.
// * Optionally the Azure Resource Notifications system topic (Microsoft.ResourceNotifications.Resources)
//   with an event subscription filtered to Microsoft.CognitiveServices/accounts, delivered to
//   `on_resource_notification`.
//
// A subscription can hold only one system topic per topic type. If one already exists, pass its name in
// subscriptionTopicName / resourceNotificationsTopicName and deploy into its resource group: the PUT keeps
// its source and type, and adds the guardrail's event subscription next to the existing ones (note that
// the topic's identity is then set to the guardrail's Event Grid identity).

@description('Name of the Microsoft.Resources.Subscriptions system topic for this subscription.')
param subscriptionTopicName string = 'evgt-guardrail-${subscription().subscriptionId}'

@description('Resource ID of the guardrail Function App (Microsoft.Web/sites).')
param functionAppResourceId string

@description('Resource ID of the user-assigned identity Event Grid uses to write dead letters.')
param eventGridIdentityResourceId string

@description('Resource ID of the storage account that receives dead letters.')
param deadLetterStorageAccountId string

@description('Blob container that receives dead letters.')
param deadLetterContainerName string

@description('Create the event subscriptions (false until the function code is deployed: Event Grid checks that the function exists).')
param wireEventSubscriptions bool = true

@description('Also subscribe to Azure Resource Notifications (Microsoft.ResourceNotifications.Resources).')
param enableResourceNotifications bool = false

@description('Name of the Microsoft.ResourceNotifications.Resources system topic for this subscription.')
param resourceNotificationsTopicName string = 'evgt-guardrail-arn-${subscription().subscriptionId}'

@description('Tags applied to the topics.')
param tags object = {}

var topicIdentity = {
  type: 'UserAssigned'
  userAssignedIdentities: {
    '${eventGridIdentityResourceId}': {}
  }
}

var deadLetter = {
  identity: {
    type: 'UserAssigned'
    userAssignedIdentity: eventGridIdentityResourceId
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
  tags: tags
  identity: topicIdentity
  properties: {
    source: subscription().id
    topicType: 'Microsoft.Resources.Subscriptions'
  }
}

resource resourceWriteSubscription 'Microsoft.EventGrid/systemTopics/eventSubscriptions@2025-02-15' = if (wireEventSubscriptions) {
  parent: subscriptionTopic
  name: 'guardrail-cognitiveservices-writes'
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
  tags: tags
  identity: topicIdentity
  properties: {
    source: subscription().id
    topicType: 'Microsoft.ResourceNotifications.Resources'
  }
}

resource resourceNotificationsSubscription 'Microsoft.EventGrid/systemTopics/eventSubscriptions@2025-02-15' = if (enableResourceNotifications && wireEventSubscriptions) {
  parent: resourceNotificationsTopic
  name: 'guardrail-cognitiveservices-notifications'
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

output systemTopicId string = subscriptionTopic.id
output eventSubscriptionsWired bool = wireEventSubscriptions
