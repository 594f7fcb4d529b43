"""Every rule, violated and not; the per-IP-rule order; rewriting, dedupe, limits; case-insensitivity."""

from __future__ import annotations

import copy

import pytest

from guardrail.engine import apply_patch
from guardrail.rules import RULE_IDS

from ._factory import (
    OTHER_SUB,
    SUB,
    account,
    account_id,
    ip_values,
    judge,
    policy,
    rules_of,
    subnet_id,
)


def test_compliant_account_has_no_findings_and_no_remediation() -> None:
    result = judge(account(ip=["52.1.2.3", "20.0.0.0/24"], vnets=[subnet_id()]))
    assert result.findings == ()
    assert result.remediation is None
    assert result.compliant


# -- default-action-deny -----------------------------------------------------------------------


@pytest.mark.parametrize("action", ["Allow", "allow", "", "Bogus"])
def test_default_action_not_deny_is_set_to_deny_keeping_the_rest(action: str) -> None:
    body = account(default_action=action, ip=["52.1.2.3"], bypass="None")
    result = judge(body)
    assert rules_of(result) == ["default-action-deny"]
    assert result.findings[0].severity == "high"
    assert result.findings[0].fixed
    assert result.remediation == {
        "properties": {
            "networkAcls": {
                "defaultAction": "Deny",
                "bypass": "None",
                "ipRules": [{"value": "52.1.2.3"}],
                "virtualNetworkRules": [],
            }
        }
    }


@pytest.mark.parametrize("action", ["Deny", "deny", "DENY"])
def test_default_action_deny_any_case_is_fine(action: str) -> None:
    assert judge(account(default_action=action)).findings == ()


def test_missing_default_action_is_a_finding() -> None:
    body = account(acls={"bypass": "None", "ipRules": [], "virtualNetworkRules": []})
    result = judge(body)
    assert rules_of(result) == ["default-action-deny"]
    assert result.remediation is not None
    assert result.remediation["properties"]["networkAcls"]["defaultAction"] == "Deny"


@pytest.mark.parametrize("public", ["Enabled", None, "SecuredByPerimeter"])
def test_absent_network_acls_creates_them_with_bypass_none(public: str | None) -> None:
    body = account(acls=None, public=public)
    result = judge(body)
    assert rules_of(result) == ["default-action-deny"]
    assert result.findings[0].value == "absent"
    assert result.remediation == {
        "properties": {
            "networkAcls": {
                "defaultAction": "Deny",
                "bypass": "None",
                "ipRules": [],
                "virtualNetworkRules": [],
            }
        }
    }


def test_network_acls_null_counts_as_absent() -> None:
    body = account()
    body["properties"]["networkAcls"] = None
    result = judge(body)
    assert rules_of(result) == ["default-action-deny"]
    assert result.findings[0].value == "absent"


@pytest.mark.parametrize(
    ("allowed", "expected"),
    [
        ({"bypass_allowed_kinds": ["openai"]}, "AzureServices"),  # kind, other case
        ({"bypass_allowed_accounts": [account_id(name="OAI").upper()]}, "AzureServices"),
        ({"bypass_allowed_kinds": ["AIServices"]}, "None"),  # another kind
        ({}, "None"),
    ],
)
def test_absent_network_acls_bypass_follows_the_policy(allowed: dict[str, list[str]], expected: str) -> None:
    body = account(acls=None, kind="OpenAI", rid=account_id(name="oai"))
    result = judge(body, policy(network=allowed))
    assert rules_of(result) == ["default-action-deny"]
    assert result.remediation is not None
    assert result.remediation["properties"]["networkAcls"]["bypass"] == expected


@pytest.mark.parametrize("public", ["Disabled", "disabled"])
def test_public_network_disabled_needs_no_default_deny(public: str) -> None:
    assert judge(account(acls=None, public=public)).findings == ()
    assert judge(account(default_action="Allow", public=public)).findings == ()


