from __future__ import annotations

import json
import random
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from guardrail.alerts import compose_alert, compose_alerts, fingerprint, summarize_acl_change, to_email
from guardrail.findings import FindingRecord

from .conftest import RID, record

VNETS = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks"
MakeRecord = Callable[..., FindingRecord]


def test_no_alert_without_active_findings(make_record: MakeRecord) -> None:
    assert compose_alert([]) is None
    assert compose_alert([make_record(status="exempted"), make_record(status="exempted", rule="X")]) is None


def test_one_alert_per_account_with_max_severity(make_record: MakeRecord) -> None:
    recs = [
        make_record(rule="A", severity="low"),
        make_record(rule="B", severity="high", status="violation"),
        make_record(rule="C", severity="critical", status="exempted"),
    ]
    alert = compose_alert(recs)
    assert alert is not None
    assert alert.severity == "high"  # the exempted critical one does not count
    assert [f.rule for f in alert.findings] == ["B", "A"]
    assert alert.portal_url == "https://portal.azure.com/#resource" + RID
    assert alert.actors == ("jane@contoso.example",)
    assert alert.correlation_id == "9a8b7c6d-5e4f-3a2b-1c0d-ffeeddccbbaa"
    assert alert.account_name == "Acct1"
    assert alert.status_summary == "partly remediated"


def test_suspended_remediation_is_critical(make_record: MakeRecord) -> None:
    alert = compose_alert([make_record(severity="low", status="remediation-suspended")])
    assert alert is not None
    assert alert.severity == "critical"
    assert alert.status_summary == "remediation suspended"


def test_records_of_two_accounts_are_refused_or_grouped(make_record: MakeRecord) -> None:
    other = RID.replace("Acct1", "Acct2")
    recs = [make_record(), make_record(resource_id=other), make_record(resource_id=RID.upper(), rule="Z")]
    with pytest.raises(ValueError):
        compose_alert(recs)
    alerts = compose_alerts(recs)
    assert sorted(len(a.findings) for a in alerts) == [1, 2]


def test_acl_change_summary() -> None:
    before = {
        "defaultAction": "Allow",
        "bypass": "AzureServices",
        "ipRules": [{"value": "10.0.0.1"}, {"value": "192.168.1.0/24"}, {"value": "20.1.1.1"}],
        "virtualNetworkRules": [{"id": VNETS + "/v1/subnets/a"}],
    }
    after = {
        "defaultAction": "Deny",
        "bypass": "None",
        "ipRules": [{"value": "20.1.1.1"}],
        "virtualNetworkRules": [],
    }
    assert summarize_acl_change(before, after) == [
        "defaultAction Allow → Deny",
        "bypass AzureServices → None",
        "removed ipRules 10.0.0.1, 192.168.1.0/24",
        "removed virtualNetworkRules v1/subnets/a",
    ]
    assert summarize_acl_change(None, {"defaultAction": "Deny"})[:2] == [
        "networkAcls absent (all networks allowed) → set",
        "defaultAction (unset) → Deny",
    ]
    assert summarize_acl_change(after, after) == []
    many = {"ipRules": [{"value": f"20.0.{i}.1"} for i in range(30)]}
    assert summarize_acl_change(many, {}, max_items=5)[0].endswith("20.0.4.1 … and 25 more")


def test_alert_carries_the_change(make_record: MakeRecord) -> None:
    alert = compose_alert([make_record()])
    assert alert is not None
    assert alert.changes == ("defaultAction Allow → Deny",)


def test_email_has_resource_findings_link_and_escapes_html(make_record: MakeRecord) -> None:
    evil = "<script>alert('x')</script> & \"quoted\""
    alert = compose_alert([make_record(message=evil, actor="<b>mallory</b>@contoso.example")])
    assert alert is not None
    subject, plain, html = to_email(alert)
    assert "\n" not in subject and "Acct1" in subject and "HIGH" in subject
    for text in (plain, html):
        assert RID in text
        assert "NET-DEFAULT-ACTION" in text
        assert "defaultAction Allow → Deny" in text
        assert "https://portal.azure.com/#resource" + RID in text
    assert evil in plain
    assert "<script>" not in html and "<b>mallory" not in html
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; &quot;quoted&quot;" in html
    assert f'<a href="https://portal.azure.com/#resource{RID}">' in html


# ---------------------------------------------------------------- fingerprint properties

