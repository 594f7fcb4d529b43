"""Where a Foundry account's agents run: agent subnets (`properties.networkInjections`, the
`agent` scenario's `subnetArmId`) and capability hosts (`accounts/{name}/capabilityHosts/{host}`,
`customerSubnet` and `enablePublicHostingEnvironment`). `agent-subnet-not-allowed`: a subnet
outside the policy's allowed_vnet_subscriptions / allowed_subnets (the test of
`vnet-rule-not-allowed`) puts the agents' traffic in someone else's network. `agent-public-hosting`:
the policy may forbid hosting agents in a public environment. Both report only: an injection or a
host cannot be moved in place. The capability hosts are read only when a rule here is on, and
only for Foundry accounts (`kind: AIServices`, `allowProjectManagement: true`): no other has them.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Final

from guardrail.actions import ChildRead, is_foundry
from guardrail.resource_ids import SUBNET_ID_RE
from guardrail.rules._base import Context, Rule, RuleUnit, text

INJECTIONS: Final = "networkInjections"
HOSTS: Final = "capabilityHosts"  # the snapshot's key (and `guardrail evaluate`'s)
API_VERSION: Final = "2026-09-01"

AGENT_SUBNET_NOT_ALLOWED = Rule(
    "agent-subnet-not-allowed",
    "high",
    None,
    False,
    "an agent subnet (networkInjections[].subnetArmId, or a capability host's customerSubnet) is "
    "outside allowed_vnet_subscriptions and not in allowed_subnets",
    switch="network.allowed_vnet_subscriptions or allowed_subnets set",
    on=lambda policy: policy.vnet_policy_active,
)
AGENT_PUBLIC_HOSTING = Rule(
    "agent-public-hosting",
    "medium",
    None,
    False,
    "the policy forbids public agent hosting and a capability host has enablePublicHostingEnvironment true",
    switch="network.forbid_public_agent_hosting",
    on=lambda policy: policy.network.forbid_public_agent_hosting,
)


def _hosts(ctx: Context) -> Iterator[tuple[str, Mapping[str, Any]]]:
    hosts = ctx.children.get(HOSTS)
    for host in hosts if isinstance(hosts, list) else ():
        props = host.get("properties") if isinstance(host, Mapping) else None
        if isinstance(props, Mapping):
            yield text(host.get("name") or host.get("id") or "?"), props


def _subnets(ctx: Context) -> Iterator[tuple[str, object]]:
    """(where, subnet) for every agent subnet the snapshot names."""
    injections = ctx.properties.get(INJECTIONS)
    for index, injection in enumerate(injections if isinstance(injections, list) else ()):
        if isinstance(injection, Mapping) and str(injection.get("scenario", "")).lower() == "agent":
            if injection.get("subnetArmId"):
                yield f"{INJECTIONS}[{index}]", injection.get("subnetArmId")
    for name, props in _hosts(ctx):
        if props.get("customerSubnet"):
            yield f"capability host {name}", props.get("customerSubnet")


def check(ctx: Context) -> None:
    policy = ctx.policy
    if policy.vnet_policy_active:
        for where, subnet in _subnets(ctx):
            match = SUBNET_ID_RE.fullmatch(subnet) if isinstance(subnet, str) else None
            if match is not None and isinstance(subnet, str) and policy.subnet_allowed(subnet, match["sub"]):
                continue
            reason = "outside allowed_vnet_subscriptions and allowed_subnets" if match else "not a subnet ID"
            ctx.report(
                AGENT_SUBNET_NOT_ALLOWED.id, f"{where}: agent subnet {text(subnet)} is {reason}", text(subnet)
            )
    if policy.network.forbid_public_agent_hosting:
        for name, props in _hosts(ctx):
            if props.get("enablePublicHostingEnvironment") is True:
                ctx.report(
                    AGENT_PUBLIC_HOSTING.id,
                    f"capability host {name} hosts agents in a public environment "
                    "(enablePublicHostingEnvironment true)",
                    name,
                )


UNIT = RuleUnit(
    order=110,
    rules=(AGENT_SUBNET_NOT_ALLOWED, AGENT_PUBLIC_HOSTING),
    check=check,
    properties=((INJECTIONS, list),),
    reads=(
        ChildRead(
            HOSTS,
            HOSTS,
            API_VERSION,
            many=True,
            on=lambda policy: AGENT_SUBNET_NOT_ALLOWED.on(policy) or AGENT_PUBLIC_HOSTING.on(policy),
            action="Microsoft.CognitiveServices/accounts/capabilityHosts/read",
            applies=is_foundry,
        ),
    ),
)
