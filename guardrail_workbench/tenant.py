"""Generated tenants for the emulator: a realistic mix of AI services accounts, deterministic
for a given seed. Used by the demo, the sweep tests and the benchmarks."""

from __future__ import annotations

import random
import uuid
from typing import Any

KINDS = ("OpenAI", "AIServices", "CognitiveServices", "TextTranslation", "SpeechServices", "FormRecognizer")

# (share, profile): how often each kind of account turns up.
PROFILES: tuple[tuple[float, str], ...] = (
    (0.30, "compliant"),
    (0.12, "private-endpoint"),
    (0.14, "open"),  # AI services open to all networks, no networkAcls
    (0.10, "openai-bypass"),  # Azure OpenAI with trusted-services bypass and Allow
    (0.10, "private-ips"),  # private IPs pasted into rules (written before ARM refused them)
    (0.08, "cidr-32"),  # /32 and /31 CIDRs
    (0.08, "foreign-subnet"),  # a subnet from a subscription outside the policy
    (0.08, "too-broad"),
)
#: The profiles a policy from `policy_for` finds nothing wrong with; every other one is open to more
#: networks than the policy allows (in the way its name says).
CLOSED_PROFILES = frozenset({"compliant", "private-endpoint"})


def subscription_ids(count: int, seed: int = 7) -> list[str]:
    rng = random.Random(seed)
    return [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(count)]


def _public_ip(rng: random.Random) -> str:
    first = rng.choice((4, 13, 20, 40, 51, 52, 104, 137, 168))
    return f"{first}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"


def _public_24(rng: random.Random) -> str:
    first = rng.choice((4, 13, 20, 40, 51, 52, 104, 137, 168))
    return f"{first}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.0/24"


def _subnet(sub: str, vnet: str, name: str) -> dict[str, Any]:
    return {
        "id": f"/subscriptions/{sub}/resourceGroups/rg-network/providers/Microsoft.Network/"
        f"virtualNetworks/{vnet}/subnets/{name}",
        "state": "Succeeded",
        "ignoreMissingVnetServiceEndpoint": False,
    }


def make_account(
    rng: random.Random, name: str, profile: str, sub: str, foreign_sub: str, kind: str | None = None
) -> dict[str, Any]:
    kind = kind or ("OpenAI" if profile == "openai-bypass" else rng.choice(KINDS))
    properties: dict[str, Any] = {
        "provisioningState": "Succeeded",
        "customSubDomainName": name,
        "endpoint": f"https://{name}.cognitiveservices.azure.com/",
        "publicNetworkAccess": "Enabled",
        "disableLocalAuth": rng.random() < 0.7,
    }
    acls: dict[str, Any] | None = {
        "defaultAction": "Deny",
        "bypass": "None",
        "ipRules": [{"value": _public_24(rng)} for _ in range(rng.randint(0, 3))],
        "virtualNetworkRules": [],
    }
    assert acls is not None
    if profile == "private-endpoint":
        properties["publicNetworkAccess"] = "Disabled"
        acls = None
    elif profile == "open":
        acls = None
    elif profile == "openai-bypass":
        acls.update(defaultAction="Allow", bypass="AzureServices")
    elif profile == "private-ips":
        acls["ipRules"] += [{"value": "10.20.30.40"}, {"value": "192.168.1.0/24"}]
    elif profile == "cidr-32":
        acls["ipRules"] += [{"value": f"{_public_ip(rng)}/32"}, {"value": "52.10.20.30/31"}]
    elif profile == "foreign-subnet":
        acls["virtualNetworkRules"] = [_subnet(sub, "vnet-app", "app"), _subnet(foreign_sub, "vnet-x", "s1")]
    elif profile == "too-broad":
        acls["ipRules"] += [{"value": "20.0.0.0/8"}]
    if acls is not None:
        properties["networkAcls"] = acls
    return {
        "name": name,
        "kind": kind,
        "sku": {"name": "S0"},
        "location": rng.choice(("eastus", "westeurope", "swedencentral")),
        "tags": {"owner": rng.choice(("team-a", "team-b", "data-science", "platform"))},
        "properties": properties,
    }


def generate_tenant(
    accounts: int,
    subscriptions: int = 3,
    *,
    seed: int = 42,
    groups_per_subscription: int = 3,
    open_fraction: float | None = None,
) -> dict[str, Any]:
    """A tenant document the emulator seeds from: `accounts` spread over `subscriptions`.

    Each account's profile is drawn from PROFILES by their shares (58 % open); with `open_fraction`,
    that fraction of accounts (in expectation) is drawn from the open profiles and the rest from
    CLOSED_PROFILES, each side keeping PROFILES' relative shares (the tenant-scale benchmark: 10 %
    open in assorted ways)."""
    if open_fraction is not None and not 0.0 <= open_fraction <= 1.0:
        raise ValueError(f"open_fraction must be between 0 and 1, not {open_fraction}")
    rng = random.Random(seed)
    subs = subscription_ids(subscriptions, seed)
    foreign = "ffffffff-0000-4000-8000-00000000f0f0"
    weights = [share for share, _ in PROFILES]
    names = [profile for _, profile in PROFILES]
    if open_fraction is not None:
        closed = sum(share for share, name in PROFILES if name in CLOSED_PROFILES)
        weights = [
            share
            * ((1 - open_fraction) / closed if name in CLOSED_PROFILES else open_fraction / (1 - closed))
            for share, name in PROFILES
        ]
    tenant: dict[str, Any] = {"subscriptions": []}
    groups: list[tuple[str, dict[str, Any]]] = []
    for index, sub in enumerate(subs):
        entry: dict[str, Any] = {
            "subscriptionId": sub,
            "displayName": f"contoso-ai-{index + 1}",
            "resourceGroups": [],
        }
        for g in range(groups_per_subscription):
            group: dict[str, Any] = {"name": f"rg-ai-{g + 1}", "location": "eastus", "accounts": []}
            entry["resourceGroups"].append(group)
            groups.append((sub, group))
        tenant["subscriptions"].append(entry)
    for i in range(accounts):
        sub, group = groups[i % len(groups)]
        profile = rng.choices(names, weights)[0]
        group["accounts"].append(make_account(rng, f"ai-{i:05d}", profile, sub, foreign))
    return tenant


def policy_for(tenant: dict[str, Any]) -> str:
    """A policy text that fits a generated tenant: its own subscriptions may hold subnets."""
    subs = ", ".join(s["subscriptionId"] for s in tenant["subscriptions"])
    return (
        "version: 1\n"
        "mode: enforce\n"
        "network:\n"
        "  require_default_deny: true\n"
        "  min_prefix_length: 16\n"
        f"  allowed_vnet_subscriptions: [{subs}]\n"
        "  bypass_allowed_kinds: []\n"
    )
