"""diagnostics-missing end to end: the diagnostic settings are read and created through the real
azure-mgmt-monitor (6.0.2) client against the emulator, which serves
`{resourceId}/providers/Microsoft.Insights/diagnosticSettings` as Azure does."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from guardrail import functions
from guardrail_workbench.stack import LocalStack
from tests.functions.conftest import RG, SUB_A, account_id, unique

WORKSPACE = (
    f"/subscriptions/{SUB_A}/resourceGroups/rg-mon/providers/Microsoft.OperationalInsights/workspaces/law-sec"
)
OTHER_WORKSPACE = WORKSPACE.replace("law-sec", "law-other")

POLICY = f"""
version: 1
network:
  require_default_deny: true
diagnostics:
  workspace_id: {WORKSPACE}
"""


@pytest.fixture(scope="module")
def diag_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    out = tmp_path_factory.mktemp("diag")
    policy = Path(out) / "policy.yaml"
    policy.write_text(POLICY, encoding="utf-8")
    stack = LocalStack(out_dir=out, policy_path=str(policy), receivers=False)
    stack.start()
    stack.emulator.seed({"subscriptions": [{"subscriptionId": SUB_A, "resourceGroups": [{"name": RG}]}]})
    stack.apply_env()
    try:
        yield stack
    finally:
        stack.stop()


def _locked_down(name: str) -> dict[str, Any]:
    return {
        "name": name,
        "kind": "OpenAI",
        "location": "eastus",
        "sku": {"name": "S0"},
        "properties": {
            "publicNetworkAccess": "Enabled",
            "networkAcls": {
                "defaultAction": "Deny",
                "bypass": "None",
                "ipRules": [],
                "virtualNetworkRules": [],
            },
        },
    }


def _settings(stack: LocalStack, rid: str) -> list[dict[str, Any]]:
    return [
        s
        for s in stack.emulator.dump().get("diagnosticSettings", [])
        if s["id"].lower().startswith(rid.lower())
    ]


def _seed_setting(stack: LocalStack, rid: str, name: str, workspace: str, group: str) -> None:
    stack.emulator.seed(
        {
            "diagnosticSettings": [
                {
                    "id": f"{rid}/providers/microsoft.insights/diagnosticSettings/{name}",
                    "name": name,
                    "type": "Microsoft.Insights/diagnosticSettings",
                    "properties": {
                        "workspaceId": workspace,
                        "logs": [{"categoryGroup": group, "enabled": True}],
                    },
                }
            ]
        }
    )


def test_missing_audit_setting_is_created_and_verified(diag_stack: LocalStack) -> None:
    name = unique("nodiag")
    rid = account_id(name)
    diag_stack.emulator.put_account(_locked_down(name), rid)
    outcome = functions.get_guardrail().check_account(rid, trigger="cli")
    assert outcome.action == "remediated"
    (record,) = [r for r in outcome.records if r.rule == "diagnostics-missing"]
    assert record.status == "remediated"
    (setting,) = _settings(diag_stack, rid)
    assert setting["name"] == "guardrail-audit"
    assert setting["properties"]["workspaceId"] == WORKSPACE
    assert {"categoryGroup": "audit", "enabled": True} in setting["properties"]["logs"]
    # Checked again: nothing left to do.
    assert functions.get_guardrail().check_account(rid, trigger="cli").action == "compliant"


def test_all_logs_to_the_workspace_satisfies_the_rule(diag_stack: LocalStack) -> None:
    name = unique("alllogs")
    rid = account_id(name)
    diag_stack.emulator.put_account(_locked_down(name), rid)
    _seed_setting(diag_stack, rid, "team-setting", WORKSPACE.upper(), "allLogs")
    assert functions.get_guardrail().check_account(rid, trigger="cli").action == "compliant"
    assert len(_settings(diag_stack, rid)) == 1


def test_a_setting_to_another_workspace_does_not_count(diag_stack: LocalStack) -> None:
    name = unique("otherws")
    rid = account_id(name)
    diag_stack.emulator.put_account(_locked_down(name), rid)
    _seed_setting(diag_stack, rid, "team-setting", OTHER_WORKSPACE, "audit")
    outcome = functions.get_guardrail().check_account(rid, trigger="cli")
    assert outcome.action == "remediated"
    assert {s["name"] for s in _settings(diag_stack, rid)} == {"team-setting", "guardrail-audit"}


def test_a_refused_write_is_a_remediation_failed_finding(diag_stack: LocalStack) -> None:
    name = unique("diag403")
    rid = account_id(name)
    diag_stack.emulator.put_account(_locked_down(name), rid)
    diag_stack.emulator.faults.add(
        resource_id=f"{rid}/providers/Microsoft.Insights/diagnosticSettings",
        method="PUT",
        status=403,
        code="AuthorizationFailed",
        times=1,
    )
    outcome = functions.get_guardrail().check_account(rid, trigger="cli")
    assert outcome.action == "failed"
    (record,) = [r for r in outcome.records if r.rule == "diagnostics-missing"]
    assert record.status == "remediation-failed" and "AuthorizationFailed" in record.message
    assert _settings(diag_stack, rid) == []


def test_report_only_when_the_policy_says_so(diag_stack: LocalStack, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GUARDRAIL_POLICY_PATH", "")
    monkeypatch.setenv("GUARDRAIL_POLICY", POLICY + "remediate:\n  diagnostics-missing: false\n")
    functions.reset()
    try:
        name = unique("diagreport")
        rid = account_id(name)
        diag_stack.emulator.put_account(_locked_down(name), rid)
        outcome = functions.get_guardrail().check_account(rid, trigger="cli")
        assert outcome.action == "reported"
        assert [r.status for r in outcome.records if r.rule == "diagnostics-missing"] == ["violation"]
        assert _settings(diag_stack, rid) == []
    finally:
        monkeypatch.undo()
        functions.reset()
