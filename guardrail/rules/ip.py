"""The IP rule family: each entry of networkAcls.ipRules gets at most one finding, the first that
applies in the order invalid, not-public, too-broad, not-allowlisted, prefix-unsupported; then the
limit. Widening part: the IPv4 ranges the rules let in."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

from guardrail import ipv4
from guardrail.memo import PerObject
from guardrail.rules._base import Context, Rule, RuleUnit, SurfacePart, text

if TYPE_CHECKING:
    from guardrail.policy import Policy

MAX_IP_RULES: Final = 100

IP_RULE_INVALID = Rule(
    "ip-rule-invalid",
    "medium",
    "strip the rule",
    True,
    "an IP rule is not an IPv4 address or IPv4 CIDR (IPv6, bad octet, bad prefix, leading zeros, garbage)",
)
IP_RULE_NOT_PUBLIC = Rule(
    "ip-rule-not-public",
    "high",
    "strip the rule",
    True,
    "an IP rule overlaps non-public IPv4 space (the table below)",
)
IP_RULE_TOO_BROAD = Rule(
    "ip-rule-too-broad",
    "high",
    "strip the rule",
    True,
    "an IP rule's prefix is shorter than min_prefix_length",
    switch="network.min_prefix_length > 0",
    on=lambda policy: policy.network.min_prefix_length > 0,
)
IP_RULE_NOT_ALLOWLISTED = Rule(
    "ip-rule-not-allowlisted",
    "high",
    "strip the rule",
    True,
    "an IP rule is not wholly inside one of allowed_ip_ranges",
    switch="network.allowed_ip_ranges set",
    on=lambda policy: bool(policy.network.allowed_ip_ranges),
)
IP_RULE_PREFIX_UNSUPPORTED = Rule(
    "ip-rule-prefix-unsupported",
    "low",
    "rewrite /32 as the address, /31 as its two addresses",
    True,
    "an IP rule is written as a /32 or /31 CIDR, which ARM refuses",
)
IP_RULE_LIMIT = Rule(
    "ip-rule-limit", "medium", None, False, f"more than {MAX_IP_RULES} IP rules remain after the fixes"
)


def check(ctx: Context) -> None:
    kept = ctx.edit_acl_list("ipRules", _classify)
    if kept is not None and len(kept) > MAX_IP_RULES:
        ctx.report(
            IP_RULE_LIMIT.id,
            f"{len(kept)} IP rules remain after the fixes; ARM allows at most {MAX_IP_RULES}",
            str(len(kept)),
        )


def _build_inside_one_table(policy: Policy) -> ipv4.InsideOne | None:
    """The policy's allowlist as an interval table, or None when it has none; reading the policy's
    allowed ranges costs more than classifying a rule, so it is done once per policy."""
    allowed = policy.allowed_ranges
    return ipv4.InsideOne(allowed) if allowed else None


_inside_one_table: PerObject[ipv4.InsideOne | None] = PerObject(_build_inside_one_table)


def _classify(ctx: Context, rules: list[Any]) -> tuple[list[Any], bool]:
    """Classify IP rules; return the rules to keep (rewritten, de-duplicated) and whether any changed.

    The engine's hot path (every IP rule of every account): one parse, cached by the rule's text
    (so the verify pass after a write parses nothing), then the non-public table and the
    allowlist's table by first octet, bisected only for the octets a block or range splits."""
    policy = ctx.policy
    min_prefix = policy.network.min_prefix_length
    table = _inside_one_table(policy)
    allowed_by_octet = table.by_octet if table is not None else None
    lookup, miss, remember = ipv4._CACHE.get, ipv4._MISS, ipv4.remember
    report = ctx.report
    kept: list[Any] = []
    kept_texts: set[str] = set()  # the kept entries' string values
    keep, note = kept.append, kept_texts.add  # bound once: called for nearly every rule
    untexted = 0  # kept entries without one: kept has duplicates when len(kept) > both together
    changed = False
    value: Any  # a string once parsed
    for entry in rules:
        if type(entry) is dict and type(value := entry.get("value")) is str:  # nearly every rule
            parsed = lookup(value, miss)
            if parsed is miss:
                parsed = remember(value)
        else:
            value = entry.get("value") if isinstance(entry, Mapping) else None
            parsed = ipv4.parse_fields(value)
        if parsed is None:
            shown = text(value) if isinstance(entry, Mapping) else text(entry)
            if report("ip-rule-invalid", f"IP rule {shown!r} is not an IPv4 address or CIDR", shown):
                changed = True
            else:
                keep(entry)
                if isinstance(value, str):
                    note(value)
                else:
                    untexted += 1
            continue
        # parsed: so `value` is a string
        first, last, prefix, has_prefix, block = parsed
        if block is not None:
            rule, message = "ip-rule-not-public", f"IP rule {value} overlaps non-public space {block}"
        elif min_prefix and prefix < min_prefix:
            rule, message = "ip-rule-too-broad", f"IP rule {value} is broader than /{min_prefix}"
        elif allowed_by_octet is not None and (
            # by the first octet when the rule lies in one /8 and that octet tells, else bisected
            (inside := allowed_by_octet[first >> 24] if prefix >= 8 else None) is False
            or (inside is None and not table.inside(first, last))  # type: ignore[union-attr]
        ):
            rule, message = "ip-rule-not-allowlisted", f"IP rule {value} is not inside allowed_ip_ranges"
        elif has_prefix and prefix >= 31:
            addresses = ipv4.addresses_between(first, last)
            message = (
                f"IP rule {value} uses a /{prefix} prefix, which ARM refuses; write {', '.join(addresses)}"
            )
            if report("ip-rule-prefix-unsupported", message, value):
                changed = True
                kept.extend({**entry, "value": address} for address in addresses)
                kept_texts.update(addresses)
            else:
                keep(entry)
                note(value)
            continue
        else:
            keep(entry)
            note(value)
            continue
        if report(rule, message, value):
            changed = True
        else:
            keep(entry)
            note(value)
    if changed and len(kept) > len(kept_texts) + untexted:
        kept = _dedupe(kept)
    return kept, changed


