"""Event parsing against the real Event Grid / CloudEvents / Resource Notifications samples."""

from __future__ import annotations

import copy
import logging
import threading
import unicodedata
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from guardrail.escaping import escape_control
from guardrail.events import (
    MalformedEvent,
    account_id_of,
    actor_of,
    parse_event,
    resource_id_problem,
)
from guardrail_workbench.stack import LocalStack, as_function_event, function_handlers, user_claims
from tests.conftest import load_contract
from tests.functions.conftest import RG, account_id, cards_for, open_account, settle, unique
from tests.sinks.cardcheck import card_texts, commonmark_unescape, links_of, markdown_problems

ACCOUNT = (
    "/subscriptions/00000000-1111-2222-3333-444444444444/resourceGroups/rg1/providers/"
    "Microsoft.CognitiveServices/accounts/acct1"
)


def _one(relative: str) -> dict[str, Any]:
    body = load_contract(relative)
    return copy.deepcopy(body[0] if isinstance(body, list) else body)


@pytest.mark.parametrize(
    "sample",
    [
        "events/derived_cogsvc_ResourceWriteSuccess.eventgrid.json",
        "events/derived_cogsvc_ResourceWriteSuccess.cloudevents.json",
    ],
)
def test_write_success_in_both_schemas_names_account_actor_and_correlation(sample: str) -> None:
    event = parse_event(_one(sample))
    assert event.relevant
    assert event.account_id == ACCOUNT
    assert event.actor == "jane@contoso.example"
    assert event.correlation_id == "9a8b7c6d-5e4f-3a2b-1c0d-ffeeddccbbaa"
    assert event.event_id == "5f0b7c1e-1d2c-4e59-9a11-3c1d2b3a4e5f"
    assert event.event_time is not None and event.event_time.year == 2026
    assert event.schema == ("cloudevents" if "cloudevents" in sample else "eventgrid")


@pytest.mark.parametrize(
    "sample",
    [
        "events/derived_arn_CreatedOrUpdated.eventgrid.json",
        "events/derived_arn_CreatedOrUpdated.cloudevents.json",
    ],
)
def test_resource_notification_carries_the_full_account(sample: str) -> None:
    event = parse_event(_one(sample))
    assert event.relevant
    assert event.account_id == ACCOUNT
    assert event.resource is not None
    assert event.resource["properties"]["networkAcls"]["defaultAction"] == "Allow"


@pytest.mark.parametrize(
    ("sample", "reason"),
    [
        (
            "events/derived_cogsvc_ResourceDeleteSuccess.eventgrid.json",
            "event type Microsoft.Resources.ResourceDeleteSuccess needs no check",
        ),
        (
            "events/derived_cogsvc_ResourceWriteFailure.eventgrid.json",
            "event type Microsoft.Resources.ResourceWriteFailure needs no check",
        ),
        (
            "events/derived_arn_Deleted.eventgrid.json",
            "event type Microsoft.ResourceNotifications.Resources.Deleted needs no check",
        ),
        (
            "events/docs_ResourceWriteSuccess.eventgrid.json",
            "not a Microsoft.CognitiveServices account: /subscriptions/{subscription-id}/resourcegroups/"
            "{resource-group}/providers/Microsoft.Storage/storageAccounts/{storage-name}",
        ),
        (
            "events/docs_ResourceActionSuccess.eventgrid.json",
            "not a Microsoft.CognitiveServices account: /subscriptions/{subscription-id}/resourceGroups/"
            "{resource-group}/providers/Microsoft.EventHub/namespaces/{namespace}/AuthorizationRules/"
            "RootManageSharedAccessKey",
        ),
        (
            "events/docs_arn_CreatedOrUpdated_storage.eventgrid.json",
            "not a Microsoft.CognitiveServices account: /subscriptions/{subscription-id}/resourceGroups/"
            "{rg-name}/providers/Microsoft.Storage/storageAccounts/{storageAccount-name}",
        ),
    ],
)
def test_other_events_are_not_relevant_and_say_why_at_info(sample: str, reason: str) -> None:
    event = parse_event(_one(sample))
    assert not event.relevant
    assert event.ignore_reason() == reason
    assert event.ignore_level == logging.INFO


