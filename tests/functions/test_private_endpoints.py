"""#14's shell: a private endpoint connection from a subscription the policy does not allow is rejected
through ARM (a PUT of its state) and verified by reading the account again, end to end through the
function app's handlers, the emulator and Azurite; an allowed one is left alone."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from guardrail_workbench.report import shown
from guardrail_workbench.stack import GUARDRAIL_CLAIMS, LocalStack, as_function_event
from tests.functions.conftest import POLICY, SUB_A, account_id, cards_for, records_for, unique
from tests.functions.test_loop import stack, write_event  # noqa: F401 - the stack fixture

FOREIGN = "0badf00d-0000-4000-8000-00000000beef"
Handlers = dict[str, Callable[..., Any]]


def _pe(sub: str, name: str) -> str:
    return f"/subscriptions/{sub}/resourceGroups/rg-pe/providers/Microsoft.Network/privateEndpoints/{name}"


def _compliant(name: str) -> dict[str, Any]:
    return {
        "name": name,
        "kind": "AIServices",
        "location": "swedencentral",
        "sku": {"name": "S0"},
        "properties": {
            "customSubDomainName": name,
            "publicNetworkAccess": "Disabled",
            "disableLocalAuth": True,
            "networkAcls": {
                "defaultAction": "Deny",
                "bypass": "None",
                "ipRules": [],
                "virtualNetworkRules": [],
            },
        },
    }


def _allow_only_our_private_endpoints(settings_env: Callable[..., None]) -> None:
    policy = POLICY.replace("network:\n", f"network:\n  allowed_private_endpoint_subscriptions: [{SUB_A}]\n")
    settings_env(GUARDRAIL_POLICY_PATH="", GUARDRAIL_POLICY=policy)


def _statuses(stack: LocalStack, rid: str) -> dict[str, str]:  # noqa: F811
    account = stack.emulator.account(rid)
    assert account is not None
    return {
        c["properties"]["privateEndpoint"]["id"]: c["properties"]["privateLinkServiceConnectionState"][
            "status"
        ]
        for c in account["properties"].get("privateEndpointConnections") or []
    }


def test_a_foreign_private_endpoint_is_rejected_and_verified(
    stack: LocalStack,  # noqa: F811
    handlers: Handlers,
    settings_env: Callable[..., None],
) -> None:
    _allow_only_our_private_endpoints(settings_env)
    name = unique("pe")
    rid = account_id(name)
    stack.emulator.put_account(_compliant(name), rid)
    foreign, ours = _pe(FOREIGN, unique("pe-x")), _pe(SUB_A, unique("pe-ok"))
    stack.emulator.connect_private_endpoint(rid, ours)
    stack.emulator.connect_private_endpoint(rid, foreign)  # auto-approved, as the seed describes
    assert _statuses(stack, rid) == {ours: "Approved", foreign: "Approved"}

    handlers["on_resource_write"](as_function_event(write_event(rid)))

    assert _statuses(stack, rid) == {ours: "Approved", foreign: "Rejected"}
    puts = [
        p
        for m, p, s in stack.emulator.app.requests
        if m == "PUT" and "privateendpointconnections" in p.lower()
    ]
    assert len(puts) == 1 and not any(m == "PATCH" for m, p, _ in stack.emulator.app.requests if p == rid)
    records = [r for r in records_for(stack, rid) if r["Rule"] == "private-endpoint-not-allowed"]
    assert [r["Status"] for r in records] == ["remediated"]
    assert records[0]["Value"] == foreign and f"subscription {FOREIGN}" in records[0]["Message"]
    (card,) = [shown(str(block.get("text", ""))) for c in cards_for(stack, rid) for block in c["body"]][-1:]
    assert (
        card
        == f"- private endpoint connections rejected (status Rejected): {foreign} (subscription {FOREIGN})"
    )

    handlers["on_resource_write"](as_function_event(write_event(rid)))  # its own write's event: a no-op
    assert (
        len(
            [
                p
                for m, p, s in stack.emulator.app.requests
                if m == "PUT" and "privateendpointconnections" in p.lower()
            ]
        )
        == 1
    )


def test_a_rejection_arm_refuses_is_a_failure_not_a_claim(
    stack: LocalStack,  # noqa: F811
    handlers: Handlers,
    settings_env: Callable[..., None],
) -> None:
    _allow_only_our_private_endpoints(settings_env)
    name = unique("pe-refused")
    rid = account_id(name)
    stack.emulator.put_account(_compliant(name), rid)
    foreign = _pe(FOREIGN, unique("pe-x"))
    connection = stack.emulator.connect_private_endpoint(rid, foreign)
    stack.emulator.faults.add(resource_id=connection["id"], method="PUT", status=403, times=1)

    handlers["on_resource_write"](as_function_event(write_event(rid)))

    assert _statuses(stack, rid) == {foreign: "Approved"}
    records = [r for r in records_for(stack, rid) if r["Rule"] == "private-endpoint-not-allowed"]
    assert [r["Status"] for r in records] == ["remediation-failed"]


def _rejections(stack: LocalStack, connection_id: str) -> int:  # noqa: F811
    """How many writes of the connection the guardrail itself made (from the emulator's events)."""
    return sum(
        1
        for event in stack.emulator.events
        if event.get("eventType") == "Microsoft.Resources.ResourceWriteSuccess"
        and str(event.get("subject", "")).lower() == connection_id.lower()
        and event["data"]["claims"].get("appid") == GUARDRAIL_CLAIMS["appid"]
    )


def _critical_cards(stack: LocalStack, rid: str) -> list[dict[str, Any]]:  # noqa: F811
    return [c for c in stack.teams.cards if rid.lower() in str(c).lower() and "critical" in str(c).lower()]


def _last_write_event(stack: LocalStack, subject: str) -> dict[str, Any]:  # noqa: F811
    """The write event the emulator raised for `subject` (the connection, not its account)."""
    return next(
        event
        for event in reversed(stack.emulator.events)
        if event.get("eventType") == "Microsoft.Resources.ResourceWriteSuccess"
        and str(event.get("subject", "")).lower() == subject.lower()
    )


def test_a_connection_approved_again_after_its_rejection_is_a_fight_the_breaker_stops(
    stack: LocalStack,  # noqa: F811
    handlers: Handlers,
    settings_env: Callable[..., None],
) -> None:
    """#14: someone keeps approving the foreign connection the guardrail rejected. Each rejection is a
    confirmed write for the breaker like a PATCH: after GUARDRAIL_BREAKER_MAX_REMEDIATIONS of them the
    breaker trips (remediation-suspended, one critical alert) and no further PUT is made. Every event
    here is the one the emulator raised, whose subject is the connection (mapped to its account)."""
    from azure.mgmt.cognitiveservices.models import (
        PrivateEndpointConnection,
        PrivateEndpointConnectionProperties,
        PrivateLinkServiceConnectionState,
    )

    from guardrail_workbench.stack import user_claims

    _allow_only_our_private_endpoints(settings_env)
    settings_env(GUARDRAIL_BREAKER_MAX_REMEDIATIONS="2")
    name = unique("pe-fight")
    rid = account_id(name)
    stack.emulator.put_account(_compliant(name), rid)
    foreign = _pe(FOREIGN, unique("pe-x"))
    connection = stack.emulator.connect_private_endpoint(rid, foreign)
    owner = stack.client_for(user_claims("mallory@contoso.example", "Mallory"), SUB_A)

    def approve_again() -> None:
        owner.private_endpoint_connections.begin_create_or_update(
            "rg-apps",
            name,
            connection["name"],
            PrivateEndpointConnection(
                properties=PrivateEndpointConnectionProperties(
                    private_link_service_connection_state=PrivateLinkServiceConnectionState(
                        status="Approved", description="approved again by the owner"
                    )
                )
            ),
        ).result()

    handlers["on_resource_write"](as_function_event(_last_write_event(stack, connection["id"])))
    assert _statuses(stack, rid) == {foreign: "Rejected"} and _rejections(stack, connection["id"]) == 1
    approve_again()
    assert _statuses(stack, rid) == {foreign: "Approved"}
    handlers["on_resource_write"](as_function_event(_last_write_event(stack, connection["id"])))
    assert _statuses(stack, rid) == {foreign: "Rejected"} and _rejections(stack, connection["id"]) == 2

    approve_again()  # the third approval: two rejections confirmed in the window, the breaker trips
    handlers["on_resource_write"](as_function_event(_last_write_event(stack, connection["id"])))
    assert _statuses(stack, rid) == {foreign: "Approved"} and _rejections(stack, connection["id"]) == 2
    rows = [r for r in records_for(stack, rid) if r["Rule"] == "private-endpoint-not-allowed"]
    assert [r["Status"] for r in rows] == ["remediated", "remediated", "remediation-suspended"]
    assert "2 writes within 30 minutes; the 3rd was suspended" in rows[-1]["Message"]
    critical = [
        c for c in stack.teams.cards if rid.lower() in str(c).lower() and "critical" in str(c).lower()
    ]
    assert len(critical) == 1

    approve_again()  # the breaker stays open: no write, no second critical alert
    handlers["on_resource_write"](as_function_event(_last_write_event(stack, connection["id"])))
    assert _statuses(stack, rid) == {foreign: "Approved"} and _rejections(stack, connection["id"]) == 2
    critical = [
        c for c in stack.teams.cards if rid.lower() in str(c).lower() and "critical" in str(c).lower()
    ]
    assert len(critical) == 1


def _deliver_while_arm_refuses_the_rejection(
    stack: LocalStack,  # noqa: F811
    handlers: Handlers,
    connection_id: str,
    event: dict[str, Any],
) -> None:
    """Deliver `event` while ARM answers 503 to every PUT of the connection: the delivery raises
    (Event Grid will redeliver); then ARM recovers."""
    import pytest

    from guardrail.gateway import TransientArmError

    down = stack.emulator.faults.add(
        resource_id=connection_id, method="PUT", status=503, retry_after=0.01, times=None
    )
    try:
        with pytest.raises(TransientArmError):
            handlers["on_resource_write"](as_function_event(event))
    finally:
        down.times = down.fired


def test_a_rejection_that_never_landed_is_not_claimed_when_the_account_changed_meanwhile(
    stack: LocalStack,  # noqa: F811
    handlers: Handlers,
    settings_env: Callable[..., None],
) -> None:
    """Reproduction: ARM is down for the rejection's PUT (the delivery raises, Event Grid redelivers)
    and meanwhile the account changes (an allowed private endpoint connects: a new etag). The
    redelivery must not complete the journal's unfinished rejection as verified: the foreign
    connection is still Approved. Before the fix the journal entry passed for complete (the account
    needed no PATCH), so one rejection left two `remediated` records and two writes for the breaker."""
    _allow_only_our_private_endpoints(settings_env)
    name = unique("pe-down")
    rid = account_id(name)
    stack.emulator.put_account(_compliant(name), rid)
    foreign, ours = _pe(FOREIGN, unique("pe-x")), _pe(SUB_A, unique("pe-ok"))
    connection = stack.emulator.connect_private_endpoint(rid, foreign)
    event = _last_write_event(stack, connection["id"])
    _deliver_while_arm_refuses_the_rejection(stack, handlers, connection["id"], event)
    assert _statuses(stack, rid) == {foreign: "Approved"}
    stack.emulator.connect_private_endpoint(rid, ours)  # the account changes meanwhile

    handlers["on_resource_write"](as_function_event(event))  # Event Grid redelivers

    assert _statuses(stack, rid) == {foreign: "Rejected", ours: "Approved"}
    assert _rejections(stack, connection["id"]) == 1
    rows = [r for r in records_for(stack, rid) if r["Rule"] == "private-endpoint-not-allowed"]
    assert [r["Status"] for r in rows] == ["remediated"]


def test_a_patch_that_landed_before_its_rejection_failed_is_recorded_once_and_the_rejection_made_after(
    stack: LocalStack,  # noqa: F811
    handlers: Handlers,
    settings_env: Callable[..., None],
) -> None:
    """The PATCH lands, ARM is down for the rejection's PUT, Event Grid redelivers: the redelivery
    completes the journal entry for the PATCH (its records, once) but not for the rejection, which
    it makes and records itself. Before the fix the entry passed for complete as a whole (the account
    held the body), so the rejection was claimed before it was made and recorded twice."""
    _allow_only_our_private_endpoints(settings_env)
    name = unique("pe-half")
    rid = account_id(name)
    body = _compliant(name)
    body["properties"]["publicNetworkAccess"] = "Enabled"
    body["properties"]["networkAcls"]["defaultAction"] = "Allow"  # the PATCH puts Deny back
    stack.emulator.put_account(body, rid)
    foreign = _pe(FOREIGN, unique("pe-x"))
    connection = stack.emulator.connect_private_endpoint(rid, foreign)
    event = _last_write_event(stack, connection["id"])
    _deliver_while_arm_refuses_the_rejection(stack, handlers, connection["id"], event)
    account = stack.emulator.account(rid)
    assert account is not None and account["properties"]["networkAcls"]["defaultAction"] == "Deny"
    assert _statuses(stack, rid) == {foreign: "Approved"}

    handlers["on_resource_write"](as_function_event(event))

    assert _statuses(stack, rid) == {foreign: "Rejected"} and _rejections(stack, connection["id"]) == 1
    rows = sorted((r["Rule"], r["Status"]) for r in records_for(stack, rid))
    assert rows == [("default-action-deny", "remediated"), ("private-endpoint-not-allowed", "remediated")]
