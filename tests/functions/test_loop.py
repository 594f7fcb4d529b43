"""The remediation loop under ARM faults, end to end: events into the function app's handlers,
the emulator (HTTPS) and Azurite behind them, account state and finding records out. Every event
is delivered by the test itself (no subscription), so it decides which delivery meets which fault.

Each numbered defect of issue #10, and items 1, 2 and 5 of issue #11, has its reproduction here."""

from __future__ import annotations

import copy
import dataclasses
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from guardrail import functions
from guardrail.gateway import TransientArmError
from guardrail.settings import load_settings
from guardrail_workbench.stack import LocalStack, as_function_event, user_claims
from tests.conftest import load_contract
from tests.functions.conftest import (
    POLICY,
    account_id,
    cards_for,
    guardrail_writes,
    open_account,
    records_for,
    unique,
)

Handlers = dict[str, Callable[..., Any]]
UPN = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn"
BOB = user_claims("bob@contoso.example", "Bob")


@pytest.fixture(scope="module")
def stack(quiet_stack: LocalStack) -> LocalStack:
    return quiet_stack


def _event(sample: str, rid: str) -> dict[str, Any]:
    body = load_contract(sample)
    event = copy.deepcopy(body[0] if isinstance(body, list) else body)
    event["id"] = str(uuid.uuid4())
    event["subject"] = rid
    data = event["data"]
    if "resourceUri" in data:
        data["resourceUri"] = rid
        data["authorization"]["scope"] = rid
    return event


def write_event(rid: str, upn: str = "jane@contoso.example") -> dict[str, Any]:
    event = _event("events/derived_cogsvc_ResourceWriteSuccess.eventgrid.json", rid)
    event["data"]["claims"][UPN] = upn
    return event


def notification(rid: str, resource: dict[str, Any]) -> dict[str, Any]:
    event = _event("events/derived_arn_CreatedOrUpdated.eventgrid.json", rid)
    event["data"]["resourceInfo"] = copy.deepcopy(resource)
    return event


def deliver(handlers: Handlers, event: dict[str, Any]) -> None:
    function = "on_resource_notification" if "resourceInfo" in event["data"] else "on_resource_write"
    handlers[function](as_function_event(event))


def opened(stack: LocalStack, prefix: str, **props: Any) -> str:
    name = unique(prefix)
    rid = account_id(name)
    stack.emulator.put_account({"name": name, **open_account(name, **props)}, rid)
    return rid


def action(stack: LocalStack, rid: str) -> str:
    account = stack.emulator.account(rid)
    assert account is not None
    return str(account["properties"]["networkAcls"]["defaultAction"])


def statuses(stack: LocalStack, rid: str) -> set[tuple[str, str]]:
    return {(r["Rule"], r["Status"]) for r in records_for(stack, rid)}


def patches(stack: LocalStack, rid: str) -> list[int]:
    return [s for m, p, s in stack.emulator.app.requests if m == "PATCH" and p.lower() == rid.lower()]


def critical_cards(stack: LocalStack, rid: str) -> list[dict[str, Any]]:
    return [c for c in cards_for(stack, rid) if "critical" in str(c).lower()]


# -- #10.1 the breaker counts writes, not attempts ------------------------------------------------


@pytest.mark.parametrize(
    "fault",
    [
        {"status": 503, "retry_after": 0.01},  # ARM down
        {"action": "touch"},  # a 412 storm: a concurrent writer keeps changing the etag
        {"status": 429, "retry_after": 3600},  # throttled with a Retry-After longer than we wait
    ],
    ids=["503", "412-storm", "429-long"],
)
def test_failed_attempts_do_not_trip_the_breaker(
    stack: LocalStack, handlers: Handlers, fault: dict[str, Any]
) -> None:
    rid = opened(stack, "attempts")
    event = write_event(rid)
    down = stack.emulator.faults.add(resource_id=rid, method="PATCH", times=None, **fault)
    try:
        for _ in range(5):  # Event Grid redelivers each failed delivery
            with pytest.raises(TransientArmError):
                deliver(handlers, event)
    finally:
        down.times = down.fired  # ARM recovers
    deliver(handlers, event)
    deliver(handlers, write_event(rid))  # and the next change is not suspended either
    assert action(stack, rid) == "Deny"
    assert guardrail_writes(stack, rid) == 1
    assert not any(status == "remediation-suspended" for _, status in statuses(stack, rid))
    assert ("default-action-deny", "remediated") in statuses(stack, rid)
    assert critical_cards(stack, rid) == []