def test_require_default_deny_false_turns_the_rule_off() -> None:
    result = judge(account(acls=None), policy(network={"require_default_deny": False}))
    assert result.findings == ()
    assert result.remediation is None


def test_default_action_remediation_can_be_disabled_and_then_is_reported_only() -> None:
    result = judge(account(acls=None), policy(remediate={"default-action-deny": False}))
    assert rules_of(result) == ["default-action-deny"]
    assert not result.findings[0].fixed
    assert not result.compliant
    assert result.remediation is None


# -- public-network-access ---------------------------------------------------------------------


@pytest.mark.parametrize("public", ["Enabled", None])
def test_public_network_access_required_disabled(public: str | None) -> None:
    pol = policy(network={"require_public_network_disabled": True})
    result = judge(account(public=public), pol)
    assert rules_of(result) == ["public-network-access"]
    # off by default: reported, not remediated
    assert result.remediation is None
    fixing = policy(
        network={"require_public_network_disabled": True}, remediate={"public-network-access": True}
    )
    fixed = judge(account(public=public), fixing)
    assert fixed.remediation is not None
    props = fixed.remediation["properties"]
    assert props["publicNetworkAccess"] == "Disabled"
    assert props["networkAcls"]["defaultAction"] == "Deny"  # networkAcls always sent whole
    assert set(props) == {"publicNetworkAccess", "networkAcls"}


def test_public_network_access_disabled_satisfies_the_rule() -> None:
    pol = policy(network={"require_public_network_disabled": True})
    assert judge(account(public="Disabled"), pol).findings == ()
    assert judge(account(public="Enabled"), policy()).findings == ()  # not required by default


def test_public_disabled_patch_without_network_acls_sends_only_that_property() -> None:
    pol = policy(
        network={"require_public_network_disabled": True, "require_default_deny": False},
        remediate={"public-network-access": True},
    )
    result = judge(account(acls=None), pol)
    assert result.remediation == {"properties": {"publicNetworkAccess": "Disabled"}}


# -- IP rules: each rule, violated and not -----------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "2001:db8::1",
        "1.2.3",
        "1.2.3.4.5",
        "256.1.1.1",
        "1.2.3.4/33",
        "1.2.3.4/",
        "01.2.3.4",
        "1.2.3.4/08",
        " 1.2.3.4",
        "1.2.3.4\n",
        "",
        "1.2.3.0/255.255.255.0",
    ],
)
def test_ip_rule_invalid_is_stripped(value: str) -> None:
    result = judge(account(ip=["52.1.1.1", value, "52.2.2.2"]))
    assert rules_of(result) == ["ip-rule-invalid"]
    assert result.findings[0].value == value
    assert ip_values(result) == ["52.1.1.1", "52.2.2.2"]


@pytest.mark.parametrize("entry", [{"value": 5}, {"value": None}, {}, "52.1.1.1", 7, None, ["x"]])
def test_ip_rule_malformed_entry_is_invalid(entry: object) -> None:
    body = account(ip=["52.1.1.1"])
    body["properties"]["networkAcls"]["ipRules"].append(entry)
    result = judge(body)
    assert rules_of(result) == ["ip-rule-invalid"]
    assert ip_values(result) == ["52.1.1.1"]


@pytest.mark.parametrize("value", ["52.1.2.3", "52.1.2.0/24", "1.0.0.0/8", "223.255.255.255", "0.0.0.0/0"])
def test_valid_public_rules_are_not_invalid(value: str) -> None:
    result = judge(account(ip=[value]))
    assert "ip-rule-invalid" not in rules_of(result)


def test_ip_rule_not_public_is_stripped() -> None:
    result = judge(account(ip=["10.0.0.1", "52.1.1.1"]))
    assert rules_of(result) == ["ip-rule-not-public"]
    assert result.findings[0].value == "10.0.0.1"
    assert "10.0.0.0/8" in result.findings[0].message
    assert ip_values(result) == ["52.1.1.1"]


