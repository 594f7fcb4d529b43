"""The template expression evaluator: the functions templates use for an account's network fields
give what ARM gives, and what is not known before deploy is Unresolved, never a guess."""

from __future__ import annotations

from typing import Any

import pytest

from guardrail.scan.expressions import Scope, Unresolved, evaluate_string
from guardrail.scan.located import loads

PARAMETERS: dict[str, Any] = {"name": "Acct", "ips": ["52.1.1.1", "4.4.4.0/24"], "acls": {"bypass": "None"}}
VARIABLES: dict[str, Any] = {"prefix": "cog"}
SUB, GROUP = "00000000-1111-2222-3333-444444444444", "rg-app"


def value(text: str, sub: str | None = SUB, group: str | None = GROUP, index: int | None = None) -> Any:
    def parameter(name: str) -> Any:
        return PARAMETERS.get(name, Unresolved(f"parameter {name!r} has no value"))

    return evaluate_string(text, Scope(parameter, VARIABLES.__getitem__, sub, group, index))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("plain", "plain"),
        ("[[literal]", "[literal]"),
        ("[[not-an-escape", "[[not-an-escape"),
        ("[parameters('name')]", "Acct"),
        ("[PARAMETERS('ips')[1]]", "4.4.4.0/24"),
        ("[concat(variables('prefix'), '-', toLower(parameters('name')))]", "cog-acct"),
        ("[concat(parameters('ips'), createArray('8.8.8.8'))]", ["52.1.1.1", "4.4.4.0/24", "8.8.8.8"]),
        ("[format('{0}-{1}', 'a', 2)]", "a-2"),
        ("[format('it''s {0}', true())]", "it's True"),
        ("[if(equals(parameters('name'), 'Acct'), 'Deny', reference('x').y)]", "Deny"),
        (
            "[union(parameters('acls'), createObject('defaultAction', 'Deny'))]",
            {"bypass": "None", "defaultAction": "Deny"},
        ),
        (
            "[union(createObject('a', createObject('b', 1)), createObject('a', createObject('c', 2)))]",
            {"a": {"b": 1, "c": 2}},
        ),
        ("[createArray(createObject('value', parameters('ips')[0]))]", [{"value": "52.1.1.1"}]),
        ("[subscription().subscriptionId]", SUB),
        ("[resourceGroup().name]", GROUP),
        (
            "[resourceId('Microsoft.Network/virtualNetworks/subnets', 'v', 's')]",
            f"/subscriptions/{SUB}/resourceGroups/{GROUP}/providers/Microsoft.Network/virtualNetworks/v/subnets/s",
        ),
        (
            "[resourceId('other-rg', 'Microsoft.Network/virtualNetworks/subnets', 'v', 's')]",
            f"/subscriptions/{SUB}/resourceGroups/other-rg/providers/Microsoft.Network/virtualNetworks/v/subnets/s",
        ),
        ("[tryGet(parameters('acls'), 'defaultAction')]", None),
        ("[coalesce(tryGet(parameters('acls'), 'ipRules'), createArray())]", []),
        ("[empty(parameters('ips'))]", False),
        ("[length(parameters('ips'))]", 2),
        ("[last(split('a/b/c', '/'))]", "c"),
    ],
)
def test_functions_give_what_arm_gives(text: str, expected: Any) -> None:
    assert value(text) == expected


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("[parameters('missing')]", "has no value"),
        ("[reference('x').properties]", "reference() is not resolved"),
        ("[uniqueString(resourceGroup().id)]", "uniqueString() is not resolved"),
        ("[concat('a', parameters('missing'))]", "has no value"),
        ("[resourceGroup().location]", "not known before deploy"),
        ("[parameters('name']", "not a valid expression"),
        ("[copyIndex()]", "outside a copy loop"),
        ("[coalesce(parameters('missing'), 'x')]", "has no value"),  # it might have been the value
        ("[if(parameters('missing'), 'Deny', 'Allow')]", "has no value"),
    ],
)
def test_what_is_not_known_before_deploy_is_unresolved(text: str, reason: str) -> None:
    result = value(text)
    assert isinstance(result, Unresolved)
    assert reason in result.reason


def test_an_unknown_scope_is_unresolved_not_a_placeholder() -> None:
    assert "give --subscription" in value("[subscription().subscriptionId]", sub=None).reason
    assert "give --resource-group" in value("[resourceGroup().name]", group=None).reason
    subnet = value("[resourceId('Microsoft.Network/virtualNetworks/subnets', 'v', 's')]", sub=None)
    assert isinstance(subnet, Unresolved)
    assert value("[copyIndex(1)]", index=2) == 3


def test_lines_are_those_of_each_value() -> None:
    located = loads('{\n  "a": [\n    1,\n    {"b": "x\\"y"}\n  ],\n  "c": {}\n}')
    assert located.value == {"a": [1, {"b": 'x"y'}], "c": {}}
    assert located.line(("a",)) == 2
    assert located.line(("a", 1, "b")) == 4
    assert located.line(("c",)) == 6
    assert located.line(("c", "missing")) == 6
