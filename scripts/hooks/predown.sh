#!/bin/sh
# azd predown hook. `azd down` deletes every resource group its deployment touched, and that includes
# the events resource group of each governed subscription, which every environment governing the
# subscription SHARES (one system topic per source). So:
# 1. refuse when another environment has event subscriptions on a shared topic (azd down would delete
#    them with the group): remove this environment with scripts/remove-subscription instead;
# 2. otherwise delete this environment's custom-role assignments (a role definition cannot be deleted
#    while assigned) and remember the role definitions for the postdown hook, which deletes them
#    (azd down deletes resource groups only, not subscription-scope role definitions).
set -eu
. "$(dirname "$0")/lib.sh"

subscriptions=$(env_value GUARDRAIL_GOVERNED_SUBSCRIPTIONS)
token=$(env_value GUARDRAIL_ENVIRONMENT_TOKEN)
events_group=$(env_value GUARDRAIL_EVENTS_RESOURCE_GROUP)
principal=$(env_value GUARDRAIL_IDENTITY_PRINCIPAL_ID)
role=$(env_value GUARDRAIL_ROLE_DEFINITION_ID)
acs_role=$(env_value GUARDRAIL_ACS_ROLE_DEFINITION_ID)

if [ -z "$subscriptions" ] || [ -z "$token" ]; then
  say "nothing provisioned by this template version is recorded; nothing to check"
  exit 0
fi
if ! az_ready; then
  say "az is not signed in: cannot check the shared events resource groups before azd down deletes them."
  say "Sign in with 'az login' (the same tenant) and run azd down again."
  exit 1
fi

others=""
for sub in $(printf '%s' "$subscriptions" | tr ',' ' '); do
  for topic in "evgt-guardrail-$sub" "evgt-guardrail-arn-$sub"; do
    names=$(az eventgrid system-topic event-subscription list --subscription "$sub" \
      --resource-group "$events_group" --system-topic-name "$topic" --query "[].name" --output tsv 2>/dev/null || true)
    for name in $names; do
      case "$name" in
        *"-$token") ;;
        *) others="$others $sub/$topic/$name" ;;
      esac
    done
  done
done
if [ -n "$others" ]; then
  say "other environments use the shared events resource group '$events_group':$others"
  say "azd down would delete it with their event subscriptions. Instead, for each governed subscription run"
  say "  scripts/remove-subscription <subscription-id>"
  say "then delete this environment's resource group: az group delete --name $(env_value AZURE_RESOURCE_GROUP)"
  exit 1
fi

if [ -n "$principal" ]; then
  for sub in $(printf '%s' "$subscriptions" | tr ',' ' '); do
    for definition in $role $acs_role; do
      ids=$(az role assignment list --subscription "$sub" --scope "/subscriptions/$sub" --role "$definition" \
        --query "[?principalId=='$principal'].id" --output tsv 2>/dev/null || true)
      for id in $ids; do
        az role assignment delete --ids "$id"
      done
    done
  done
fi
if [ -n "$role$acs_role" ]; then
  azd env set GUARDRAIL_TEARDOWN_ROLE_IDS "$(printf '%s %s' "$role" "$acs_role" | xargs)"
fi
