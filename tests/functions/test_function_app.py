"""The function app as the Functions host sees it: indexed through azure-functions' own
`get_functions()`, invoked with real `func.EventGridEvent` / `func.CloudEvent` objects (made by the
library's own converter) built from the contract samples, against the emulator, Azurite and the
local receivers."""

from __future__ import annotations

import copy
import json
import logging
from collections.abc import Callable
from typing import Any

import azure.functions as func
import pytest
from azure.functions.timer import TimerRequest

from guardrail_workbench.queuehost import QueueHost
from guardrail_workbench.stack import LocalStack, as_function_event, indexed_functions
from tests.conftest import load_contract
from tests.functions.conftest import (
    RG,
    SUB_A,
    account_id,
    cards_for,
    guardrail_writes,
    records_for,
    settle,
    unique,
)

Handlers = dict[str, Callable[..., Any]]


def test_functions_are_indexed_with_their_triggers() -> None:
    functions = {f.get_function_name(): f for f in indexed_functions()}
    assert set(functions) == {
        "on_resource_write",
        "on_resource_notification",
        "reconcile_sweep",
        "sweep_slice",
        "sweep_poison",
        "health",
    }
    for name in ("on_resource_write", "on_resource_notification"):
        (binding,) = functions[name].get_bindings()
        assert binding.type == "eventGridTrigger" and binding.name == "event"
    timer = json.loads(functions["reconcile_sweep"].get_function_json())["bindings"][0]
    assert timer["type"] == "timerTrigger"
    assert timer["schedule"] == "0 0 */6 * * *"
    assert timer["runOnStartup"] is False
    http = json.loads(functions["health"].get_function_json())["bindings"]
    assert {b["type"] for b in http} == {"httpTrigger", "http"}
    trigger = next(b for b in http if b["type"] == "httpTrigger")
    assert trigger["route"] == "health" and trigger["methods"] == ["GET"]
    assert trigger["authLevel"] == "FUNCTION"


def _contract_event(relative: str, resource_id: str) -> dict[str, Any]:
    body = load_contract(relative)
    event = copy.deepcopy(body[0] if isinstance(body, list) else body)
    event["id"] = unique("evt")
    event["subject"] = resource_id
    data = event["data"]
    if "resourceUri" in data:
        data["resourceUri"] = resource_id
        data["authorization"]["scope"] = resource_id
    if "resourceInfo" in data:
        data["resourceInfo"]["id"] = resource_id
        data["resourceInfo"]["name"] = resource_id.rsplit("/", 1)[-1]
    return event


@pytest.mark.parametrize(
    "sample",
    [
        "events/derived_cogsvc_ResourceWriteSuccess.eventgrid.json",
        "events/derived_cogsvc_ResourceWriteSuccess.cloudevents.json",
    ],
)
def test_contract_write_event_remediates_the_account(
    stack: LocalStack, handlers: Handlers, sample: str
) -> None:
    name = unique("contract")
    rid = account_id(name)
    stack.emulator.put_account({"name": name, **_open(name)}, rid)
    event = as_function_event(_contract_event(sample, rid))
    assert isinstance(event, func.CloudEvent if "cloudevents" in sample else func.EventGridEvent)

    handlers["on_resource_write"](event)
    settle(stack)

    acls = stack.emulator.account(rid)["properties"]["networkAcls"]
    assert acls["defaultAction"] == "Deny" and acls["bypass"] == "None"
    assert guardrail_writes(stack, rid) == 1
    statuses = {(r["Rule"], r["Status"]) for r in records_for(stack, rid)}
    assert ("default-action-deny", "remediated") in statuses
    assert ("bypass-not-allowed", "remediated") in statuses
    actors = {r["Actor"] for r in records_for(stack, rid) if r["Status"] == "remediated"}
    assert actors == {"jane@contoso.example"}  # who made the change, from the event's claims
    assert len(cards_for(stack, rid)) == 1


def _open(name: str) -> dict[str, Any]:
    return {
        "kind": "AIServices",
        "location": "eastus",
        "sku": {"name": "S0"},
        "properties": {
            "customSubDomainName": name,
            "publicNetworkAccess": "Enabled",
            "disableLocalAuth": True,
            "networkAcls": {"defaultAction": "Allow", "bypass": "AzureServices", "ipRules": []},
        },
    }


def test_compliant_resource_notification_finishes_without_reading_arm(
    stack: LocalStack, handlers: Handlers
) -> None:
    rid = account_id(unique("notified"))  # not in the emulator: any read would 404 → "gone"
    event = _contract_event("events/derived_arn_CreatedOrUpdated.eventgrid.json", rid)
    props = event["data"]["resourceInfo"]["properties"]
    props["networkAcls"] = {
        "defaultAction": "Deny",
        "bypass": "None",
        "ipRules": [],
        "virtualNetworkRules": [],
    }
    props["disableLocalAuth"] = True
    reads = stack.emulator.faults.add(resource_id=rid, method="GET", status=500, times=None)
    try:
        handlers["on_resource_notification"](as_function_event(event))
    finally:
        reads.times = reads.fired  # exhausted: no longer fires
    assert reads.fired == 0


