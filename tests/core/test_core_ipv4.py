"""guardrail.ipv4 parsing, checked against Python's ipaddress."""

from __future__ import annotations

import ipaddress

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
