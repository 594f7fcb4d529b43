"""The agent-era doors end to end (issue #24): a Foundry account's managed network, outbound rules,
agent subnets, capability hosts and network security perimeter, changed through ARM (the
emulator, over HTTPS) by their owner, the write events handed to the function app's handlers, and
what the guardrail then wrote, verified and recorded."""

from __future__ import annotations

import copy
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from guardrail import functions
from guardrail.gateway import ArmGateway, ArmSettings
from guardrail_workbench.emulator import make_token
from guardrail_workbench.stack import LocalStack, as_function_event, function_handlers, user_claims
from tests.conftest import load_contract
from tests.functions.conftest import RG, SUB_A, _local_stack, account_id, records_for

FOREIGN = "ffffffff-0000-4000-8000-00000000beef"
FOREIGN_SUBNET = (
    f"/subscriptions/{FOREIGN}/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/v/subnets/agents"
)
POLICY = f"""
version: 1
network:
  require_default_deny: true
  allowed_vnet_subscriptions: [{SUB_A}]
  allowed_fqdns: ["*.openai.azure.com", "api.contoso.example"]
  require_approved_outbound: true
  forbid_public_agent_hosting: true
  require_perimeter: true
remediate:
  managed-network-internet-outbound: true
"""
PLAIN_POLICY = """
version: 1
network:
  require_default_deny: true
"""
OWNER = user_claims("erin@contoso.example", "Erin")
PERIMETER = (
    f"/subscriptions/{SUB_A}/resourceGroups/{RG}/providers/Microsoft.Network/networkSecurityPerimeters/p1"
)


def _stack(tmp_path_factory: pytest.TempPathFactory, policy_text: str) -> Iterator[LocalStack]:
    functions.reset()
    yield from _local_stack(tmp_path_factory, connect=False, policy_text=policy_text)
    functions.reset()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    yield from _stack(tmp_path_factory, POLICY)


def foundry(stack: LocalStack, *, mode: str = "AllowOnlyApprovedOutbound", **props: Any) -> str:
    """A locked-down Foundry account with an approved-outbound managed network and an enforced
    perimeter (compliant), seeded as the tenant already holds it."""
    name = f"foundry-{uuid.uuid4().hex[:8]}"
    rid = account_id(name)
    stack.emulator.put_account(
        {
            "name": name,
            "kind": "AIServices",
            "location": "eastus",
            "sku": {"name": "S0"},
            "properties": {
                "allowProjectManagement": True,
                "publicNetworkAccess": "Disabled",
                "networkAcls": {
                    "defaultAction": "Deny",
                    "bypass": "None",
                    "ipRules": [],
                    "virtualNetworkRules": [],
                },
                **props,
            },
        },
        rid,
    )
    stack.emulator.seed(
        {
            "managedNetworks": [
                {
                    "id": f"{rid}/managedNetworks/default",
                    "properties": {"managedNetwork": {"isolationMode": mode, "outboundRules": {}}},
                }
            ],
            "networkSecurityPerimeterConfigurations": [
                {
                    "id": f"{rid}/networkSecurityPerimeterConfigurations/p1.assoc",
                    "properties": {
                        "networkSecurityPerimeter": {"id": PERIMETER},
                        "resourceAssociation": {"name": "assoc", "accessMode": "Enforced"},
                        "profile": {"name": "default", "accessRules": []},
                    },
                }
            ],
        }
    )
    return rid


def owner(stack: LocalStack) -> ArmGateway:
    """ARM as the account's owner sees it (her writes carry her claims)."""
    return ArmGateway(
        ArmSettings(
            endpoint=stack.emulator.endpoint,
            ca_bundle=stack.emulator.ca_bundle,
            credential="static",
            static_token=make_token(OWNER),
            retry_total=1,
            poll_interval=0.05,
        )
    )


def write_event(subject: str) -> dict[str, Any]:
    """Event Grid's ResourceWriteSuccess for a write to `subject` (an account or its child)."""
    event = copy.deepcopy(load_contract("events/derived_cogsvc_ResourceWriteSuccess.eventgrid.json"))
    event = event[0] if isinstance(event, list) else event
    event["id"] = str(uuid.uuid4())
    event["subject"] = subject
    event["data"]["resourceUri"] = subject
    event["data"]["authorization"]["scope"] = subject
    return event


def deliver(event: dict[str, Any]) -> None:
    function_handlers()["on_resource_write"](as_function_event(event))


def managed_network(stack: LocalStack, rid: str) -> dict[str, Any]:
    body = owner(stack).get_child(f"{rid}/managedNetworks/default")
    assert body is not None
    network: dict[str, Any] = body["properties"]["managedNetwork"]
    return network