def test_whole_space_overlaps_non_public() -> None:
    result = judge(account(ip=["0.0.0.0/0"]))
    assert rules_of(result) == ["ip-rule-not-public"]
    assert ip_values(result) == []


def test_cidr_straddling_a_private_block_is_not_public() -> None:
    # 8.0.0.0/6 = 8.0.0.0-11.255.255.255 contains 10/8
    result = judge(account(ip=["8.0.0.0/6"]))
    assert rules_of(result) == ["ip-rule-not-public"]


@pytest.mark.parametrize(
    ("minimum", "value", "broad"),
    [(24, "52.1.0.0/23", True), (24, "52.1.2.0/24", False), (24, "52.1.2.3", False), (8, "4.0.0.0/7", True)],
)
def test_ip_rule_too_broad(minimum: int, value: str, broad: bool) -> None:
    result = judge(account(ip=[value]), policy(network={"min_prefix_length": minimum}))
    if broad:
        assert rules_of(result) == ["ip-rule-too-broad"]
        assert f"/{minimum}" in result.findings[0].message
        assert ip_values(result) == []
    else:
        assert result.findings == ()


def test_min_prefix_zero_is_off() -> None:
    assert judge(account(ip=["4.0.0.0/6"]), policy(network={"min_prefix_length": 0})).findings == ()


def test_min_prefix_32_strips_a_31_as_too_broad_not_as_prefix_unsupported() -> None:
    result = judge(account(ip=["52.1.1.0/31", "52.1.1.9/32"]), policy(network={"min_prefix_length": 32}))
    assert rules_of(result) == ["ip-rule-too-broad", "ip-rule-prefix-unsupported"]
    assert ip_values(result) == ["52.1.1.9"]


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("20.0.0.0/8", True),  # exactly one allowed range
        ("20.1.2.3", True),
        ("52.255.255.255", True),
        ("21.0.0.0", False),
        ("19.255.255.255", False),
        ("20.0.0.0/7", False),  # 20/8 + 21/8: wider than the range
        ("52.0.0.0/7", False),  # 52/8 + 53/8, only half allowed
        # 4.0.0.0/7 = 4/8 + 5/8: covered by the UNION of 4/8 and 5/8, but not by ONE of them
        ("4.0.0.0/7", False),
    ],
)
def test_ip_rule_not_allowlisted(value: str, ok: bool) -> None:
    pol = policy(network={"allowed_ip_ranges": ["20.0.0.0/8", "52.0.0.0/8", "4.0.0.0/8", "5.0.0.0/8"]})
    result = judge(account(ip=[value]), pol)
    if ok:
        assert result.findings == ()
    else:
        assert rules_of(result) == ["ip-rule-not-allowlisted"]
        assert ip_values(result) == []


def test_empty_allowlist_is_off() -> None:
    assert judge(account(ip=["99.1.2.3"]), policy(network={"allowed_ip_ranges": []})).findings == ()


def test_prefix_unsupported_rewrites_32_and_31() -> None:
    result = judge(account(ip=["52.1.1.1/32", "52.2.2.2/31", "52.3.3.3/30"]))
    assert rules_of(result) == ["ip-rule-prefix-unsupported", "ip-rule-prefix-unsupported"]
    assert [f.severity for f in result.findings] == ["low", "low"]
    assert [f.value for f in result.findings] == ["52.1.1.1/32", "52.2.2.2/31"]
    assert ip_values(result) == ["52.1.1.1", "52.2.2.2", "52.2.2.3", "52.3.3.3/30"]


def test_prefix_unsupported_31_with_host_bit_set_rewrites_the_block() -> None:
    result = judge(account(ip=["52.2.2.3/31"]))
    assert ip_values(result) == ["52.2.2.2", "52.2.2.3"]