# -- #10.2 a write that landed always leaves its record -------------------------------------------


def test_a_write_whose_verification_fails_is_recorded_by_the_redelivery(
    stack: LocalStack, handlers: Handlers
) -> None:
    rid = opened(stack, "unverified")
    event = write_event(rid)
    stack.emulator.faults.add(resource_id=rid, method="GET", action="latency", latency=0.0)  # 1st read ok
    verify = stack.emulator.faults.add(resource_id=rid, method="GET", status=503, times=None)
    try:
        with pytest.raises(TransientArmError, match="temporarily unavailable"):
            deliver(handlers, event)  # read, PATCH ok, every verifying read 503
    finally:
        verify.times = verify.fired
    assert action(stack, rid) == "Deny" and records_for(stack, rid) == []
    deliver(handlers, event)  # Event Grid redelivers: the account is compliant now
    remediated = [r for r in records_for(stack, rid) if r["Status"] == "remediated"]
    assert {r["Rule"] for r in remediated} == {"default-action-deny", "bypass-not-allowed"}
    for row in remediated:
        assert row["EventId"] == event["id"]
        assert row["Actor"] == "jane@contoso.example" and row["ActorSource"] == "event-claims"
        assert row["Before"]["defaultAction"] == "Allow" and row["After"]["defaultAction"] == "Deny"
    assert guardrail_writes(stack, rid) == 1
    assert len(cards_for(stack, rid)) == 1


def test_a_write_whose_response_is_lost_is_recorded(
    stack: LocalStack, handlers: Handlers, settings_env: Callable[..., None]
) -> None:
    settings_env(ARM_READ_TIMEOUT="1", ARM_RETRY_TOTAL="1")
    rid = opened(stack, "lost")
    event = write_event(rid)
    # The PATCH lands after the client stopped reading (1 s); the SDK's retry of the same If-Match
    # is answered after it landed: 412. The re-read finds the account compliant.
    stack.emulator.faults.add(resource_id=rid, method="PATCH", action="latency", latency=1.3)
    stack.emulator.faults.add(resource_id=rid, method="PATCH", action="latency", latency=0.6)
    deliver(handlers, event)
    assert patches(stack, rid) == [200, 412]
    assert action(stack, rid) == "Deny"
    remediated = [r for r in records_for(stack, rid) if r["Status"] == "remediated"]
    assert {r["Rule"] for r in remediated} == {"default-action-deny", "bypass-not-allowed"}
    assert all(r["EventId"] == event["id"] and r["Before"]["defaultAction"] == "Allow" for r in remediated)
    assert len(cards_for(stack, rid)) == 1


# -- #10.3 two workers count one change once ------------------------------------------------------


