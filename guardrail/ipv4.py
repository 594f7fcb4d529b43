"""IPv4 rule parsing and the non-public address table, as integers (fast and pure).

`ipaddress.is_global` has changed meaning between Python patch releases, so the
non-public space is an explicit table here (IANA special-purpose registry's
not-globally-reachable blocks, plus multicast and reserved space).
"""

from __future__ import annotations

import re
from typing import NamedTuple

_RULE_RE = re.compile(r"([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})(?:/([0-9]{1,2}))?")


class IPv4Rule(NamedTuple):
    """A parsed IP rule: `first`..`last` inclusive as integers, and how it was written."""

    first: int
    last: int
    prefix: int
    has_prefix: bool  # written as CIDR ("a.b.c.d/n") rather than a bare address

    def covers(self, other: IPv4Rule) -> bool:
        return self.first <= other.first and other.last <= self.last

    def overlaps(self, first: int, last: int) -> bool:
        return self.first <= last and first <= self.last


def _octet(text: str) -> int:
    if len(text) > 1 and text[0] == "0":
        raise ValueError("leading zero")
    value = int(text)
    if value > 255:
        raise ValueError("octet out of range")
    return value


def parse_rule(value: object) -> IPv4Rule | None:
    """Parse an IPv4 address or CIDR; None when it is not one (IPv6, bad octet, bad prefix, garbage)."""
    if not isinstance(value, str):
        return None
    match = _RULE_RE.fullmatch(value)
    if match is None:
        return None
    a, b, c, d, p = match.groups()
    try:
        address = (_octet(a) << 24) | (_octet(b) << 16) | (_octet(c) << 8) | _octet(d)
    except ValueError:
        return None
    if p is None:
        return IPv4Rule(address, address, 32, False)
    if len(p) > 1 and p[0] == "0":
        return None
    prefix = int(p)
    if prefix > 32:
        return None
    size = 1 << (32 - prefix)
    first = address & ~(size - 1) & 0xFFFFFFFF
    return IPv4Rule(first, first + size - 1, prefix, True)


def format_address(address: int) -> str:
    return f"{address >> 24 & 255}.{address >> 16 & 255}.{address >> 8 & 255}.{address & 255}"


def format_rule(rule: IPv4Rule) -> str:
    if not rule.has_prefix:
        return format_address(rule.first)
    return f"{format_address(rule.first)}/{rule.prefix}"


# (CIDR, why) — keep in sync with the README's rule table.
NON_PUBLIC_BLOCKS: tuple[tuple[str, str], ...] = (
    ("0.0.0.0/8", "this network"),
    ("10.0.0.0/8", "private-use"),
    ("100.64.0.0/10", "shared address space (CGNAT)"),
    ("127.0.0.0/8", "loopback"),
    ("169.254.0.0/16", "link-local"),
    ("172.16.0.0/12", "private-use"),
    ("192.0.0.0/24", "IETF protocol assignments"),
    ("192.0.2.0/24", "documentation (TEST-NET-1)"),
    ("192.88.99.0/24", "deprecated 6to4 relay anycast"),
    ("192.168.0.0/16", "private-use"),
    ("198.18.0.0/15", "benchmarking"),
    ("198.51.100.0/24", "documentation (TEST-NET-2)"),
    ("203.0.113.0/24", "documentation (TEST-NET-3)"),
    ("224.0.0.0/4", "multicast"),
    ("240.0.0.0/4", "reserved"),
)


def _block(cidr: str) -> tuple[int, int, str]:
    parsed = parse_rule(cidr)
    assert parsed is not None, cidr
    return parsed.first, parsed.last, cidr


_NON_PUBLIC: tuple[tuple[int, int, str], ...] = tuple(_block(cidr) for cidr, _ in NON_PUBLIC_BLOCKS)


def non_public_overlap(rule: IPv4Rule) -> str | None:
    """The first non-public block the rule overlaps, as CIDR text, or None when it is all public."""
    for first, last, cidr in _NON_PUBLIC:
        if rule.first <= last and first <= rule.last:
            return cidr
    return None


def split_to_addresses(rule: IPv4Rule) -> list[str]:
    """Every address of a /31 or /32 as bare addresses (ARM refuses those prefixes)."""
    return [format_address(a) for a in range(rule.first, rule.last + 1)]


def covered_by_union(rule: IPv4Rule, ranges: list[tuple[int, int]]) -> bool:
    """True when every address of `rule` lies in the union of the inclusive integer `ranges`."""
    position = rule.first
    for first, last in sorted(ranges):
        if first > position:
            break
        if last >= position:
            position = last + 1
            if position > rule.last:
                return True
    return position > rule.last
