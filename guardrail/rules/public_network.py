"""public-network-access: the policy may require publicNetworkAccess Disabled (the widening
model's gate, in default_action, already counts re-enabling it as widening)."""

from __future__ import annotations

from guardrail.rules._base import Context, Rule, RuleUnit

PUBLIC_NETWORK_ACCESS = Rule(
    "public-network-access",
    "high",
    "set publicNetworkAccess to Disabled",
    False,
    "the policy requires publicNetworkAccess Disabled and it is not",
    switch="network.require_public_network_disabled",
    on=lambda policy: policy.network.require_public_network_disabled,
    alert="publicNetworkAccess → Disabled",
    shows="publicNetworkAccess",
)


def check(ctx: Context) -> None:
    if not ctx.policy.network.require_public_network_disabled or ctx.public_disabled:
        return
    public = ctx.properties.get("publicNetworkAccess")
    if ctx.report(
        PUBLIC_NETWORK_ACCESS.id,
        f"publicNetworkAccess is {public or 'Enabled (unset)'}; the policy requires Disabled",
        public if isinstance(public, str) else None,
    ):
        ctx.patch["publicNetworkAccess"] = "Disabled"


UNIT = RuleUnit(
    order=20,
    rules=(PUBLIC_NETWORK_ACCESS,),
    check=check,
    properties=(("publicNetworkAccess", str),),
    writes=("publicNetworkAccess",),
)