def test_two_workers_count_one_change_once(
    stack: LocalStack, handlers: Handlers, settings_env: Callable[..., None]
) -> None:
    settings_env(GUARDRAIL_BREAKER_MAX_REMEDIATIONS="3")
    workers = [functions.build_guardrail(load_settings()) for _ in range(2)]  # two instances
    rid = opened(stack, "twoworkers")
    for change in range(3):  # three real changes, each delivered twice at once
        if change:
            stack.emulator.put_account({"name": rid.rsplit("/", 1)[1], **open_account("x")}, rid)
        account = stack.emulator.account(rid)
        assert account is not None
        # Both read before either writes.
        stack.emulator.faults.add(resource_id=rid, method="GET", action="latency", latency=0.3, times=2)
        deliveries = [write_event(rid), notification(rid, account)]
        errors: list[BaseException] = []

        def run(delivery: dict[str, Any], worker: Any, errors: list[BaseException] = errors) -> None:
            try:
                worker.handle_event(delivery)
            except BaseException as error:  # reported below
                errors.append(error)

        threads = [threading.Thread(target=run, args=pair) for pair in zip(deliveries, workers, strict=True)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert not errors, errors
        assert action(stack, rid) == "Deny", f"change {change + 1} was left open"
    assert guardrail_writes(stack, rid) == 3
    assert not any(status == "remediation-suspended" for _, status in statuses(stack, rid))
    remediated = [r for r in records_for(stack, rid) if r["Rule"] == "default-action-deny"]
    assert [r["Status"] for r in remediated] == ["remediated"] * 3  # each change recorded once


# -- #10.4 the never-widen check runs on a recomputed body -----------------------------------------


def test_a_recomputed_body_that_would_widen_is_refused(
    stack: LocalStack, handlers: Handlers, monkeypatch: pytest.MonkeyPatch
) -> None:
    from guardrail import service
    from guardrail.engine import Evaluation

    real = service.plan

    def buggy(snapshot: Any, *args: Any, **kwargs: Any) -> Any:
        result = real(snapshot, *args, **kwargs)
        account = snapshot.account
        touched = isinstance(account, dict) and (account.get("tags") or {}).get("touchedBy")
        if isinstance(result, Evaluation) and result.remediation is not None and touched:
            patch = result.actions[0]
            wide = {"properties": {**result.remediation["properties"], "disableLocalAuth": False}}
            actions = (dataclasses.replace(patch, body=wide), *result.actions[1:])
            return Evaluation(result.resource_id, result.kind, result.findings, actions)
        return result

    monkeypatch.setattr(service, "plan", buggy)  # a bug in the engine, on recompute only
    rid = opened(stack, "widen")
    stack.emulator.faults.add(resource_id=rid, method="PATCH", action="touch")  # 412 → recompute
    deliver(handlers, write_event(rid))
    account = stack.emulator.account(rid)
    assert account is not None
    assert account["properties"]["disableLocalAuth"] is True  # keys were not re-enabled
    assert patches(stack, rid) == [412]  # the widening body was never sent
    failed = [r for r in records_for(stack, rid) if r["Status"] == "remediation-failed"]
    assert failed and all("would widen access" in r["Message"] for r in failed)


# -- #10.5 an account the guardrail cannot read leaves a record ----------------------------------


def test_an_unreadable_account_leaves_a_record_an_alert_and_is_retried_by_the_sweep(
    stack: LocalStack, handlers: Handlers
) -> None:
    rid = opened(stack, "noread")
    denied = stack.emulator.faults.add(resource_id=rid, method="GET", status=403, times=None)
    try:
        deliver(handlers, write_event(rid))  # returns normally: no retry would help now
        deliver(handlers, write_event(rid))  # a second event within the cool-down
    finally:
        denied.times = denied.fired
    [first, second] = records_for(stack, rid)
    assert (first["Rule"], first["Status"]) == ("account-invalid", "remediation-failed")
    assert "AuthorizationFailed" in first["Message"] and first["Value"] == "AuthorizationFailed"
    assert second["Status"] == "remediation-failed"
    assert len(cards_for(stack, rid)) == 1  # one alert per cool-down
    assert rid.lower() in functions.get_guardrail().state.unfinished()
    handlers["reconcile_sweep"](_timer())  # the role has propagated: the sweep retries it
    assert action(stack, rid) == "Deny"
    assert rid.lower() not in functions.get_guardrail().state.unfinished()


def _timer() -> Any:
    from azure.functions.timer import TimerRequest

    return TimerRequest(past_due=False)


# -- #11.1 a body the SDK's models would refuse is a finding, never an exception ------------------

POISON: dict[str, Callable[[dict[str, Any]], None]] = {
    "string-in-ipRules": lambda b: b["properties"]["networkAcls"].update(ipRules=["20.30.40.0/24"]),
    "number-in-ipRules": lambda b: b["properties"]["networkAcls"].update(ipRules=[{"value": 7}]),
    "string-in-vnetRules": lambda b: b["properties"]["networkAcls"].update(virtualNetworkRules=["subnet"]),
    "string-sku": lambda b: b.update(sku="S0"),
    "list-tags": lambda b: b.update(tags=["a", "b"]),
    "bad-createdAt": lambda b: b.update(systemData={"createdBy": "bob", "createdAt": "yesterday"}),
    "disableLocalAuth-yes": lambda b: b["properties"].update(disableLocalAuth="yes"),
}


@pytest.mark.parametrize("poison", sorted(POISON))
def test_a_poison_body_is_a_finding_and_nothing_is_written(
    stack: LocalStack, handlers: Handlers, poison: str
) -> None:
    name = unique("poison")
    rid = account_id(name)
    body = {"name": name, **open_account(name)}
    POISON[poison](body)
    stack.emulator.put_account(body, rid)  # stored as given, as a buggy tool might leave it
    deliver(handlers, write_event(rid))  # returns normally
    deliver(handlers, write_event(rid))  # and again: no exception escapes to Event Grid
    assert patches(stack, rid) == []
    rows = records_for(stack, rid)
    assert rows and {(r["Rule"], r["Status"]) for r in rows} == {("account-invalid", "violation")}
    assert all(r["Severity"] == "medium" and r["After"] is None for r in rows)
    field = {"sku": "'sku'", "tags": "'tags'", "Auth": "disableLocalAuth", "created": "createdAt"}
    named = next((v for k, v in field.items() if k in poison), "networkAcls")
    assert named in rows[0]["Message"]
    assert len(cards_for(stack, rid)) == 1


# -- #11.2 a notification's body is evidence only of its own account ------------------------------


def test_a_notification_carrying_another_accounts_body_is_not_trusted(
    stack: LocalStack, handlers: Handlers
) -> None:
    rid = opened(stack, "victim")
    compliant = stack.emulator.account(opened(stack, "decoy"))
    assert compliant is not None
    compliant["properties"]["networkAcls"] = {"defaultAction": "Deny", "bypass": "None", "ipRules": []}
    deliver(handlers, notification(rid, compliant))  # subject names the open account
    assert action(stack, rid) == "Deny"
    assert guardrail_writes(stack, rid) == 1


# -- #11.5 the actor is who left the state that was fixed -----------------------------------------


def test_a_late_event_from_someone_else_does_not_rename_the_actor(
    stack: LocalStack, handlers: Handlers
) -> None:
    name = unique("bob")
    rid = account_id(name)
    client = stack.client_for(BOB, rid.split("/")[2])
    client.accounts.begin_create(rid.split("/")[4], name, open_account(name)).result()  # Bob opens it
    deliver(handlers, write_event(rid, upn="alice@contoso.example"))  # a late event from Alice
    remediated = [r for r in records_for(stack, rid) if r["Status"] == "remediated"]
    assert remediated
    assert {(r["Actor"], r["ActorSource"]) for r in remediated} == {("bob@contoso.example", "systemData")}


# -- #16.4 words: every write has an After; the breaker says what happened ------------------------


def test_every_write_has_an_after_and_the_breaker_states_exact_counts(
    stack: LocalStack, handlers: Handlers, settings_env: Callable[..., None], tmp_path: Path
) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY + "remediate:\n  local-auth-enabled: true\n", encoding="utf-8")
    settings_env(GUARDRAIL_POLICY_PATH=str(policy))
    rid = opened(stack, "localauth", disableLocalAuth=False)
    deliver(handlers, write_event(rid))
    rows = {r["Rule"]: r for r in records_for(stack, rid) if r["Status"] == "remediated"}
    assert rows["local-auth-enabled"]["Before"] == {"disableLocalAuth": False}
    assert rows["local-auth-enabled"]["After"] == {"disableLocalAuth": True}
    assert rows["default-action-deny"]["After"]["defaultAction"] == "Deny"
    for _ in range(3):  # re-opened three more times: the 4th write is suspended
        stack.emulator.put_account({"name": rid.rsplit("/", 1)[1], **open_account("x")}, rid)
        deliver(handlers, write_event(rid))
    suspended = [r for r in records_for(stack, rid) if r["Status"] == "remediation-suspended"]
    assert suspended
    assert all("3 writes within 30 minutes; the 4th was suspended" in r["Message"] for r in suspended)
    assert guardrail_writes(stack, rid) == 3


