"""IPv4 rule parsing and the non-public address table, as integers (fast and pure).

`ipaddress.is_global` has changed meaning between Python patch releases, so the
non-public space is an explicit table here (IANA special-purpose registry's
not-globally-reachable blocks, plus multicast and reserved space).
"""

from __future__ import annotations

import bisect
import ipaddress
import re
import socket
from collections.abc import Iterable
from typing import Final, NamedTuple


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


# The grammar: four ASCII decimal octets 0-255 without leading zeros, optionally "/n" with n 0-32
# without a leading zero ([0-9], not \d: \d matches every Unicode digit).
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_ADDRESS_RE = re.compile(rf"{_OCTET}\.{_OCTET}\.{_OCTET}\.{_OCTET}")
_PREFIXES: dict[str, int] = {str(n): n for n in range(33)}  # exactly "0".."32"


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


def _pton_by_regex(family: int, text: str) -> bytes:
    """`socket.inet_pton(AF_INET, text)` by the regex, for a platform whose inet_pton is laxer."""
    address = _address_by_regex(text)
    if address is None:
        raise OSError(f"illegal IP address string passed to inet_pton: {text!r}")
    return address.to_bytes(4, "big")


# The C parser is about 40% faster than the regex; the regex is the definition.
_address = _address_by_pton if _pton_is_strict() else _address_by_regex
_inet_pton = socket.inet_pton if _address is _address_by_pton else _pton_by_regex
_AF_INET = socket.AF_INET
_from_bytes = int.from_bytes


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
    # by the standard library (once, at import): the table does not depend on the parser it serves
    network = ipaddress.IPv4Network(cidr)
    first = int(network.network_address)
    return first, first + (1 << (32 - network.prefixlen)) - 1, cidr


_NON_PUBLIC: tuple[tuple[int, int, str], ...] = tuple(_block(cidr) for cidr, _ in NON_PUBLIC_BLOCKS)


# The table is sorted and its blocks are disjoint, so the first block in table order that a
# rule overlaps is found by bisection instead of a scan (checked at import).
_NP_FIRSTS: tuple[int, ...] = tuple(first for first, _, _ in _NON_PUBLIC)
assert all(_NON_PUBLIC[i][1] < _NON_PUBLIC[i + 1][0] for i in range(len(_NON_PUBLIC) - 1))


def non_public_overlap(rule: IPv4Rule) -> str | None:
    """The first non-public block the rule overlaps, as CIDR text, or None when it is all public."""
    return non_public_range(rule.first, rule.last)


def _non_public_by_bisect(first: int, last: int) -> str | None:
    # the last block starting at or before `first`, else the first block after it
    index = bisect.bisect_right(_NP_FIRSTS, first) - 1
    if index >= 0 and _NON_PUBLIC[index][1] >= first:
        return _NON_PUBLIC[index][2]
    index += 1
    if index < len(_NON_PUBLIC) and _NON_PUBLIC[index][0] <= last:
        return _NON_PUBLIC[index][2]
    return None


# Per first octet, what the table says of a range inside that octet's /8: the block's CIDR when the
# whole /8 is inside one block, None when no block touches the /8, and LOOK_CLOSER (the empty string)
# when some do (100, 169, 172, 192, 198, 203): then the bisection decides.
LOOK_CLOSER: Final = ""


def _by_octet() -> tuple[str | None, ...]:
    table: list[str | None] = [None] * 256
    for first, last, cidr in _NON_PUBLIC:  # disjoint: a /8 wholly inside a block touches no other
        for octet in range(first >> 24, (last >> 24) + 1):
            whole = first <= octet << 24 and octet << 24 | 0xFFFFFF <= last
            table[octet] = cidr if whole else LOOK_CLOSER
    return tuple(table)


NON_PUBLIC_BY_OCTET: tuple[str | None, ...] = _by_octet()


def non_public_range(first: int, last: int) -> str | None:
    """`non_public_overlap` of the range first..last (inclusive integers)."""
    if first >> 24 == last >> 24:
        block = NON_PUBLIC_BY_OCTET[first >> 24]
        if block != LOOK_CLOSER:
            return block
    return _non_public_by_bisect(first, last)


