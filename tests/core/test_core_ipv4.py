"""guardrail.ipv4 parsing, checked against Python's ipaddress."""

from __future__ import annotations

import ipaddress
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from guardrail import ipv4

from ._factory import account, ip_values, judge, rules_of


@settings(max_examples=500)
@given(st.integers(0, 2**32 - 1), st.one_of(st.none(), st.integers(0, 32)))
def test_parse_matches_ipaddress(address: int, prefix: int | None) -> None:
    text = str(ipaddress.IPv4Address(address)) + ("" if prefix is None else f"/{prefix}")
    parsed = ipv4.parse_rule(text)
    network = ipaddress.IPv4Network(text, strict=False)
    assert parsed is not None
    assert (parsed.first, parsed.last) == (int(network[0]), int(network[-1]))
    assert parsed.prefix == network.prefixlen
    assert parsed.has_prefix == (prefix is not None)


@pytest.mark.parametrize(
    "text",
    [
        "１.２.３.４",  # full-width digits
        "1.2.3.٤",  # Arabic-Indic digit
        "1.2.3.4/３２",
        "𝟏.2.3.4",  # mathematical bold digit
    ],
)
def test_non_ascii_digits_are_not_an_address(text: str) -> None:
    with pytest.raises(ValueError):
        ipaddress.ip_network(text, strict=False)
    assert ipv4.parse_rule(text) is None


@pytest.mark.parametrize("text", ["１.２.３.４", "52.1.2.٤", "52.1.2.0/２４"])
def test_non_ascii_digit_ip_rule_is_invalid_and_stripped(text: str) -> None:
    result = judge(account(ip=["52.1.1.1", text]))
    assert rules_of(result) == ["ip-rule-invalid"]
    assert ip_values(result) == ["52.1.1.1"]


def test_split_to_addresses() -> None:
    assert ipv4.split_to_addresses(ipv4.parse_rule("52.0.0.7/31")) == ["52.0.0.6", "52.0.0.7"]  # type: ignore[arg-type]
    assert ipv4.split_to_addresses(ipv4.parse_rule("52.0.0.7/32")) == ["52.0.0.7"]  # type: ignore[arg-type]


# -- parse_rule against a reference (the original regex parser) and non_public_overlap against
# a plain scan of the spec table: guards the fast paths in guardrail/ipv4.py.

_REFERENCE_RE = re.compile(r"([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})(?:/([0-9]{1,2}))?")


def _reference_parse(value: object) -> tuple[int, int, int, bool] | None:
    if not isinstance(value, str):
        return None
    match = _REFERENCE_RE.fullmatch(value)
    if match is None:
        return None
    *octets, p = match.groups()
    if any((len(o) > 1 and o[0] == "0") or int(o) > 255 for o in octets):
        return None
    address = int.from_bytes(bytes(int(o) for o in octets), "big")
    if p is None:
        return (address, address, 32, False)
    if (len(p) > 1 and p[0] == "0") or int(p) > 32:
        return None
    size = 1 << (32 - int(p))
    first = address & ~(size - 1) & 0xFFFFFFFF
    return (first, first + size - 1, int(p), True)


_pieces = st.sampled_from(
    ["0", "1", "00", "01", "9", "10", "99", "255", "256", "999", "1000", "", " ", "٣", "a", "-1", "+1", "1 "]
)
near_ip = st.builds(
    lambda parts, dots, prefix: ".".join(parts[:dots]) + prefix,
    st.lists(_pieces, min_size=5, max_size=5),
    st.integers(3, 5),
    st.one_of(
        st.just(""), _pieces.map(lambda p: "/" + p), st.sampled_from(["/", "//", "/32/1", "\n", "/3\n"])
    ),
)


@settings(max_examples=1500)
@given(st.one_of(near_ip, st.text(max_size=20), st.none(), st.integers()))
def test_parse_matches_the_reference(value: object) -> None:
    expected = _reference_parse(value)
    if isinstance(value, str):  # both address parsers agree with the reference
        head = value.partition("/")[0]
        assert ipv4._address_by_regex(head) == ipv4._address_by_pton(head)
    for _ in range(2):  # the second answer comes from parse_rule's cache
        parsed = ipv4.parse_rule(value)
        assert (None if parsed is None else tuple(parsed)) == expected


@settings(max_examples=1000)
@given(st.integers(0, 2**32 - 1), st.integers(0, 32))
def test_non_public_overlap_is_the_first_overlapping_block_of_the_table(address: int, prefix: int) -> None:
    network = ipaddress.IPv4Network((address, prefix), strict=False)
    rule = ipv4.IPv4Rule(int(network[0]), int(network[-1]), prefix, True)
    expected = next(
        (block for block, _ in ipv4.NON_PUBLIC_BLOCKS if network.overlaps(ipaddress.IPv4Network(block))), None
    )
    assert ipv4.non_public_overlap(rule) == expected
