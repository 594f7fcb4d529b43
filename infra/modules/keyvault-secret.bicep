// One Key Vault secret (the Teams Workflows webhook URL). A module so that the caller can make it
// conditional while the secret resource itself stays unconditional (and fully checked by checkov).

@description('Name of the existing Key Vault (RBAC mode) in this resource group.')
param keyVaultName string

@description('Name of the secret.')
param secretName string

@secure()
@description('Secret value.')
param secretValue string

@description('Content type recorded on the secret.')
param contentType string = 'text/uri'

resource keyVault 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: keyVaultName
}

resource secret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = {
  // checkov:skip=CKV_AZURE_41: the Teams Workflows URL has no natural expiry; an expiry date would silently break alerting when the Key Vault reference stops resolving (rotate by redeploying with the new URL)
  parent: keyVault
  name: secretName
  properties: {
    value: secretValue
    contentType: contentType
  }
}

@description('Versionless secret URI, for a Key Vault reference that follows rotation.')
output secretUri string = secret.properties.secretUri
