"""The strict policy loader: every bad input is an error naming the file and the key or value."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from guardrail.policy import Policy, PolicyError, load_policy, parse_policy_text

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "samples" / "policy.yaml"
SCOPE = "/subscriptions/00000000-1111-2222-3333-444444444444/resourceGroups/rg-sandbox"


def _load(tmp_path: Path, text: str) -> tuple[str, PolicyError]:
    path = tmp_path / "org-policy.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(PolicyError) as caught:
        load_policy(path)
    return str(path), caught.value


def test_the_sample_policy_validates() -> None:
    pol = load_policy(SAMPLE)
    assert pol.mode == "enforce"
    assert pol.network.min_prefix_length == 24
    assert pol.auth.require_local_auth_disabled
    assert len(pol.exemptions) == 1
    assert pol.exemptions[0].expires == dt.date(2027, 3, 31)
    assert not pol.remediates("public-network-access")


def test_minimal_policy_takes_the_defaults() -> None:
    pol = parse_policy_text("version: 1\n")
    assert pol == Policy.default()
    assert pol.mode == "enforce"
    assert pol.network.require_default_deny is True
    assert pol.network.require_public_network_disabled is False
    assert pol.network.min_prefix_length == 0
    assert pol.auth.require_local_auth_disabled is False
    assert pol.exemptions == []


@pytest.mark.parametrize(
    ("text", "where", "named"),
    [
        # unknown key at each level
        ("version: 1\nmodee: audit\n", "modee", "unknown key"),
        (
            "version: 1\nnetwork:\n  require_default_denny: true\n",
            "network.require_default_denny",
            "unknown key",
        ),
        ("version: 1\nauth:\n  require_local_auth: true\n", "auth.require_local_auth", "unknown key"),
        (
            f"version: 1\nexemptions:\n  - scope: {SCOPE}\n    rules: ['*']\n    expires: 2027-01-01\n"
            "    owner: me\n",
            "exemptions[0].owner",
            "unknown key",
        ),
        (
            "version: 1\ndiagnostics:\n  workspace_id: /subscriptions/x/resourceGroups/r/providers/"
            "Microsoft.OperationalInsights/workspaces/w\n  retention: 3\n",
            "diagnostics.retention",
            "unknown key",
        ),
        # wrong types
        ("version: 1\nmode: enforcing\n", "mode", "enforcing"),
        ("version: 2\n", "version", "2"),
        ("version: 1\nnetwork:\n  require_default_deny: 'yes'\n", "network.require_default_deny", "'yes'"),
        ("version: 1\nnetwork:\n  min_prefix_length: '24'\n", "network.min_prefix_length", "'24'"),
        ("version: 1\nnetwork:\n  min_prefix_length: true\n", "network.min_prefix_length", "True"),
        ("version: 1\nnetwork:\n  min_prefix_length: 33\n", "network.min_prefix_length", "33"),
        ("version: 1\nnetwork:\n  allowed_ip_ranges: 20.0.0.0/8\n", "network.allowed_ip_ranges", "list"),
        ("version: 1\nnetwork: []\n", "network", "dictionary"),
        ("version: 1\nauth:\n  require_local_auth_disabled: 1\n", "auth.require_local_auth_disabled", "1"),
        ("version: 1\nremediate:\n  bypass-not-allowed: 'no'\n", "remediate.bypass-not-allowed", "'no'"),
        ("version: 1\nexemptions: {}\n", "exemptions", "list"),
        # invalid values
        (
            "version: 1\nnetwork:\n  allowed_ip_ranges: [20.0.0.0/33]\n",
            "network.allowed_ip_ranges",
            "20.0.0.0/33",
        ),
        (
            "version: 1\nnetwork:\n  allowed_ip_ranges: ['2001:db8::/32']\n",
            "network.allowed_ip_ranges",
            "2001:db8::/32",
        ),
        (
            "version: 1\nnetwork:\n  allowed_vnet_subscriptions: [not-a-guid]\n",
            "allowed_vnet_subscriptions",
            "not-a-guid",
        ),
        (
            "version: 1\nnetwork:\n  allowed_subnets: [/subscriptions/x]\n",
            "network.allowed_subnets",
            "/subscriptions/x",
        ),
        ("version: 1\nnetwork:\n  bypass_allowed_accounts: [acct]\n", "bypass_allowed_accounts", "'acct'"),
        # unknown rule IDs
        ("version: 1\nremediate:\n  ip-rule-bogus: true\n", "remediate", "ip-rule-bogus"),
        (
            f"version: 1\nexemptions:\n  - scope: {SCOPE}\n    rules: [default-action-denied]\n"
            "    expires: 2027-01-01\n",
            "exemptions[0].rules",
            "default-action-denied",
        ),
        # exemptions: expires required, a date, a scope, at least one rule
        (
            f"version: 1\nexemptions:\n  - scope: {SCOPE}\n    rules: ['*']\n",
            "exemptions[0].expires",
            "missing",
        ),
        (
            f"version: 1\nexemptions:\n  - scope: {SCOPE}\n    rules: ['*']\n    expires: soon\n",
            "exemptions[0].expires",
            "soon",
        ),
        (
            f"version: 1\nexemptions:\n  - scope: {SCOPE}\n    rules: ['*']\n"
            "    expires: 2027-01-01T10:00:00\n",
            "exemptions[0].expires",
            "timestamp",
        ),
        (
            "version: 1\nexemptions:\n  - scope: rg-sandbox\n    rules: ['*']\n    expires: 2027-01-01\n",
            "exemptions[0].scope",
            "rg-sandbox",
        ),
        (
            f"version: 1\nexemptions:\n  - scope: {SCOPE}\n    rules: []\n    expires: 2027-01-01\n",
            "exemptions[0].rules",
            "at least one rule",
        ),
        # remediate: true on a report-only rule
        ("version: 1\nremediate:\n  ip-rule-limit: true\n", "remediate", "ip-rule-limit"),
        (
            "version: 1\nremediate:\n  custom-subdomain-missing: true\n",
            "remediate",
            "custom-subdomain-missing",
        ),
        # version
        ("mode: audit\n", "version", "missing"),
    ],
)
def test_bad_policy_names_the_file_and_the_key(tmp_path: Path, text: str, where: str, named: str) -> None:
    path, error = _load(tmp_path, text)
    message = str(error)
    assert message.startswith(path + ":"), message
    assert where in message, message
    assert named in message, message


def test_report_only_rule_may_be_set_false() -> None:
    pol = parse_policy_text("version: 1\nremediate:\n  ip-rule-limit: false\n")
    assert not pol.remediates("ip-rule-limit")


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("", "mapping"),
        ("- version: 1\n", "mapping"),
        ("version: 1\n  bad: [indent\n", "YAML"),
        ("version: [1\n", "YAML"),
    ],
)
def test_not_a_policy_mapping(tmp_path: Path, text: str, named: str) -> None:
    path, error = _load(tmp_path, text)
    assert str(error).startswith(path + ":")
    assert named in str(error)


def test_missing_file_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"
    with pytest.raises(PolicyError, match=r"nope\.yaml: cannot read"):
        load_policy(path)


def test_all_errors_are_reported_at_once(tmp_path: Path) -> None:
    path, error = _load(tmp_path, "version: 1\nfoo: 1\nnetwork:\n  bar: 2\n")
    lines = str(error).splitlines()
    assert len(lines) == 2
    assert all(line.startswith(path + ":") for line in lines)
