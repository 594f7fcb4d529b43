"""ARM's refusals of `properties.networkAcls`, written from Azure's documentation alone.

"Configure Azure AI services virtual networks" (shared/seed) says: IP rules take public IPv4
addresses or CIDR ranges only; the RFC 1918 ranges (10/8, 172.16/12, 192.168/16) are refused;
`/31` and `/32` prefixes are not supported (write single addresses); IPv6 is not supported; at
most 100 IP rules and 100 virtual network rules per account. ARM answers a refusal with 400 and
the envelope `{"error": {"code", "message"}}`.

This module is deliberately independent of the guardrail (it parses with the standard library's
`ipaddress`, not `guardrail.ipv4`): the emulator must be able to disagree with the engine, or an
end-to-end test could never catch a wrong idea of what ARM does.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from .names import fold

MAX_IP_RULES = 100
MAX_VNET_RULES = 100

#: RFC 1918, the ranges the document names.
PRIVATE_RANGES: tuple[ipaddress.IPv4Network, ...] = tuple(
    ipaddress.IPv4Network(cidr) for cidr in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")
)

#: IANA's IPv4 special-purpose registry (RFC 6890 and updates): the blocks that are not
#: globally reachable. Only the stricter `non-public` mode refuses the ones beyond RFC 1918;
#: Azure documents no such refusal.
SPECIAL_PURPOSE: tuple[ipaddress.IPv4Network, ...] = tuple(
    ipaddress.IPv4Network(cidr)
    for cidr in (
        "0.0.0.0/8",
        "10.0.0.0/8",
        "100.64.0.0/10",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "172.16.0.0/12",
        "192.0.0.0/24",
        "192.0.2.0/24",
        "192.88.99.0/24",
        "192.168.0.0/16",
        "198.18.0.0/15",
        "198.51.100.0/24",
        "203.0.113.0/24",
        "224.0.0.0/4",
        "240.0.0.0/4",
    )
)

Refusal = Literal["private", "non-public"]


@dataclass(frozen=True)
class AclError(Exception):
    """A refusal: ARM's HTTP status, error code and message."""

    status: int
    code: str
    message: str


_IPV4_CIDR = re.compile(r"[0-9]{1,3}(\.[0-9]{1,3}){3}(/(0|[1-9][0-9]?))?", re.ASCII)


def _invalid(value: object) -> AclError:
    return AclError(400, "InvalidIpRule", f"The IP rule '{value}' is not a valid IPv4 address or CIDR range.")


def parse_ip_rule(value: object) -> ipaddress.IPv4Network:
    """The network an IP rule's `value` names; AclError when it is not IPv4 address/CIDR text.

    CIDR notation only (RFC 4632, as the document says): four decimal octets, optionally `/n`;
    no netmask or hostmask after the slash, no leading zero in the prefix, ASCII digits only.
    """
    if not isinstance(value, str) or not value:
        raise _invalid(value)
    if ":" in value:  # IPv6 (refused for itself, whatever its form)
        try:
            ipaddress.ip_network(value, strict=False)
        except ValueError:
            raise _invalid(value) from None
        raise AclError(
            400,
            "InvalidIpRule",
            f"The IP rule '{value}' is an IPv6 address or range; only IPv4 is supported.",
        )
    if not _IPV4_CIDR.fullmatch(value):
        raise _invalid(value)
    try:
        network = ipaddress.ip_network(value, strict=False)  # octets 0-255, no leading zeros
    except ValueError:
        raise _invalid(value) from None
    assert isinstance(network, ipaddress.IPv4Network)
    return network


def check_ip_rule(value: object, refusal: Refusal = "private") -> ipaddress.IPv4Network:
    """Refuse what ARM refuses in one IP rule; the parsed network when it is accepted."""
    network = parse_ip_rule(value)
    if "/" in str(value) and network.prefixlen in (31, 32):
        raise AclError(
            400,
            "InvalidIpRule",
            f"The IP rule '{value}' uses a /{network.prefixlen} prefix, which is not supported; "
            "write single addresses instead.",
        )
    blocks = PRIVATE_RANGES if refusal == "private" else SPECIAL_PURPOSE
    for block in blocks:
        if network.overlaps(block):
            raise AclError(
                400,
                "InvalidIpRule",
                f"The IP rule '{value}' is in a private/non-public address range ({block}), "
                "which is not allowed in IP rules.",
            )
    return network


def check_network_acls(acls: object, refusal: Refusal = "private") -> None:
    """Refuse a `networkAcls` object ARM would refuse (shape, counts, defaultAction, bypass, IP rules)."""
    if acls is None:
        return
    if not isinstance(acls, Mapping):
        raise AclError(400, "InvalidNetworkAcls", "networkAcls must be an object.")
    ip_rules = acls.get("ipRules") or []
    vnet_rules = acls.get("virtualNetworkRules") or []
    if not isinstance(ip_rules, list) or not isinstance(vnet_rules, list):
        raise AclError(400, "InvalidNetworkAcls", "ipRules and virtualNetworkRules must be arrays.")
    if len(ip_rules) > MAX_IP_RULES:
        raise AclError(
            400,
            "MaxNumberOfIpRulesExceeded",
            f"The number of IP rules ({len(ip_rules)}) exceeds the limit of {MAX_IP_RULES}.",
        )
    if len(vnet_rules) > MAX_VNET_RULES:
        raise AclError(
            400,
            "MaxNumberOfVirtualNetworkRulesExceeded",
            f"The number of virtual network rules ({len(vnet_rules)}) exceeds the limit of {MAX_VNET_RULES}.",
        )
    default_action = acls.get("defaultAction")
    if default_action is not None and default_action not in ("Allow", "Deny"):
        raise AclError(400, "InvalidNetworkAcls", f"defaultAction '{default_action}' is not Allow or Deny.")
    bypass = acls.get("bypass")
    if bypass is not None and bypass not in ("None", "AzureServices"):
        raise AclError(400, "InvalidNetworkAcls", f"bypass '{bypass}' is not None or AzureServices.")
    for rule in ip_rules:
        check_ip_rule(rule.get("value") if isinstance(rule, Mapping) else None, refusal)


def subnet_parts(subnet_id: str) -> tuple[str, str, str, str] | None:
    """(subscription, resource group, virtual network, subnet) of a subnet ID, or None."""
    parts = subnet_id.strip("/").split("/")
    lowered = [fold(p) for p in parts]
    if (
        len(parts) == 10
        and lowered[0] == "subscriptions"
        and lowered[2] == "resourcegroups"
        and lowered[4] == "providers"
        and lowered[5] == "microsoft.network"
        and lowered[6] == "virtualnetworks"
        and lowered[8] == "subnets"
        and all(parts)
    ):
        return parts[1], parts[3], parts[7], parts[9]
    return None


def has_service_endpoint(subnet: Mapping[str, Any], service: str = "Microsoft.CognitiveServices") -> bool:
    """Whether a subnet body lists the service endpoint (case-insensitively)."""
    endpoints: Sequence[Any] = (subnet.get("properties") or {}).get("serviceEndpoints") or []
    return any(isinstance(e, Mapping) and fold(str(e.get("service", ""))) == fold(service) for e in endpoints)