def test_prefix_unsupported_keeps_other_keys_of_the_entry() -> None:
    body = account()
    body["properties"]["networkAcls"]["ipRules"] = [{"value": "52.2.2.2/31", "note": "x"}]
    result = judge(body)
    assert result.remediation is not None
    assert result.remediation["properties"]["networkAcls"]["ipRules"] == [
        {"value": "52.2.2.2", "note": "x"},
        {"value": "52.2.2.3", "note": "x"},
    ]


def test_rewrite_then_exact_duplicates_dropped_first_kept() -> None:
    result = judge(account(ip=["52.1.1.1", "52.1.1.1/32", "52.1.1.0/31", "52.9.9.9", "52.1.1.1", "52.9.9.9"]))
    assert ip_values(result) == ["52.1.1.1", "52.1.1.0", "52.9.9.9"]
    assert rules_of(result) == ["ip-rule-prefix-unsupported", "ip-rule-prefix-unsupported"]


def test_prefix_unsupported_not_remediated_keeps_the_rule() -> None:
    result = judge(account(ip=["52.1.1.1/32"]), policy(remediate={"ip-rule-prefix-unsupported": False}))
    assert rules_of(result) == ["ip-rule-prefix-unsupported"]
    assert result.remediation is None


# -- one finding per IP rule, in order ---------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        # not-public beats too-broad, not-allowlisted and prefix-unsupported
        ("10.0.0.0/8", "ip-rule-not-public"),
        ("10.0.0.1/32", "ip-rule-not-public"),
        # too-broad beats not-allowlisted
        ("99.0.0.0/16", "ip-rule-too-broad"),
        # not-allowlisted beats prefix-unsupported
        ("99.1.1.1/32", "ip-rule-not-allowlisted"),
        ("99.1.1.0/31", "ip-rule-not-allowlisted"),
        ("52.1.1.0/31", "ip-rule-prefix-unsupported"),
        ("1.2.3.4/40", "ip-rule-invalid"),
    ],
)
def test_each_ip_rule_gets_the_first_finding_in_order(value: str, expected: str) -> None:
    pol = policy(network={"min_prefix_length": 24, "allowed_ip_ranges": ["52.0.0.0/8"]})
    result = judge(account(ip=[value]), pol)
    assert rules_of(result) == [expected]


def test_the_order_holds_even_when_the_earlier_rule_is_exempted() -> None:
    pol = policy(
        network={"min_prefix_length": 24},
        exemptions=[
            {"scope": f"/subscriptions/{SUB}", "rules": ["ip-rule-not-public"], "expires": "2099-01-01"}
        ],
    )
    result = judge(account(ip=["10.0.0.0/8"]), pol)
    assert rules_of(result) == ["ip-rule-not-public"]
    assert result.findings[0].exempted
    assert result.remediation is None


# -- limits ------------------------------------------------------------------------------------


def _addresses(count: int) -> list[str]:
    return [f"52.{i // 250}.{i % 250}.1" for i in range(count)]


def test_ip_rule_limit_100_is_fine_101_is_reported() -> None:
    assert judge(account(ip=_addresses(100))).findings == ()
    result = judge(account(ip=_addresses(101)))
    assert rules_of(result) == ["ip-rule-limit"]
    assert result.findings[0].value == "101"
    assert result.remediation is None  # report only


def test_ip_rule_limit_counts_what_remains_after_the_fixes() -> None:
    # 101 rules, one stripped -> 100 remain
    result = judge(account(ip=[*_addresses(100), "10.0.0.1"]))
    assert rules_of(result) == ["ip-rule-not-public"]
    # 100 rules, one /31 rewritten to two -> 101 remain
    result = judge(account(ip=[*_addresses(99), "52.200.0.0/31"]))
    assert rules_of(result) == ["ip-rule-prefix-unsupported", "ip-rule-limit"]
    assert len(ip_values(result)) == 101


