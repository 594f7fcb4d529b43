"""The runtime never-widen check: does a PATCH body let anything in (or out) that the account does not?

Deliberately independent of the engine: its own model of what an account lets in (the standard
library's `ipaddress` and plain set arithmetic, not `guardrail.ipv4`), its own PATCH merge (not
`engine.apply_patch`), so that one bug cannot both produce and approve a widening body. The
service runs it on every body it sends, recomputations after a 412 included.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class _Surface:
    local_auth: bool
    reach: Literal["everything", "nothing-public", "rules"]
    networks: tuple[Network, ...] = ()
    unparsed: frozenset[str] = frozenset()  # rule values this model cannot read: compared as text
    subnets: frozenset[str] = frozenset()
    services: bool = False  # trusted Azure services may bypass the rules
    outbound: frozenset[str] | None = None  # None: the account may send data anywhere


def _lower(value: object) -> str | None:
    return value.lower() if isinstance(value, str) else None


def _outbound(props: Mapping[str, Any]) -> frozenset[str] | None:
    """Where the account may send data: None (anywhere) unless restrictOutboundNetworkAccess is
    true; then the allowedFqdnList entries, compared as lower-case text."""
    if props.get("restrictOutboundNetworkAccess") is not True:
        return None
    entries = props.get("allowedFqdnList")
    return frozenset(
        repr(e.lower() if isinstance(e, str) else e) for e in (entries if isinstance(entries, list) else [])
    )


def _surface(account: Mapping[str, Any]) -> _Surface:
    props = account.get("properties")
    props = props if isinstance(props, Mapping) else {}
    local_auth = props.get("disableLocalAuth") is not True
    outbound = _outbound(props)
    if _lower(props.get("publicNetworkAccess")) == "disabled":
        return _Surface(local_auth, "nothing-public", outbound=outbound)
    acls = props.get("networkAcls")
    if not isinstance(acls, Mapping) or _lower(acls.get("defaultAction")) != "deny":
        return _Surface(local_auth, "everything", outbound=outbound)
    networks: list[Network] = []
    unparsed: set[str] = set()
    rules = acls.get("ipRules")
    for entry in rules if isinstance(rules, list) else []:
        value = entry.get("value") if isinstance(entry, Mapping) else entry
        try:
            networks.append(ipaddress.ip_network(str(value).strip(), strict=False))
        except ValueError:
            unparsed.add(repr(value))
    vnets = acls.get("virtualNetworkRules")
    subnets = frozenset(
        repr(entry.get("id") if isinstance(entry, Mapping) else entry).lower()
        for entry in (vnets if isinstance(vnets, list) else [])
    )
    services = _lower(acls.get("bypass")) != "none"  # unset or anything else lets services in
    return _Surface(local_auth, "rules", tuple(networks), frozenset(unparsed), subnets, services, outbound)


def _outside(network: Network, allowed: tuple[Network, ...]) -> list[Network]:
    """The parts of `network` that no network in `allowed` covers (set difference)."""
    remaining: list[Network] = [network]
    for cover in allowed:
        pieces: list[Network] = []
        for part in remaining:
            if part.version != cover.version:
                pieces.append(part)
            elif part.subnet_of(cover):  # type: ignore[arg-type]
                continue
            elif cover.subnet_of(part):  # type: ignore[arg-type]
                pieces.extend(part.address_exclude(cover))  # type: ignore[arg-type]
            else:
                pieces.append(part)
        remaining = pieces
        if not remaining:
            break
    return remaining


def patched(account: Mapping[str, Any], body: Mapping[str, Any]) -> dict[str, Any]:
    """ARM's PATCH, written out here: top-level properties merged, each value replaced whole."""
    props = account.get("properties")
    merged = dict(props) if isinstance(props, Mapping) else {}
    sent = body.get("properties")
    merged.update(sent if isinstance(sent, Mapping) else {})
    return {**account, "properties": merged}


def widens(account: Mapping[str, Any], body: Mapping[str, Any]) -> list[str]:
    """Every way the account after `body` would let in more than `account` does (empty: it would
    not). Unknown top-level keys in the body count as widening: the guardrail sends none."""
    reasons = [f"the body changes {key!r}" for key in body if key != "properties"]
    before, after = _surface(account), _surface(patched(account, body))
    if after.local_auth and not before.local_auth:
        reasons.append("local authentication re-enabled")
    if before.outbound is not None:  # outbound: compared whatever the network allows (#23, item 5)
        if after.outbound is None:
            reasons.append("outbound access opened to every destination")
        else:
            reasons += [
                f"outbound destination {name} allowed" for name in sorted(after.outbound - before.outbound)
            ]
    if after.reach == "nothing-public" or before.reach == "everything":
        return reasons
    if after.reach == "everything":
        return [*reasons, "network access opened to every network"]
    if before.reach == "nothing-public":
        return [*reasons, "public network access re-enabled"]
    for network in after.networks:
        reasons += [f"IP range {gap} added" for gap in _outside(network, before.networks)]
    reasons += [f"IP rule {value} added" for value in sorted(after.unparsed - before.unparsed)]
    reasons += [f"subnet {subnet} added" for subnet in sorted(after.subnets - before.subnets)]
    if after.services and not before.services:
        reasons.append("trusted-services bypass enabled")
    return reasons
