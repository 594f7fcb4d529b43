"""The rule registry: one module per rule (or family), found and ordered by the package; the policy's
`remediate` keys, `guardrail rules`, `policy validate` and the engine's loop all come from it."""

from __future__ import annotations

import pkgutil
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given

import guardrail.rules as registry
from guardrail import engine
from guardrail.engine import Evaluation, evaluate
from guardrail.policy import Policy, dump_policy_defaults
from guardrail.rules import BY_ID, FIXABLE_RULES, REMEDIATE_DEFAULTS, RULE_IDS, RULES, UNITS

from ._factory import NOW, account, policy
from .strategies import accounts, policies
from .test_core_cli import run

# The public rule IDs, in evaluation order: a rename or a lost rule fails here.
PUBLIC_IDS = (
    "default-action-deny",
    "public-network-access",
    "ip-rule-invalid",
    "ip-rule-not-public",
    "ip-rule-too-broad",
    "ip-rule-not-allowlisted",
    "ip-rule-prefix-unsupported",
    "ip-rule-limit",
    "vnet-rule-invalid",
    "vnet-rule-not-allowed",
    "vnet-rule-limit",
    "custom-subdomain-missing",
    "bypass-not-allowed",
    "local-auth-enabled",
    "diagnostics-missing",
)


def test_every_module_of_the_package_is_a_unit_in_order() -> None:
    names = [m.name for m in pkgutil.iter_modules(registry.__path__) if not m.name.startswith("_")]
    assert len(names) == len(UNITS)
    modules = {unit.check.__module__.rsplit(".", 1)[-1] for unit in UNITS}
    assert modules == set(names)
    assert [u.order for u in UNITS] == sorted(u.order for u in UNITS)


def test_the_public_rule_ids_are_kept_in_evaluation_order() -> None:
    assert tuple(r for r in RULE_IDS if r in PUBLIC_IDS) == PUBLIC_IDS


def test_remediate_keys_and_defaults_come_from_the_registry() -> None:
    assert dump_policy_defaults()["remediate"] == {r.id: r.remediate_by_default for r in RULES if r.fix}
    assert {r.id: r.remediate_by_default for r in RULES} == REMEDIATE_DEFAULTS
    default = Policy.default()
    for rule in RULES:
        assert default.remediates(rule.id) == (rule.fix is not None and rule.remediate_by_default)


def _policy_key_exists(dotted: str) -> bool:
    data: Any = dump_policy_defaults()
    data["diagnostics"] = {"workspace_id": "x"}  # optional section: None in the defaults
    for part in dotted.split("."):
        if not isinstance(data, dict) or part not in data:
            return False
        data = data[part]
    return True


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.id)
def test_each_rule_is_complete(rule: registry.Rule) -> None:
    assert rule.severity in ("critical", "high", "medium", "low")
    assert rule.summary and (rule.fix is None or rule.fix)
    if rule.fix is None:
        assert not rule.remediate_by_default and rule.alert is None
    if rule.switch != "always":
        # the switch names a real policy key (then, perhaps, a condition on it)
        key = rule.switch.split(" ", 1)[0]
        assert _policy_key_exists(key), rule.switch
    else:
        assert rule.on(Policy.default()) and rule.on(policy(network={"require_default_deny": False}))


def test_a_rule_whose_switch_is_off_reports_nothing_even_when_called() -> None:
    """The engine skips a module whose rules the policy all turns off; run every check anyway and
    the findings are the same (so `Rule.on` tells the truth), here on a hand-made case."""
    body = account(acls=None, local_auth_disabled=False, public="Enabled")
    quiet = policy(network={"require_default_deny": False})
    assert not BY_ID["default-action-deny"].on(quiet)
    assert _all_checks(body, quiet) == _findings(evaluate(body, quiet, NOW))


def _findings(result: object) -> list[tuple[str, str | None]]:
    assert isinstance(result, Evaluation), result
    return [(f.rule, f.value) for f in result.findings]