def test_vnet_rule_limit_100_is_fine_101_is_reported() -> None:
    subnets = [subnet_id(subnet=f"s{i}") for i in range(101)]
    assert judge(account(vnets=subnets[:100])).findings == ()
    result = judge(account(vnets=subnets))
    assert rules_of(result) == ["vnet-rule-limit"]
    assert result.findings[0].value == "101"
    assert result.remediation is None


# -- virtual network rules ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "not-a-subnet",
        f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/v",
        f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/v/subnets/s/x",
        account_id(),
        5,
        None,
    ],
)
def test_vnet_rule_invalid_is_stripped(value: object) -> None:
    body = account(vnets=[subnet_id()])
    body["properties"]["networkAcls"]["virtualNetworkRules"].append({"id": value})
    result = judge(body)
    assert rules_of(result) == ["vnet-rule-invalid"]
    assert result.remediation is not None
    kept = result.remediation["properties"]["networkAcls"]["virtualNetworkRules"]
    assert [v["id"] for v in kept] == [subnet_id()]


def test_vnet_rule_not_allowed() -> None:
    allowed_one = subnet_id(sub=OTHER_SUB, subnet="shared")
    pol = policy(network={"allowed_vnet_subscriptions": [SUB], "allowed_subnets": [allowed_one]})
    outside = subnet_id(sub=OTHER_SUB, subnet="other")
    body = account(vnets=[subnet_id(), allowed_one, outside])
    result = judge(body, pol)
    assert rules_of(result) == ["vnet-rule-not-allowed"]
    assert result.findings[0].value == outside
    assert result.remediation is not None
    kept = result.remediation["properties"]["networkAcls"]["virtualNetworkRules"]
    assert [v["id"] for v in kept] == [subnet_id(), allowed_one]


def test_vnet_rule_not_allowed_is_off_when_both_lists_are_empty() -> None:
    assert judge(account(vnets=[subnet_id(sub=OTHER_SUB)]), policy()).findings == ()


def test_vnet_subscriptions_and_subnets_compare_case_insensitively() -> None:
    allowed_one = subnet_id(sub=OTHER_SUB, subnet="shared")
    pol = policy(
        network={"allowed_vnet_subscriptions": [SUB.upper()], "allowed_subnets": [allowed_one.upper()]}
    )
    body = account(vnets=[subnet_id().lower(), allowed_one.lower().replace("/subnets/", "/SUBNETS/")])
    assert judge(body, pol).findings == ()


# -- bypass ------------------------------------------------------------------------------------


def test_bypass_not_allowed_is_set_to_none() -> None:
    result = judge(account(bypass="AzureServices", ip=["52.1.1.1"]))
    assert rules_of(result) == ["bypass-not-allowed"]
    assert result.remediation is not None
    assert result.remediation["properties"]["networkAcls"] == {
        "defaultAction": "Deny",
        "bypass": "None",
        "ipRules": [{"value": "52.1.1.1"}],
        "virtualNetworkRules": [],
    }


@pytest.mark.parametrize(
    "network",
    [
        {"bypass_allowed_kinds": ["aiservices"]},
        {"bypass_allowed_accounts": [account_id().upper()]},
    ],
)
def test_bypass_allowed_by_kind_or_account_case_insensitively(network: dict[str, list[str]]) -> None:
    assert judge(account(bypass="azureservices"), policy(network=network)).findings == ()


def test_bypass_allowed_for_another_account_does_not_count() -> None:
    pol = policy(network={"bypass_allowed_accounts": [account_id(name="other")]})
    assert rules_of(judge(account(bypass="AzureServices"), pol)) == ["bypass-not-allowed"]


def test_bypass_none_is_fine() -> None:
    assert judge(account(bypass="None")).findings == ()


# -- custom subdomain --------------------------------------------------------------------------


@pytest.mark.parametrize("subdomain", [None, ""])
def test_custom_subdomain_missing_with_vnet_rules(subdomain: str | None) -> None:
    result = judge(account(vnets=[subnet_id()], subdomain=subdomain))
    assert rules_of(result) == ["custom-subdomain-missing"]
    assert result.remediation is None  # report only
    assert not result.compliant


