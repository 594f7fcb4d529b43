"""Event parsing against the real Event Grid / CloudEvents / Resource Notifications samples."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from guardrail.events import MalformedEvent, account_id_of, actor_of, parse_event
from tests.conftest import load_contract

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
    "sample",
    [
        "events/derived_cogsvc_ResourceDeleteSuccess.eventgrid.json",
        "events/derived_cogsvc_ResourceWriteFailure.eventgrid.json",
        "events/derived_arn_Deleted.eventgrid.json",
        "events/docs_ResourceWriteSuccess.eventgrid.json",  # a storage account
        "events/docs_ResourceActionSuccess.eventgrid.json",
        "events/docs_arn_CreatedOrUpdated_storage.eventgrid.json",
    ],
)
def test_other_events_are_not_relevant(sample: str) -> None:
    event = parse_event(_one(sample))
    assert not event.relevant
    assert event.ignore_reason()


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
