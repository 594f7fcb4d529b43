"""The reconciler's audit trail end to end (issue #23, items 1-5; issue #22, items 2 and 8): events
into the function app's handlers, the emulator (HTTPS) and Azurite behind them, the records the
Monitor receiver got out. Each test reproduces a defect of main d5fc810: a write without a
record, a record without a write, one write recorded twice, a widening body the runtime guard
approved, a constant etag silencing later writes, a failed provisioning left for hours."""

from __future__ import annotations

import base64
import contextlib
import dataclasses
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from guardrail import functions
from guardrail.gateway import TransientArmError
from guardrail_workbench.stack import LocalStack
from tests.functions.conftest import _local_stack, account_id, records_for, unique
from tests.functions.test_diagnostics import POLICY as DIAGNOSTICS_POLICY
from tests.functions.test_loop import (
    BOB,
    Handlers,
    action,
    cards_for,
    deliver,
    guardrail_writes,
    opened,
    patches,
    statuses,
    write_event,
)


@pytest.fixture(scope="module")
def stack(quiet_stack: LocalStack) -> LocalStack:
    return quiet_stack


@pytest.fixture
def settings_env(settings_env: Callable[..., None]) -> Callable[..., None]:
    """conftest's, with one quick retry: the storms here need not wait out the default backoff."""
    settings_env(ARM_RETRY_TOTAL="1", ARM_RETRY_BACKOFF="0.01")
    return settings_env


def owner_writes(stack: LocalStack, rid: str, acls: dict[str, Any]) -> None:
    """The account's owner changes its networkAcls through ARM (the SDK, over HTTPS)."""
    account = stack.emulator.account(rid)
    assert account is not None
    body = {"properties": {"networkAcls": {**account["properties"]["networkAcls"], **acls}}}
    client = stack.client_for(BOB, rid.split("/")[2])
    client.accounts.begin_update(rid.split("/")[4], rid.rsplit("/", 1)[-1], body).result()


def remediated(stack: LocalStack, rid: str, rule: str = "default-action-deny") -> list[dict[str, Any]]:
    return [r for r in records_for(stack, rid) if r["Rule"] == rule and r["Status"] == "remediated"]


# -- #23.1 a write without a record: the diagnostic-setting PUT after the PATCH fails -------------


@pytest.fixture(scope="module")
def diag_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    """A local Azure whose policy names a workspace (the diagnostics rule's own test policy)."""
    yield from _local_stack(tmp_path_factory, connect=False, policy_text=DIAGNOSTICS_POLICY)
    functions.reset()


