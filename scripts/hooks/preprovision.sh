#!/bin/sh
# azd preprovision hook: make the next provision safe whatever happened since the last one.
#
# 1. GUARDRAIL_WIRE_EVENTS=true (the wiring pass) only when the function app exists AND has its
#    on_resource_write function: after `azd down` (or a resource group deleted by hand) the value
#    survives in .env, and Event Grid refuses an AzureFunction destination that does not exist yet.
#    No app recorded (azd down removes the output-derived AZURE_FUNCTION_APP_NAME) or no function:
#    back to the first pass; the postdeploy hook wires again once the code is deployed.
# 2. GUARDRAIL_KEY_VAULT_RECOVER=true when this environment's vault is soft-deleted (purge protection:
#    `azd down --purge` cannot purge it, and the name is the same): main.bicep then recovers it
#    (createMode recover) instead of failing on the name.
set -eu
. "$(dirname "$0")/lib.sh"

if [ "$(env_value GUARDRAIL_WIRE_EVENTS)" = "true" ]; then
  app=$(env_value AZURE_FUNCTION_APP_NAME)
  group=$(env_value AZURE_RESOURCE_GROUP)
  if [ -z "$app" ] || [ -z "$group" ]; then
    say "no function app recorded (first provision, or after azd down): provisioning without event subscriptions first"
    azd env set GUARDRAIL_WIRE_EVENTS false
  elif az_ready; then
    if ! az functionapp function show --resource-group "$group" --name "$app" \
        --function-name on_resource_write --query name --output tsv >/dev/null 2>&1; then
      say "$app has no on_resource_write function (yet): provisioning without event subscriptions first"
      azd env set GUARDRAIL_WIRE_EVENTS false
    fi
  else
    say "warning: az is not signed in; cannot check that $app has its functions (keeping GUARDRAIL_WIRE_EVENTS=true)"
  fi
fi

if az_ready; then
  env_name=$(env_value AZURE_ENV_NAME)
  location=$(env_value AZURE_LOCATION)
  subscription=$(env_value AZURE_SUBSCRIPTION_ID)
  deleted=$(az keyvault list-deleted --subscription "$subscription" --resource-type vault \
    --query "[?properties.tags.\"azd-env-name\"=='$env_name' && properties.location=='$location'].name" \
    --output tsv 2>/dev/null || true)
  if [ -n "$deleted" ]; then
    say "soft-deleted Key Vault $deleted of environment $env_name: this provision recovers it"
    azd env set GUARDRAIL_KEY_VAULT_RECOVER true
  fi
else
  say "warning: az is not signed in; not checking for a soft-deleted Key Vault of this environment"
fi
