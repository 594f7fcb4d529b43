"""Choices made beyond the issue's text, each pinned by a test: an unset bypass is the wider
AzureServices, policy ranges with host bits are typos, and the PATCH body shares nothing with the
account it was computed from."""

from __future__ import annotations

import pytest

from guardrail.engine import apply_patch, widening
from guardrail.policy import PolicyError
from tests.core._factory import account, judge, policy, rules_of


def test_unset_bypass_is_treated_as_azure_services_and_set_to_none() -> None:
    body = account(acls={"defaultAction": "Deny", "ipRules": [{"value": "20.1.2.0/24"}]})
    evaluation = judge(body)
    assert rules_of(evaluation) == ["bypass-not-allowed"]
    assert evaluation.findings[0].value == "unset"
    assert evaluation.remediation is not None
    acls = evaluation.remediation["properties"]["networkAcls"]
    assert acls["bypass"] == "None" and acls["ipRules"] == [{"value": "20.1.2.0/24"}]
    assert widening(body, apply_patch(body, evaluation.remediation)) == []
    assert judge(apply_patch(body, evaluation.remediation)).remediation is None


def test_unset_bypass_is_fine_for_an_allowed_kind() -> None:
    body = account(kind="OpenAI", acls={"defaultAction": "Deny", "ipRules": []})
    assert rules_of(judge(body, policy(network={"bypass_allowed_kinds": ["openai"]}))) == []


@pytest.mark.parametrize("typo", ["20.1.2.3/8", "52.0.0.1/16", "4.4.4.5/31"])
def test_allowed_range_with_host_bits_is_a_policy_error(typo: str) -> None:
    with pytest.raises(PolicyError, match="host bits") as error:
        policy(network={"allowed_ip_ranges": [typo]})
    assert "test-policy.yaml" in str(error.value) and typo in str(error.value)


def test_allowed_range_without_host_bits_and_bare_addresses_are_fine() -> None:
    parsed = policy(network={"allowed_ip_ranges": ["20.0.0.0/8", "52.1.2.3", "52.1.2.3/32"]})
    assert parsed.network.allowed_ip_ranges == ["20.0.0.0/8", "52.1.2.3", "52.1.2.3/32"]


def test_the_remediation_shares_no_objects_with_the_account() -> None:
    body = account(default_action="Allow", ip=["20.1.2.0/24"])
    evaluation = judge(body)
    assert evaluation.remediation is not None
    sent = evaluation.remediation["properties"]["networkAcls"]
    sent["ipRules"].append({"value": "1.1.1.1"})
    sent["ipRules"][0]["value"] = "0.0.0.0/0"
    assert body["properties"]["networkAcls"]["ipRules"] == [{"value": "20.1.2.0/24"}]
    assert body["properties"]["networkAcls"]["defaultAction"] == "Allow"


def test_the_remediation_shares_no_nested_objects_with_the_account() -> None:
    # Rule entries are copied by a dict copy only when every value is a JSON scalar.
    body = account(default_action="Allow", ip=["20.1.2.0/24"])
    acls = body["properties"]["networkAcls"]
    acls["ipRules"][0]["extra"] = {"tags": ["a"]}
    evaluation = judge(body)
    assert evaluation.remediation is not None
    sent = evaluation.remediation["properties"]["networkAcls"]
    sent["ipRules"][0]["extra"]["tags"].append("b")
    assert acls["ipRules"][0]["extra"] == {"tags": ["a"]}
