"""outbound-not-restricted and outbound-fqdn-not-allowed (#14): both edges of each rule, the PATCH
body (restrictOutboundNetworkAccess and the whole allowedFqdnList when either changes), widening,
and the policy keys' strict validation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from guardrail.engine import apply_patch, widening
from guardrail.policy import PolicyError, load_policy

from ._factory import account, account_id, judge, policy, rules_of


def outbound(restrict: Any = None, fqdns: list[Any] | None = None) -> dict[str, Any]:
    body = account()
    if restrict is not None:
        body["properties"]["restrictOutboundNetworkAccess"] = restrict
    if fqdns is not None:
        body["properties"]["allowedFqdnList"] = fqdns
    return body


REQUIRE = policy(network={"require_outbound_restricted": True}, remediate={"outbound-not-restricted": True})
PATTERNS = ["api.contoso.com", "*.contoso.net"]
ALLOW = policy(network={"allowed_fqdns": PATTERNS})


# -- outbound-not-restricted ------------------------------------------------------------------


@pytest.mark.parametrize(("restrict", "value"), [(None, "unset"), (False, "false")])
def test_unrestricted_outbound_is_reported_and_fixed_when_turned_on(restrict: Any, value: str) -> None:
    body = outbound(restrict, ["api.contoso.com"])
    result = judge(body, REQUIRE)
    assert [(f.rule, f.severity, f.value, f.fixed) for f in result.findings] == [
        ("outbound-not-restricted", "medium", value, True)
    ]
    assert result.remediation == {
        "properties": {
            "restrictOutboundNetworkAccess": True,
            "allowedFqdnList": ["api.contoso.com"],
            "networkAcls": body["properties"]["networkAcls"],
        }
    }
    after = apply_patch(body, result.remediation)
    assert widening(body, after) == []
    assert judge(after, REQUIRE).findings == ()


def test_restricting_an_account_without_a_list_sends_no_list() -> None:
    result = judge(outbound(False), REQUIRE)
    assert result.remediation is not None
    assert "allowedFqdnList" not in result.remediation["properties"]


def test_restricted_outbound_is_compliant() -> None:
    assert judge(outbound(True, []), REQUIRE).findings == ()


def test_outbound_not_restricted_is_report_only_by_default() -> None:
    pol = policy(network={"require_outbound_restricted": True})
    result = judge(outbound(False), pol)
    assert [(f.rule, f.fixed) for f in result.findings] == [("outbound-not-restricted", False)]
    assert result.remediation is None


def test_outbound_not_restricted_is_off_by_default() -> None:
    assert judge(outbound(False)).findings == ()


def test_outbound_not_restricted_exempted() -> None:
    pol = policy(
        network={"require_outbound_restricted": True},
        remediate={"outbound-not-restricted": True},
        exemptions=[{"scope": account_id(), "rules": ["outbound-not-restricted"], "expires": "2027-01-01"}],
    )
    result = judge(outbound(False), pol)
    assert [(f.rule, f.exempted) for f in result.findings] == [("outbound-not-restricted", True)]
    assert result.remediation is None and result.compliant


# -- outbound-fqdn-not-allowed ----------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "api.contoso.com",
        "API.Contoso.COM",
        "x.contoso.net",
        "a.b.contoso.net",
        "*.contoso.net",
        "*.X.CONTOSO.NET",
    ],
)
def test_names_matching_a_pattern_are_kept(name: str) -> None:
    assert judge(outbound(True, [name]), ALLOW).findings == ()


@pytest.mark.parametrize(
    "name",
    [
        "contoso.net",  # the apex is not matched by *.contoso.net
        "api.contoso.com.evil.net",  # a suffix that only looks like a match
        "evilcontoso.net",
        "x.evilcontoso.net",
        "www.contoso.com",  # an exact pattern matches only itself
        "*.contoso.com",
        "*",
        "",
        "api.contoso.com.",
    ],
)
def test_names_matching_no_pattern_are_stripped(name: str) -> None:
    body = outbound(True, ["api.contoso.com", name, "x.contoso.net"])
    result = judge(body, ALLOW)
    assert [(f.rule, f.severity, f.value, f.fixed) for f in result.findings] == [
        ("outbound-fqdn-not-allowed", "high", name, True)
    ]
    assert result.remediation is not None
    props = result.remediation["properties"]
    assert props["allowedFqdnList"] == ["api.contoso.com", "x.contoso.net"]
    assert "restrictOutboundNetworkAccess" not in props  # unchanged, so not sent
    after = apply_patch(body, result.remediation)
    assert widening(body, after) == [] and judge(after, ALLOW).remediation is None


@pytest.mark.parametrize(("entry", "value"), [(None, "null"), (5, "5"), ({"a": 1}, '{"a": 1}')])
def test_entries_that_are_not_names_are_stripped(entry: Any, value: str) -> None:
    result = judge(outbound(True, [entry]), ALLOW)
    assert [(f.rule, f.value) for f in result.findings] == [("outbound-fqdn-not-allowed", value)]
    assert result.remediation is not None and result.remediation["properties"]["allowedFqdnList"] == []


def test_one_finding_per_entry() -> None:
    result = judge(outbound(True, ["a.example", "b.example", "api.contoso.com"]), ALLOW)
    assert [f.value for f in result.findings] == ["a.example", "b.example"]


def test_the_fqdn_rule_is_off_without_patterns() -> None:
    assert judge(outbound(True, ["evil.example"])).findings == ()


def test_the_fqdn_rule_is_fixed_by_default_and_may_be_report_only() -> None:
    assert ALLOW.remediates("outbound-fqdn-not-allowed")
    pol = policy(network={"allowed_fqdns": PATTERNS}, remediate={"outbound-fqdn-not-allowed": False})
    result = judge(outbound(True, ["evil.example"]), pol)
    assert [(f.rule, f.fixed) for f in result.findings] == [("outbound-fqdn-not-allowed", False)]
    assert result.remediation is None


def test_the_fqdn_rule_exempted() -> None:
    pol = policy(
        network={"allowed_fqdns": PATTERNS},
        exemptions=[{"scope": account_id(), "rules": ["outbound-fqdn-not-allowed"], "expires": "2027-01-01"}],
    )
    result = judge(outbound(True, ["evil.example"]), pol)
    assert result.findings[0].exempted and result.remediation is None


def test_both_rules_together_send_the_switch_and_the_stripped_list() -> None:
    pol = policy(
        network={"require_outbound_restricted": True, "allowed_fqdns": PATTERNS},
        remediate={"outbound-not-restricted": True},
    )
    body = outbound(False, ["evil.example", "api.contoso.com"])
    result = judge(body, pol)
    assert rules_of(result) == ["outbound-not-restricted", "outbound-fqdn-not-allowed"]
    assert result.remediation is not None
    props = result.remediation["properties"]
    assert props["restrictOutboundNetworkAccess"] is True and props["allowedFqdnList"] == ["api.contoso.com"]
    after = apply_patch(body, result.remediation)
    assert judge(after, pol).findings == () and widening(body, after) == []


def test_the_body_does_not_share_the_list_with_the_account() -> None:
    body = outbound(True, ["evil.example", "api.contoso.com"])
    result = judge(body, ALLOW)
    assert result.remediation is not None
    result.remediation["properties"]["allowedFqdnList"].append("x")
    assert body["properties"]["allowedFqdnList"] == ["evil.example", "api.contoso.com"]


# -- widening ---------------------------------------------------------------------------------


def test_outbound_widening() -> None:
    closed = outbound(True, ["api.contoso.com"])
    assert widening(closed, outbound(False, ["api.contoso.com"])) == [
        "outbound access opened to every destination"
    ]
    assert widening(closed, outbound(None)) == ["outbound access opened to every destination"]
    assert widening(closed, outbound(True, ["api.contoso.com", "evil.example"])) == [
        "outbound destination evil.example allowed"
    ]
    assert widening(closed, outbound(True, ["API.contoso.com"])) == []
    assert widening(closed, outbound(True, [])) == []
    assert widening(outbound(False, ["x"]), closed) == []


# -- the policy keys --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "where", "named"),
    [
        (
            "network:\n  allowed_private_endpoint_subscriptions: [sub-a]\n",
            "allowed_private_endpoint_subscriptions",
            "sub-a",
        ),
        ("network:\n  require_outbound_restricted: 'yes'\n", "require_outbound_restricted", "yes"),
        (
            "network:\n  allowed_fqdns: ['https://api.contoso.com']\n",
            "allowed_fqdns",
            "https://api.contoso.com",
        ),
        ("network:\n  allowed_fqdns: ['*']\n", "allowed_fqdns", "'*'"),
        ("network:\n  allowed_fqdns: ['api.*.com']\n", "allowed_fqdns", "api.*.com"),
        ("network:\n  allowed_fqdns: ['*contoso.com']\n", "allowed_fqdns", "*contoso.com"),
        ("network:\n  allowed_fqdns: ['a..b']\n", "allowed_fqdns", "a..b"),
        ("network:\n  allowed_fqdns: ['-a.com']\n", "allowed_fqdns", "-a.com"),
        ("network:\n  allowed_fqdns: ['a_b.com']\n", "allowed_fqdns", "a_b.com"),
        ("network:\n  allowed_fqdns: ['']\n", "allowed_fqdns", "''"),
        ("network:\n  allowed_fqdns: [" + "a" * 64 + ".com]\n", "allowed_fqdns", "a" * 64),
        ("network:\n  allowed_fqdns: [5]\n", "allowed_fqdns", "5"),
        ("network:\n  allowed_fqdn: []\n", "allowed_fqdn", "did you mean 'allowed_fqdns'?"),
    ],
)
def test_bad_outbound_and_private_endpoint_keys(tmp_path: Path, text: str, where: str, named: str) -> None:
    path = tmp_path / "p.yaml"
    path.write_text("version: 1\n" + text, encoding="utf-8")
    with pytest.raises(PolicyError) as caught:
        load_policy(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: network.{where}"), message
    assert named in message, message


def test_good_outbound_and_private_endpoint_keys(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(
        "version: 1\nnetwork:\n"
        "  allowed_private_endpoint_subscriptions: [00000000-1111-2222-3333-444444444444]\n"
        "  require_outbound_restricted: true\n"
        "  allowed_fqdns: [api.contoso.com, '*.Contoso.NET', localhost]\n",
        encoding="utf-8",
    )
    network = load_policy(path).network
    assert network.require_outbound_restricted and len(network.allowed_fqdns) == 3
