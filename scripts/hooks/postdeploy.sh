#!/bin/sh
# azd postdeploy hook: the code is deployed, so run the wiring pass (event subscriptions, delivery
# alerts, custom-role assignments) once. Later `azd up` runs find GUARDRAIL_WIRE_EVENTS=true and the
# function present (preprovision), and go straight through.
set -eu
. "$(dirname "$0")/lib.sh"

if [ "$(env_value GUARDRAIL_WIRE_EVENTS)" != "true" ]; then
  azd env set GUARDRAIL_WIRE_EVENTS true
  azd provision --no-prompt
fi
