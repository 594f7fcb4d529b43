"""The virtual network rule family: invalid and not-allowed subnets, the limit, and the custom
subdomain they need to take effect. Widening part: the set of subnets let in."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from guardrail.resource_ids import SUBNET_ID_RE
from guardrail.rules._base import Context, Rule, RuleUnit, SurfacePart, text

MAX_VNET_RULES: Final = 100

VNET_RULE_INVALID = Rule(
    "vnet-rule-invalid",
    "medium",
    "strip the rule",
    True,
    "a virtual network rule's id is not a subnet resource ID",
)
VNET_RULE_NOT_ALLOWED = Rule(
    "vnet-rule-not-allowed",
    "high",
    "strip the rule",
    True,
    "a subnet outside allowed_vnet_subscriptions and not in allowed_subnets",
    switch="network.allowed_vnet_subscriptions or allowed_subnets set",
    on=lambda policy: policy.vnet_policy_active,
)
VNET_RULE_LIMIT = Rule(
    "vnet-rule-limit", "medium", None, False, f"more than {MAX_VNET_RULES} virtual network rules"
)
CUSTOM_SUBDOMAIN_MISSING = Rule(
    "custom-subdomain-missing",
    "low",
    None,
    False,
    "virtual network rules are present but customSubDomainName is not set",
)


def check(ctx: Context) -> None:
    kept = ctx.edit_acl_list("virtualNetworkRules", _classify)
    if kept is None:
        return
    if len(kept) > MAX_VNET_RULES:
        ctx.report(
            VNET_RULE_LIMIT.id,
            f"{len(kept)} virtual network rules; ARM allows at most {MAX_VNET_RULES}",
            str(len(kept)),
        )
    if kept and not ctx.properties.get("customSubDomainName"):
        ctx.report(
            CUSTOM_SUBDOMAIN_MISSING.id,
            "virtual network rules are set but customSubDomainName is not: they cannot take effect",
            None,
        )


def _classify(ctx: Context, rules: list[Any]) -> tuple[list[Any], bool]:
    policy = ctx.policy
    kept: list[Any] = []
    changed = False
    for entry in rules:
        subnet = entry.get("id") if isinstance(entry, Mapping) else None
        match = SUBNET_ID_RE.fullmatch(subnet) if isinstance(subnet, str) else None
        if match is None or not isinstance(subnet, str):
            shown = text(subnet) if isinstance(entry, Mapping) else text(entry)
            fixed = ctx.report(
                VNET_RULE_INVALID.id, f"virtual network rule {shown!r} is not a subnet resource ID", shown
            )
        elif policy.vnet_policy_active and not policy.subnet_allowed(subnet, match.group("sub")):
            fixed = ctx.report(
                VNET_RULE_NOT_ALLOWED.id,
                f"subnet {subnet} is outside allowed_vnet_subscriptions and allowed_subnets",
                subnet,
            )
        else:
            kept.append(entry)
            continue
        if fixed:
            changed = True
        else:
            kept.append(entry)
    return kept, changed


def _subnets(props: Mapping[str, Any], acls: Mapping[str, Any] | None) -> frozenset[str]:
    return frozenset(
        entry["id"].lower()
        for entry in (acls.get("virtualNetworkRules") if acls is not None else None) or []
        if isinstance(entry, Mapping) and isinstance(entry.get("id"), str)
    )


def _subnets_widened(before: frozenset[str], after: frozenset[str]) -> list[str]:
    return [f"subnet {subnet} added" for subnet in sorted(after - before)]


UNIT = RuleUnit(
    order=40,
    rules=(VNET_RULE_INVALID, VNET_RULE_NOT_ALLOWED, VNET_RULE_LIMIT, CUSTOM_SUBDOMAIN_MISSING),
    check=check,
    surface=(SurfacePart("subnets", "network", _subnets, _subnets_widened),),
    properties=(
        ("networkAcls", (dict, Mapping)),
        ("networkAcls.virtualNetworkRules", list),
        ("customSubDomainName", str),
    ),
    writes=("networkAcls",),
)