# -- the journal's cost ----------------------------------------------------------------------------


@pytest.fixture
def table_requests(stack: LocalStack, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[str, str]]]:
    """The Table requests (method, table) the guardrail sends while the test runs; the tables'
    creation (once per process) is left out."""
    from azure.core.pipeline.transport import RequestsTransport

    functions.get_guardrail()  # built before counting
    endpoint = next(
        part.split("=", 1)[1]
        for part in stack.env["AzureWebJobsStorage"].split(";")
        if part.startswith("TableEndpoint=")
    )
    seen: list[tuple[str, str]] = []
    send = RequestsTransport.send

    def counting(self: Any, request: Any, **kwargs: Any) -> Any:
        url = str(request.url)
        if url.startswith(endpoint):
            table = url[len(endpoint) :].split("(")[0].split("?")[0].lstrip("/")
            if table != "Tables":
                seen.append((request.method, table))
        return send(self, request, **kwargs)

    monkeypatch.setattr(RequestsTransport, "send", counting)
    yield seen
    monkeypatch.undo()


def test_table_round_trips_per_remediation(
    stack: LocalStack,
    handlers: Handlers,
    table_requests: list[tuple[str, str]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    rid = opened(stack, "cost")
    deliver(handlers, write_event(rid))
    assert action(stack, rid) == "Deny"
    # The journal query (the breaker, the outbox rows and the alert claims with it), the intent
    # insert, the settle transaction (verified and the outbox row of its records, one $batch), the
    # alert keys' claims with the outbox row's delete (one $batch). No event claim: the outbox row
    # is made once per write, so a redelivery cannot alert twice. Four requests, against six before
    # the outbox (journal query, intent, verified update, event claim, two alert keys).
    assert sorted(table_requests) == sorted(
        [
            ("GET", "guardrailremediations"),
            ("POST", "guardrailremediations"),
            ("POST", "$batch"),
            ("POST", "$batch"),
        ]
    ), table_requests
    # the outbox row went with the claims: nothing is left for the sweep to deliver
    assert rid.lower() not in {r.lower() for r in functions.get_guardrail().state.unfinished()}
    with capsys.disabled():
        print(f"\nTable requests for one remediation: {len(table_requests)}: {table_requests}")


def test_table_round_trips_per_sweep_account_do_not_grow_with_its_findings(
    stack: LocalStack, table_requests: list[tuple[str, str]], capsys: pytest.CaptureFixture[str]
) -> None:
    wide = [{"value": f"{n}.0.0.0/8"} for n in range(11, 17)]  # six findings of their own
    rid = opened(
        stack,
        "sweepcost",
        disableLocalAuth=False,
        networkAcls={"defaultAction": "Allow", "bypass": "AzureServices", "ipRules": wide},
    )
    outcome = functions.get_guardrail().check_account(rid, trigger="sweep")
    assert outcome.action == "remediated"
    active = [r for r in outcome.records if r.status != "exempted"]
    assert len(active) >= 8, [r.rule for r in active]
    # no event claim; the journal query, the intent, the settle transaction (verified and the
    # outbox row), the alert keys with the outbox row's delete in one transaction: four, as before
    # the outbox (journal query, intent, verified update, the keys' transaction)
    assert sorted(table_requests) == sorted(
        [
            ("GET", "guardrailremediations"),
            ("POST", "guardrailremediations"),
            ("POST", "$batch"),
            ("POST", "$batch"),
        ]
    ), table_requests
    with capsys.disabled():
        print(
            f"\nTable requests for one sweep account with {len(active)} findings: "
            f"{len(table_requests)}: {table_requests}"
        )


def test_a_worker_keeps_no_lock_for_an_account_once_its_check_is_done(stack: LocalStack) -> None:
    """Issue #27: the per-account locks lived for every account a worker ever checked, so a sweep
    worker's memory grew with the tenant. A check's lock goes when no check holds or awaits it."""
    import threading

    guardrail = functions.get_guardrail()
    rids = [opened(stack, f"lockgone{n}") for n in range(3)]
    threads = [
        threading.Thread(target=guardrail.check_account, args=(rid,), kwargs={"trigger": "sweep"})
        for rid in rids + rids  # two checks of each account at once
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert guardrail._locks == {}
