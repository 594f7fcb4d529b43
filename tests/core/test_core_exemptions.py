"""Exemption scope (self, ancestor, segment boundary, case) and expiry (inclusive of the day)."""

from __future__ import annotations

import datetime as dt

import pytest

from ._factory import SUB, account, account_id, judge, policy, rules_of

RG = f"/subscriptions/{SUB}/resourceGroups/rg-sandbox"
ACCT = account_id(name="ais-sandbox", rg="rg-sandbox")
EXPIRES = "2027-03-31"


def _open_account(rid: str = ACCT) -> dict[str, object]:
    return account(acls=None, rid=rid)


def _exempt(scope: str, rules: list[str] | None = None, expires: str = EXPIRES) -> object:
    return policy(
        exemptions=[{"scope": scope, "rules": rules or ["default-action-deny"], "expires": expires}]
    )


def _at(day: str, hour: int = 12) -> dt.datetime:
    return dt.datetime.fromisoformat(day).replace(hour=hour, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    "scope",
    [
        ACCT,  # the resource itself
        ACCT + "/",  # trailing slash trimmed
        RG,  # resource group
        f"/subscriptions/{SUB}",  # subscription
        ACCT.upper(),  # case-insensitive
        RG.lower().replace("resourcegroups", "RESOURCEGROUPS"),
    ],
)
def test_scope_covers_self_and_ancestors(scope: str) -> None:
    result = judge(_open_account(), _exempt(scope), _at("2027-01-01"))
    assert rules_of(result) == ["default-action-deny"]
    assert result.findings[0].exempted
    assert not result.findings[0].fixed
    assert result.compliant
    assert result.remediation is None  # exempted findings add nothing


@pytest.mark.parametrize(
    ("scope", "rid"),
    [
        (RG, account_id(name="x", rg="rg-sandbox2")),  # sibling sharing a prefix
        (f"/subscriptions/{SUB}/resourceGroups/rg", ACCT),  # prefix of a segment
        (ACCT, ACCT + "2"),  # account name prefix
        (account_id(name="other", rg="rg-sandbox"), ACCT),  # sibling resource
        ("/subscriptions/00000000-1111-2222-3333-44444444444", ACCT),  # subscription ID prefix
        (f"/subscriptions/{SUB}/resourceGroups/rg-sandbox/providers/Microsoft.Web/sites/x", ACCT),
    ],
)
def test_scope_does_not_cover_siblings_or_segment_prefixes(scope: str, rid: str) -> None:
    result = judge(_open_account(rid), _exempt(scope), _at("2027-01-01"))
    assert rules_of(result) == ["default-action-deny"]
    assert not result.findings[0].exempted
    assert not result.compliant
    assert result.remediation is not None


@pytest.mark.parametrize(
    ("now", "exempted"),
    [
        (_at("2027-03-30"), True),
        (_at("2027-03-31", 0), True),  # on the day: still exempt
        (dt.datetime(2027, 3, 31, 23, 59, 59, tzinfo=dt.UTC), True),
        (_at("2027-04-01", 0), False),  # the day after: lapsed
        (_at("2028-01-01"), False),
        # the day is the UTC day: 2027-03-31T22:00-05:00 is already April 1st in UTC
        (dt.datetime(2027, 3, 31, 22, 0, tzinfo=dt.timezone(dt.timedelta(hours=-5))), False),
        (dt.datetime(2027, 4, 1, 1, 0, tzinfo=dt.timezone(dt.timedelta(hours=5))), True),
    ],
)
def test_expiry_is_inclusive_of_the_day(now: dt.datetime, exempted: bool) -> None:
    result = judge(_open_account(), _exempt(RG), now)
    assert result.findings[0].exempted is exempted
    assert result.compliant is exempted
    assert (result.remediation is None) is exempted


def test_exemption_covers_only_the_rules_it_names() -> None:
    body = account(acls=None, rid=ACCT, local_auth_disabled=False)
    pol = policy(
        auth={"require_local_auth_disabled": True},
        remediate={"local-auth-enabled": True},
        exemptions=[{"scope": RG, "rules": ["default-action-deny"], "expires": EXPIRES}],
    )
    result = judge(body, pol, _at("2027-01-01"))
    assert [(f.rule, f.exempted) for f in result.findings] == [
        ("default-action-deny", True),
        ("local-auth-enabled", False),
    ]
    assert not result.compliant
    # networkAcls was absent and its fix is exempted: the patch holds only the local-auth fix
    assert result.remediation == {"properties": {"disableLocalAuth": True}}


def test_wildcard_covers_every_rule() -> None:
    body = account(ip=["10.0.0.1", "52.1.1.1/32"], bypass="AzureServices", rid=ACCT, default_action="Allow")
    result = judge(body, _exempt(RG, ["*"]), _at("2027-01-01"))
    assert len(result.findings) == 4
    assert all(f.exempted for f in result.findings)
    assert result.compliant
    assert result.remediation is None


def test_exempted_ip_rule_is_kept_while_others_are_fixed() -> None:
    body = account(ip=["10.0.0.1", "52.1.1.1/32"], rid=ACCT)
    result = judge(body, _exempt(RG, ["ip-rule-not-public"]), _at("2027-01-01"))
    assert [(f.rule, f.exempted) for f in result.findings] == [
        ("ip-rule-not-public", True),
        ("ip-rule-prefix-unsupported", False),
    ]
    assert result.remediation is not None
    assert result.remediation["properties"]["networkAcls"]["ipRules"] == [
        {"value": "10.0.0.1"},
        {"value": "52.1.1.1"},
    ]


def test_first_matching_exemption_of_several() -> None:
    pol = policy(
        exemptions=[
            {"scope": RG + "2", "rules": ["*"], "expires": "2099-01-01"},
            {"scope": RG, "rules": ["default-action-deny"], "expires": "2020-01-01"},  # lapsed
            {"scope": ACCT, "rules": ["default-action-deny"], "expires": "2099-01-01", "reason": "r"},
        ]
    )
    result = judge(_open_account(), pol, _at("2027-01-01"))
    assert result.findings[0].exempted
    assert pol.exemption_for(ACCT, "default-action-deny", dt.date(2027, 1, 1)) is pol.exemptions[2]
