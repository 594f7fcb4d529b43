"""#11.6 (odd bypass values are the wider setting) and #16.4 (JSON spelling of finding values,
"did you mean" for policy typos, the file name in every policy error)."""

from __future__ import annotations

from pathlib import Path

import pytest

from guardrail.engine import apply_patch, widening
from guardrail.policy import PolicyError, load_policy, parse_policy_text

from ._factory import account, judge, policy, rules_of

# -- bypass: anything but None lets trusted services in -----------------------------------------


@pytest.mark.parametrize(
    "bypass",
    ["Logging, Metrics, AzureServices", "Logging", "Metrics", "Logging, Metrics", "", "azureservices", "X"],
)
def test_any_bypass_but_none_is_the_wider_setting(bypass: str) -> None:
    body = account(ip=["52.1.1.1"], bypass=bypass)
    result = judge(body)
    assert rules_of(result) == ["bypass-not-allowed"]
    assert result.findings[0].value == bypass and result.findings[0].fixed
    assert result.remediation is not None
    assert result.remediation["properties"]["networkAcls"]["bypass"] == "None"
    after = apply_patch(body, result.remediation)
    assert widening(body, after) == []
    assert judge(after).remediation is None


def test_odd_bypass_is_named_in_the_message() -> None:
    result = judge(account(bypass="Logging, Metrics"))
    assert "'Logging, Metrics'" in result.findings[0].message


@pytest.mark.parametrize("bypass", ["None", "none", "NONE"])
def test_bypass_none_is_compliant(bypass: str) -> None:
    assert judge(account(bypass=bypass)).findings == ()


@pytest.mark.parametrize("bypass", ["Logging, Metrics, AzureServices", "Metrics", "AzureServices"])
def test_an_allowed_kind_keeps_any_bypass(bypass: str) -> None:
    assert (
        judge(
            account(bypass=bypass, kind="OpenAI"), policy(network={"bypass_allowed_kinds": ["OpenAI"]})
        ).findings
        == ()
    )


def test_widening_sees_an_odd_bypass_as_letting_services_in() -> None:
    closed = account(bypass="None")
    assert widening(closed, account(bypass="Logging, Metrics")) == ["trusted-services bypass enabled"]


# -- values in JSON spelling ---------------------------------------------------------------------


@pytest.mark.parametrize(("value", "spelled"), [(False, "false"), (None, "null")])
def test_local_auth_value_is_json_spelling(value: object, spelled: str) -> None:
    body = account()
    body["properties"]["disableLocalAuth"] = value
    result = judge(body, policy(auth={"require_local_auth_disabled": True}))
    assert [(f.rule, f.value) for f in result.findings] == [("local-auth-enabled", spelled)]


def test_local_auth_unset_says_unset() -> None:
    result = judge(account(local_auth_disabled=None), policy(auth={"require_local_auth_disabled": True}))
    assert [f.value for f in result.findings] == ["unset"]


@pytest.mark.parametrize(
    ("entry", "spelled"),
    [({"value": None}, "null"), ({"value": 5}, "5"), ({"value": True}, "true"), (7, "7"), ({}, "null")],
)
def test_invalid_ip_rule_values_are_json_spelling(entry: object, spelled: str) -> None:
    body = account(acls={"defaultAction": "Deny", "bypass": "None", "ipRules": [entry]})
    result = judge(body)
    assert [(f.rule, f.value) for f in result.findings] == [("ip-rule-invalid", spelled)]


def test_invalid_vnet_rule_value_is_json_spelling() -> None:
    body = account(acls={"defaultAction": "Deny", "bypass": "None", "virtualNetworkRules": [{"id": None}]})
    assert [(f.rule, f.value) for f in judge(body).findings] == [("vnet-rule-invalid", "null")]


# -- policy errors: did you mean, and the file name ---------------------------------------------


def _error(tmp_path: Path, text: str) -> tuple[str, str]:
    path = tmp_path / "org-policy.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(PolicyError) as caught:
        load_policy(path)
    return str(path), str(caught.value)


@pytest.mark.parametrize(
    ("text", "where", "suggestion"),
    [
        (
            "version: 1\nnetwork:\n  requre_default_deny: true\n",
            "network.requre_default_deny",
            "require_default_deny",
        ),
        ("version: 1\nmodee: audit\n", "modee", "mode"),
        ("version: 1\nauth:\n  require_local_auth_disable: true\n", "auth.", "require_local_auth_disabled"),
        ("version: 1\ndiagnostics:\n  workspace: x\n", "diagnostics.workspace", "workspace_id"),
        (
            "version: 1\nexemptions:\n  - scope: /subscriptions/x\n    rules: ['*']\n"
            "    expires: 2027-01-01\n    reasn: x\n",
            "exemptions[0].reasn",
            "reason",
        ),
        ("version: 1\nremediate:\n  default-action-deni: true\n", "remediate", "default-action-deny"),
        (
            "version: 1\nexemptions:\n  - scope: /subscriptions/x\n    rules: [ip-rule-to-broad]\n"
            "    expires: 2027-01-01\n",
            "exemptions[0].rules",
            "ip-rule-too-broad",
        ),
    ],
)
def test_typos_get_a_suggestion(tmp_path: Path, text: str, where: str, suggestion: str) -> None:
    path, message = _error(tmp_path, text)
    assert message.startswith(f"{path}: ")
    assert where in message
    assert f"did you mean {suggestion!r}?" in message


def test_no_suggestion_when_nothing_is_close(tmp_path: Path) -> None:
    _, message = _error(tmp_path, "version: 1\nnetwork:\n  zzzz: 1\n")
    assert "unknown key" in message and "did you mean" not in message


@pytest.mark.parametrize(
    "text",
    [
        "version: 1\nnetwork:\n  require_default_deny: true\n  require_default_deny: false\n",
        "version: 1\nnetwork: [1\n",
        "version: 1\nexemptions:\n  - expires: 2027-02-30\n",
    ],
)
def test_yaml_errors_name_the_file_everywhere(tmp_path: Path, text: str) -> None:
    path, message = _error(tmp_path, text)
    assert message.startswith(f"{path}: ")
    assert "<unicode string>" not in message
    assert f'in "{path}", line' in message


def test_parse_policy_text_names_its_source() -> None:
    with pytest.raises(PolicyError) as caught:
        parse_policy_text("a: 1\na: 2\n", "inline.yaml")
    assert "<unicode string>" not in str(caught.value) and 'in "inline.yaml"' in str(caught.value)
