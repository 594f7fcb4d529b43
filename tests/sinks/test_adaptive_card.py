from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from guardrail.alerts import CARD_MAX_BYTES, card_size, compose_alert, to_adaptive_card
from guardrail.findings import FindingRecord
from guardrail_workbench.receivers import TeamsReceiver

from .cardcheck import validate_card, validate_teams_message
from .conftest import RID

MakeRecord = Callable[..., FindingRecord]
VNETS = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks"
# a copy of ../shared/contracts/alerts/teams_workflow_adaptive_card.json
SAMPLE = Path(__file__).parent / "data" / "teams_workflow_adaptive_card.json"


def _worst_case_records(make_record: MakeRecord) -> list[FindingRecord]:
    before: dict[str, Any] = {
        "defaultAction": "Allow",
        "bypass": "AzureServices",
        "ipRules": [{"value": f"20.{i // 250}.{i % 250}.0/24"} for i in range(100)],
        "virtualNetworkRules": [{"id": f"{VNETS}/vnet{i}/subnets/s"} for i in range(100)],
    }
    after = {"defaultAction": "Deny", "bypass": "None", "ipRules": [], "virtualNetworkRules": []}
    return [
        make_record(
            rule="ip-rule-too-broad",
            value=rule["value"],
            message="IP rule not allowed by policy: " + "x" * 300,
            before=before,
            after=after,
        )
        for rule in before["ipRules"]
    ]


def test_contract_sample_passes_the_validator() -> None:
    with open(SAMPLE, encoding="utf-8") as fh:
        assert validate_teams_message(json.load(fh)) == []


def test_card_is_valid_adaptive_card_1_4(make_record: MakeRecord) -> None:
    alert = compose_alert(
        [make_record(), make_record(rule="bypass-not-allowed", value="AzureServices", severity="medium")]
    )
    assert alert is not None
    message = to_adaptive_card(alert)
    assert validate_teams_message(message) == []
    card = message["attachments"][0]["content"]
    assert card["version"] == "1.4"
    assert card["body"][0]["type"] == "TextBlock" and "Acct1" in card["body"][0]["text"]
    facts = {f["title"]: f["value"] for f in card["body"][1]["facts"]}
    assert facts["Resource"] == RID
    assert facts["Changed by"] == "jane@contoso.example"
    assert facts["Correlation"] == "9a8b7c6d-5e4f-3a2b-1c0d-ffeeddccbbaa"
    assert card["actions"] == [
        {
            "type": "Action.OpenUrl",
            "title": "Open in portal",
            "url": "https://portal.azure.com/#resource" + RID,
        }
    ]
    text = json.dumps(card, ensure_ascii=False)
    assert "bypass-not-allowed" in text and "defaultAction Allow → Deny" in text


def test_card_stays_under_28kb_with_100_stripped_rules(make_record: MakeRecord) -> None:
    records = _worst_case_records(make_record)
    untruncated = sum(len(r.message) for r in records)
    assert untruncated > CARD_MAX_BYTES  # the input really is too big to send as is
    alert = compose_alert(records)
    assert alert is not None
    message = to_adaptive_card(alert)
    assert card_size(message) < CARD_MAX_BYTES
    assert validate_teams_message(message) == []
    text = json.dumps(message, ensure_ascii=False)
    assert "more" in text and "… and" in text
    assert "removed ipRules" in text


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda c: c.update(version="1.6"), "version"),
        (lambda c: c["body"].append({"type": "Table", "rows": []}), "Table"),
        (lambda c: c["body"][0].pop("text"), "TextBlock.text"),
        (lambda c: c["body"][0].update(size="Huge"), "size"),
        (lambda c: c["body"][0].update(wrapp=True), "wrapp"),
        (lambda c: c["body"][1]["facts"][0].pop("value"), "title and value"),
        (lambda c: c["actions"][0].pop("url"), "url"),
        (lambda c: c["actions"][0].update(url="/relative"), "absolute"),
        (lambda c: c["actions"].append({"type": "Action.Http", "url": "https://x"}), "Action.Http"),
    ],
)
def test_validator_rejects_broken_cards(
    make_record: MakeRecord, mutate: Callable[[Any], Any], expected: str
) -> None:
    alert = compose_alert([make_record()])
    assert alert is not None
    card = copy.deepcopy(to_adaptive_card(alert)["attachments"][0]["content"])
    assert validate_card(card) == []
    mutate(card)
    problems = validate_card(card)
    assert problems and any(expected in p for p in problems), problems