def _all_checks(body: Any, pol: Policy) -> list[tuple[str, str | None]]:
    every = tuple(unit.check for unit in UNITS)
    saved = engine._checks_for
    engine._checks_for = lambda _policy: every  # type: ignore[assignment]
    try:
        return _findings(evaluate(body, pol, NOW))
    finally:
        engine._checks_for = saved  # type: ignore[assignment]


@given(accounts, policies())
def test_switches_are_truthful(body: dict[str, Any], pol: Policy) -> None:
    result = evaluate(body, pol, NOW)
    assert isinstance(result, Evaluation)
    for finding in result.findings:
        assert BY_ID[finding.rule].on(pol), finding.rule
    assert _all_checks(body, pol) == _findings(result)


# -- guardrail rules ---------------------------------------------------------------------------


def test_rules_command_prints_the_table() -> None:
    code, out, _ = run("rules")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split()[:2] == ["RULE", "SEVERITY"]
    assert [line.split()[0] for line in lines[1:]] == list(RULE_IDS)
    for line, rule in zip(lines[1:], RULES, strict=True):
        assert line.split()[1] == rule.severity
        assert rule.summary in line


def test_rules_command_markdown_is_the_registry_table() -> None:
    code, out, _ = run("rules", "--format", "markdown")
    assert code == 0
    assert out == registry.table_markdown()
    rows = [line for line in out.splitlines() if line.startswith("| `")]
    assert len(rows) == len(RULES)
    for row, rule in zip(rows, RULES, strict=True):
        cells = [c.strip() for c in row.strip("|").split(" | ")]
        assert cells[0] == f"`{rule.id}`" and cells[1] == rule.severity
        assert cells[-1] == ("—" if rule.fix is None else "yes" if rule.remediate_by_default else "no")


# -- policy validate (#11.7) -------------------------------------------------------------------


def _validate(tmp_path: Path, text: str) -> dict[str, list[str]]:
    path = tmp_path / "p.yaml"
    path.write_text(text, encoding="utf-8")
    code, out, err = run("policy", "validate", str(path))
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith(f"{path}: valid")
    listed: dict[str, list[str]] = {}
    for line in lines[1:]:
        if line.startswith("  (mode audit"):
            continue
        label, _, rules = line.strip().partition(":")
        listed[label] = [] if rules.strip() == "none" else rules.strip().split(", ")
    assert sorted(r for rules in listed.values() for r in rules) == sorted(RULE_IDS), (
        "every rule is listed exactly once"
    )
    return listed


def test_validate_does_not_claim_a_rule_that_is_off(tmp_path: Path) -> None:
    listed = _validate(tmp_path, "version: 1\nnetwork:\n  require_default_deny: false\n")
    assert "default-action-deny" in listed["off"]
    assert "default-action-deny" not in listed["fixed"]


def test_validate_lists_fixed_report_only_and_off(tmp_path: Path) -> None:
    listed = _validate(
        tmp_path,
        "version: 1\nauth:\n  require_local_auth_disabled: true\nnetwork:\n  min_prefix_length: 24\n"
        "remediate:\n  ip-rule-invalid: false\n",
    )
    assert "local-auth-enabled" in listed["report only"]  # on, but its fix is off by default
    assert "ip-rule-invalid" in listed["report only"]
    assert "ip-rule-limit" in listed["report only"]  # on and has no fix
    assert "ip-rule-too-broad" in listed["fixed"] and "default-action-deny" in listed["fixed"]
    assert {"public-network-access", "ip-rule-not-allowlisted", "diagnostics-missing"} <= set(listed["off"])


def test_validate_in_audit_mode_says_nothing_is_written(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text("version: 1\nmode: audit\n", encoding="utf-8")
    code, out, _ = run("policy", "validate", str(path))
    assert code == 0 and "nothing is written" in out


def test_default_policy_fixes_only_what_is_on() -> None:
    pol = Policy.default()
    for rule in RULES:
        if not rule.on(pol):
            continue
        assert pol.remediates(rule.id) == (rule.id in FIXABLE_RULES and rule.remediate_by_default)
