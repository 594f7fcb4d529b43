"""The demo report's pieces (issue 16): the properties shown before → after, "still open to all
networks" for the breaker, and card lines that do not repeat their value."""

from __future__ import annotations

from guardrail_workbench.report import before_after, governed, is_open, summary_rows, without_repeated_value

OPEN = {"properties": {"publicNetworkAccess": "Enabled", "disableLocalAuth": False}}
FIXED = {
    "properties": {
        "publicNetworkAccess": "Enabled",
        "disableLocalAuth": True,
        "networkAcls": {"defaultAction": "Deny", "bypass": "None", "ipRules": [{"value": "52.1.1.0/24"}]},
    }
}


def test_open_means_public_access_without_default_deny() -> None:
    assert is_open(OPEN) and not is_open(FIXED)
    assert not is_open({"properties": {"publicNetworkAccess": "Disabled"}})
    allow = {"properties": {"networkAcls": {"defaultAction": "Allow"}}}
    assert is_open(allow)


def test_before_after_shows_network_acls_and_the_other_properties() -> None:
    rows = dict(governed(FIXED))
    assert rows["defaultAction"] == "Deny" and rows["ipRules"] == "52.1.1.0/24"
    assert rows["local (key) auth"] == "disabled"
    assert dict(governed(OPEN))["networkAcls"] == "absent: every network allowed"
    table = before_after(OPEN, FIXED)
    assert "<s>enabled</s> → <b>disabled</b>" in table
    # networkAcls absent → its four fields, and local auth: every row but publicNetworkAccess changed
    assert table.count("<tr") == 7 and table.count('class="changed"') == 6


def test_a_card_line_does_not_repeat_its_value() -> None:
    line = "default-action-deny (high, remediated): defaultAction Allow: every network is allowed [Allow]"
    assert without_repeated_value(line).endswith("every network is allowed")
    other = "vnet-rule-not-allowed (high): a subnet outside the policy [/subscriptions/x/subnets/s1]"
    assert without_repeated_value(other) == other  # the value says something the message does not


def test_summary_labels_are_words_not_json_keys() -> None:
    summary = {
        "accounts": 5,
        "finding_records": 3,
        "remediated": 2,
        "failed": 0,
        "suspended": 1,
        "breaker_trips": 1,
        "exempted_accounts": 0,
        "event_latency_p50_ms": 50.0,
        "event_latency_p99_ms": 90.0,
        "private_endpoints_rejected": 1,
        "fqdns_stripped": 2,
        "teams_cards": 2,
        "emails": 2,
        "monitor_records": 3,
        "seconds": 4.2,
    }
    labels = [label for label, _ in summary_rows(summary)]
    assert all("_" not in label for label in labels)
    assert ("event → verified fix, median", "50.0 ms") in summary_rows(summary)
    assert ("outbound FQDNs stripped", "2") in summary_rows(summary)


def test_the_report_shows_card_texts_as_teams_renders_them_not_their_escapes() -> None:
    from guardrail.alerts import markdown_text
    from guardrail_workbench.report import card_parts, without_repeated_value

    line = "defaultAction is Allow (high, remediated) [Allow]"
    card = {
        "attachments": [
            {
                "content": {
                    "body": [
                        {
                            "type": "TextBlock",
                            "text": markdown_text("Guardrail: [sign in](https://x.example)"),
                        },
                        {"type": "TextBlock", "text": "- " + markdown_text(line)},
                        {
                            "type": "FactSet",
                            "facts": [{"title": "Changed by", "value": markdown_text("a_b*c")}],
                        },
                    ]
                }
            }
        ]
    }
    part = card_parts(card)
    assert part["title"] == "Guardrail: [sign in](https://x.example)"
    assert part["lines"] == ["- " + line] and part["facts"] == {"Changed by": "a_b*c"}
    assert without_repeated_value(part["lines"][0][2:]) == "defaultAction is Allow (high, remediated)"


SUB = "0badf00d-0000-4000-8000-00000000beef"
PE = f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.Network/privateEndpoints/pe-1"
KB = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.CognitiveServices/accounts/kb"


def _kb(status: str, fqdns: list[str]) -> dict[str, object]:
    connection = {
        "properties": {"privateEndpoint": {"id": PE}, "privateLinkServiceConnectionState": {"status": status}}
    }
    props = {**FIXED["properties"], "privateEndpointConnections": [connection]}
    return {
        "id": KB,
        "properties": {**props, "restrictOutboundNetworkAccess": True, "allowedFqdnList": fqdns},
    }


def test_before_after_shows_private_endpoints_and_outbound_only_where_an_account_has_them() -> None:
    table = before_after(_kb("Approved", ["a.example", "exfil.example"]), _kb("Rejected", ["a.example"]))
    assert "<s>0badf00d…/pe-1: Approved</s> → <b>0badf00d…/pe-1: Rejected</b>" in table
    assert "<s>only to a.example, exfil.example</s> → <b>only to a.example</b>" in table
    assert "private endpoints" not in before_after(OPEN, FIXED) and "outbound" not in before_after(
        OPEN, FIXED
    )


def test_door_fixes_say_what_the_account_holds_at_the_end() -> None:
    from types import SimpleNamespace

    from guardrail.findings import FindingRecord
    from guardrail_workbench.report import door_fixes, door_words

    def record(rule: str, value: str, status: str = "remediated") -> FindingRecord:
        return FindingRecord.create(
            resource_id=KB, rule=rule, severity="high", status=status, message="m", correlation_id="c",
            trigger="event", mode="enforce", value=value,
        )  # fmt: skip

    outcome = SimpleNamespace(
        records=[
            record("private-endpoint-not-allowed", PE),
            record("outbound-fqdn-not-allowed", "exfil.example"),
            record("outbound-fqdn-not-allowed", "other.example", "violation"),  # not fixed: not told
        ]
    )
    entries = [
        SimpleNamespace(outcome=outcome, latency=0.042),
        SimpleNamespace(outcome=outcome, latency=0.09),
    ]
    fixes = door_fixes(entries, {KB.lower(): _kb("Rejected", ["a.example"])})
    assert [(f.rule, f.value, f.now, f.kept) for f in fixes] == [
        ("private-endpoint-not-allowed", PE, "Rejected", ("a.example",)),
        ("outbound-fqdn-not-allowed", "exfil.example", "not listed", ("a.example",)),
    ]
    assert door_words(fixes[0]) == (
        f"kb: private endpoint 0badf00d…/pe-1 (subscription {SUB}) rejected and verified 42 ms after it "
        "was approved; now Rejected"
    )
    assert door_words(fixes[1]).endswith("verified 42 ms after the change; still allowed: a.example")
