from __future__ import annotations

from collections.abc import Callable

import pytest

from guardrail.alerts import compose_alert, summarize_acl_change, to_email
from guardrail.findings import FindingRecord

from .conftest import RID

VNETS = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks"
MakeRecord = Callable[..., FindingRecord]


def test_no_alert_without_active_findings(make_record: MakeRecord) -> None:
    assert compose_alert([]) is None
    assert (
        compose_alert(
            [make_record(status="exempted"), make_record(status="exempted", rule="ip-rule-too-broad")]
        )
        is None
    )


def test_one_alert_per_account_with_max_severity(make_record: MakeRecord) -> None:
    recs = [
        make_record(rule="custom-subdomain-missing", severity="low"),
        make_record(rule="public-network-access", severity="high", status="violation"),
        make_record(rule="ip-rule-not-public", severity="critical", status="exempted"),
    ]
    alert = compose_alert(recs)
    assert alert is not None
    assert alert.severity == "high"  # the exempted critical one does not count
    assert [f.rule for f in alert.findings] == ["public-network-access", "custom-subdomain-missing"]
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


def test_records_of_two_accounts_are_refused(make_record: MakeRecord) -> None:
    other = RID.replace("Acct1", "Acct2")
    with pytest.raises(ValueError, match="2 accounts"):
        compose_alert([make_record(), make_record(resource_id=other)])
    # the same account in another case is one account
    alert = compose_alert([make_record(), make_record(resource_id=RID.upper(), rule="bypass-not-allowed")])
    assert alert is not None and len(alert.findings) == 2


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
        assert "default-action-deny" in text
        assert "defaultAction Allow → Deny" in text
        assert "https://portal.azure.com/#resource" + RID in text
    assert evil in plain
    assert "<script>" not in html and "<b>mallory" not in html
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; &quot;quoted&quot;" in html
    assert f'<a href="https://portal.azure.com/#resource{RID}">' in html


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


PE_OURS_SUB = "0a0a0a0a-1111-4111-8111-000000000001"
FOREIGN_SUB = "0badf00d-0000-4000-8000-00000000beef"


def _pe(sub: str, name: str) -> str:
    return f"/subscriptions/{sub}/resourceGroups/rg-pe/providers/Microsoft.Network/privateEndpoints/{name}"


def test_private_endpoint_rejections_and_fqdn_strips_are_named_in_what_changed(
    make_record: MakeRecord,
) -> None:
    """#14: the alert names each rejected private endpoint (its ID and its subscription) and each
    stripped allowedFqdnList entry, from the records; what was not fixed is not named."""
    first, second, failed = _pe(FOREIGN_SUB, "pe-x"), _pe(FOREIGN_SUB, "pe-y"), _pe(FOREIGN_SUB, "pe-z")
    recs = [
        make_record(rule="private-endpoint-not-allowed", value=first, before=None, after=None),
        make_record(rule="private-endpoint-not-allowed", value=second, before=None, after=None),
        make_record(rule="private-endpoint-not-allowed", value=first, before=None, after=None),  # twice
        make_record(
            rule="private-endpoint-not-allowed", value=failed, status="violation", before=None, after=None
        ),
        make_record(rule="private-endpoint-not-allowed", value="not-an-id", before=None, after=None),
        make_record(rule="outbound-fqdn-not-allowed", value="exfil.evil.example", before=None, after=None),
        make_record(rule="outbound-fqdn-not-allowed", value="EVIL.example", before=None, after=None),
    ]
    alert = compose_alert(recs)
    assert alert is not None
    assert alert.changes == (
        "private endpoint connections rejected (status Rejected): "
        f"{first} (subscription {FOREIGN_SUB}); {second} (subscription {FOREIGN_SUB}); "
        "not-an-id (not a private endpoint resource ID)",
        "removed allowedFqdnList exfil.evil.example, EVIL.example",
    )
    _, plain, html = to_email(alert)
    for text in (plain, html):
        assert f"{first} (subscription {FOREIGN_SUB})" in text and "exfil.evil.example" in text


def test_a_long_list_of_stripped_fqdns_is_cut_short_in_the_card(make_record: MakeRecord) -> None:
    from guardrail.alerts import to_adaptive_card

    recs = [
        make_record(rule="outbound-fqdn-not-allowed", value=f"host{i}.evil.example", before=None, after=None)
        for i in range(40)
    ]
    alert = compose_alert(recs)
    assert alert is not None and alert.changes[0].endswith("host39.evil.example")  # all, untruncated
    body = to_adaptive_card(alert)["attachments"][0]["content"]["body"]
    (changed,) = [block["text"] for block in body if "allowedFqdnList" in block.get("text", "")]
    assert changed.endswith("host9.evil.example … and 30 more") and "host10." not in changed