def test_noncompliant_resource_notification_reads_fresh_state(stack: LocalStack, handlers: Handlers) -> None:
    name = unique("stale")
    rid = account_id(name)
    # ARM says the account is already locked down; the (late) notification says it is open.
    body = _open(name)
    body["properties"]["networkAcls"] = {"defaultAction": "Deny", "bypass": "None", "ipRules": []}
    stack.emulator.put_account({"name": name, **body}, rid)
    event = _contract_event("events/derived_arn_CreatedOrUpdated.eventgrid.json", rid)
    handlers["on_resource_notification"](as_function_event(event))
    settle(stack)
    assert guardrail_writes(stack, rid) == 0  # an event alone never decides a write


def test_malformed_and_irrelevant_events_are_dropped_without_crashing(
    stack: LocalStack, handlers: Handlers, caplog: pytest.LogCaptureFixture
) -> None:
    # Every event below names an open account in a seeded subscription (or a storage account
    # beside it): a write could happen if the guardrail handled any of them, and none may.
    name = unique("ignored")
    rid = account_id(name)
    stack.emulator.put_account({"name": name, **_open(name)}, rid)
    storage = f"/subscriptions/{SUB_A}/resourceGroups/{RG}/providers/Microsoft.Storage/storageAccounts/st1"
    before = len(stack.emulator.events)
    malformed = as_function_event({"id": "bad-1", "eventType": "Microsoft.Resources.ResourceWriteSuccess"})
    with caplog.at_level(logging.INFO, logger="guardrail"):
        handlers["on_resource_write"](malformed)
    assert any("bad-1" in r.getMessage() and r.levelno >= logging.ERROR for r in caplog.records)
    for sample, target in (
        ("events/docs_ResourceWriteSuccess.eventgrid.json", storage),
        ("events/derived_cogsvc_ResourceDeleteSuccess.eventgrid.json", rid),
        ("events/derived_cogsvc_ResourceWriteFailure.eventgrid.json", rid),
        ("events/docs_ResourceActionSuccess.eventgrid.json", rid + "/listKeys"),
    ):
        event = _contract_event(sample, target)
        handlers["on_resource_write"](as_function_event(event))
    settle(stack)
    assert len(stack.emulator.events) == before  # nothing was written
    assert stack.emulator.account(rid)["properties"]["networkAcls"]["defaultAction"] == "Allow"
    assert records_for(stack, rid) == []


def test_repeated_delivery_of_one_event_alerts_once(stack: LocalStack, handlers: Handlers) -> None:
    name = unique("twice")
    rid = account_id(name)
    stack.emulator.put_account({"name": name, **_open(name)}, rid)
    event = _contract_event("events/derived_cogsvc_ResourceWriteSuccess.eventgrid.json", rid)
    handlers["on_resource_write"](as_function_event(event))
    settle(stack)
    # Somebody re-opens it between deliveries; the same event id arrives again.
    stack.emulator.put_account({"name": name, **_open(name)}, rid)
    handlers["on_resource_write"](as_function_event(event))
    settle(stack)
    assert guardrail_writes(stack, rid) == 2  # the fresh read decides: it is repaired again
    assert len(cards_for(stack, rid)) == 1  # but the repeated event id alerts once


def test_health_reports_version_and_no_secrets(stack: LocalStack, handlers: Handlers) -> None:
    request = func.HttpRequest(method="GET", url="/api/health", body=b"")
    response = handlers["health"](request)
    assert response.status_code == 200
    body = json.loads(response.get_body())
    assert body["version"] and body["mode"] == "enforce" and body["status"] == "ok"
    text = response.get_body().decode()
    assert stack.teams.signature not in text
    assert stack.env["ACS_CONNECTION_STRING"] not in text
    assert "TEAMS_WEBHOOK_URL" in body["secrets_configured"]


def test_health_names_bad_settings(monkeypatch: pytest.MonkeyPatch, handlers: Handlers) -> None:
    monkeypatch.setenv("GUARDRAIL_BREAKER_MAX_REMEDIATIONS", "three")
    monkeypatch.setenv("GUARDRAIL_SUBSCRIPTIONS", "not-a-guid")
    response = handlers["health"](func.HttpRequest(method="GET", url="/api/health", body=b""))
    assert response.status_code == 503
    problems = " ".join(json.loads(response.get_body())["problems"])
    assert "GUARDRAIL_BREAKER_MAX_REMEDIATIONS" in problems and "GUARDRAIL_SUBSCRIPTIONS" in problems


def test_timer_sweep_repairs_what_events_missed(stack: LocalStack, handlers: Handlers) -> None:
    names = [unique("missed") for _ in range(3)]
    for name in names:  # written without events, as if Event Grid had dead-lettered them
        stack.emulator.put_account({"name": name, **_open(name)}, account_id(name))
    handlers["reconcile_sweep"](TimerRequest(past_due=True))  # enqueues the subscriptions' slices
    host = QueueHost(
        stack.env["AzureWebJobsStorage"], "guardrail-sweep", handlers["sweep_slice"], retry_delay=0
    )
    assert host.drain(timeout=120) and host.failed == 0
    settle(stack)
    for name in names:
        assert (
            stack.emulator.account(account_id(name))["properties"]["networkAcls"]["defaultAction"] == "Deny"
        )
        assert any(r["Trigger"] == "sweep" for r in records_for(stack, account_id(name)))


def test_resource_group_is_named_in_records(stack: LocalStack) -> None:
    rows = [r for r in stack.ingestion.records if r["SubscriptionId"] == SUB_A]
    accounts = [r for r in rows if r["Rule"] != "guardrail-heartbeat"]  # the sweep's own rows name none
    assert accounts and all(r["ResourceGroup"] in (RG, "rg-sandbox") for r in accounts)
