"""Network security perimeters (NSP): `accounts/{name}/networkSecurityPerimeterConfigurations`
(read only) carry the perimeter, its profile's access rules and the account's association with
its access mode. In `Enforced` mode the perimeter's rules replace the account's own public rules;
in `Learning` mode both apply. `perimeter-not-enforced`: the policy may require an enforced
perimeter. `perimeter-access-rule-not-allowed`: an Inbound access rule lets in an address prefix
the IP rules would flag (non-public space, broader than min_prefix_length, outside
allowed_ip_ranges) or a subscription outside allowed_vnet_subscriptions. Both report only: the
association and the rules live on the perimeter, which many resources share. Both are on with
`network.require_perimeter`, and the configurations are read only then: a policy that does not
govern perimeters costs no extra ARM call per account.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Final

from guardrail.actions import ChildRead
from guardrail.rules._base import Context, Rule, RuleUnit, text
from guardrail.rules.ip import prefix_problem

CONFIGURATIONS: Final = "networkSecurityPerimeterConfigurations"  # the snapshot's key
API_VERSION: Final = "2026-09-01"

PERIMETER_NOT_ENFORCED = Rule(
    "perimeter-not-enforced",
    "medium",
    None,
    False,
    "the policy requires a network security perimeter and the account has no perimeter configuration, "
    "or its association's accessMode is not Enforced",
    switch="network.require_perimeter",
    on=lambda policy: policy.network.require_perimeter,
)
PERIMETER_ACCESS_RULE_NOT_ALLOWED = Rule(
    "perimeter-access-rule-not-allowed",
    "high",
    None,
    False,
    "an Inbound access rule of the account's perimeter profile lets in an address prefix the IP rules "
    "would flag, or a subscription outside a non-empty allowed_vnet_subscriptions",
    switch="network.require_perimeter (the perimeter configurations are read only then)",
    on=lambda policy: policy.network.require_perimeter,
)


def configurations(children: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    found = children.get(CONFIGURATIONS)
    for config in found if isinstance(found, list) else ():
        props = config.get("properties") if isinstance(config, Mapping) else None
        if isinstance(props, Mapping):
            yield props


def access_mode(props: Mapping[str, Any]) -> str | None:
    association = props.get("resourceAssociation")
    mode = association.get("accessMode") if isinstance(association, Mapping) else None
    return mode if isinstance(mode, str) else None


def _perimeter(props: Mapping[str, Any]) -> str:
    perimeter = props.get("networkSecurityPerimeter")
    return text(perimeter.get("id") if isinstance(perimeter, Mapping) else "an unnamed perimeter")


def check(ctx: Context) -> None:
    if CONFIGURATIONS not in ctx.children:
        return  # not read: nothing to judge
    policy = ctx.policy
    found = list(configurations(ctx.children))
    if policy.network.require_perimeter:
        if not found:
            ctx.report(PERIMETER_NOT_ENFORCED.id, "the account is in no network security perimeter", None)
        for props in found:
            mode = access_mode(props)
            if (mode or "").lower() != "enforced":
                ctx.report(
                    PERIMETER_NOT_ENFORCED.id,
                    f"the account's association with {_perimeter(props)} is in {mode or 'no'} access mode, "
                    "not Enforced: the account's own public rules still apply",
                    mode,
                )
    subscriptions = {s.lower() for s in policy.network.allowed_vnet_subscriptions}
    for props in found:
        profile = props.get("profile")
        rules = profile.get("accessRules") if isinstance(profile, Mapping) else None
        for rule in rules if isinstance(rules, list) else ():
            rule_props = rule.get("properties") if isinstance(rule, Mapping) else None
            if (
                not isinstance(rule_props, Mapping)
                or str(rule_props.get("direction", "")).lower() != "inbound"
            ):
                continue
            name = text(rule.get("name") if isinstance(rule, Mapping) else "?")
            prefixes = rule_props.get("addressPrefixes")
            for prefix in prefixes if isinstance(prefixes, list) else ():
                problem = prefix_problem(policy, prefix)
                if problem is not None:
                    ctx.report(
                        PERIMETER_ACCESS_RULE_NOT_ALLOWED.id,
                        f"perimeter access rule {name!r} ({_perimeter(props)}): {problem[1]} ({problem[0]})",
                        text(prefix),
                    )
            listed = rule_props.get("subscriptions")
            for entry in listed if isinstance(listed, list) and subscriptions else ():
                sub = entry.get("id") if isinstance(entry, Mapping) else entry
                shown = text(sub)
                if isinstance(sub, str) and sub.rsplit("/", 1)[-1].lower() in subscriptions:
                    continue
                ctx.report(
                    PERIMETER_ACCESS_RULE_NOT_ALLOWED.id,
                    f"perimeter access rule {name!r} ({_perimeter(props)}) lets in subscription {shown}, "
                    "outside allowed_vnet_subscriptions",
                    shown,
                )


UNIT = RuleUnit(
    order=120,
    rules=(PERIMETER_NOT_ENFORCED, PERIMETER_ACCESS_RULE_NOT_ALLOWED),
    check=check,
    reads=(
        ChildRead(
            CONFIGURATIONS,
            CONFIGURATIONS,
            API_VERSION,
            many=True,
            on=lambda policy: policy.network.require_perimeter,
            action="Microsoft.CognitiveServices/accounts/networkSecurityPerimeterConfigurations/read",
        ),
    ),
)