def prefix_problem(policy: Policy, value: object) -> tuple[str, str] | None:
    """(rule, message) for an address prefix the IP rules would flag (not an IPv4 address or CIDR,
    non-public space, broader than min_prefix_length, outside allowed_ip_ranges), else None: the
    same judgement as `_classify`, for one value outside networkAcls (a perimeter's access rule)."""
    parsed = ipv4.parse_fields(value)
    if parsed is None:
        return IP_RULE_INVALID.id, f"{text(value)!r} is not an IPv4 address or CIDR"
    first, last, prefix, _, block = parsed
    if block is not None:
        return IP_RULE_NOT_PUBLIC.id, f"{value} overlaps non-public space {block}"
    min_prefix = policy.network.min_prefix_length
    if min_prefix and prefix < min_prefix:
        return IP_RULE_TOO_BROAD.id, f"{value} is broader than /{min_prefix}"
    table = _inside_one_table(policy)
    if table is not None and not table.inside(first, last):
        return IP_RULE_NOT_ALLOWLISTED.id, f"{value} is not inside allowed_ip_ranges"
    return None


def _dedupe(rules: list[Any]) -> list[Any]:
    seen: set[str] = set()
    unique: list[Any] = []
    for entry in rules:
        value = entry.get("value") if type(entry) is dict or isinstance(entry, Mapping) else None
        if isinstance(value, str):
            if value in seen:
                continue
            seen.add(value)
        unique.append(entry)
    return unique


def _ranges(props: Mapping[str, Any], acls: Mapping[str, Any] | None) -> tuple[tuple[int, int], ...]:
    ranges = []
    for entry in (acls.get("ipRules") if acls is not None else None) or []:
        parsed = ipv4.parse_rule(entry.get("value") if isinstance(entry, Mapping) else None)
        if parsed is not None:
            ranges.append((parsed.first, parsed.last))
    return tuple(ranges)


def _ranges_widened(before: tuple[tuple[int, int], ...], after: tuple[tuple[int, int], ...]) -> list[str]:
    before_ranges = list(before)
    return [
        f"IP range {ipv4.format_address(first)}-{ipv4.format_address(last)} added"
        for first, last in after
        if not ipv4.covered_by_union(ipv4.IPv4Rule(first, last, 0, True), before_ranges)
    ]


UNIT = RuleUnit(
    order=30,
    rules=(
        IP_RULE_INVALID,
        IP_RULE_NOT_PUBLIC,
        IP_RULE_TOO_BROAD,
        IP_RULE_NOT_ALLOWLISTED,
        IP_RULE_PREFIX_UNSUPPORTED,
        IP_RULE_LIMIT,
    ),
    check=check,
    surface=(SurfacePart("ranges", "network", _ranges, _ranges_widened),),
    properties=(("networkAcls", (dict, Mapping)), ("networkAcls.ipRules", list)),
    writes=("networkAcls",),
)
