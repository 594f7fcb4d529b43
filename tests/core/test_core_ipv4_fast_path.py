"""The engine's fast IPv4 path (guardrail.ipv4's cached parse, its first-octet tables, the allowlist's
interval table, and ip.py's classification built on them) against Python's `ipaddress`, which the
engine itself no longer uses on its hot path."""

from __future__ import annotations

import ipaddress
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from guardrail import ipv4
from guardrail.rules._base import Finding, _new_finding

from ._factory import account, account_id, judge, policy

_BLOCKS = [ipaddress.IPv4Network(block) for block, _ in ipv4.NON_PUBLIC_BLOCKS]
_DECIMAL_PREFIXES = {str(n) for n in range(33)}


def _by_ipaddress(value: object) -> tuple[int, int, int, bool, str | None] | None:
    """What the fast path must answer, from `ipaddress`: the range, the prefix, whether it was
    written as CIDR, and the first non-public block (in table order) it overlaps.

    `ipaddress` also reads a prefix written as a netmask or hostmask ("/255.255.255.0") or with
    leading zeros ("/024"); the guardrail's grammar does not (ARM writes a prefix as 0-32), so those
    are not rules (the one documented difference)."""
    if not isinstance(value, str):
        return None  # ipaddress would read an int or bytes as an address: a rule is JSON text
    _, slash, prefix = value.partition("/")
    if slash and prefix not in _DECIMAL_PREFIXES:
        return None
    try:
        network = ipaddress.IPv4Network(value, strict=False)
    except ValueError:
        return None
    first, last = int(network.network_address), int(network.broadcast_address)
    block = next(
        (b for b, net in zip(ipv4.NON_PUBLIC_BLOCKS, _BLOCKS, strict=True) if net.overlaps(network)), None
    )
    return first, last, network.prefixlen, bool(slash), None if block is None else block[0]


_octets = st.one_of(
    st.integers(0, 255).map(str),
    st.sampled_from(["00", "01", "007", "256", "999", "-1", "+1", " 1", "1 ", "", "0x1", "٣", "１", "1\n"]),
)
_prefix_texts = st.one_of(
    st.just(""),
    st.integers(0, 32).map(lambda n: f"/{n}"),
    st.sampled_from(
        ["/", "/00", "/024", "/33", "/-1", "/ 24", "/24 ", "/255.255.255.0", "/0.0.0.255", "//8"]
    ),
)
_odd_strings = st.builds(
    lambda octets, dots, prefix: ".".join(octets[:dots]) + prefix,
    st.lists(_octets, min_size=5, max_size=5),
    st.integers(2, 5),
    _prefix_texts,
)
_well_formed = st.builds(
    lambda address, prefix: f"{ipaddress.IPv4Address(address)}{prefix}",
    st.one_of(
        st.integers(0, 2**32 - 1),
        # the edges of every non-public block and their neighbours
        st.sampled_from(
            [int(n.network_address) + d for n in _BLOCKS for d in (-1, 0, 1)]
            + [int(n.broadcast_address) + d for n in _BLOCKS for d in (-1, 0, 1)]
        ).filter(lambda a: 0 <= a < 2**32),
    ),
    _prefix_texts,
)
_values = st.one_of(
    _well_formed,
    _odd_strings,
    st.ip_addresses(v=6).map(str),
    st.ip_addresses(v=6).map(lambda a: f"{a}/64"),
    st.text(max_size=20),
    st.none(),
    st.integers(),
    st.booleans(),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=2), st.integers(), max_size=2),
)


@settings(max_examples=3000)
@given(_values)
def test_the_fast_parse_classifies_as_ipaddress_does(value: object) -> None:
    expected = _by_ipaddress(value)
    ipv4._CACHE.clear()
    for _ in range(2):  # fresh, then from the cache (as the verify pass after a write reads it)
        assert ipv4.parse_fields(value) == expected
        parsed = ipv4.parse_rule(value)
        assert (None if parsed is None else (*parsed, ipv4.non_public_overlap(parsed))) == expected


def test_every_prefix_at_every_block_edge_classifies_as_ipaddress_does() -> None:
    """Exhaustive where the tables split: each block's first and last address and their neighbours,
    under every prefix (so ranges that span octets, blocks and the table's gaps)."""
    edges = {int(n.network_address) + d for n in _BLOCKS for d in (-1, 0, 1)}
    edges |= {int(n.broadcast_address) + d for n in _BLOCKS for d in (-1, 0, 1)}
    ipv4._CACHE.clear()
    for address in sorted(a for a in edges if 0 <= a < 2**32):
        for prefix in ("", *(f"/{n}" for n in range(33))):
            value = f"{ipaddress.IPv4Address(address)}{prefix}"
            assert ipv4.parse_fields(value) == _by_ipaddress(value), value


_networks = st.builds(
    lambda address, prefix: ipaddress.IPv4Network((address, prefix), strict=False),
    st.one_of(
        st.integers(0, 2**32 - 1), st.sampled_from([20 << 24, 52 << 24, 100 << 24, (52 << 24) + 65536])
    ),
    st.integers(0, 32),
)


