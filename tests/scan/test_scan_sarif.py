"""`guardrail scan --format sarif`: SARIF 2.1.0 as GitHub code scanning takes it, validated against
the official schema (tests/scan/sarif-schema-2.1.0.json: its origin is in fixtures/README.md)."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from guardrail.cli import main
from guardrail.rules import BY_ID, RULE_IDS
from tests.conftest import REPO

HERE = Path(__file__).resolve().parent
SCHEMA = json.loads((HERE / "sarif-schema-2.1.0.json").read_text(encoding="utf-8"))
QUICKSTART = HERE / "fixtures" / "quickstart-aifoundry-basic-project" / "azuredeploy.json"
AVM = HERE / "fixtures" / "avm-account" / "main.json"
PLAN = HERE / "fixtures" / "terraform-azurerm" / "plan.json"
SUB = "00000000-1111-2222-3333-444444444444"


def sarif(*argv: str) -> tuple[int, dict[str, Any]]:
    out, err = io.StringIO(), io.StringIO()
    code = main(["scan", "--format", "sarif", *argv], out=out, err=err)
    return code, json.loads(out.getvalue())


@pytest.fixture
def log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    monkeypatch.chdir(REPO)  # artifact URIs are relative to the working directory (the repository root)
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        "version: 1\nnetwork:\n"
        f"  allowed_private_endpoint_subscriptions: [{SUB}]\n"
        "exemptions:\n"
        f"  - scope: /subscriptions/{SUB}/resourceGroups/example-resources/providers/"
        "Microsoft.CognitiveServices/accounts/example-account\n"
        "    rules: [bypass-not-allowed]\n    expires: 2099-01-01\n",
        encoding="utf-8",
    )
    code, document = sarif(
        "--policy", str(policy), "--subscription", SUB, str(QUICKSTART), str(AVM), str(PLAN)
    )
    assert code == 1
    return document


def test_the_log_is_valid_sarif_2_1_0(log: dict[str, Any]) -> None:
    jsonschema.Draft4Validator(SCHEMA).validate(log)
    assert log["version"] == "2.1.0"


def test_the_schema_check_is_not_vacuous(log: dict[str, Any]) -> None:
    """The validator refuses what code scanning would refuse (a result without a message)."""
    broken = json.loads(json.dumps(log))
    del broken["runs"][0]["results"][0]["message"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft4Validator(SCHEMA).validate(broken)


def test_one_rule_entry_per_registry_rule_and_unresolved_value(log: dict[str, Any]) -> None:
    rules = log["runs"][0]["tool"]["driver"]["rules"]
    assert [rule["id"] for rule in rules] == [*RULE_IDS, "unresolved-value"]
    levels = {"critical": "error", "high": "error", "medium": "warning", "low": "note", "info": "note"}
    for entry in rules:
        severity = entry["properties"]["severity"]
        assert entry["defaultConfiguration"]["level"] == levels[severity]
        assert 0 <= float(entry["properties"]["security-severity"]) <= 10
        assert entry["shortDescription"]["text"] and entry["help"]["text"]
        rule = BY_ID.get(entry["id"])
        if rule is not None:
            assert severity == rule.severity
            assert (rule.fix or "report only") in entry["help"]["text"]
    high = next(r for r in rules if r["id"] == "default-action-deny")["properties"]["security-severity"]
    assert 7.0 <= float(high) < 9.0  # GitHub's "high" band


def test_results_point_at_the_line_of_the_resource_properties(log: dict[str, Any]) -> None:
    run = log["runs"][0]
    rule_ids = [rule["id"] for rule in run["tool"]["driver"]["rules"]]
    results = run["results"]
    assert results
    for result in results:
        assert rule_ids[result["ruleIndex"]] == result["ruleId"]
        location = result["locations"][0]["physicalLocation"]
        uri = location["artifactLocation"]["uri"]
        assert not uri.startswith("/") and (REPO / uri).is_file()
        assert run["artifacts"][location["artifactLocation"]["index"]]["location"]["uri"] == uri
        line = (REPO / uri).read_text(encoding="utf-8").splitlines()[location["region"]["startLine"] - 1]
        assert '"properties"' in line or '"after"' in line, (uri, line)
    quickstart = [
        r
        for r in results
        if r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"].endswith("azuredeploy.json")
    ]
    assert [
        (r["ruleId"], r["locations"][0]["physicalLocation"]["region"]["startLine"]) for r in quickstart
    ] == [("default-action-deny", 54)]
    assert quickstart[0]["locations"][0]["logicalLocations"][0]["name"] == "AIServices-viaARMtemplate"


def test_exempted_findings_are_suppressed_and_unresolved_values_are_notes(log: dict[str, Any]) -> None:
    results = log["runs"][0]["results"]
    suppressed = [r for r in results if "suppressions" in r]
    assert [(r["ruleId"], r["properties"]["source"]) for r in suppressed] == [
        ("bypass-not-allowed", "azurerm_cognitive_account.example")
    ]
    unresolved = [r for r in results if r["ruleId"] == "unresolved-value"]
    assert {r["properties"]["value"] for r in unresolved} == {
        "name",
        "kind",
        "properties.networkAcls.ipRules",
    }
    assert all(r["level"] == "note" for r in unresolved)
    fingerprints = [r["partialFingerprints"]["guardrailFinding/v1"] for r in results]
    assert len(set(fingerprints)) == len(fingerprints)


def test_input_problems_make_the_invocation_unsuccessful(tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text("{", encoding="utf-8")
    code, document = sarif(str(QUICKSTART), str(broken))
    assert code == 2
    jsonschema.Draft4Validator(SCHEMA).validate(document)
    invocation = document["runs"][0]["invocations"][0]
    assert invocation["executionSuccessful"] is False
    assert invocation["toolExecutionNotifications"][-1]["level"] == "error"
    assert str(broken) in invocation["toolExecutionNotifications"][-1]["message"]["text"]


def test_unresolved_value_is_the_scans_own_rule_and_no_exemption_can_name_it() -> None:
    """Not in the registry (the runtime never meets an unresolved value), so a policy cannot exempt
    it: an unjudged value must never be made to pass."""
    from guardrail.policy import PolicyError, parse_policy

    assert "unresolved-value" not in RULE_IDS
    exemption = {"scope": f"/subscriptions/{SUB}", "rules": ["unresolved-value"], "expires": "2099-01-01"}
    with pytest.raises(PolicyError, match="unknown rule 'unresolved-value'"):
        parse_policy({"version": 1, "exemptions": [exemption]}, "policy.yaml")
