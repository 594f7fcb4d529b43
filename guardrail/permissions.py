"""Every ARM operation the guardrail issues at run time, and the RBAC action each one needs.

This is the one list. The custom role in `infra/main.bicep` and `infra/mg.bicep` grants exactly these
actions (tests/infra/test_permissions.py holds the templates to it), and the table in
docs/deploying.md ("ARM calls and the actions they need") is checked against it. A change to
`guardrail/gateway.py` that issues a new kind of ARM request belongs here first.

`feature` says when the role carries the action:
- "base": always;
- "diagnostics": with the Bicep parameter `diagnosticsRemediation` (the `diagnostics-missing` rule reads
  and writes diagnostic settings);
- "private-endpoints": with `privateEndpointRemediation`, for the private-endpoint rule (planned: it
  rejects private endpoint connections the policy does not allow);
- "managed-network": with `managedNetworkRemediation`, for the managed-network-internet-outbound fix
  (PATCH of the Foundry managed network's isolation mode; issue 24);
- "outbound-rules": with `outboundRuleRemediation`, for the managed-network-outbound-rule-not-allowed
  fix (DELETE of an outbound rule).

The agent-era children (issue 24) are read in the base role: the managed network and its outbound
rules, capability hosts, network security perimeter configurations, and the status of the managed
network's operations (polled at a Microsoft.MachineLearningServices URL, as ARM answers its writes).
The action names follow ARM's `{provider}/{type}/{read|write|delete}` form for these resource types;
the status read's is that form for the polled URL (Microsoft's operations list was not checked for it).

Nothing here is imported on the cold-start path.
"""

from __future__ import annotations

from typing import Final, Literal, NamedTuple

Feature = Literal["base", "diagnostics", "private-endpoints", "managed-network", "outbound-rules"]
FEATURES: Final[tuple[Feature, ...]] = (
    "base",
    "diagnostics",
    "private-endpoints",
    "managed-network",
    "outbound-rules",
)

_ACCOUNT = (
    "/subscriptions/{subscriptionId}/resourceGroups/{resourceGroup}"
    "/providers/Microsoft.CognitiveServices/accounts/{accountName}"
)


class ArmOperation(NamedTuple):
    method: str
    path: str  # path template, relative to the ARM endpoint
    action: str  # the RBAC action ARM checks
    why: str
    feature: Feature = "base"
    used_by: str = "gateway"  # where in guardrail/ the call is made


