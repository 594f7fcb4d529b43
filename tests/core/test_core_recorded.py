"""The 24 account bodies recorded from Azure: all evaluate, and absent networkAcls is caught."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from guardrail.engine import Evaluation, apply_patch, evaluate
from guardrail.policy import Policy
from tests.conftest import CONTRACTS, load_contract

from ._factory import NOW, policy
from .test_core_properties import narrower_or_equal, patched, surface

RECORDED = CONTRACTS / "recorded-accounts"
if not (RECORDED / "index.json").is_file():
    raise FileNotFoundError(
        f"contract samples {RECORDED} are missing: shared/ must sit beside the repository"
    )
FILES = sorted(p for p in RECORDED.glob("*.json") if p.name != "index.json")
INDEX = {e["file"]: e for e in load_contract("recorded-accounts/index.json")}


def _body(path: Path) -> dict[str, Any]:
    wrapper = json.loads(path.read_text(encoding="utf-8"))
    body = wrapper["account"]
    assert isinstance(body, dict)
    return body


def test_there_are_24() -> None:
    assert len(FILES) == 24
    assert set(INDEX) == {p.name for p in FILES}


STRICT = policy(
    network={
        "require_public_network_disabled": True,
        "min_prefix_length": 24,
        "allowed_ip_ranges": ["20.0.0.0/8"],
        "allowed_vnet_subscriptions": ["00000000-1111-2222-3333-444444444444"],
        "bypass_allowed_kinds": ["OpenAI"],
    },
    auth={"require_local_auth_disabled": True},
    remediate={"public-network-access": True, "local-auth-enabled": True},
)


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name[:60])
@pytest.mark.parametrize("pol", [Policy.default(), STRICT], ids=["default", "strict"])
def test_recorded_account_evaluates(path: Path, pol: Policy) -> None:
    body = _body(path)
    result = evaluate(body, pol, NOW)
    assert isinstance(result, Evaluation), result
    assert result.resource_id == body["id"]
    assert result.kind == INDEX[path.name]["kind"]
    json.dumps(result.to_json())
    # none has networkAcls and every one is publicly reachable: default-action-deny, fixed
    assert INDEX[path.name]["networkAcls"] == "<absent>"
    assert result.findings[0].rule == "default-action-deny"
    assert result.findings[0].value == "absent"
    assert result.findings[0].fixed
    assert not result.compliant
    assert result.remediation is not None
    acls = result.remediation["properties"]["networkAcls"]
    bypass = "AzureServices" if (pol is STRICT and body["kind"] == "OpenAI") else "None"
    assert acls == {"defaultAction": "Deny", "bypass": bypass, "ipRules": [], "virtualNetworkRules": []}
    after = apply_patch(body, result.remediation)
    again = evaluate(after, pol, NOW)
    assert isinstance(again, Evaluation) and again.remediation is None
    assert narrower_or_equal(surface(patched(body, result.remediation)), surface(body)) == []


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name[:60])
def test_recorded_account_default_policy_findings(path: Path) -> None:
    body = _body(path)
    result = evaluate(body, Policy.default(), NOW)
    assert isinstance(result, Evaluation)
    assert [f.rule for f in result.findings] == ["default-action-deny"]
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


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name[:60])
def test_recorded_account_strict_policy_findings(path: Path) -> None:
    body = _body(path)
    result = evaluate(body, STRICT, NOW)
    assert isinstance(result, Evaluation)
    local_auth_disabled = INDEX[path.name]["disableLocalAuth"] is True
    expected = ["default-action-deny", "public-network-access"]
    if not local_auth_disabled:
        expected.append("local-auth-enabled")
    assert [f.rule for f in result.findings] == expected
    assert result.remediation is not None
    props = result.remediation["properties"]
    assert props["publicNetworkAccess"] == "Disabled"
    assert ("disableLocalAuth" in props) is not local_auth_disabled


def test_an_account_without_properties_is_judged_as_wide_open() -> None:
    bare = [p for p in FILES if not INDEX[p.name]["has_properties"]]
    assert bare, "the recordings include bodies without properties"
    for path in bare:
        body = _body(path)
        assert "properties" not in body
        result = evaluate(body, Policy.default(), NOW)
        assert isinstance(result, Evaluation)
        assert "Enabled (unset)" in result.findings[0].message