_STATUSES = ["violation", "remediated", "remediation-failed", "remediation-suspended", "audit"]
_finding = st.tuples(
    st.sampled_from(["NET-DEFAULT-ACTION", "NET-IP-RULE", "NET-BYPASS", "NET-PUBLIC-ACCESS"]),
    st.one_of(st.none(), st.sampled_from(["Allow", "20.1.1.1", "10.0.0.0/8", "AzureServices", ""])),
    st.sampled_from(_STATUSES),
)


def _records(items: list[tuple[str, str | None, str]], seed: int) -> list[FindingRecord]:
    rnd = random.Random(seed)
    recs = [
        record(
            rule=rule,
            value=value,
            status=status,
            actor=rnd.choice(["jane@contoso.example", "app-123", None]),
            correlation_id=f"corr-{rnd.randrange(1000)}",
            time_generated=f"2026-01-{rnd.randrange(1, 28):02d}T10:00:00Z",
            message=f"message {rnd.randrange(1000)}",
        )
        for rule, value, status in items
    ]
    rnd.shuffle(recs)
    return recs


@given(st.lists(_finding, min_size=1, max_size=8), st.integers(0, 10_000), st.integers(0, 10_000))
def test_fingerprint_ignores_order_time_actor(
    items: list[tuple[str, str | None, str]], seed1: int, seed2: int
) -> None:
    assert fingerprint(_records(items, seed1)) == fingerprint(_records(items, seed2))
    # duplicates of the same finding do not change the set
    assert fingerprint(_records(items + items[:1], seed1)) == fingerprint(_records(items, seed2))


@given(st.lists(_finding, min_size=1, max_size=8, unique=True), _finding)
def test_fingerprint_changes_with_the_finding_set(
    items: list[tuple[str, str | None, str]], extra: tuple[str, str | None, str]
) -> None:
    classes = {"violation": "open", "audit": "open"}

    def key(item: tuple[str, str | None, str]) -> tuple[str, str | None, str]:
        return item[0], item[1], classes.get(item[2], item[2])

    base = fingerprint(_records(items, 1))
    if key(extra) in {key(i) for i in items}:
        assert fingerprint(_records([*items, extra], 2)) == base
    else:
        assert fingerprint(_records([*items, extra], 2)) != base
    if len({key(i) for i in items}) > 1:
        dropped = [i for i in items if key(i) != key(items[0])]
        assert fingerprint(_records(dropped, 3)) != base


def test_fingerprint_status_class_and_exemptions(make_record: MakeRecord) -> None:
    open_ = fingerprint([make_record(status="violation")])
    assert fingerprint([make_record(status="audit")]) == open_
    assert fingerprint([make_record(status="remediated")]) != open_
    assert fingerprint([make_record(status="violation"), make_record(rule="X", status="exempted")]) == open_
    assert fingerprint([make_record(value=None)]) != fingerprint([make_record(value="")])
    alert = compose_alert([make_record(status="violation")])
    assert alert is not None and alert.fingerprint == open_
    assert json.dumps(open_)  # a plain string key


def test_failed_or_audit_alerts_say_nothing_changed(make_record: MakeRecord) -> None:
    failed = compose_alert([make_record(status="remediation-failed", after=None)])
    audit = compose_alert([make_record(status="audit", mode="audit", after=None)])
    assert failed is not None and audit is not None
    assert failed.changes == () and failed.severity == "high"
    assert "nothing: remediation failed" in to_email(failed)[1]
    assert "nothing: audit mode" in to_email(audit)[1]
    assert audit.status_summary == "violation (audit mode)"


def test_fixes_outside_network_acls_are_named_in_what_changed(make_record: MakeRecord) -> None:
    same = {"defaultAction": "Deny", "bypass": "None", "ipRules": [], "virtualNetworkRules": []}
    recs = [
        make_record(
            rule="local-auth-enabled", severity="medium", status="remediated", before=same, after=same
        ),
        make_record(
            rule="public-network-access", severity="high", status="violation", before=same, after=None
        ),
    ]
    alert = compose_alert(recs)
    assert alert is not None
    assert alert.changes == ("disableLocalAuth → true (keys no longer accepted)",)  # not the unfixed one
    _, plain, html = to_email(alert)
    assert "disableLocalAuth → true" in plain and "disableLocalAuth → true" in html
