"""One resource-ID module for the product (#12): the account parsers and the subscription of an ID."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from guardrail.findings import parse_resource_id
from guardrail.resource_ids import (
    id_key,
    name_key,
    ordinal_upper,
    parse_account_id,
    parse_account_or_child,
    same_id,
    subscription_of,
)
from guardrail.state import normalize_resource_id
from guardrail_workbench.emulator.names import fold

ACCOUNT = (
    "/subscriptions/0A0A0A0A-1111-4111-8111-000000000001/resourceGroups/RG-1"
    "/providers/Microsoft.CognitiveServices/accounts/Acct"
)


def test_an_account_id_parses_in_any_keyword_case_keeping_the_values() -> None:
    assert parse_account_id(ACCOUNT) == ("0A0A0A0A-1111-4111-8111-000000000001", "RG-1", "Acct")
    assert parse_account_id(ACCOUNT.replace("resourceGroups", "RESOURCEGROUPS") + "/")[2] == "Acct"


@pytest.mark.parametrize(
    "bad",
    [
        ACCOUNT + "/deployments/d",  # a child is not an account
        ACCOUNT.replace("Microsoft.CognitiveServices", "Microsoft.Storage"),
        "prod-language",
        "",
    ],
)
def test_anything_but_an_account_is_refused_by_name(bad: str) -> None:
    with pytest.raises(ValueError, match=r"not a Microsoft\.CognitiveServices"):
        parse_account_id(bad)


def test_a_child_resource_names_its_account_but_a_longer_name_does_not() -> None:
    assert parse_account_or_child(ACCOUNT + "/privateEndpointConnections/pe")[2] == "Acct"
    assert parse_resource_id(ACCOUNT + "/deployments/d").account_name == "Acct"
    with pytest.raises(ValueError):
        parse_account_or_child(ACCOUNT.replace("/accounts/", "/accountsX/"))


def test_subscription_of_any_id() -> None:
    assert subscription_of(ACCOUNT) == "0a0a0a0a-1111-4111-8111-000000000001"
    assert subscription_of("/subscriptions/ABC") == "abc"
    assert subscription_of("/providers/x") == "" and subscription_of("") == ""


# -- #22.3 one ID normalisation, ARM's (ordinal, ignore case) ------------------------------------
KELVIN = "\u212a"  # KELVIN SIGN: str.lower() makes it "k"; ARM's upper-case mapping keeps it apart
RG_ID = "/subscriptions/0a0a0a0a-1111-4111-8111-000000000001/resourceGroups/{}"
_ids = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=12
).filter(lambda text: bool(text.strip().rstrip("/")))


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("rg-kv", f"rg-{KELVIN}v"),  # the collision
        ("rg-i", "rg-\u0131"),  # dotless i stays itself under ordinal casing
        ("rg-s", "rg-\u017f"),  # and so does long s
        ("rg-ss", "rg-\u00df"),  # no full (one-to-many) mapping: sharp s is not "SS"
    ],
)
def test_ids_arm_tells_apart_key_apart(a: str, b: str) -> None:
    assert a.lower() == b.lower() or a.upper() == b.upper() or a.casefold() == b.casefold()
    assert not same_id(RG_ID.format(a), RG_ID.format(b))
    assert id_key(RG_ID.format(a)) != id_key(RG_ID.format(b))


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("RG-Apps", "rg-apps"),
        ("rg-\u00e9t\u00e9", "RG-\u00c9T\u00c9"),  # é/É: one simple mapping
        ("rg-\u1f80", "rg-\u1f88"),  # the simple upper case of U+1F80 is U+1F88 (not "ἈΙ")
        ("rg-\u03c3", "rg-\u03c2"),  # σ and final ς both upper-case to Σ
    ],
)
def test_ids_arm_takes_for_one_key_as_one(a: str, b: str) -> None:
    assert same_id(RG_ID.format(a) + "/", " " + RG_ID.format(b))
    assert id_key(RG_ID.format(a)) == id_key(RG_ID.format(b))


_ascii_ids = st.text(alphabet=st.characters(max_codepoint=0x7F), min_size=1)


@given(_ascii_ids.filter(lambda text: bool(text.strip().rstrip("/"))))
def test_an_ascii_id_keys_as_it_always_did(text: str) -> None:
    # Table rows written before this key existed (str.lower()) are still found.
    assert id_key(text) == text.strip().rstrip("/").lower()


@given(_ids, _ids)
def test_two_ids_share_a_key_exactly_when_ordinal_upper_case_agrees(a: str, b: str) -> None:
    assert (id_key(a) == id_key(b)) == (
        ordinal_upper(a.strip().rstrip("/")) == ordinal_upper(b.strip().rstrip("/"))
    )


@given(_ids)
def test_ordinal_upper_maps_each_code_unit_to_one(text: str) -> None:
    upper = ordinal_upper(text)
    assert len(upper) == len(text)
    assert ordinal_upper(upper) == upper  # idempotent
    for ch, u in zip(text, upper, strict=True):
        if ord(ch) > 0xFFFF or ch in "\u0131\u017f":  # a surrogate pair, or .NET's two exceptions
            assert u == ch
        elif len(ch.upper()) == 1:  # a one-to-one mapping is the simple one
            assert u == ch.upper()


@pytest.mark.parametrize("empty", ["", " ", "/", " // "])
def test_an_empty_id_has_no_key_and_name_key_says_so_without_raising(empty: str) -> None:
    with pytest.raises(ValueError, match="must not be empty"):
        id_key(empty)
    assert name_key(empty) == "" and not same_id(empty + "x", "y")


def test_state_keys_use_the_one_normalisation() -> None:
    victim, attacker = RG_ID.format("rg-kv"), RG_ID.format(f"rg-{KELVIN}v")
    assert normalize_resource_id(victim) == victim.lower()  # unchanged for an ASCII ID
    assert normalize_resource_id(victim) != normalize_resource_id(attacker)
    assert subscription_of(victim.upper()) == subscription_of(victim)


@given(_ids, _ids)
def test_the_emulator_and_the_guardrail_key_ids_alike(a: str, b: str) -> None:
    # Two implementations written apart (the emulator never imports guardrail): they agree.
    assert (fold(a) == fold(b)) == (ordinal_upper(a) == ordinal_upper(b))


def test_the_emulator_keeps_a_kelvin_sign_apart() -> None:
    assert fold(f"rg-{KELVIN}v") != fold("rg-kv") and fold("RG-KV") == fold("rg-kv")
    assert fold("rg-\u1f80") == fold("rg-\u1f88") and fold("rg-\u0131") != fold("rg-i")