def test_validator_rejects_a_bad_envelope(make_record: MakeRecord) -> None:
    alert = compose_alert([make_record()])
    assert alert is not None
    message = to_adaptive_card(alert)
    wrong = copy.deepcopy(message)
    wrong["attachments"][0]["contentType"] = "application/vnd.microsoft.card.hero"
    assert validate_teams_message(wrong)
    assert validate_teams_message({"type": "message", "attachments": []})
    assert validate_teams_message(message["attachments"][0]["content"])


def test_card_size_counts_utf8_bytes_and_shrinks_until_it_fits(make_record: MakeRecord) -> None:
    # 400 CJK characters per message are 1,200 bytes each: the first cut (25 findings) is too big,
    # so the card must shrink further; measured in UTF-8 bytes, as Teams counts them.
    records = [
        make_record(rule="ip-rule-too-broad", value=f"20.0.{i}.1", message="网络访问规则" * 70)
        for i in range(100)
    ]
    alert = compose_alert(records)
    assert alert is not None
    message = to_adaptive_card(alert)
    raw = json.dumps(message, ensure_ascii=False).encode("utf-8")
    assert len(raw) < CARD_MAX_BYTES
    assert validate_teams_message(message) == []
    findings_text = message["attachments"][0]["content"]["body"][3]["text"]
    shown = findings_text.count("- ip-rule-too-broad ")
    assert 1 <= shown < 25
    assert f"… and {100 - shown} more" in findings_text


# -- user-controlled markdown (#11.4) --------------------------------------------------------------

EVIL_LINK = "[sign in](https://evil.example/login)"
# an account name and resource group can hold no "/", so these carry the rest of the markdown
EVIL_NAME = "[sign-in](javascript:alert(1))"
EVIL_RG = "**urgent**_<b>#1`x`"
EVIL_RID = (
    "/subscriptions/00000000-1111-2222-3333-444444444444/resourceGroups/"
    f"{EVIL_RG}/providers/Microsoft.CognitiveServices/accounts/{EVIL_NAME}"
)


def _evil_records(make_record: MakeRecord) -> list[FindingRecord]:
    before = {"defaultAction": "Allow", "ipRules": [{"value": EVIL_LINK}], "virtualNetworkRules": []}
    after = {"defaultAction": "Deny", "ipRules": [], "virtualNetworkRules": []}
    return [
        make_record(
            resource_id=EVIL_RID,
            actor=EVIL_LINK + "\n# forged heading",
            kind="<img src=x>",
            correlation_id=EVIL_LINK,
            event_id="![x](https://evil.example/pixel.png)",
            before=before,
            after=after,
        ),
        make_record(
            resource_id=EVIL_RID,
            rule="ip-rule-too-broad",
            value=EVIL_LINK,
            message=f"IP rule {EVIL_LINK} is *too* broad",
            before=before,
            after=after,
        ),
    ]


def test_user_controlled_markdown_reaches_teams_as_text(
    make_record: MakeRecord, teams_rx: TeamsReceiver, ca_bundle: str
) -> None:
    from guardrail.sinks import RetrySettings
    from guardrail.sinks.teams import TeamsSink

    from .cardcheck import card_texts, commonmark_unescape, links_of, markdown_problems

    alert = compose_alert(_evil_records(make_record))
    assert alert is not None
    sink = TeamsSink(teams_rx.webhook_url, ca_bundle=ca_bundle, retry=RetrySettings(attempts=1))
    assert sink.send_alert(alert).delivered
    (card,) = teams_rx.cards  # the card JSON as the local Teams receiver got it
    assert validate_card(card) == []
    texts = card_texts(card)
    assert [p for t in texts for p in markdown_problems(t)] == []
    # every piece is still there for a person to read, as text
    shown = "\n".join(commonmark_unescape(t) for t in texts)
    for piece in (EVIL_LINK, EVIL_NAME, EVIL_RG, "<img src=x>", "IP rule " + EVIL_LINK + " is *too* broad"):
        assert piece in shown
    assert EVIL_LINK + "\\n# forged heading" in shown  # the line break is shown, not obeyed
    # the only link is the portal URL the guardrail built, with the ID percent-encoded
    (link,) = links_of(card)
    assert link.startswith("https://portal.azure.com/#resource/subscriptions/")
    assert not set("[]()*<>#`") & set(link.split("#", 1)[1])
    assert "evil.example" not in link
    assert not any("://" in text for text in texts)  # no URL anywhere else, linked or not