class InsideOne:
    """A table answering "is first..last wholly inside one of these ranges?" (not merely inside
    their union) without a scan: the ranges sorted by their first address, with the running
    maximum of their last addresses; one range with low <= first and high >= last exists exactly
    when that maximum, over the ranges starting at or before `first`, reaches `last`.

    `by_octet[o]` answers for any range inside the /8 of first octet `o` when it can: True (that /8
    is inside one range), False (no range touches it), None (look closer with `inside`)."""

    __slots__ = ("by_octet", "highs", "lows")

    def __init__(self, ranges: Iterable[tuple[int, int]]) -> None:
        ordered = sorted(ranges)
        self.lows = tuple(low for low, _ in ordered)
        highs: list[int] = []
        for _, high in ordered:
            highs.append(max(high, highs[-1]) if highs else high)
        self.highs = tuple(highs)
        by_octet: list[bool | None] = []
        for octet in range(256):
            low, high = octet << 24, octet << 24 | 0xFFFFFF
            if self.inside(low, high):
                by_octet.append(True)
            elif all(last < low or first > high for first, last in ordered):
                by_octet.append(False)
            else:
                by_octet.append(None)
        self.by_octet: tuple[bool | None, ...] = tuple(by_octet)

    def inside(self, first: int, last: int) -> bool:
        index = bisect.bisect_right(self.lows, first) - 1
        return index >= 0 and self.highs[index] >= last


# The engine parses every IP rule of every account, and the same values recur: across accounts
# (corporate egress ranges) and within one check (the loop evaluates the account again after its
# write). Recent answers are remembered, bounded, with the non-public block each overlaps (which
# depends on no policy): `Fields`, plain tuples, immutable. Only the engine's rule checks and the
# policy read this cache; guardrail.neverwiden parses on its own, on purpose.
Fields = tuple[int, int, int, bool, str | None]  # first, last, prefix, has_prefix, non-public block
_CACHE: dict[str, Fields | None] = {}
_CACHE_LIMIT = 1 << 14
_MISS: Fields = (-1, -1, -1, False, None)


def parse_rule(value: object) -> IPv4Rule | None:
    """Parse an IPv4 address or CIDR; None when it is not one (IPv6, bad octet, bad prefix, garbage).

    Accepted: four ASCII decimal octets 0-255 without leading zeros, optionally "/n" with n 0-32
    without a leading zero. A CIDR's host bits are masked off ("52.1.2.3/24" is 52.1.2.0-255).
    """
    fields = parse_fields(value)
    return None if fields is None else IPv4Rule(fields[0], fields[1], fields[2], fields[3])


def parse_fields(value: object) -> Fields | None:
    """`parse_rule` as plain fields, with the first non-public block the rule overlaps (cached)."""
    if not isinstance(value, str):
        return None
    fields = _CACHE.get(value, _MISS)
    return remember(value) if fields is _MISS else fields


def remember(value: str) -> Fields | None:
    """Parse `value`, a string the cache does not hold, and remember the answer.

    One frame but for the C parse of the dotted quad (this runs once per fresh rule): integer
    arithmetic, a table lookup by the first octet, no `ipaddress` objects."""
    address_text, slash, prefix_text = value.partition("/")
    fields: Fields | None = None
    try:
        address = _from_bytes(_inet_pton(_AF_INET, address_text), "big")
    except (OSError, ValueError):  # ValueError: non-ASCII text or an embedded NUL
        address = -1
    if address < 0:
        pass  # not an address: fields stays None
    elif not slash:  # a bare address, so inside one /8: the table by first octet, bisected rarely
        block = NON_PUBLIC_BY_OCTET[address >> 24]
        if block == LOOK_CLOSER:
            block = _non_public_by_bisect(address, address)
        fields = (address, address, 32, False, block)
    elif (prefix := _PREFIXES.get(prefix_text, -1)) >= 0:
        size = 1 << (32 - prefix)
        first = address & ~(size - 1) & 0xFFFFFFFF
        last = first + size - 1
        fields = (first, last, prefix, True, non_public_range(first, last))
    if len(_CACHE) >= _CACHE_LIMIT:
        _CACHE.clear()
    _CACHE[value] = fields
    return fields


def split_to_addresses(rule: IPv4Rule) -> list[str]:
    """Every address of a /31 or /32 as bare addresses (ARM refuses those prefixes)."""
    return addresses_between(rule.first, rule.last)


def addresses_between(first: int, last: int) -> list[str]:
    """Every address of first..last (a /31 or /32) as bare addresses."""
    return [format_address(a) for a in range(first, last + 1)]


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
