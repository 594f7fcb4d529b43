"""ArmGateway's primitives for an account's child resources (issue 24) against the ARM emulator:
`get_child`, `list_children` and `send` (PUT/PATCH/DELETE waiting for ARM's asynchronous operation,
polled at the managed network's mfeOperationsStatus URL), with the outcome each fault must give."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from guardrail.gateway import ArmGateway, ArmGatewayError, TransientArmError
from guardrail_workbench.emulator import Emulator, account_id

from .conftest import OPEN, RG, SUB1

NETWORK = f"{OPEN}/managedNetworks/default"
RULE = f"{NETWORK}/outboundRules/exfil-fqdn"
HOST = f"{OPEN}/capabilityHosts/agents"
NSP = f"{OPEN}/networkSecurityPerimeterConfigurations/p1.assoc"
FOREIGN_SUBNET = (
    "/subscriptions/99999999-0000-0000-0000-000000000000/resourceGroups/rg-x/providers/"
    "Microsoft.Network/virtualNetworks/v/subnets/agents"
)
APPROVED = {"properties": {"managedNetwork": {"isolationMode": "AllowOnlyApprovedOutbound"}}}


@pytest.fixture
def agent_tenant(emulator: Emulator) -> Emulator:
    """`open1` with a managed network open to the internet and an exfiltration FQDN rule, three
    capability hosts (one on a foreign subnet) and a perimeter configuration."""
    emulator.seed(
        {
            "managedNetworks": [
                {
                    "id": NETWORK,
                    "properties": {
                        "managedNetwork": {
                            "isolationMode": "AllowInternetOutbound",
                            "outboundRules": {
                                "exfil-fqdn": {
                                    "type": "FQDN",
                                    "category": "UserDefined",
                                    "destination": "paste.example.org",
                                    "status": "Active",
                                }
                            },
                        }
                    },
                }
            ],
            "capabilityHosts": [
                {"id": f"{OPEN}/capabilityHosts/{name}", "properties": {"customerSubnet": FOREIGN_SUBNET}}
                for name in ("agents", "h2", "h3")
            ],
            "networkSecurityPerimeterConfigurations": [
                {
                    "id": NSP,
                    "properties": {"resourceAssociation": {"name": "assoc", "accessMode": "Learning"}},
                }
            ],
        }
    )
    return emulator


def requests(emulator: Emulator, method: str, fragment: str) -> list[int]:
    return [status for m, path, status in emulator.app.requests if m == method and fragment in path]


# ---------------------------------------------------------------------------- reads


def test_get_child_returns_the_body_or_none(agent_tenant: Emulator, gateway: ArmGateway) -> None:
    network = gateway.get_child(NETWORK)
    assert network is not None
    settings = network["properties"]["managedNetwork"]
    assert settings["isolationMode"] == "AllowInternetOutbound"
    assert settings["outboundRules"]["exfil-fqdn"]["destination"] == "paste.example.org"
    assert gateway.get_child(RULE) == {"properties": settings["outboundRules"]["exfil-fqdn"]}
    assert gateway.get_child(f"{NETWORK}/outboundRules/nope") is None
    assert gateway.get_child(f"{account_id(SUB1, RG, 'closed1')}/managedNetworks/default") is None
    assert gateway.get_child(f"{account_id(SUB1, RG, 'gone')}/capabilityHosts/x") is None  # no account
    host = gateway.get_child(HOST)
    assert host is not None and host["properties"]["customerSubnet"] == FOREIGN_SUBNET
    # the child API version is sent (the managed network is not in the accounts' 2025-09-01)
    assert any("api-version=2026-09-01" in e["query"] for e in agent_tenant.app.request_log)


@pytest.mark.parametrize("bad", [OPEN, f"{OPEN}/managedNetworks", "/subscriptions/s/resourceGroups/r", ""])
def test_get_child_refuses_what_is_not_a_child(gateway: ArmGateway, bad: str) -> None:
    with pytest.raises(ValueError):
        gateway.get_child(bad)


def test_get_child_errors(agent_tenant: Emulator, gateway: ArmGateway) -> None:
    agent_tenant.faults.add(resource_id=NETWORK, method="GET", status=503, times=1)
    assert gateway.get_child(NETWORK) is not None  # retried
    agent_tenant.faults.add(resource_id=NETWORK, method="GET", status=503, times=None)
    with pytest.raises(TransientArmError):
        gateway.get_child(NETWORK)
    agent_tenant.faults.clear()
    agent_tenant.faults.add(resource_id=NETWORK, method="GET", status=403, code="AuthorizationFailed")
    with pytest.raises(ArmGatewayError) as refused:
        gateway.get_child(NETWORK)
    assert refused.value.status == 403 and refused.value.code == "AuthorizationFailed"


def test_list_children_follows_next_link_and_is_empty_on_404(
    agent_tenant: Emulator, gateway: ArmGateway
) -> None:
    hosts = gateway.list_children(OPEN, "capabilityHosts")
    assert [h["name"] for h in hosts] == ["agents", "h2", "h3"]  # two pages of two
    assert len(requests(agent_tenant, "GET", "/capabilityHosts")) == 2
    (config,) = gateway.list_children(OPEN, "networkSecurityPerimeterConfigurations")
    assert config["properties"]["resourceAssociation"]["accessMode"] == "Learning"
    rules = gateway.list_children(NETWORK, "outboundRules")
    assert [r["properties"]["destination"] for r in rules] == ["paste.example.org"]
    assert gateway.list_children(account_id(SUB1, RG, "closed1"), "capabilityHosts") == []
    assert gateway.list_children(account_id(SUB1, RG, "gone"), "networkSecurityPerimeterConfigurations") == []
    assert (
        gateway.list_children(f"{account_id(SUB1, RG, 'closed1')}/managedNetworks/default", "outboundRules")
        == []
    )
    with pytest.raises(ValueError):
        gateway.list_children(OPEN, "managedNetworks/default")


def test_list_children_refuses_a_foreign_next_link(agent_tenant: Emulator, gateway: ArmGateway) -> None:
    agent_tenant.app.base_url = "https://127.0.0.2:9"  # nextLinks point elsewhere (loopback, closed)
    with pytest.raises(ArmGatewayError, match="nextLink") as refused:
        gateway.list_children(OPEN, "capabilityHosts")
    assert refused.value.code == "InvalidNextLink"


# ---------------------------------------------------------------------------- writes


def test_send_patch_waits_for_the_managed_network_operation(
    agent_tenant: Emulator, gateway: ArmGateway
) -> None:
    result = gateway.send("PATCH", NETWORK, APPROVED)
    assert result.status == "written", result
    assert result.after is not None
    assert result.after["properties"]["managedNetwork"]["isolationMode"] == "AllowOnlyApprovedOutbound"
    assert result.after["properties"]["provisioningState"] == "Succeeded"
    assert requests(agent_tenant, "PATCH", "/managedNetworks/default") == [202]
    assert requests(agent_tenant, "GET", "/mfeOperationsStatus/mnet:")  # polled as recorded
    agent_tenant.wait_for_events(5)
    (event,) = [e for e in agent_tenant.events if e["subject"] == NETWORK]
    assert event["eventType"] == "Microsoft.Resources.ResourceWriteSuccess"
    assert event["data"]["claims"]["appid"] == "guardrail-test-app"  # the guardrail's identity


def test_send_delete_removes_the_rule_then_reports_it_gone(
    agent_tenant: Emulator, gateway: ArmGateway
) -> None:
    deleted = gateway.send("DELETE", RULE, None)
    assert deleted.status == "written" and deleted.after is None
    assert gateway.get_child(RULE) is None
    again = gateway.send("DELETE", RULE, None)
    assert again.status == "gone" and again.http_status == 204


def test_send_put_creates_a_capability_host_and_deletes_it(
    agent_tenant: Emulator, gateway: ArmGateway
) -> None:
    host = f"{OPEN}/capabilityHosts/new-host"
    body = {"properties": {"customerSubnet": FOREIGN_SUBNET, "enablePublicHostingEnvironment": False}}
    created = gateway.send("PUT", host, body)
    assert created.status == "written" and created.after is not None
    assert created.after["properties"]["customerSubnet"] == FOREIGN_SUBNET
    deleted = gateway.send("DELETE", host, None)
    assert deleted.status == "written"
    assert requests(agent_tenant, "DELETE", "/capabilityHosts/new-host") == [202]
    assert gateway.get_child(host) is None


def test_send_outcomes_under_faults(agent_tenant: Emulator, gateway: ArmGateway) -> None:
    missing = f"{account_id(SUB1, RG, 'closed1')}/managedNetworks/default/outboundRules/r1"
    rule = {"properties": {"type": "FQDN", "destination": "x.example", "category": "UserDefined"}}
    assert gateway.send("PUT", missing, rule).status == "gone"

    agent_tenant.faults.add(resource_id=NETWORK, method="PATCH", action="fail_provisioning")
    failed = gateway.send("PATCH", NETWORK, APPROVED)
    assert failed.status == "provisioning-failed" and failed.http_status == 200

    agent_tenant.faults.add(resource_id=NETWORK, method="PATCH", status=412)
    assert gateway.send("PATCH", NETWORK, APPROVED).status == "precondition-failed"

    agent_tenant.faults.add(resource_id=NETWORK, method="PATCH", status=403, code="AuthorizationFailed")
    refused = gateway.send("PATCH", NETWORK, APPROVED)
    assert (refused.status, refused.error_code, refused.http_status) == (
        "refused",
        "AuthorizationFailed",
        403,
    )

    invalid = gateway.send("PATCH", NETWORK, {"properties": {"managedNetwork": {"isolationMode": "Open"}}})
    assert (invalid.status, invalid.error_code) == ("refused", "InvalidIsolationMode")

    agent_tenant.faults.add(resource_id=NETWORK, method="PATCH", status=409, code="RequestConflict", times=2)
    agent_tenant.faults.add(resource_id=NETWORK, method="PATCH", status=429, retry_after=0, times=1)
    assert gateway.send("PATCH", NETWORK, APPROVED).status == "written"  # conflicts and throttling survived


def test_send_raises_when_transient_trouble_lasts(agent_tenant: Emulator, gateway: ArmGateway) -> None:
    agent_tenant.faults.add(resource_id=RULE, method="DELETE", status=503, times=None)
    with pytest.raises(TransientArmError) as transient:
        gateway.send("DELETE", RULE, None)
    assert transient.value.status == 503
    agent_tenant.faults.clear()
    agent_tenant.faults.add(
        resource_id=NETWORK, method="PATCH", status=409, code="RequestConflict", times=None
    )
    with pytest.raises(TransientArmError, match="RequestConflict"):
        gateway.send("PATCH", NETWORK, APPROVED)
    agent_tenant.faults.clear()
    agent_tenant.faults.add(resource_id=NETWORK, method="GET", status=503, times=None)  # the final GET
    with pytest.raises(TransientArmError):
        gateway.send("PATCH", NETWORK, APPROVED)


@pytest.mark.parametrize(
    "method,rid,body",
    [("GET", NETWORK, None), ("PATCH", OPEN, APPROVED), ("PUT", NETWORK, None), ("POST", NETWORK, {})],
)
def test_send_refuses_what_it_does_not_do(gateway: ArmGateway, method: Any, rid: str, body: Any) -> None:
    with pytest.raises(ValueError):
        gateway.send(method, rid, body)


def test_many_child_writes_share_one_client(
    agent_tenant: Emulator, make_gateway: Callable[..., ArmGateway]
) -> None:
    gateway = make_gateway()
    for _ in range(3):
        assert gateway.send("PATCH", NETWORK, APPROVED).status == "written"
    assert len(gateway._clients) == 1