ARM_OPERATIONS: Final[tuple[ArmOperation, ...]] = (
    ArmOperation(
        "GET",
        "/subscriptions",
        "Microsoft.Resources/subscriptions/read",
        "the sweep lists the subscriptions the identity can see when GUARDRAIL_SUBSCRIPTIONS is empty",
        used_by="ArmGateway.list_subscriptions",
    ),
    ArmOperation(
        "GET",
        "/subscriptions/{subscriptionId}/providers/Microsoft.CognitiveServices/accounts",
        "Microsoft.CognitiveServices/accounts/read",
        "the sweep lists every account of a governed subscription (all pages)",
        used_by="ArmGateway.list_accounts",
    ),
    ArmOperation(
        "GET",
        _ACCOUNT,
        "Microsoft.CognitiveServices/accounts/read",
        "the fresh read before a write, the re-read on 412, and the verification read after it",
        used_by="ArmGateway.get",
    ),
    ArmOperation(
        "PATCH",
        _ACCOUNT,
        "Microsoft.CognitiveServices/accounts/write",
        "the remediation: networkAcls, publicNetworkAccess, disableLocalAuth, with If-Match",
        used_by="ArmGateway.remediate",
    ),
    ArmOperation(
        "PATCH",
        _ACCOUNT,
        "Microsoft.Network/virtualNetworks/subnets/joinViaServiceEndpoint/action",
        "linked check on each subnet of the virtualNetworkRules the PATCH writes"
        " (403 LinkedAuthorizationFailed without it)",
        used_by="ArmGateway.remediate",
    ),
    ArmOperation(
        "GET",
        "/subscriptions/{subscriptionId}/providers/Microsoft.CognitiveServices/locations/{location}/operationResults/{operationId}",
        "Microsoft.CognitiveServices/locations/operationresults/read",
        "polling the PATCH's long-running operation when ARM answers 202 with Azure-AsyncOperation/Location",
        used_by="ArmGateway.remediate (azure-core LRO poller)",
    ),
    ArmOperation(
        "GET",
        _ACCOUNT + "/managedNetworks/default",
        "Microsoft.CognitiveServices/accounts/managedNetworks/read",
        "the agent-era rules read the Foundry managed network (isolation mode, outbound rules embedded)",
        used_by="ArmGateway.get_child",
    ),
    ArmOperation(
        "GET",
        _ACCOUNT + "/managedNetworks/default/outboundRules",
        "Microsoft.CognitiveServices/accounts/managedNetworks/outboundRules/read",
        "reading the managed network's outbound rules (a rule, or their list) before and after a delete",
        used_by="ArmGateway.get_child, ArmGateway.list_children",
    ),
    ArmOperation(
        "GET",
        _ACCOUNT + "/capabilityHosts",
        "Microsoft.CognitiveServices/accounts/capabilityHosts/read",
        "the agent-subnet and agent-hosting rules read the account's capability hosts",
        used_by="ArmGateway.list_children",
    ),
    ArmOperation(
        "GET",
        _ACCOUNT + "/networkSecurityPerimeterConfigurations",
        "Microsoft.CognitiveServices/accounts/networkSecurityPerimeterConfigurations/read",
        "the perimeter rules read the account's network security perimeter configurations",
        used_by="ArmGateway.list_children",
    ),
    ArmOperation(
        "GET",
        "/subscriptions/{subscriptionId}/providers/Microsoft.MachineLearningServices/locations/{location}/mfeOperationsStatus/{operationId}",
        "Microsoft.MachineLearningServices/locations/mfeOperationsStatus/read",
        "polling a managed network or outbound rule write's operation (ARM answers 202 with"
        " Azure-AsyncOperation at this URL)",
        used_by="ArmGateway.send (azure-core LRO poller)",
    ),
    ArmOperation(
        "GET",
        _ACCOUNT + "/providers/Microsoft.Insights/diagnosticSettings",
        "Microsoft.Insights/diagnosticSettings/read",
        "the diagnostics-missing rule reads the account's diagnostic settings",
        feature="diagnostics",
        used_by="ArmGateway.diagnostic_settings",
    ),
    ArmOperation(
        "PUT",
        _ACCOUNT + "/providers/Microsoft.Insights/diagnosticSettings/{name}",
        "Microsoft.Insights/diagnosticSettings/write",
        "the diagnostics-missing remediation creates the guardrail-audit diagnostic setting",
        feature="diagnostics",
        used_by="ArmGateway.put_diagnostic_setting",
    ),
    ArmOperation(
        "GET",
        _ACCOUNT + "/privateEndpointConnections",
        "Microsoft.CognitiveServices/accounts/privateEndpointConnections/read",
        "the private-endpoint rule lists the account's private endpoint connections",
        feature="private-endpoints",
        used_by="private-endpoint rule (planned)",
    ),
    ArmOperation(
        "PUT",
        _ACCOUNT + "/privateEndpointConnections/{privateEndpointConnectionName}",
        "Microsoft.CognitiveServices/accounts/privateEndpointConnections/write",
        "the private-endpoint rule rejects a connection the policy does not allow (status Rejected)",
        feature="private-endpoints",
        used_by="ArmGateway.put_private_endpoint_connection",
    ),
    ArmOperation(
        "PATCH",
        _ACCOUNT + "/managedNetworks/default",
        "Microsoft.CognitiveServices/accounts/managedNetworks/write",
        "the managed-network-internet-outbound fix sets isolationMode AllowOnlyApprovedOutbound",
        feature="managed-network",
        used_by="ArmGateway.send",
    ),
    ArmOperation(
        "DELETE",
        _ACCOUNT + "/managedNetworks/default/outboundRules/{ruleName}",
        "Microsoft.CognitiveServices/accounts/managedNetworks/outboundRules/delete",
        "the managed-network-outbound-rule-not-allowed fix deletes a UserDefined rule the policy refuses",
        feature="outbound-rules",
        used_by="ArmGateway.send",
    ),
)


def role_actions(feature: Feature) -> tuple[str, ...]:
    """The distinct RBAC actions of one feature, in first-use order."""
    if feature not in FEATURES:
        raise ValueError(f"unknown feature {feature!r}; expected one of {FEATURES}")
    seen: dict[str, None] = {}
    for operation in ARM_OPERATIONS:
        if operation.feature == feature:
            seen.setdefault(operation.action, None)
    return tuple(seen)
