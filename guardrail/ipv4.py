"""IPv4 rule parsing and the non-public address table, as integers (fast and pure).

`ipaddress.is_global` has changed meaning between Python patch releases, so the
non-public space is an explicit table here (IANA special-purpose registry's
not-globally-reachable blocks, plus multicast and reserved space).
"""

from __future__ import annotations

import bisect
import re
import socket
from typing import NamedTuple


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


# Four ASCII decimal octets 0-255 without leading zeros, optionally "/n" with n 0-32 without a
# leading zero ([0-9], not \d: \d matches every Unicode digit).
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_ADDRESS_RE = re.compile(rf"{_OCTET}\.{_OCTET}\.{_OCTET}\.{_OCTET}")
_PREFIXES: dict[str, int] = {str(n): n for n in range(33)}  # exactly "0".."32"

# parse_rule runs for every IP rule of every account, and the same values recur across accounts
# (corporate egress ranges): remember recent answers. The results are immutable.
_CACHE: dict[str, IPv4Rule | None] = {}
_CACHE_LIMIT = 1 << 14
_MISS = IPv4Rule(-1, -1, -1, False)


def parse_rule(value: object) -> IPv4Rule | None:
    """Parse an IPv4 address or CIDR; None when it is not one (IPv6, bad octet, bad prefix, garbage).

    Accepted: four ASCII decimal octets 0-255 without leading zeros, optionally "/n" with n 0-32
    without a leading zero. A CIDR's host bits are masked off ("52.1.2.3/24" is 52.1.2.0-255).
    """
    if not isinstance(value, str):
        return None
    parsed = _CACHE.get(value, _MISS)
    if parsed is not _MISS:
        return parsed
    parsed = _parse(value)
    if len(_CACHE) >= _CACHE_LIMIT:
        _CACHE.clear()
    _CACHE[value] = parsed
    return parsed


def _address_by_regex(text: str) -> int | None:
    if _ADDRESS_RE.fullmatch(text) is None:
        return None
    return int.from_bytes(socket.inet_aton(text), "big")


def _address_by_pton(text: str) -> int | None:
    try:
        return int.from_bytes(socket.inet_pton(socket.AF_INET, text), "big")
    except (OSError, ValueError):  # ValueError: non-ASCII text or an embedded NUL
        return None


_PTON_SAMPLES = (
    *("1.2.3.4", "0.0.0.0", "255.255.255.255", "01.2.3.4", "1.2.3.04", "1.2.3.00", "1.2.3", "1.2.3.4.5"),
    *("1.2.3.256", "0x1.2.3.4", " 1.2.3.4", "1.2.3.4 ", "１.２.３.４", "1.2.3.4\x00", "1..2.3", "1.2.3.4."),
)


def _pton_is_strict() -> bool:
    """inet_pton(AF_INET) is the strict dotted-quad grammar above on glibc, musl and BSD; check that
    this platform's agrees (leading zeros, short forms, Unicode digits) before relying on it."""
    try:
        return all(_address_by_pton(text) == _address_by_regex(text) for text in _PTON_SAMPLES)
    except Exception:  # pragma: no cover - a platform without inet_pton
        return False


# The C parser is about 40% faster than the regex; the regex is the definition.
_address = _address_by_pton if _pton_is_strict() else _address_by_regex


def _parse(value: str) -> IPv4Rule | None:
    address_text, slash, prefix_text = value.partition("/")
    address = _address(address_text)
    if address is None:
        return None
    if not slash:
        return IPv4Rule(address, address, 32, False)
    prefix = _PREFIXES.get(prefix_text)
    if prefix is None:
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


# The table is sorted and its blocks are disjoint, so the first block in table order that a
# rule overlaps is found by bisection instead of a scan (checked at import).
_NP_FIRSTS: tuple[int, ...] = tuple(first for first, _, _ in _NON_PUBLIC)
assert all(_NON_PUBLIC[i][1] < _NON_PUBLIC[i + 1][0] for i in range(len(_NON_PUBLIC) - 1))


def non_public_overlap(rule: IPv4Rule) -> str | None:
    """The first non-public block the rule overlaps, as CIDR text, or None when it is all public."""
    # the last block starting at or before the rule, else the first block after it
    index = bisect.bisect_right(_NP_FIRSTS, rule.first) - 1
    if index >= 0 and _NON_PUBLIC[index][1] >= rule.first:
        return _NON_PUBLIC[index][2]
    index += 1
    if index < len(_NON_PUBLIC) and _NON_PUBLIC[index][0] <= rule.last:
        return _NON_PUBLIC[index][2]
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