@pytest.mark.parametrize(
    ("child", "expected"),
    [
        (ACCOUNT + "/deployments/gpt-4o", ACCOUNT),
        (ACCOUNT + "/privateEndpointConnections/pe1", ACCOUNT),
        (ACCOUNT.upper() + "/projects/p/connections/c", ACCOUNT.upper()),
        (ACCOUNT, ACCOUNT),
        (ACCOUNT + "/", ACCOUNT),
        ("/subscriptions/x/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/s", None),
        ("/subscriptions/x/resourceGroups/rg/providers/Microsoft.CognitiveServices/commitmentPlans/c", None),
    ],
)
def test_child_resources_map_to_their_account(child: str, expected: str | None) -> None:
    assert account_id_of(child) == expected


def test_child_resource_write_event_is_relevant_for_the_account() -> None:
    payload = _one("events/derived_cogsvc_ResourceWriteSuccess.eventgrid.json")
    child = ACCOUNT + "/deployments/gpt-4o"
    payload["subject"] = child
    payload["data"]["resourceUri"] = child
    payload["data"]["operationName"] = "Microsoft.CognitiveServices/accounts/deployments/write"
    event = parse_event(payload)
    assert event.relevant and event.account_id == ACCOUNT


def test_actor_prefers_upn_then_service_principal_app_then_principal() -> None:
    data = _one("events/derived_cogsvc_ResourceWriteSuccess.eventgrid.json")["data"]
    assert actor_of(data) == "jane@contoso.example"
    del data["claims"]["http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn"]
    assert actor_of(data) == "principal:11111111222233334444555555555555"
    data["authorization"]["evidence"]["principalType"] = "ServicePrincipal"
    assert actor_of(data) == "app:04b07795-8ddb-461a-bbee-02f9e1bf7b46"
    assert actor_of({}) is None


@pytest.mark.parametrize(
    ("payload", "problem"),
    [
        ([], "JSON object"),
        ({"eventType": "Microsoft.Resources.ResourceWriteSuccess", "data": {}}, "'id'"),
        ({"id": "e1", "data": {}, "subject": ACCOUNT}, "'eventType'"),
        ({"id": "e1", "eventType": "Microsoft.Resources.ResourceWriteSuccess", "data": "x"}, "'data'"),
        ({"id": "e1", "specversion": "1.0", "data": {}, "subject": ACCOUNT}, "'type'"),
        ({"id": "e1", "eventType": "Microsoft.Resources.ResourceWriteSuccess", "data": {}}, "no resource ID"),
    ],
)
def test_malformed_events_raise_an_error_naming_the_problem(payload: object, problem: str) -> None:
    with pytest.raises(MalformedEvent, match=problem):
        parse_event(payload)


def test_event_type_literals_are_the_sdks_system_event_names() -> None:
    from azure.eventgrid import SystemEventNames

    from guardrail import events

    assert SystemEventNames.ResourceWriteSuccessEventName.value == events.WRITE_SUCCESS
    assert (
        SystemEventNames.ResourceNotificationsResourceManagementCreatedOrUpdatedEventName.value
        == events.NOTIFICATION_UPSERT
    )


