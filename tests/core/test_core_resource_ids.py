"""One resource-ID module for the product (#12): the account parsers and the subscription of an ID."""

from __future__ import annotations

import pytest

from guardrail.findings import parse_resource_id
from guardrail.resource_ids import parse_account_id, parse_account_or_child, subscription_of

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