def test_markdown_text_is_inert_and_reads_as_the_original() -> None:
    from hypothesis import given
    from hypothesis import strategies as st

    from guardrail.alerts import markdown_text
    from guardrail.escaping import escape_control

    from .cardcheck import commonmark_unescape, markdown_problems

    @given(st.text(alphabet=st.characters(codec="utf-8") | st.sampled_from(list("\\[]()*_`#<>:/\n"))))
    def check(text: str) -> None:
        escaped = markdown_text(text)
        assert markdown_problems(escaped) == []
        assert commonmark_unescape(escaped) == escape_control(text)

    check()


# A private endpoint ID and an allowedFqdnList entry are whatever the other side wrote (#14).
EVIL_ENDPOINT = (
    "/subscriptions/0badf00d-0000-4000-8000-00000000beef/resourceGroups/[x](javascript:alert(1))"
    "/providers/Microsoft.Network/privateEndpoints/**pe**<img src=x>"
)
EVIL_FQDN = "<b>exfil</b>.evil.example](https://evil.example/steal)\n# forged"


def _evil_outside_records(make_record: MakeRecord) -> list[FindingRecord]:
    return [
        make_record(rule="private-endpoint-not-allowed", value=EVIL_ENDPOINT, before=None, after=None),
        make_record(rule="outbound-fqdn-not-allowed", value=EVIL_FQDN, before=None, after=None),
    ]


def test_hostile_endpoint_ids_and_fqdns_in_what_changed_reach_teams_as_text(
    make_record: MakeRecord, teams_rx: TeamsReceiver, ca_bundle: str
) -> None:
    from guardrail.sinks import RetrySettings
    from guardrail.sinks.teams import TeamsSink

    from .cardcheck import card_texts, commonmark_unescape, links_of, markdown_problems

    alert = compose_alert(_evil_outside_records(make_record))
    assert alert is not None and any(EVIL_ENDPOINT in change for change in alert.changes)
    sink = TeamsSink(teams_rx.webhook_url, ca_bundle=ca_bundle, retry=RetrySettings(attempts=1))
    assert sink.send_alert(alert).delivered
    (card,) = teams_rx.cards
    assert validate_card(card) == []
    texts = card_texts(card)
    assert [p for t in texts for p in markdown_problems(t)] == []
    shown = "\n".join(commonmark_unescape(t) for t in texts)
    assert f"{EVIL_ENDPOINT} (subscription 0badf00d-0000-4000-8000-00000000beef)" in shown
    assert "<b>exfil</b>.evil.example](https://evil.example/steal)\\n# forged" in shown  # shown, not obeyed
    (link,) = links_of(card)
    assert "evil.example" not in link
    assert not any("://" in text for text in texts)


def test_hostile_endpoint_ids_and_fqdns_in_what_changed_are_escaped_in_email(make_record: MakeRecord) -> None:
    from guardrail.alerts import to_email

    alert = compose_alert(_evil_outside_records(make_record))
    assert alert is not None
    _, plain, html = to_email(alert)
    assert "<img" not in html and "<b>exfil" not in html
    assert "**pe**&lt;img src=x&gt;" in html and "&lt;b&gt;exfil&lt;/b&gt;.evil.example" in html
    assert "\n# forged" not in plain and "\\n# forged" in plain  # one line per change