@settings(max_examples=1500)
@given(st.lists(_networks, min_size=1, max_size=6), _networks)
def test_the_interval_table_says_inside_one_range_as_ipaddress_does(
    ranges: list[ipaddress.IPv4Network], rule: ipaddress.IPv4Network
) -> None:
    expected = any(rule.subnet_of(network) for network in ranges)
    table = ipv4.InsideOne((int(n.network_address), int(n.broadcast_address)) for n in ranges)
    first, last = int(rule.network_address), int(rule.broadcast_address)
    assert table.inside(first, last) == expected
    if rule.prefixlen >= 8:  # the first-octet shortcut the engine takes, when it answers
        by_octet = table.by_octet[first >> 24]
        assert by_octet is None or by_octet == expected


def _rule_by_ipaddress(value: str, min_prefix: int, allowed: list[ipaddress.IPv4Network]) -> str | None:
    """The IP rule finding a value gets, judged with `ipaddress` (None: compliant)."""
    parsed = _by_ipaddress(value)
    if parsed is None:
        return "ip-rule-invalid"
    network = ipaddress.IPv4Network(value, strict=False)
    if parsed[4] is not None:
        return "ip-rule-not-public"
    if network.prefixlen < min_prefix:
        return "ip-rule-too-broad"
    if allowed and not any(network.subnet_of(a) for a in allowed):
        return "ip-rule-not-allowlisted"
    if "/" in value and network.prefixlen >= 31:
        return "ip-rule-prefix-unsupported"
    return None


_ALLOWLISTS = [
    [],
    ["20.0.0.0/8", "52.0.0.0/8", "4.0.0.0/8"],
    ["52.96.0.0/12", "52.96.4.0/24", "100.0.0.0/7", "203.0.112.0/23"],
    ["0.0.0.0/0"],
]


@settings(max_examples=800)
@given(
    st.lists(st.one_of(_well_formed, _odd_strings, st.ip_addresses(v=6).map(str)), min_size=1, max_size=6),
    st.sampled_from([0, 8, 16, 24, 32]),
    st.sampled_from(_ALLOWLISTS),
)
def test_each_rule_gets_the_finding_ipaddress_gives_it(
    values: list[str], min_prefix: int, allowed: list[str]
) -> None:
    pol = policy(network={"min_prefix_length": min_prefix, "allowed_ip_ranges": allowed})
    networks = [ipaddress.IPv4Network(a) for a in allowed]
    expected = [
        (rule, value) for value in values if (rule := _rule_by_ipaddress(value, min_prefix, networks))
    ]
    ipv4._CACHE.clear()
    body = account(ip=values)
    for _ in range(2):  # fresh, then every value from the cache
        result = judge(body, pol)
        assert [(f.rule, f.value) for f in result.findings if f.rule.startswith("ip-rule-")] == expected


def test_the_cache_is_bounded() -> None:
    ipv4._CACHE.clear()
    for n in range(ipv4._CACHE_LIMIT + 10):
        ipv4.parse_fields(f"52.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}")
    assert 0 < len(ipv4._CACHE) <= ipv4._CACHE_LIMIT


@given(
    st.text(max_size=5),
    st.sampled_from(["low", "medium", "high"]),
    st.text(max_size=5),
    st.one_of(st.none(), st.text(max_size=5)),
    st.booleans(),
    st.booleans(),
)
def test_a_finding_built_through_its_slots_is_the_dataclass(
    rule: str, severity: Any, message: str, value: str | None, exempted: bool, fixed: bool
) -> None:
    built = _new_finding(rule, severity, message, value, exempted, fixed)
    made = Finding(rule, severity, message, value, exempted, fixed)
    assert built == made and repr(built) == repr(made) and hash(built) == hash(made)
    assert built.to_json() == made.to_json()


def test_exemptions_stay_per_account_while_decisions_are_remembered_per_policy() -> None:
    """Context remembers a rule's decision for the policy when no exemption of it names the rule:
    accounts judged one after another under one policy, and under a second, keep their own answers."""
    exempt = account_id(rg="rg-exempt")
    scoped = policy(
        exemptions=[
            {"scope": exempt, "rules": ["ip-rule-not-public"], "expires": "2027-01-01", "reason": "x"}
        ]
    )
    starred = policy(exemptions=[{"scope": exempt, "rules": ["*"], "expires": "2027-01-01", "reason": "x"}])
    plain = policy()
    cases = [
        (exempt, scoped, True),
        (account_id(), scoped, False),
        (exempt, scoped, True),
        (exempt, plain, False),
    ]
    cases += [(exempt, starred, True), (account_id(), starred, False)]
    for rid, pol, exempted in cases * 2:
        result = judge(account(ip=["10.0.0.1", "52.1.2.0/24"], rid=rid), pol)
        assert [(f.rule, f.exempted, f.fixed) for f in result.findings] == [
            ("ip-rule-not-public", exempted, not exempted)
        ]
