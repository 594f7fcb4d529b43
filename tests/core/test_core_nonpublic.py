"""Both edges of each non-public block, from a table written here independently of guardrail.ipv4."""

from __future__ import annotations

import ipaddress

import pytest

from guardrail import ipv4

from ._factory import account, judge, rules_of

# (block, first address, last address, address just below, address just above).
# Neighbours that fall inside another block (or off the ends of the space) are None.
# Written out by hand from the spec's table; the sanity test below checks it with `ipaddress`.
EDGES: list[tuple[str, str, str, str | None, str | None]] = [
    ("0.0.0.0/8", "0.0.0.0", "0.255.255.255", None, "1.0.0.0"),
    ("10.0.0.0/8", "10.0.0.0", "10.255.255.255", "9.255.255.255", "11.0.0.0"),
    ("100.64.0.0/10", "100.64.0.0", "100.127.255.255", "100.63.255.255", "100.128.0.0"),
    ("127.0.0.0/8", "127.0.0.0", "127.255.255.255", "126.255.255.255", "128.0.0.0"),
    ("169.254.0.0/16", "169.254.0.0", "169.254.255.255", "169.253.255.255", "169.255.0.0"),
    ("172.16.0.0/12", "172.16.0.0", "172.31.255.255", "172.15.255.255", "172.32.0.0"),
    ("192.0.0.0/24", "192.0.0.0", "192.0.0.255", "191.255.255.255", "192.0.1.0"),
    ("192.0.2.0/24", "192.0.2.0", "192.0.2.255", "192.0.1.255", "192.0.3.0"),
    ("192.88.99.0/24", "192.88.99.0", "192.88.99.255", "192.88.98.255", "192.88.100.0"),
    ("192.168.0.0/16", "192.168.0.0", "192.168.255.255", "192.167.255.255", "192.169.0.0"),
    ("198.18.0.0/15", "198.18.0.0", "198.19.255.255", "198.17.255.255", "198.20.0.0"),
    ("198.51.100.0/24", "198.51.100.0", "198.51.100.255", "198.51.99.255", "198.51.101.0"),
    ("203.0.113.0/24", "203.0.113.0", "203.0.113.255", "203.0.112.255", "203.0.114.0"),
    ("224.0.0.0/4", "224.0.0.0", "239.255.255.255", "223.255.255.255", None),  # 240/4 follows
    ("240.0.0.0/4", "240.0.0.0", "255.255.255.255", None, None),
]


def test_the_table_is_consistent() -> None:
    for block, first, last, below, above in EDGES:
        network = ipaddress.IPv4Network(block)
        assert str(network[0]) == first and str(network[-1]) == last, block
        if below is not None:
            assert int(ipaddress.IPv4Address(below)) == int(network[0]) - 1
        if above is not None:
            assert int(ipaddress.IPv4Address(above)) == int(network[-1]) + 1


def test_the_engine_table_is_the_spec_table() -> None:
    assert [cidr for cidr, _ in ipv4.NON_PUBLIC_BLOCKS] == [block for block, *_ in EDGES]


@pytest.mark.parametrize(("block", "address"), [(e[0], a) for e in EDGES for a in (e[1], e[2])])
def test_first_and_last_address_inside_is_not_public(block: str, address: str) -> None:
    result = judge(account(ip=[address]))
    assert rules_of(result) == ["ip-rule-not-public"]
    assert block in result.findings[0].message
    assert result.remediation is not None
    assert result.remediation["properties"]["networkAcls"]["ipRules"] == []


@pytest.mark.parametrize(
    "address", sorted({a for e in EDGES for a in (e[3], e[4]) if a is not None}, key=ipaddress.IPv4Address)
)
def test_address_just_outside_is_public(address: str) -> None:
    assert judge(account(ip=[address])).findings == ()


@pytest.mark.parametrize(("block", "first", "last", "_below", "_above"), EDGES)
def test_cidr_ending_or_starting_at_the_edge_overlaps(
    block: str, first: str, last: str, _below: str | None, _above: str | None
) -> None:
    # a /30 holding the last address of the block, and one holding the first
    for address in (first, last):
        net = ipaddress.IPv4Network(f"{address}/30", strict=False)
        result = judge(account(ip=[str(net)]))
        assert rules_of(result) == ["ip-rule-not-public"], net


@pytest.mark.parametrize(
    "cidr",
    ["9.255.255.252/30", "11.0.0.0/30", "100.128.0.0/10", "128.0.0.0/3", "192.0.1.0/24", "1.0.0.0/8"],
)
def test_public_cidrs_next_to_blocks_are_public(cidr: str) -> None:
    assert judge(account(ip=[cidr])).findings == ()