def rows(stack: LocalStack, rid: str) -> set[tuple[str, str]]:
    return {(r["Rule"], r["Status"]) for r in records_for(stack, rid)}


def test_internet_outbound_and_an_exfiltration_rule_are_closed_from_a_child_write_event(
    stack: LocalStack,
) -> None:
    rid = foundry(stack)
    network_id = f"{rid}/managedNetworks/default"
    erin = owner(stack)
    assert (
        erin.send(
            "PATCH",
            network_id,
            {"properties": {"managedNetwork": {"isolationMode": "AllowInternetOutbound"}}},
        ).status
        == "written"
    )
    exfil = {"properties": {"category": "UserDefined", "type": "FQDN", "destination": "exfil.evil.example"}}
    ok = {"properties": {"category": "UserDefined", "type": "FQDN", "destination": "*.openai.azure.com"}}
    assert erin.send("PUT", f"{network_id}/outboundRules/exfil", exfil).status == "written"
    assert erin.send("PUT", f"{network_id}/outboundRules/models", ok).status == "written"
    deliver(write_event(f"{network_id}/outboundRules/exfil"))  # a child's write event checks its account
    network = managed_network(stack, rid)
    assert network["isolationMode"] == "AllowOnlyApprovedOutbound"
    assert "exfil" not in network["outboundRules"] and "models" in network["outboundRules"]
    assert ("managed-network-internet-outbound", "remediated") in rows(stack, rid)
    assert ("managed-network-outbound-rule-not-allowed", "remediated") in rows(stack, rid)
    record = next(
        r for r in records_for(stack, rid) if r["Rule"] == "managed-network-outbound-rule-not-allowed"
    )
    assert record["Value"] == "exfil" and record["After"] == {"name": "exfil", "deleted": True}
    assert record["Actor"] and record["EventId"]
    deliver(write_event(rid))  # the next look finds nothing to do
    assert sum(1 for r in records_for(stack, rid) if r["Status"] == "remediated") == 2


def test_agent_subnets_public_hosting_and_a_learning_perimeter_are_reported_and_untouched(
    stack: LocalStack,
) -> None:
    injections = [{"scenario": "agent", "subnetArmId": FOREIGN_SUBNET, "useMicrosoftManagedNetwork": False}]
    rid = foundry(stack, networkInjections=injections)
    stack.emulator.seed(
        {
            "capabilityHosts": [
                {
                    "id": f"{rid}/capabilityHosts/agents",
                    "properties": {"customerSubnet": FOREIGN_SUBNET, "enablePublicHostingEnvironment": True},
                }
            ],
            "networkSecurityPerimeterConfigurations": [
                {
                    "id": f"{rid}/networkSecurityPerimeterConfigurations/p1.assoc",
                    "properties": {
                        "networkSecurityPerimeter": {"id": "nsp-learning"},
                        "resourceAssociation": {"name": "assoc", "accessMode": "Learning"},
                        "profile": {
                            "name": "default",
                            "accessRules": [
                                {
                                    "name": "lan",
                                    "properties": {"direction": "Inbound", "addressPrefixes": ["10.0.0.0/8"]},
                                }
                            ],
                        },
                    },
                }
            ],
        }
    )
    before = stack.emulator.dump()
    deliver(write_event(rid))
    assert rows(stack, rid) == {
        ("agent-subnet-not-allowed", "violation"),
        ("agent-public-hosting", "violation"),
        ("perimeter-not-enforced", "violation"),
        ("perimeter-access-rule-not-allowed", "violation"),
    }
    after = stack.emulator.dump()
    assert [h for h in after.get("capabilityHosts", []) if rid in h["id"]] == [
        h for h in before.get("capabilityHosts", []) if rid in h["id"]
    ]  # untouched


@pytest.fixture(scope="module")
def plain_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    yield from _stack(tmp_path_factory, PLAIN_POLICY)


def test_a_policy_without_the_agent_rules_reads_no_child_resource(plain_stack: LocalStack) -> None:
    rid = foundry(plain_stack, mode="AllowInternetOutbound")
    opened = {"properties": {"publicNetworkAccess": "Enabled", "networkAcls": {"defaultAction": "Allow"}}}
    plain_stack.client_for(OWNER, SUB_A).accounts.begin_update(RG, rid.rsplit("/", 1)[-1], opened).result()
    start = len(plain_stack.emulator.app.requests)
    deliver(write_event(rid))
    made = [(method, path.lower()) for method, path, _ in plain_stack.emulator.app.requests[start:]]
    assert made and all(path.rstrip("/") == rid.lower() for _, path in made), made  # the account alone
    assert [m for m, _ in made] == ["GET", "PATCH", "GET"]