def test_a_patch_followed_by_a_failing_diagnostic_setting_put_keeps_its_records(
    diag_stack: LocalStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    stack = diag_stack
    monkeypatch.setenv("ARM_RETRY_TOTAL", "1")
    functions.reset()
    handlers = functions_handlers()
    name = unique("diagput")
    rid = account_id(name)
    stack.emulator.put_account(
        {
            "name": name,
            "kind": "OpenAI",
            "location": "eastus",
            "sku": {"name": "S0"},
            "properties": {"networkAcls": {"defaultAction": "Allow", "bypass": "None"}},
        },
        rid,
    )
    event = write_event(rid)
    settings = f"{rid}/providers/Microsoft.Insights/diagnosticSettings"
    down = stack.emulator.faults.add(
        resource_id=settings, method="PUT", status=503, retry_after=0.01, times=None
    )
    try:
        with pytest.raises(TransientArmError):
            deliver(handlers, event)  # the PATCH lands; every PUT of the setting answers 503
    finally:
        down.times = down.fired
    assert action(stack, rid) == "Deny"
    deliver(handlers, event)  # Event Grid redelivers
    functions.get_guardrail().sweep()  # and the sweep runs
    patch_records = remediated(stack, rid)
    assert len(patch_records) == 1, records_for(stack, rid)  # the PATCH's record, exactly once
    assert patch_records[0]["EventId"] == event["id"]
    assert patch_records[0]["Before"]["defaultAction"] == "Allow"
    assert patch_records[0]["After"]["defaultAction"] == "Deny"
    assert len(remediated(stack, rid, "diagnostics-missing")) == 1


def functions_handlers() -> Handlers:
    from guardrail_workbench.stack import function_handlers

    return function_handlers()


# -- #23.2 the account is deleted between the PATCH and the verifying read ----------------------


def test_a_write_to_an_account_deleted_before_verification_is_recorded_and_finished(
    stack: LocalStack, handlers: Handlers, settings_env: Callable[..., None]
) -> None:
    rid = opened(stack, "deleted")
    stack.emulator.faults.add(resource_id=rid, method="GET", action="latency", latency=0.0)  # the read
    stack.emulator.faults.add(resource_id=rid, method="GET", action="delete")  # gone before the re-read
    outcome = functions.get_guardrail().handle_event(write_event(rid))
    assert outcome is not None and outcome.action == "remediated", outcome
    assert patches(stack, rid) == [200]
    rows = remediated(stack, rid)
    assert len(rows) == 1 and rows[0]["After"]["defaultAction"] == "Deny"  # as ARM acknowledged it
    assert rid.lower() not in {r.lower() for r in functions.get_guardrail().state.unfinished()}


# -- #23.3 a phantom remediation: the PATCH failed, the owner fixed it herself ------------------


def test_a_patch_that_failed_is_never_recorded_as_a_remediation(
    stack: LocalStack, handlers: Handlers, settings_env: Callable[..., None]
) -> None:
    rid = opened(stack, "phantom")
    event = write_event(rid)
    down = stack.emulator.faults.add(
        resource_id=rid, method="PATCH", status=503, retry_after=0.01, times=None
    )
    try:
        with pytest.raises(TransientArmError):
            deliver(handlers, event)  # every PATCH answered 503: nothing was written
    finally:
        down.times = down.fired
    owner_writes(stack, rid, {"defaultAction": "Deny", "bypass": "None"})  # the owner fixes it herself
    deliver(handlers, event)  # Event Grid redelivers
    functions.get_guardrail().sweep()
    assert action(stack, rid) == "Deny"
    assert guardrail_writes(stack, rid) == 0
    assert remediated(stack, rid) == [] and ("default-action-deny", "remediated") not in statuses(stack, rid)
    assert cards_for(stack, rid) == []


# -- #23.4 one Table blip on the settle: one write, one record set -------------------------------


def test_a_table_blip_when_settling_does_not_record_one_write_twice(
    stack: LocalStack, handlers: Handlers, settings_env: Callable[..., None], monkeypatch: pytest.MonkeyPatch
) -> None:
    from azure.core.exceptions import ServiceRequestError

    from guardrail.state import TableStateStore

    real = TableStateStore.settle
    blips = iter([True])

    def blip(self: TableStateStore, *args: Any, **kwargs: Any) -> Any:
        if next(blips, False):
            raise ServiceRequestError("connection reset by peer (a blip)")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(TableStateStore, "settle", blip)
    rid = opened(stack, "blip")
    event = write_event(rid)
    with pytest.raises(ServiceRequestError):
        deliver(handlers, event)  # the PATCH landed; its settle did not: nothing recorded yet
    assert action(stack, rid) == "Deny" and remediated(stack, rid) == []
    functions.reset()  # Event Grid redelivers, maybe to another instance
    deliver(handlers, event)
    functions.get_guardrail().sweep()  # and the sweep finds nothing left to complete
    assert len(remediated(stack, rid)) == 1
    assert len(remediated(stack, rid, "bypass-not-allowed")) == 1
    assert len(cards_for(stack, rid)) == 1
    assert guardrail_writes(stack, rid) == 1


# -- #23.5 the runtime guard models outbound access ---------------------------------------------


def test_a_plan_that_adds_an_outbound_destination_is_refused(
    stack: LocalStack, handlers: Handlers, settings_env: Callable[..., None], monkeypatch: pytest.MonkeyPatch
) -> None:
    from guardrail import service
    from guardrail.engine import Evaluation

    real = service.plan

    def buggy(snapshot: Any, *args: Any, **kwargs: Any) -> Any:  # an engine bug: exfiltration
        result = real(snapshot, *args, **kwargs)
        if isinstance(result, Evaluation) and result.remediation is not None:
            body = {"properties": {**result.remediation["properties"]}}
            body["properties"]["allowedFqdnList"] = ["api.contoso.example", "exfil.evil.example"]
            actions = (dataclasses.replace(result.actions[0], body=body), *result.actions[1:])
            return Evaluation(result.resource_id, result.kind, result.findings, actions)
        return result

    monkeypatch.setattr(service, "plan", buggy)
    rid = opened(stack, "exfil", restrictOutboundNetworkAccess=True, allowedFqdnList=["api.contoso.example"])
    deliver(handlers, write_event(rid))
    account = stack.emulator.account(rid)
    assert account is not None
    assert account["properties"]["allowedFqdnList"] == ["api.contoso.example"]
    assert patches(stack, rid) == []  # never sent
    failed = [r for r in records_for(stack, rid) if r["Status"] == "remediation-failed"]
    assert failed and all("outbound destination exfil.evil.example allowed" in r["Message"] for r in failed)


def test_the_independent_guard_itself_sees_an_outbound_widening() -> None:
    from guardrail import neverwiden

    account = {
        "properties": {"restrictOutboundNetworkAccess": True, "allowedFqdnList": ["api.contoso.example"]}
    }
    added = {"properties": {"allowedFqdnList": ["api.contoso.example", "exfil.evil.example"]}}
    opened_up = {"properties": {"restrictOutboundNetworkAccess": False}}
    narrowed = {"properties": {"allowedFqdnList": []}}
    assert neverwiden.widens(account, added) == ["outbound destination 'exfil.evil.example' allowed"]
    assert neverwiden.widens(account, opened_up) == ["outbound access opened to every destination"]
    assert neverwiden.widens(account, narrowed) == []


# -- #22.2 a constant etag does not silence later writes ----------------------------------------


def test_a_constant_etag_keeps_every_write_recorded_and_counted(
    stack: LocalStack, handlers: Handlers, settings_env: Callable[..., None], monkeypatch: pytest.MonkeyPatch
) -> None:
    from guardrail_workbench.emulator import arm

    monkeypatch.setattr(arm, "_new_etag", lambda: '"constant"')  # a provider that never changes it
    rid = opened(stack, "etag")
    for change in range(4):  # the owner's pipeline re-opens the account after each fix
        if change:
            owner_writes(stack, rid, {"defaultAction": "Allow", "bypass": "AzureServices"})
            account = stack.emulator.account(rid)
            assert account is not None and account["etag"] == '"constant"'
        deliver(handlers, write_event(rid))
    assert guardrail_writes(stack, rid) == 3  # the breaker (3 writes in 30 minutes) counted each one
    assert len(remediated(stack, rid)) == 3
    assert ("default-action-deny", "remediation-suspended") in statuses(stack, rid)


# -- #22.8 a write whose provisioning failed is checked again within minutes ---------------------


def test_a_failed_provisioning_is_checked_again_from_the_queue(
    stack: LocalStack, handlers: Handlers, settings_env: Callable[..., None]
) -> None:
    from azure.core.exceptions import ResourceExistsError
    from azure.storage.queue import QueueClient

    from guardrail.fanout import SWEEP_QUEUE

    settings_env(GUARDRAIL_RECHECK_MINUTES="0")  # visible at once, for the test
    queue = QueueClient.from_connection_string(stack.azurite.connection_string, SWEEP_QUEUE)
    with contextlib.suppress(ResourceExistsError):
        queue.create_queue()
    queue.clear_messages()
    rid = opened(stack, "provfail")
    stack.emulator.faults.add(resource_id=rid, method="PATCH", action="fail_provisioning")
    deliver(handlers, write_event(rid))
    assert ("default-action-deny", "remediation-failed") in statuses(stack, rid)
    assert action(stack, rid) == "Allow"
    messages = [
        m for m in queue.receive_messages() if rid.lower() in base64.b64decode(m.content).decode().lower()
    ]
    assert len(messages) == 1, "no re-check was scheduled"
    body = base64.b64decode(messages[0].content)
    handlers["sweep_slice"](_queue_message(body))  # the sweep-queue function takes it
    assert action(stack, rid) == "Deny"
    assert len(remediated(stack, rid)) == 1


def _queue_message(body: bytes) -> Any:
    import azure.functions as func

    return func.QueueMessage(id="recheck", body=body)


# -- the event storm (issue #27): one instance's 429 must not cost another's records --------------


def test_a_delivery_refused_with_429_does_not_lose_the_records_of_the_write_another_made(
    stack: LocalStack, handlers: Handlers, settings_env: Callable[..., None]
) -> None:
    """bench_storm, 4 instances: the write event and the notification of one change reach two
    instances; both join one journal entry. The one that made the entry gets 429 (the
    subscription's writes spent by the other instances) and abandons it; the other's PATCH lands,
    and its settle, finding the entry abandoned, took it for "recorded by another delivery": one
    write, no record, no alert, ever (the abandoned entry is not unfinished: the sweep skips it)."""
    import threading

    from guardrail.settings import load_settings

    rid = opened(stack, "storm")
    first = functions.get_guardrail()  # instance X: makes the entry, is refused
    second = functions.build_app(load_settings())  # instance Y: joins it, writes
    x_at_write, y_at_write, x_done = threading.Event(), threading.Event(), threading.Event()
    throttled = stack.emulator.faults.add(
        resource_id=rid, method="PATCH", status=429, retry_after=0.01, times=None
    )

    def x_write(real: Callable[..., Any]) -> Callable[..., Any]:
        def write(*args: Any, **kwargs: Any) -> Any:
            x_at_write.set()
            assert y_at_write.wait(30)  # Y has read the same etag and joined the entry
            return real(*args, **kwargs)

        return write

    def y_write(real: Callable[..., Any]) -> Callable[..., Any]:
        def write(*args: Any, **kwargs: Any) -> Any:
            y_at_write.set()
            assert x_done.wait(30)  # X was refused and abandoned the entry
            throttled.times = throttled.fired
            return real(*args, **kwargs)

        return write

    errors: list[BaseException] = []

    def run_x() -> None:
        try:
            first.handle_event(write_event(rid))
        except BaseException as error:
            errors.append(error)
        finally:
            x_done.set()

    first.gateway.write = x_write(first.gateway.write)  # type: ignore[method-assign]
    second.guardrail.gateway.write = y_write(second.guardrail.gateway.write)  # type: ignore[method-assign]
    try:
        x = threading.Thread(target=run_x)
        x.start()
        assert x_at_write.wait(30)
        second.guardrail.handle_event(write_event(rid))  # at-least-once: the same change, elsewhere
        x.join(30)
    finally:
        throttled.times = throttled.fired
        second.close()
        functions.reset()
    assert [type(e) for e in errors] == [TransientArmError]  # X: 429, Event Grid redelivers
    deliver(handlers, write_event(rid))  # the redelivery: the account is compliant
    assert action(stack, rid) == "Deny"
    assert guardrail_writes(stack, rid) == 1
    assert len(remediated(stack, rid)) == 1
    assert len(remediated(stack, rid, "bypass-not-allowed")) == 1