def test_custom_subdomain_not_needed_without_vnet_rules() -> None:
    assert judge(account(subdomain=None)).findings == ()


# -- local auth --------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [False, None])
def test_local_auth_enabled(value: bool | None) -> None:
    pol = policy(auth={"require_local_auth_disabled": True})
    result = judge(account(local_auth_disabled=value), pol)
    assert rules_of(result) == ["local-auth-enabled"]
    assert result.remediation is None  # off by default
    fixing = policy(auth={"require_local_auth_disabled": True}, remediate={"local-auth-enabled": True})
    fixed = judge(account(local_auth_disabled=value), fixing)
    assert fixed.remediation is not None
    assert fixed.remediation["properties"]["disableLocalAuth"] is True
    assert set(fixed.remediation["properties"]) == {"disableLocalAuth", "networkAcls"}


def test_local_auth_disabled_or_not_required_is_fine() -> None:
    assert (
        judge(account(local_auth_disabled=True), policy(auth={"require_local_auth_disabled": True})).findings
        == ()
    )
    assert judge(account(local_auth_disabled=False), policy()).findings == ()


# -- remediation body --------------------------------------------------------------------------


def test_remediation_holds_whole_network_acls_and_only_changed_properties() -> None:
    body = account(ip=["10.0.0.1", "52.1.1.1"], vnets=[subnet_id()], bypass="AzureServices")
    body["properties"]["networkAcls"]["extra"] = "kept"
    result = judge(body)
    assert result.remediation == {
        "properties": {
            "networkAcls": {
                "defaultAction": "Deny",
                "bypass": "None",
                "ipRules": [{"value": "52.1.1.1"}],
                "virtualNetworkRules": [
                    {"id": subnet_id(), "state": "Succeeded", "ignoreMissingVnetServiceEndpoint": False}
                ],
                "extra": "kept",
            }
        }
    }


def test_evaluation_does_not_mutate_its_input() -> None:
    body = account(ip=["10.0.0.1", "52.1.1.1/32"], default_action="Allow", bypass="AzureServices")
    snapshot = copy.deepcopy(body)
    result = judge(body)
    assert body == snapshot
    patched = apply_patch(body, result.remediation or {})
    assert body == snapshot
    assert judge(patched).remediation is None


def test_report_only_rules_are_exactly_the_ones_without_fix() -> None:
    from guardrail.rules import BY_ID, FIXABLE_RULES

    report_only = {
        "ip-rule-limit",
        "vnet-rule-limit",
        "custom-subdomain-missing",
        "account-invalid",
        "agent-subnet-not-allowed",
        "agent-public-hosting",
        "perimeter-not-enforced",
        "perimeter-access-rule-not-allowed",
    }
    assert set(RULE_IDS) - set(FIXABLE_RULES) == report_only
    assert all(BY_ID[r].fix is None for r in report_only)


def test_default_remediation_switches() -> None:
    pol = policy()
    assert not pol.remediates("public-network-access")
    assert not pol.remediates("local-auth-enabled")
    for rule in (
        "default-action-deny",
        "ip-rule-invalid",
        "ip-rule-not-public",
        "ip-rule-too-broad",
        "ip-rule-not-allowlisted",
        "ip-rule-prefix-unsupported",
        "vnet-rule-invalid",
        "vnet-rule-not-allowed",
        "bypass-not-allowed",
    ):
        assert pol.remediates(rule), rule
    for rule in ("ip-rule-limit", "vnet-rule-limit", "custom-subdomain-missing"):
        assert not pol.remediates(rule), rule


# -- case-insensitive IDs and types ------------------------------------------------------------


def test_account_type_and_id_are_case_insensitive() -> None:
    body = account(acls=None, rid=account_id().upper())
    body["type"] = "microsoft.cognitiveservices/ACCOUNTS"
    result = judge(body)
    assert rules_of(result) == ["default-action-deny"]
