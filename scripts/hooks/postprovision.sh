#!/bin/sh
# azd postprovision hook: a recovered vault is live again, so the next provision creates-or-updates it.
set -eu
. "$(dirname "$0")/lib.sh"

if [ "$(env_value GUARDRAIL_KEY_VAULT_RECOVER)" = "true" ]; then
  azd env set GUARDRAIL_KEY_VAULT_RECOVER false
fi