def test_parsing_events_does_not_import_the_event_grid_sdk() -> None:
    import subprocess
    import sys

    code = (
        "import sys, guardrail.events, guardrail.service, guardrail.functions; "
        "print(sorted(m for m in sys.modules if m.startswith('azure.eventgrid')))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


# ---------------------------------------------------------------- malformed subjects (#11.3)

PROVIDER = "/providers/Microsoft.CognitiveServices/accounts/"
MALFORMED = {
    "dot-dot segments": "/subscriptions/../resourceGroups/.." + PROVIDER + "x",
    "account '..'": ACCOUNT.rsplit("/", 1)[0] + "/..",
    "account '.'": ACCOUNT.rsplit("/", 1)[0] + "/.",
    "empty segment": ACCOUNT.replace("/resourceGroups/", "/resourceGroups//"),
    "empty account name": ACCOUNT.rsplit("/", 1)[0] + "//",
    "NUL": ACCOUNT + "\x00",
    "escape sequence": ACCOUNT.replace("acct1", "acct1\x1b[2J"),
    "newline forging a log line": ACCOUNT + "\nERROR guardrail: forged line",
    "carriage return": ACCOUNT.replace("rg1", "rg1\r"),
    "line separator": ACCOUNT + "\u2028x",
    "bidi override": ACCOUNT.replace("acct1", "acct\u202e1"),
    "encoded slash": ACCOUNT.replace("/accounts/", "/accounts%2F"),
    "encoded dot-dot": ACCOUNT + "/%2e%2e",
    "double encoding": ACCOUNT.replace("acct1", "acct%252f1"),
    "backslash": ACCOUNT.replace("/accounts/acct1", "/accounts\\acct1"),
    "query": ACCOUNT + "?api-version=2099-01-01",
    "fragment": ACCOUNT + "#x",
    "a URL inside the ID": ACCOUNT + "://evil.example/x",
    "space": ACCOUNT.replace("acct1", "acct 1"),
    "child without a name": ACCOUNT + "/privateEndpointConnections",
    "no subscription": PROVIDER + "x",
    "no leading slash": ACCOUNT[1:],
    "accounts of the wrong parent": "/subscriptions/s" + PROVIDER + "x",
}


def _write_event(subject: str, event_id: str = "evt-odd-1") -> dict[str, object]:
    payload = _one("events/derived_cogsvc_ResourceWriteSuccess.eventgrid.json")
    payload["id"] = event_id
    payload["subject"] = subject
    payload["data"]["resourceUri"] = subject
    return payload


@pytest.mark.parametrize("subject", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_subjects_are_rejected_at_warning_with_escaped_reason(subject: str) -> None:
    assert resource_id_problem(subject) is not None
    assert account_id_of(subject) is None
    event = parse_event(_write_event(subject))
    assert not event.relevant and event.account_id is None
    assert event.ignore_level == logging.WARNING
    reason = event.ignore_reason()
    assert reason.startswith("rejected: ")
    assert _printable(reason)


@pytest.mark.parametrize(
    ("resource_id", "account"),
    [
        (ACCOUNT, ACCOUNT),
        (ACCOUNT + "/", ACCOUNT),
        (ACCOUNT + "/privateEndpointConnections/pe1.5d1c-8a2e", ACCOUNT),
        (ACCOUNT + "/projects/p/connections/c", ACCOUNT),
        (ACCOUNT + "/providers/Microsoft.Insights/diagnosticSettings/guardrail-audit", ACCOUNT),
        (ACCOUNT.replace("rg1", "rg_(prod).eu-1"), ACCOUNT.replace("rg1", "rg_(prod).eu-1")),
    ],
)
def test_well_formed_account_ids_and_children_are_accepted(resource_id: str, account: str) -> None:
    assert resource_id_problem(resource_id) is None
    assert account_id_of(resource_id) == account
    event = parse_event(_write_event(resource_id))
    assert event.relevant and event.account_id == account


def test_a_resource_notification_with_a_malformed_resource_info_id_is_rejected() -> None:
    payload = _one("events/derived_arn_CreatedOrUpdated.eventgrid.json")
    payload["data"]["resourceInfo"]["id"] = ACCOUNT + "/../../accounts/other"
    event = parse_event(payload)
    assert not event.relevant and event.ignore_level == logging.WARNING


def test_a_url_subject_is_ignored_at_info() -> None:
    event = parse_event(_write_event("https://evil.example/subscriptions/x" + PROVIDER + "x"))
    assert not event.relevant and event.ignore_level == logging.INFO
    assert event.ignore_reason().startswith("not a Microsoft.CognitiveServices account: https://")


def test_an_event_id_with_control_characters_is_malformed_and_its_message_escaped() -> None:
    with pytest.raises(MalformedEvent) as caught:
        parse_event(_write_event(ACCOUNT, event_id="e1\nforged"))
    assert "control characters" in str(caught.value) and _printable(str(caught.value))


def _printable(text: str) -> bool:
    return not any(unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") for ch in text)


@given(st.text())
def test_escaped_text_has_no_control_characters_and_safe_text_is_unchanged(text: str) -> None:
    escaped = escape_control(text)
    assert _printable(escaped)
    if _printable(text):
        assert escaped == text


# -- end to end: the function app against the emulator --------------------------------------


@pytest.fixture
def all_logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    with caplog.at_level(logging.DEBUG):
        yield caplog


def _of_this_delivery(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    """Every record of the delivery: from this thread (the handler runs in it), any logger, and
    the guardrail's and the local stack's from any thread. Not a daemon thread an earlier test
    left behind (an SDK poller logging its own multi-line HTTP traces)."""
    me = threading.get_ident()
    return [r for r in caplog.records if r.thread == me or r.name.split(".")[0].startswith("guardrail")]


@pytest.mark.parametrize("subject", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_subject_end_to_end_no_arm_request_one_warning_clean_logs(
    stack: LocalStack, all_logs: pytest.LogCaptureFixture, subject: str
) -> None:
    # a real account of that name exists, so a request that got through would find something
    name = unique("odd")
    stack.emulator.put_account({"name": name, **open_account(name)}, account_id(name))
    event_id = unique("evt-odd")
    payload = _write_event(subject.replace("acct1", name), event_id)
    requests_before = stack.emulator.app.request_count
    function_handlers()["on_resource_write"](as_function_event(payload))
    settle(stack)
    assert stack.emulator.app.request_count == requests_before  # no request reached ARM
    records = _of_this_delivery(all_logs)
    warnings = [r for r in records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]
    assert warnings[0].levelno == logging.WARNING and event_id in warnings[0].getMessage()
    for record in records:
        line = all_logs.handler.format(record)
        assert _printable(line), line


@pytest.mark.parametrize(
    "sample",
    [
        "events/derived_cogsvc_ResourceDeleteSuccess.eventgrid.json",
        "events/derived_cogsvc_ResourceWriteFailure.eventgrid.json",
        "events/docs_ResourceWriteSuccess.eventgrid.json",
        "events/docs_ResourceActionSuccess.eventgrid.json",
    ],
)
def test_ignored_events_are_logged_once_at_info_with_the_reason(
    stack: LocalStack, all_logs: pytest.LogCaptureFixture, sample: str
) -> None:
    payload = _one(sample)
    payload["id"] = unique("evt-ignored")
    requests_before = stack.emulator.app.request_count
    function_handlers()["on_resource_write"](as_function_event(payload))
    assert stack.emulator.app.request_count == requests_before
    lines = [r for r in _of_this_delivery(all_logs) if payload["id"] in r.getMessage()]
    assert [r.levelno for r in lines] == [logging.INFO]
    assert lines[0].getMessage() == f"ignoring event {payload['id']}: {parse_event(payload).ignore_reason()}"


def test_an_actor_with_markdown_reaches_the_teams_card_as_text(stack: LocalStack) -> None:
    """#11.4 through the whole function app: a user whose UPN is a markdown link opens an account;
    the card the local Teams receiver got shows the UPN as text and links only to the portal."""
    evil = "[sign in](https://evil.example/login)"
    name = unique("markdown")
    rid = account_id(name)
    client = stack.client_for(user_claims(evil + "@contoso.example"), rid.split("/")[2])
    client.accounts.begin_create(RG, name, open_account(name)).result()
    settle(stack)
    (card,) = cards_for(stack, rid)  # the card JSON the local Teams receiver got
    texts = card_texts(card)
    assert [problem for text in texts for problem in markdown_problems(text)] == []
    assert any(evil in commonmark_unescape(text) for text in texts)  # shown, as text
    assert links_of(card) == [f"https://portal.azure.com/#resource{rid}"]
