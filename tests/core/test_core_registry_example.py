"""The worked example of docs/development.md ("Adding a rule") is real: dropped into the registry as
one module, it is found, ordered, and evaluated, with nothing else wired by hand."""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import guardrail.rules as registry
from guardrail.policy import Policy
from guardrail.rules import Context
from tests.conftest import REPO

from ._factory import NOW, account

DEVELOPMENT = (REPO / "docs" / "development.md").read_text(encoding="utf-8")


@pytest.fixture
def example_package(tmp_path: Path) -> Iterator[tuple[registry.RuleUnit, ...]]:
    section = DEVELOPMENT.split("## Adding a rule", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S)
    assert code, "docs/development.md's worked example has no python block"
    named = re.search(r"Save this as\s+`guardrail/rules/(\w+)\.py`", section)
    assert named
    (tmp_path / f"{named.group(1)}.py").write_text(code.group(1), encoding="utf-8")
    registry.__path__.append(str(tmp_path))
    try:
        yield registry._discover()
    finally:
        registry.__path__.remove(str(tmp_path))
        sys.modules.pop(f"guardrail.rules.{named.group(1)}", None)


def test_the_worked_example_is_one_module(example_package: tuple[registry.RuleUnit, ...]) -> None:
    units = example_package
    ids = [rule.id for unit in units for rule in unit.rules]
    assert [r for r in ids if r != "network-injection-set"] == list(registry.RULE_IDS)
    # order 65: after local-auth-enabled (60), before diagnostics-missing (70)
    assert ids[ids.index("network-injection-set") - 1 :][:3] == [
        "local-auth-enabled",
        "network-injection-set",
        "diagnostics-missing",
    ]
    (unit,) = (u for u in units if u.rules[0].id == "network-injection-set")
    rule = unit.rules[0]
    assert rule.fix is None and rule.switch == "always"

    body = account()
    body["properties"]["networkInjections"] = [{"scenario": "agent", "subnetArmId": "/subscriptions/x"}]
    ctx = Context(
        Policy.default(), body["id"], "AIServices", NOW.date(), body["properties"], None, False, None,
        {rule.id: rule.severity},
    )  # fmt: skip
    unit.check(ctx)
    assert [(f.rule, f.severity, f.fixed) for f in ctx.findings] == [("network-injection-set", "low", False)]
    quiet = Context(
        Policy.default(),
        body["id"],
        "AIServices",
        NOW.date(),
        {},
        None,
        False,
        None,
        {rule.id: rule.severity},
    )
    unit.check(quiet)
    assert quiet.findings == []
