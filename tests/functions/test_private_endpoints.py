"""#14's shell: a private endpoint connection from a subscription the policy does not allow is rejected
through ARM (a PUT of its state) and verified by reading the account again, end to end through the
function app's handlers, the emulator and Azurite; an allowed one is left alone."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from guardrail_workbench.stack import LocalStack, as_function_event
from tests.functions.conftest import POLICY, SUB_A, account_id, records_for, unique
from tests.functions.test_loop import settings_env, stack, write_event  # noqa: F401 - fixtures

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


def _allow_only_our_private_endpoints(settings_env: Callable[..., None]) -> None:  # noqa: F811
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
    settings_env: Callable[..., None],  # noqa: F811
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
    assert FOREIGN in records[0]["Message"] or FOREIGN in (records[0]["Value"] or "")

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
    settings_env: Callable[..., None],  # noqa: F811
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
