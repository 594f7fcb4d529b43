"""End to end: people and pipelines write through the real SDK over HTTPS to the emulator, the
emulator's events reach the function app's handlers, the guardrail repairs through the gateway,
remembers in Azurite, records to the ingestion endpoint and alerts Teams and email."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from guardrail import functions
from guardrail_workbench.stack import LocalStack, pipeline_claims, user_claims
from tests.functions.conftest import (
    RG,
    SUB_A,
    SUB_B,
    SUB_C,
    account_id,
    cards_for,
    emails_for,
    guardrail_writes,
    open_account,
    records_for,
    settle,
    unique,
)

JANE = user_claims("jane@contoso.example", "Jane Doe")
DEPLOYER = pipeline_claims("5e6f7a8b-0000-4000-8000-00000000d001", "legacy-deploy-pipeline")


def _create(
    stack: LocalStack, claims: dict[str, Any], name: str, body: dict[str, Any], sub: str = SUB_A
) -> None:
    client = stack.client_for(claims, sub)
    client.accounts.begin_create(RG, name, body).result()


def _acls(stack: LocalStack, rid: str) -> dict[str, Any]:
    account = stack.emulator.account(rid)
    assert account is not None
    return dict(account["properties"]["networkAcls"])


def test_user_write_is_remediated_verified_recorded_and_alerted_once(
    stack: LocalStack, caplog: pytest.LogCaptureFixture
) -> None:
    name = unique("jane")
    rid = account_id(name)
    body = open_account(name)
    body["properties"]["networkAcls"]["ipRules"] = [
        {"value": "8.8.0.0/12"},  # broader than /16
        {"value": "100.64.1.1"},  # shared address space (not public)
        {"value": "20.30.40.0/24"},
    ]
    with caplog.at_level(logging.INFO, logger="guardrail"):
        _create(stack, JANE, name, body)
        settle(stack)

    acls = _acls(stack, rid)
    assert acls["defaultAction"] == "Deny"
    assert acls["bypass"] == "None"
    assert acls["ipRules"] == [{"value": "20.30.40.0/24"}]
    # The guardrail wrote once; its own write's events came back and ended as no-ops.
    assert guardrail_writes(stack, rid) == 1
    assert any("own write" in r.getMessage() for r in caplog.records)
    rows = records_for(stack, rid)
    remediated = {r["Rule"] for r in rows if r["Status"] == "remediated"}
    assert remediated == {
        "default-action-deny",
        "bypass-not-allowed",
        "ip-rule-too-broad",
        "ip-rule-not-public",
    }
    assert {r["Actor"] for r in rows if r["Status"] == "remediated"} == {"jane@contoso.example"}
    assert all(r["After"]["defaultAction"] == "Deny" for r in rows if r["Status"] == "remediated")
    assert len(cards_for(stack, rid)) == 1
    assert len(emails_for(stack, rid)) == 1
    assert not stack.failed_deliveries
    assert stack.ingestion.violations == []


def test_fighting_pipeline_trips_the_breaker_and_raises_one_critical_alert(stack: LocalStack) -> None:
    name = unique("fight")
    rid = account_id(name)
    for _ in range(6):  # the pipeline keeps re-applying an open configuration
        _create(stack, DEPLOYER, name, open_account(name))
        settle(stack)

    assert guardrail_writes(stack, rid) == 3  # default: at most 3 remediations in 30 minutes
    assert _acls(stack, rid)["defaultAction"] == "Allow"  # it stopped fighting
    suspended = [r for r in records_for(stack, rid) if r["Status"] == "remediation-suspended"]
    # Resource Notifications carry no caller; the resource write events name the pipeline.
    assert {r["Actor"] for r in suspended} - {None} == {f"app:{DEPLOYER['appid']}"}
    critical = [c for c in cards_for(stack, rid) if "critical" in str(c).lower()]
    assert len(critical) == 1
    assert len(cards_for(stack, rid)) == 2  # the first remediation, then the breaker; nothing else


def test_an_attacking_pipeline_gets_three_writes_and_one_critical_alert(stack: LocalStack) -> None:
    import time

    name = unique("attack")
    rid = account_id(name)
    started = time.monotonic()
    for i in range(31):  # re-opened 31 times in about 8 s, without waiting for the guardrail
        _create(stack, DEPLOYER, name, open_account(name))
        time.sleep(max(0.0, started + (i + 1) * 8 / 31 - time.monotonic()))
    settle(stack, timeout=60)
    assert guardrail_writes(stack, rid) == 3
    critical = [c for c in cards_for(stack, rid) if "critical" in str(c).lower()]
    assert len(critical) == 1
    assert not stack.failed_deliveries


@pytest.mark.parametrize(
    ("status", "retry_after"),
    [(429, 0.2), (409, None), (500, None), (503, 0.1)],
)
def test_transient_arm_failures_are_survived(
    stack: LocalStack, status: int, retry_after: float | None
) -> None:
    name = unique(f"flaky{status}")
    rid = account_id(name)
    fault = stack.emulator.faults.add(
        resource_id=rid, method="PATCH", status=status, times=2, retry_after=retry_after
    )
    stack.emulator.put_account({"name": name, **open_account(name)}, rid)
    if status != 409:  # reads are throttled and fail too; only writes meet RequestConflict
        stack.emulator.faults.add(
            resource_id=rid, method="GET", status=status, times=1, retry_after=retry_after
        )
    functions.get_guardrail().check_account(rid, trigger="cli")
    assert fault.fired == 2
    assert _acls(stack, rid)["defaultAction"] == "Deny"


def test_linked_authorization_failure_becomes_a_remediation_failed_finding(stack: LocalStack) -> None:
    name = unique("vnet")
    rid = account_id(name)
    body = open_account(name)
    net = "providers/Microsoft.Network/virtualNetworks"
    own = f"/subscriptions/{SUB_A}/resourceGroups/rg-net/{net}/v/subnets/a"
    foreign = f"/subscriptions/{SUB_B}/resourceGroups/rg-x/{net}/x/subnets/s"
    body["properties"]["networkAcls"]["virtualNetworkRules"] = [{"id": own}, {"id": foreign}]
    stack.emulator.put_account({"name": name, **body}, rid)
    stack.emulator.deny_vnet_join(rid)
    try:
        outcome = functions.get_guardrail().check_account(rid, trigger="cli")
    finally:
        stack.emulator.allow_vnet_join(rid)
    assert outcome.action == "failed"
    failed = [r for r in records_for(stack, rid) if r["Status"] == "remediation-failed"]
    assert {r["Rule"] for r in failed} >= {"vnet-rule-not-allowed", "default-action-deny"}
    assert all("LinkedAuthorizationFailed" in r["Message"] for r in failed)
    assert _acls(stack, rid)["defaultAction"] == "Allow"  # nothing half-written


def test_failed_provisioning_is_a_failure_not_a_success(stack: LocalStack) -> None:
    name = unique("failprov")
    rid = account_id(name)
    stack.emulator.put_account({"name": name, **open_account(name)}, rid)
    stack.emulator.faults.add(resource_id=rid, method="PATCH", action="fail_provisioning", times=1)
    outcome = functions.get_guardrail().check_account(rid, trigger="cli")
    assert outcome.action == "failed"
    assert any(r["Status"] == "remediation-failed" for r in records_for(stack, rid))


def test_exhausted_transient_failures_raise_for_redelivery(stack: LocalStack) -> None:
    from guardrail.gateway import TransientArmError

    name = unique("down")
    rid = account_id(name)
    stack.emulator.put_account({"name": name, **open_account(name)}, rid)
    fault = stack.emulator.faults.add(
        resource_id=rid, method="PATCH", status=503, times=None, retry_after=0.01
    )
    try:
        with pytest.raises(TransientArmError):
            functions.get_guardrail().check_account(rid, trigger="event")
    finally:
        fault.times = fault.fired
    assert _acls(stack, rid)["defaultAction"] == "Allow"


def test_exempted_accounts_are_reported_not_touched(stack: LocalStack) -> None:
    name = unique("sandbox")
    rid = account_id(name, rg="rg-sandbox")
    client = stack.client_for(JANE, SUB_A)
    client.accounts.begin_create("rg-sandbox", name, open_account(name)).result()
    settle(stack)
    assert guardrail_writes(stack, rid) == 0
    rows = records_for(stack, rid)
    assert rows and {r["Status"] for r in rows} == {"exempted"}
    assert cards_for(stack, rid) == []


def test_audit_mode_writes_nothing(stack: LocalStack, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GUARDRAIL_MODE", "audit")
    functions.reset()
    try:
        name = unique("audit")
        rid = account_id(name)
        stack.emulator.put_account({"name": name, **open_account(name)}, rid)
        outcome = functions.get_guardrail().check_account(rid, trigger="cli")
        assert outcome.action == "audit"
        assert guardrail_writes(stack, rid) == 0
        assert {r["Status"] for r in records_for(stack, rid)} == {"audit"}
    finally:
        monkeypatch.undo()
        functions.reset()


def test_unreachable_state_store_still_remediates(
    stack: LocalStack, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    closed = (
        "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
        "AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;"
        "TableEndpoint=http://127.0.0.1:9/devstoreaccount1;"
    )
    monkeypatch.setenv("AzureWebJobsStorage", closed)
    functions.reset()
    try:
        name = unique("amnesia")
        rid = account_id(name)
        stack.emulator.put_account({"name": name, **open_account(name)}, rid)
        with caplog.at_level(logging.WARNING, logger="guardrail.state"):
            outcome = functions.get_guardrail().check_account(rid, trigger="cli")
        assert outcome.action == "remediated"
        assert _acls(stack, rid)["defaultAction"] == "Deny"
        assert any("without memory" in r.getMessage() for r in caplog.records)
    finally:
        monkeypatch.undo()
        functions.reset()


def test_a_permanent_read_failure_is_logged_not_retried_forever(
    stack: LocalStack, caplog: pytest.LogCaptureFixture
) -> None:
    name = unique("noread")
    rid = account_id(name)
    stack.emulator.put_account({"name": name, **open_account(name)}, rid)
    fault = stack.emulator.faults.add(resource_id=rid, method="GET", status=403, code="AuthorizationFailed")
    with caplog.at_level(logging.ERROR, logger="guardrail"):
        outcome = functions.get_guardrail().check_account(rid, trigger="event")
    assert fault.fired == 1
    assert outcome.action == "failed" and "AuthorizationFailed" in outcome.detail
    assert any("cannot read the account" in r.getMessage() for r in caplog.records)


def test_sweep_goes_on_when_a_subscription_cannot_be_listed(stack: LocalStack) -> None:
    name = unique("listed")
    rid = account_id(name, sub=SUB_B)
    stack.emulator.put_account({"name": name, **open_account(name)}, rid)
    missing = "0d0d0d0d-4444-4444-8444-000000000004"  # not in the tenant: ARM answers 404
    report = functions.get_guardrail().sweep([SUB_B, missing])
    assert any(missing in error for error in report.errors)
    assert _acls(stack, rid)["defaultAction"] == "Deny"


def test_monitor_and_teams_outages_lose_no_record_and_do_not_block_the_fix(
    stack: LocalStack, caplog: pytest.LogCaptureFixture
) -> None:
    name = unique("outage")
    rid = account_id(name)
    stack.emulator.put_account({"name": name, **open_account(name)}, rid)
    stack.ingestion.fail_next(50, status=503)
    stack.teams.fail_next(50, status=500)
    try:
        with caplog.at_level(logging.INFO, logger="guardrail"):
            outcome = functions.get_guardrail().check_account(rid, trigger="cli")
    finally:  # the remaining scripted failures must not leak into other tests
        stack.teams._failures.clear()
        stack.ingestion._failures.clear()
    assert outcome.action == "remediated"
    assert _acls(stack, rid)["defaultAction"] == "Deny"  # the fix went through
    assert records_for(stack, rid) == []  # Monitor never got them ...
    logged = [
        json.loads(r.getMessage())
        for r in caplog.records
        if r.name == "guardrail.findings" and '"undelivered":"monitor"' in r.getMessage()
    ]
    # ... but every record is in the function log, which Application Insights keeps.
    assert {row["record"]["Rule"] for row in logged} == {r.rule for r in outcome.records}
    assert len(logged) == len(outcome.records)
    assert cards_for(stack, rid) == []
    assert len(emails_for(stack, rid)) == 1  # the other alert sink still delivered


def test_the_same_finding_set_alerts_once_per_cool_down(stack: LocalStack) -> None:
    name = unique("again")
    rid = account_id(name)
    for _ in range(2):  # opened, fixed, opened again the same way
        stack.emulator.put_account({"name": name, **open_account(name)}, rid)
        functions.get_guardrail().check_account(rid, trigger="cli")
        settle(stack)  # the events of the guardrail's own write are handled too
    assert guardrail_writes(stack, rid) == 2
    assert len(cards_for(stack, rid)) == 1
    assert len(emails_for(stack, rid)) == 1
    # A different finding is new: it alerts at once.
    body = open_account(name)
    body["properties"]["networkAcls"]["defaultAction"] = "Deny"
    body["properties"]["networkAcls"]["bypass"] = "None"
    body["properties"]["networkAcls"]["ipRules"] = [{"value": "4.0.0.0/8"}]  # broader than /16
    stack.emulator.put_account({"name": name, **body}, rid)
    functions.get_guardrail().check_account(rid, trigger="cli")
    settle(stack)
    assert guardrail_writes(stack, rid) == 3
    assert len(cards_for(stack, rid)) == 2


def test_audit_sweep_judges_the_listed_bodies_without_reading_each_account(
    stack: LocalStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GUARDRAIL_MODE", "audit")
    functions.reset()
    try:
        name = unique("auditsweep")
        rid = account_id(name, sub=SUB_C)
        stack.emulator.put_account({"name": name, **open_account(name)}, rid)
        reads = stack.emulator.faults.add(resource_id=rid, method="GET", status=500, times=None)
        try:
            report = functions.get_guardrail().sweep([SUB_C])
        finally:
            reads.times = reads.fired
        assert reads.fired == 0 and report.errors == []
        assert guardrail_writes(stack, rid) == 0
        assert {r["Status"] for r in records_for(stack, rid)} == {"audit"}
    finally:
        monkeypatch.undo()
        functions.reset()
