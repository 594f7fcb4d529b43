"""default-action-deny, and the gate of the widening model: is the network open to everything,
closed to all but private endpoints, or restricted by the rules below?"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from guardrail.rules._base import Context, Rule, RuleUnit, SurfacePart, text

if TYPE_CHECKING:
    from guardrail.policy import Policy

DEFAULT_ACTION_DENY = Rule(
    "default-action-deny",
    "high",
    "set networkAcls.defaultAction to Deny; where networkAcls was absent, create it with empty rule "
    "lists and bypass AzureServices if the policy allows bypass for this account, else None",
    True,
    "publicNetworkAccess is not Disabled and networkAcls is absent or its defaultAction is not Deny",
    switch="network.require_default_deny",
    on=lambda policy: policy.network.require_default_deny,
)


def check(ctx: Context) -> None:
    policy: Policy = ctx.policy
    if not policy.network.require_default_deny or ctx.public_disabled:
        return
    acls = ctx.acls
    default_action = acls.get("defaultAction") if acls is not None else None
    if isinstance(default_action, str) and default_action.lower() == "deny":
        return
    public = ctx.properties.get("publicNetworkAccess")
    shown = "networkAcls absent" if acls is None else f"defaultAction {default_action}"
    if ctx.report(
        DEFAULT_ACTION_DENY.id,
        f"publicNetworkAccess is {public or 'Enabled (unset)'} and {shown}: every network is allowed",
        "absent" if acls is None else text(default_action),
    ):
        ctx.acls_changed = True
        if acls is None:
            allowed = policy.bypass_allowed(ctx.kind, ctx.resource_id)
            ctx.acls = {
                "defaultAction": "Deny",
                "bypass": "AzureServices" if allowed else "None",
                "ipRules": [],
                "virtualNetworkRules": [],
            }
        else:
            acls["defaultAction"] = "Deny"


def _network(props: Mapping[str, Any], acls: Mapping[str, Any] | None) -> str:
    public = props.get("publicNetworkAccess")
    if isinstance(public, str) and public.lower() == "disabled":
        return "private-only"
    action = acls.get("defaultAction") if acls is not None else None
    if isinstance(action, str) and action.lower() == "deny":
        return "rules"
    return "all"


def _network_widened(before: str, after: str) -> list[str]:
    if after == "private-only" or before == "all":
        return []
    if after == "all":
        return ["network access opened to every network"]
    if before == "private-only":
        return ["public network access re-enabled"]
    return []


UNIT = RuleUnit(
    order=10,
    rules=(DEFAULT_ACTION_DENY,),
    check=check,
    surface=(SurfacePart("network", "gate", _network, _network_widened),),
    properties=(
        ("publicNetworkAccess", str),
        ("networkAcls", (dict, Mapping)),  # dict first: isinstance stops there, before the ABC
        ("networkAcls.defaultAction", str),
    ),
    writes=("networkAcls",),
)
