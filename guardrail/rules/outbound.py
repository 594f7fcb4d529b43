"""The outbound family: where the account itself may send data. `outbound-not-restricted` (the
policy may require restrictOutboundNetworkAccess true) and `outbound-fqdn-not-allowed` (each entry
of allowedFqdnList must match one of the policy's allowed_fqdns). When either changes, the PATCH
body carries restrictOutboundNetworkAccess and the whole allowedFqdnList (ARM replaces arrays).
Widening part: outbound destinations, "everything" when unrestricted, else the FQDN set."""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any, Final

from guardrail.rules._base import Context, Rule, RuleUnit, SurfacePart, text

RESTRICT: Final = "restrictOutboundNetworkAccess"
FQDNS: Final = "allowedFqdnList"
_UNSET: Any = object()


def _stripped(entries: Sequence[str]) -> str:
    """The alert's phrase: each allowedFqdnList entry the fix stripped (phrased like the removed
    entries of a networkAcls list, so that a long one is cut short the same way)."""
    return f"removed {FQDNS} {', '.join(entries)}"


OUTBOUND_NOT_RESTRICTED = Rule(
    "outbound-not-restricted",
    "medium",
    "set restrictOutboundNetworkAccess to true, keeping allowedFqdnList (less what "
    "outbound-fqdn-not-allowed strips)",
    False,  # it can break a working app: remediate.outbound-not-restricted: true turns it on
    "the policy requires outbound access restricted and restrictOutboundNetworkAccess is not true",
    switch="network.require_outbound_restricted",
    on=lambda policy: policy.network.require_outbound_restricted,
    alert="restrictOutboundNetworkAccess → true (outbound only to allowedFqdnList)",
    shows=RESTRICT,
)
OUTBOUND_FQDN_NOT_ALLOWED = Rule(
    "outbound-fqdn-not-allowed",
    "high",
    "strip the entry",
    True,
    "an entry of allowedFqdnList matches none of allowed_fqdns (an exact name, or *.suffix for any "
    "name ending in .suffix)",
    switch="network.allowed_fqdns set",
    on=lambda policy: bool(policy.network.allowed_fqdns),
    alert=_stripped,
    shows=FQDNS,
)


def check(ctx: Context) -> None:
    policy = ctx.policy
    network = policy.network
    props = ctx.properties
    restrict = props.get(RESTRICT, _UNSET)
    entries = props.get(FQDNS)
    restrict_fixed = False
    if network.require_outbound_restricted and restrict is not True:
        restrict_fixed = ctx.report(
            OUTBOUND_NOT_RESTRICTED.id,
            "outbound network access is not restricted: the account may send data anywhere; "
            "the policy requires restrictOutboundNetworkAccess true",
            "unset" if restrict is _UNSET else text(restrict),
        )
    kept: list[Any] | None = entries if isinstance(entries, list) else None
    changed = False
    if network.allowed_fqdns and isinstance(entries, list):
        kept = []
        for entry in entries:
            if isinstance(entry, str) and policy.fqdn_allowed(entry):
                kept.append(entry)
                continue
            shown = text(entry)
            if ctx.report(
                OUTBOUND_FQDN_NOT_ALLOWED.id,
                f"allowedFqdnList entry {shown!r} matches none of allowed_fqdns",
                shown,
            ):
                changed = True
            else:
                kept.append(entry)
    if restrict_fixed:
        ctx.patch[RESTRICT] = True
    if (restrict_fixed or changed) and kept is not None:
        ctx.patch[FQDNS] = copy.deepcopy(kept)  # the body never shares objects with the account


def _destinations(props: Mapping[str, Any], acls: Mapping[str, Any] | None) -> frozenset[str] | None:
    """None: every destination; else the allowed names (lower-cased; any non-string as JSON)."""
    if props.get(RESTRICT) is not True:
        return None
    entries = props.get(FQDNS)
    return frozenset(
        e.lower() if isinstance(e, str) else text(e) for e in (entries if isinstance(entries, list) else [])
    )


def _destinations_widened(before: frozenset[str] | None, after: frozenset[str] | None) -> list[str]:
    if before is None:
        return []
    if after is None:
        return ["outbound access opened to every destination"]
    return [f"outbound destination {name} allowed" for name in sorted(after - before)]


UNIT = RuleUnit(
    order=90,
    rules=(OUTBOUND_NOT_RESTRICTED, OUTBOUND_FQDN_NOT_ALLOWED),
    check=check,
    surface=(SurfacePart("outbound", "account", _destinations, _destinations_widened),),
    properties=((RESTRICT, bool), (FQDNS, list)),
    writes=(RESTRICT, FQDNS),
)
