"""`guardrail scan` finds, on templates and plans, exactly what `evaluate` finds on the account
bodies they would deploy (issue #26): generated accounts are rendered as ARM templates (values through
parameters, variables and functions; plain, symbolic, nested in inner and outer scope) and as
Terraform plans (azurerm and azapi), scanned, and compared with `evaluate` on the body with the same
policy. And no unresolved value ever passes as compliant."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from guardrail.engine import InvalidAccount, evaluate
from guardrail.policy import Policy
from guardrail.rules import RULES
from guardrail.scan import scan
from guardrail.scan.judge import FEEDS, fed_rules, plan_actions
from tests.scan.render import arm_templates, terraform_plans

from ._factory import NOW
from .strategies import accounts, policies


def _scanned(source: dict[str, Any], policy: Policy, **scope: Any) -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "source.json"
        path.write_text(json.dumps(source, indent=1), encoding="utf-8")
        report = scan([str(path)], policy, NOW, **scope)
    assert report.problems == []
    return [judged.to_json() for judged in report.judged]


def _expected(body: dict[str, Any], policy: Policy) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    evaluation = evaluate(body, policy, NOW)
    if isinstance(evaluation, InvalidAccount):
        return [{"rule": "account-invalid"}], []
    return [finding.to_json() for finding in evaluation.findings], plan_actions(evaluation)


def _same(scanned: list[dict[str, Any]], body: dict[str, Any], policy: Policy) -> None:
    assert len(scanned) == 1, scanned
    (resource,) = scanned
    findings, actions = _expected(body, policy)
    assert resource["resource"] == body["id"]
    assert resource["not_judged"] == []
    if findings == [{"rule": "account-invalid"}]:
        assert [f["rule"] for f in resource["findings"]] == ["account-invalid"]
        return
    assert resource["findings"] == findings
    assert resource["actions"] == actions
    assert resource["compliant"] == all(f["exempted"] for f in findings)


@given(st.data(), accounts, policies())
def test_a_template_is_judged_as_the_body_it_deploys(
    data: st.DataObject, account: Any, policy: Policy
) -> None:
    template, body, sub, group = data.draw(arm_templates(account))
    _same(_scanned(template, policy, subscription=sub, resource_group=group), body, policy)


@given(st.data(), accounts, policies())
def test_a_plan_is_judged_as_the_body_it_deploys(data: st.DataObject, account: Any, policy: Policy) -> None:
    plan, body, sub = data.draw(terraform_plans(account))
    _same(_scanned(plan, policy, subscription=sub), body, policy)


_UNRESOLVABLE = st.sampled_from(
    [
        "[reference('x').value]",
        "[parameters('notGiven')]",
        "[uniqueString(resourceGroup().id)]",
        "[foo.bar()]",
    ]
)


@given(st.data(), accounts, policies())
def test_an_unresolved_value_never_passes_as_compliant(
    data: st.DataObject, account: Any, policy: Policy
) -> None:
    """Any value that feeds a rule the policy turns on, made unresolvable, leaves the account not
    compliant, with an unresolved-value finding naming its path and the rules not judged."""
    template, body, sub, group = data.draw(arm_templates(account))
    props = body.get("properties")
    paths = [p for p, _ in FEEDS if p.startswith("properties.") and p.count(".") == 1]
    key = data.draw(st.sampled_from([p.split(".", 1)[1] for p in paths if "privateEndpoint" not in p]))
    on = {rule.id for rule in RULES if rule.on(policy)}
    fed = [r for r in fed_rules(f"properties.{key}") if r in on]
    if key == "customSubDomainName":
        fed = []  # it feeds a rule only when virtual network rules exist: judged below when so
    plain = {
        "$schema": template["$schema"],
        "contentVersion": "1.0.0.0",
        "parameters": {"notGiven": {"type": "string"}},
    }
    resource = {
        "type": "Microsoft.CognitiveServices/accounts",
        "apiVersion": "2025-06-01",
        "name": body["name"],
        "kind": body.get("kind"),
        "properties": {**(props if isinstance(props, dict) else {}), key: data.draw(_UNRESOLVABLE)},
    }
    resource["properties"].pop("privateEndpointConnections", None)
    (scanned,) = _scanned({**plain, "resources": [resource]}, policy, subscription=sub, resource_group=group)
    unresolved = [f for f in scanned["findings"] if f["rule"] == "unresolved-value"]
    if fed:
        assert scanned["compliant"] is False
        assert [f["value"] for f in unresolved] == [f"properties.{key}"]
        assert set(fed) <= set(scanned["not_judged"])
        assert not {f["rule"] for f in scanned["findings"]} & set(fed)
        assert scanned["actions"] == []


_PATHS = [p for p, _ in FEEDS if p != "properties"]


def _at(body: dict[str, Any], path: str) -> tuple[dict[str, Any] | None, str]:
    """The object holding the value at `path` (None when absent on the way) and its key."""
    *parents, key = path.split(".")
    node: Any = body
    for step in parents:
        node = node.get(step) if isinstance(node, dict) else None
    return (node if isinstance(node, dict) else None), key


@pytest.mark.parametrize("path", _PATHS)
@settings(max_examples=300)  # per path: twelve paths; the CI profile's 2000 each would take minutes
@given(account=accounts, other=accounts, policy=policies())
def test_a_value_feeds_only_the_rules_the_table_names(
    path: str, account: Any, other: Any, policy: Policy
) -> None:
    """The table that says which rules an unresolved value leaves unjudged is the rules' own: when
    the value at a path changes (to another account's, or to nothing), the findings of every rule the
    table does not name for that path stay exactly as they were."""
    before = evaluate(account, policy, NOW)
    holder, key = _at(account, path)
    source, _ = _at(other, path)
    if holder is None:
        return
    changed = json.loads(json.dumps(account))
    target, _ = _at(changed, path)
    assert target is not None
    if source is not None and key in source:
        target[key] = source[key]
    else:
        target.pop(key, None)
    after = evaluate(changed, policy, NOW)
    if isinstance(before, InvalidAccount) or isinstance(after, InvalidAccount):
        return
    fed = set(fed_rules(path))
    unfed = [f.to_json() for f in before.findings if f.rule not in fed]
    assert unfed == [f.to_json() for f in after.findings if f.rule not in fed]
