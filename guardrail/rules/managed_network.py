"""The Foundry managed network (`accounts/{name}/managedNetworks/default`), where an agent's
outbound traffic goes. `managed-network-internet-outbound`: the policy may require approved
outbound only (`isolationMode` AllowOnlyApprovedOutbound); AllowInternetOutbound lets agents reach
any host (fixed, when turned on, by the action `patch-managed-network`); Disabled is report only.
`managed-network-outbound-rule-not-allowed`: a user-defined outbound rule to a host the policy's
allowed_fqdns does not allow, or to a private endpoint in a subscription outside
allowed_private_endpoint_subscriptions (fixed by the action `delete-outbound-rule`); the Required
and Recommended rules Azure manages are never judged or touched.

The managed network is a child resource (read only when one of these rules is on; an account
without one has nothing to judge). Its GET embeds `outboundRules`, a map from rule name to
`{type, destination, category, status}` (the Azure CLI's recordings of real ARM, 2026-04).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from guardrail.actions import Action, ActionType, ChildRead, Snapshot, is_foundry
from guardrail.rules._base import Context, Rule, RuleUnit, text

MANAGED_NETWORK: Final = "managedNetwork"  # the snapshot's key (and `guardrail evaluate`'s)
PATH: Final = "managedNetworks/default"
API_VERSION: Final = "2026-09-01"
APPROVED: Final = "AllowOnlyApprovedOutbound"
INTERNET: Final = "allowinternetoutbound"
DISABLED: Final = "disabled"
_PRIVATE_ENDPOINT_TARGET_SUBSCRIPTION: Final = "/subscriptions/"

MANAGED_NETWORK_INTERNET_OUTBOUND = Rule(
    "managed-network-internet-outbound",
    "high",
    f"PATCH the managed network's isolationMode to {APPROVED} (AllowInternetOutbound only; Disabled is "
    "report only)",
    False,  # it can stop a working agent: remediate.managed-network-internet-outbound: true turns it on
    "the policy requires approved outbound and the Foundry managed network's isolationMode is "
    "AllowInternetOutbound (agents reach any host) or Disabled",
    switch="network.require_approved_outbound",
    on=lambda policy: policy.network.require_approved_outbound,
    alert=f"managed network isolationMode → {APPROVED} (agents reach approved destinations only)",
    action="patch-managed-network",
    shows="@action",
)
OUTBOUND_RULE_NOT_ALLOWED = Rule(
    "managed-network-outbound-rule-not-allowed",
    "medium",
    "DELETE the outbound rule",
    True,
    "a UserDefined outbound rule of the managed network: type FQDN to a destination allowed_fqdns does "
    "not allow, or type PrivateEndpoint to a resource outside allowed_private_endpoint_subscriptions",
    switch="network.allowed_fqdns or allowed_private_endpoint_subscriptions set",
    on=lambda policy: bool(
        policy.network.allowed_fqdns or policy.network.allowed_private_endpoint_subscriptions
    ),
    alert=lambda names: f"managed network outbound rules deleted: {', '.join(names)}",
    action="delete-outbound-rule",
    shows="@action",
)


def _managed_network(body: object) -> Mapping[str, Any] | None:
    props = body.get("properties") if isinstance(body, Mapping) else None
    network = props.get("managedNetwork") if isinstance(props, Mapping) else None
    return network if isinstance(network, Mapping) else None


def check(ctx: Context) -> None:
    network = _managed_network(ctx.children.get(MANAGED_NETWORK))
    if network is None:
        return
    policy = ctx.policy
    target = f"{ctx.resource_id}/{PATH}"
    mode = network.get("isolationMode")
    lowered = mode.lower() if isinstance(mode, str) else None
    if policy.network.require_approved_outbound and lowered in (INTERNET, DISABLED):
        fixable = lowered == INTERNET
        message = (
            f"the managed network's isolationMode is {mode}: agents may reach any host"
            if fixable
            else f"the managed network's isolationMode is {mode}: its outbound traffic is not governed"
        )
        if ctx.report(MANAGED_NETWORK_INTERNET_OUTBOUND.id, message, str(mode), can_fix=fixable):
            ctx.act(
                Action(
                    PATCH_NETWORK.kind,
                    PATCH_NETWORK.method,
                    target,
                    _approved_body(),
                    (MANAGED_NETWORK_INTERNET_OUTBOUND.id,),
                    (str(mode),),
                )
            )
    rules = network.get("outboundRules")
    for name, rule in rules.items() if isinstance(rules, Mapping) else ():
        problem = _rule_problem(ctx, rule)
        if problem is None:
            continue
        safe = isinstance(name, str) and name and "/" not in name and name not in (".", "..")
        message = f"outbound rule {text(name)!r}: {problem}"
        if not safe:
            message += "; its name cannot be part of a resource ID, so it cannot be deleted"
        if ctx.report(OUTBOUND_RULE_NOT_ALLOWED.id, message, text(name), can_fix=bool(safe)):
            ctx.act(
                Action(
                    DELETE_RULE.kind,
                    DELETE_RULE.method,
                    f"{target}/outboundRules/{name}",
                    None,
                    (OUTBOUND_RULE_NOT_ALLOWED.id,),
                    (text(name),),
                )
            )


def _rule_problem(ctx: Context, rule: object) -> str | None:
    """Why a user-defined outbound rule is not allowed; None when it is (or is not the user's)."""
    props = rule.get("properties", rule) if isinstance(rule, Mapping) else None
    if not isinstance(props, Mapping) or str(props.get("category", "")).lower() != "userdefined":
        return None
    kind = str(props.get("type", "")).lower()
    destination = props.get("destination")
    network = ctx.policy.network
    if kind == "fqdn" and network.allowed_fqdns:
        if isinstance(destination, str) and ctx.policy.fqdn_allowed(destination):
            return None
        return f"FQDN destination {text(destination)!r} matches none of allowed_fqdns"
    if kind == "privateendpoint" and network.allowed_private_endpoint_subscriptions:
        target = destination.get("serviceResourceId") if isinstance(destination, Mapping) else None
        subscription = _subscription(target)
        if subscription is not None and ctx.policy.private_endpoint_allowed(subscription):
            return None
        where = f"subscription {subscription}" if subscription else "no subscription"
        return f"private endpoint to {text(target)} ({where}) outside allowed_private_endpoint_subscriptions"
    return None


def _subscription(resource_id: object) -> str | None:
    if not isinstance(resource_id, str) or not resource_id.lower().startswith(
        _PRIVATE_ENDPOINT_TARGET_SUBSCRIPTION
    ):
        return None
    parts = resource_id.split("/")
    return parts[2] if len(parts) > 2 and parts[2] else None


def _approved_body() -> dict[str, Any]:
    return {"properties": {"managedNetwork": {"isolationMode": APPROVED}}}


def _patch_widens(before: Snapshot, action: Action) -> list[str]:
    """Only this account's managed network, and only to approved outbound (the narrowest mode
    that keeps it managed)."""
    if action.target.lower() != f"{before.resource_id}/{PATH}".lower():
        return [f"{action.target} is not the managed network of {before.resource_id}"]
    if action.body != _approved_body():
        return ["a managed network body other than isolationMode AllowOnlyApprovedOutbound"]
    return []


def _delete_widens(before: Snapshot, action: Action) -> list[str]:
    """Deleting one of this account's outbound rules only takes a destination away."""
    prefix = f"{before.resource_id}/{PATH}/outboundRules/".lower()
    name = action.target[len(prefix) :]
    if not action.target.lower().startswith(prefix) or not name or "/" in name or name in (".", ".."):
        return [f"{action.target} is not an outbound rule of {before.resource_id}'s managed network"]
    if action.body is not None:
        return ["a DELETE with a body"]
    return []


PATCH_NETWORK: Final = ActionType(
    "patch-managed-network",
    "PATCH",
    f"PATCH the managed network's isolationMode to {APPROVED}",
    _patch_widens,
)
DELETE_RULE: Final = ActionType(
    "delete-outbound-rule",
    "DELETE",
    "DELETE a user-defined outbound rule of the managed network",
    _delete_widens,
)

UNIT = RuleUnit(
    order=100,
    rules=(MANAGED_NETWORK_INTERNET_OUTBOUND, OUTBOUND_RULE_NOT_ALLOWED),
    check=check,
    reads=(
        ChildRead(
            MANAGED_NETWORK,
            PATH,
            API_VERSION,
            many=False,
            on=lambda policy: (
                MANAGED_NETWORK_INTERNET_OUTBOUND.on(policy) or OUTBOUND_RULE_NOT_ALLOWED.on(policy)
            ),
            action="Microsoft.CognitiveServices/accounts/managedNetworks/read",
            applies=is_foundry,
        ),
    ),
    actions=(PATCH_NETWORK, DELETE_RULE),
)
