"""engine.widening / access_surface, the engine's own post-write check, on hand-made pairs."""

from __future__ import annotations

import pytest

from guardrail.engine import access_surface, apply_patch, widening

from ._factory import account, subnet_id

CLOSED = account(ip=["52.1.0.0/24", "20.1.1.1"], vnets=[subnet_id()], bypass="None")


@pytest.mark.parametrize(
    ("after", "reason"),
    [
        (account(ip=["52.1.0.0/23", "20.1.1.1"], vnets=[subnet_id()], bypass="None"), "IP range"),
        (account(ip=["52.1.0.0/24", "20.1.1.1", "4.4.4.4"], vnets=[subnet_id()], bypass="None"), "IP range"),
        (account(ip=["52.1.0.0/24", "20.1.1.1"], vnets=[subnet_id(), subnet_id(subnet="x")]), "subnet"),
        (account(ip=["52.1.0.0/24", "20.1.1.1"], vnets=[subnet_id()], bypass="AzureServices"), "bypass"),
        (
            account(ip=["52.1.0.0/24", "20.1.1.1"], vnets=[subnet_id()], default_action="Allow"),
            "every network",
        ),
        (account(acls=None), "every network"),
        (
            account(ip=["52.1.0.0/24", "20.1.1.1"], vnets=[subnet_id()], local_auth_disabled=False),
            "local auth",
        ),
    ],
)
def test_widening_is_reported(after: dict[str, object], reason: str) -> None:
    reasons = widening(CLOSED, after)
    assert reasons
    assert any(reason in r for r in reasons), reasons


@pytest.mark.parametrize(
    "after",
    [
        CLOSED,
        account(ip=["52.1.0.0/25", "52.1.0.128/25"], vnets=[subnet_id()], bypass="None"),  # same set
        account(ip=["52.1.0.7"], vnets=[], bypass="None"),
        account(ip=["52.1.0.0/24", "20.1.1.1"], vnets=[subnet_id().upper()], bypass="none"),  # case
        account(public="Disabled", default_action="Allow", bypass="AzureServices"),
    ],
)
def test_narrowing_or_equal_is_not_widening(after: dict[str, object]) -> None:
    assert widening(CLOSED, after) == []


def test_public_re_enabled_is_widening() -> None:
    private = account(public="Disabled")
    assert widening(private, account(ip=[], bypass="None")) == ["public network access re-enabled"]


def test_anything_is_narrower_than_wide_open() -> None:
    assert widening(account(acls=None), CLOSED) == []
    assert access_surface(account(acls=None)).everything


def test_unset_bypass_counts_as_azure_services() -> None:
    acls = {"defaultAction": "Deny", "ipRules": [], "virtualNetworkRules": []}
    assert access_surface(account(acls=acls)).bypass
    assert widening(account(ip=[], bypass="None"), account(acls=acls)) == ["trusted-services bypass enabled"]


def test_apply_patch_replaces_network_acls_whole_and_keeps_the_rest() -> None:
    body = account(ip=["52.1.1.1"], vnets=[subnet_id()])
    body["sku"] = {"name": "S0"}
    patched = apply_patch(body, {"properties": {"networkAcls": {"defaultAction": "Deny"}}})
    assert patched["properties"]["networkAcls"] == {"defaultAction": "Deny"}
    assert patched["properties"]["customSubDomainName"] == body["properties"]["customSubDomainName"]
    assert patched["sku"] == {"name": "S0"}
    assert body["properties"]["networkAcls"]["ipRules"] == [{"value": "52.1.1.1"}]  # input untouched
    no_props = {k: v for k, v in body.items() if k != "properties"}
    assert apply_patch(no_props, {"properties": {"disableLocalAuth": True}})["properties"] == {
        "disableLocalAuth": True
    }
