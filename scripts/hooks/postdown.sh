#!/bin/sh
# azd postdown hook: the environment is gone, so
# 1. the next `azd up` starts with the first pass again (GUARDRAIL_WIRE_EVENTS=false): azd down removes
#    only output-derived keys, and a surviving `true` would make the next first provision create
#    AzureFunction event subscriptions before the code exists;
# 2. delete the custom role definitions the predown hook recorded (azd down deletes resource groups,
#    not subscription-scope role definitions).
set -eu
. "$(dirname "$0")/lib.sh"

azd env set GUARDRAIL_WIRE_EVENTS false
azd env set GUARDRAIL_KEY_VAULT_RECOVER false

roles=$(env_value GUARDRAIL_TEARDOWN_ROLE_IDS)
if [ -n "$roles" ]; then
  if az_ready; then
    for role in $roles; do
      az role definition delete --name "$role" --scope "/subscriptions/$(printf '%s' "$role" | cut -d/ -f3)" || \
        say "warning: could not delete role definition $role (delete it by hand)"
    done
    azd env set GUARDRAIL_TEARDOWN_ROLE_IDS ""
  else
    say "az is not signed in: delete the role definitions by hand: $roles"
  fi
fi
