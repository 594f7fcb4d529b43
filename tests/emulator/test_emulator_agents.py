"""The agent-era children of an account in the emulator (issue 24): the Foundry managed network and its
outbound rules, capability hosts, network security perimeter configurations, `networkInjections`; over
HTTPS, raw where the status codes and headers are under test, through the SDK where it has the
operations (capability hosts and NSP configurations in azure-mgmt-cognitiveservices 14.1)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from azure.core.exceptions import ResourceNotFoundError

from guardrail_workbench.emulator import Emulator, account_id

from .conftest import ACCT1, RG, SUB1, RawResponse

Raw = Callable[..., RawResponse]
API = "2026-01-15-preview"  # the managed network's, as recorded
NETWORK = f"{ACCT1}/managedNetworks/default"
RULE = f"{NETWORK}/outboundRules/exfil-fqdn"
HOST = f"{ACCT1}/capabilityHosts/agents"
NSP = f"{ACCT1}/networkSecurityPerimeterConfigurations/perimeter1.assoc1"
FOREIGN_SUBNET = (
    "/subscriptions/99999999-0000-0000-0000-000000000000/resourceGroups/rg-x/providers/"
    "Microsoft.Network/virtualNetworks/v/subnets/agents"
)
MFE = re.compile(
    r"https://127\.0\.0\.1:\d+/subscriptions/" + SUB1 + r"/providers/Microsoft\.MachineLearningServices/"
    r"locations/westus/mfeOperationsStatus/mnet:(?P<net>[0-9a-f-]{36}):(?P<id>\S+)\?api-version=" + API
)


def url(rid: str, api: str = API) -> str:
    return f"{rid}?api-version={api}"


def settle(raw: Raw, response: RawResponse) -> list[dict[str, Any]]:
    """Poll a write's Azure-AsyncOperation until it ends; every status body seen."""
    assert response.status == 202, response.json()
    seen = []
    for _ in range(20):
        status = raw("GET", response.headers["azure-asyncoperation"])
        assert status.status == 200
        seen.append(status.json())
        if seen[-1]["status"] != "InProgress":
            return seen
    raise AssertionError(f"the operation never ended: {seen}")


def isolation(raw: Raw) -> tuple[str, dict[str, Any]]:
    body = raw("GET", url(NETWORK)).json()
    network = body["properties"]["managedNetwork"]
    return network["isolationMode"], network["outboundRules"]


def put_network(raw: Raw, mode: str = "AllowInternetOutbound") -> None:
    body = {"properties": {"managedNetwork": {"isolationMode": mode}}}
    assert settle(raw, raw("PUT", url(NETWORK), body))[-1]["status"] == "Succeeded"


FQDN_RULE = {"properties": {"category": "UserDefined", "destination": "paste.example.org", "type": "FQDN"}}


# ---------------------------------------------------------------------------- managed network


def test_managed_network_lifecycle_as_recorded(raw: Raw) -> None:
    missing = raw("GET", url(NETWORK))
    assert missing.status == 404 and missing.json()["error"]["code"] == "ResourceNotFound"
    assert "managedNetworks/default" in missing.json()["error"]["message"]

    created = raw(
        "PUT", url(NETWORK), {"properties": {"managedNetwork": {"isolationMode": "AllowInternetOutbound"}}}
    )
    assert created.status == 202 and created.body == b""
    poll = MFE.fullmatch(created.headers["azure-asyncoperation"])
    assert poll is not None, created.headers["azure-asyncoperation"]
    assert created.headers["location"].endswith(url(NETWORK))
    statuses = settle(raw, created)
    assert [s["status"] for s in statuses] == ["InProgress", "Succeeded"]
    assert statuses[0]["id"] == poll["id"]
    body = raw("GET", url(NETWORK)).json()
    assert set(body) == {"properties"}  # as recorded: no id, name or type
    assert body["properties"]["provisioningState"] == "Succeeded"
    network = body["properties"]["managedNetwork"]
    assert network["isolationMode"] == "AllowInternetOutbound" and network["outboundRules"] == {}
    assert network["networkId"] == poll["net"]

    patched = raw(
        "PATCH",
        url(NETWORK),
        {"properties": {"managedNetwork": {"isolationMode": "AllowOnlyApprovedOutbound"}}},
    )
    assert settle(raw, patched)[-1]["status"] == "Succeeded"
    mode, rules = isolation(raw)
    assert mode == "AllowOnlyApprovedOutbound"
    assert rules["__SYS_ST_AzureActiveDirectory_TCP"]["category"] == "Required"

    back = raw(
        "PATCH", url(NETWORK), {"properties": {"managedNetwork": {"isolationMode": "AllowInternetOutbound"}}}
    )
    settle(raw, back)
    assert isolation(raw) == ("AllowInternetOutbound", {})
    listed = raw("GET", url(f"{ACCT1}/managedNetworks")).json()["value"]
    assert listed == [raw("GET", url(NETWORK)).json()]


@pytest.mark.parametrize(
    "method,path,body,status,code",
    [
        ("PUT", f"{ACCT1}/managedNetworks/other", {"properties": {"managedNetwork": {}}}, 400, None),
        (
            "PUT",
            NETWORK,
            {"properties": {"managedNetwork": {"isolationMode": "Open"}}},
            400,
            "InvalidIsolationMode",
        ),
        ("PUT", NETWORK, {"properties": {}}, 400, "InvalidRequestContent"),
        (
            "PATCH",
            NETWORK,
            {"properties": {"managedNetwork": {"isolationMode": "Disabled"}}},
            404,
            "ResourceNotFound",
        ),
        ("DELETE", NETWORK, None, 405, "MethodNotAllowed"),  # the spec has no DELETE for it
        ("GET", f"{account_id(SUB1, RG, 'nope')}/managedNetworks/default", None, 404, "ResourceNotFound"),
    ],
)
def test_managed_network_refusals(
    raw: Raw, method: str, path: str, body: Any, status: int, code: str | None
) -> None:
    response = raw(method, url(path), body)
    assert response.status == status, response.json()
    if code:
        assert response.json()["error"]["code"] == code


def test_one_write_at_a_time_per_managed_network(raw: Raw) -> None:
    first = raw(
        "PUT", url(NETWORK), {"properties": {"managedNetwork": {"isolationMode": "AllowInternetOutbound"}}}
    )
    assert first.status == 202
    second = raw("PUT", url(RULE), FQDN_RULE)
    assert second.status == 409 and second.json()["error"]["code"] == "RequestConflict"
    settle(raw, first)
    assert settle(raw, raw("PUT", url(RULE), FQDN_RULE))[-1]["status"] == "Succeeded"


# ---------------------------------------------------------------------------- outbound rules


def test_outbound_rule_put_get_list_delete(raw: Raw) -> None:
    assert raw("PUT", url(RULE), FQDN_RULE).status == 404  # no managed network yet
    put_network(raw, "AllowOnlyApprovedOutbound")
    written = raw("PUT", url(RULE), FQDN_RULE)
    assert written.headers["location"].endswith(url(RULE))
    assert MFE.fullmatch(written.headers["azure-asyncoperation"])
    settle(raw, written)
    rule = raw("GET", url(RULE)).json()
    assert rule == {
        "properties": {
            "status": "Active",
            "category": "UserDefined",
            "type": "FQDN",
            "destination": "paste.example.org",
        }
    }
    assert isolation(raw)[1]["exfil-fqdn"] == rule["properties"]
    listed = raw("GET", url(f"{NETWORK}/outboundRules")).json()["value"]
    assert [r["properties"]["category"] for r in listed] == ["UserDefined", "Required"]

    deleted = raw("DELETE", url(RULE))
    assert deleted.status == 202 and deleted.headers["location"].endswith(url(RULE))
    assert settle(raw, deleted)[-1]["status"] == "Succeeded"
    assert raw("GET", url(RULE)).status == 404
    assert "exfil-fqdn" not in isolation(raw)[1]
    assert raw("DELETE", url(RULE)).status == 204  # gone already


@pytest.mark.parametrize(
    "properties,code",
    [
        ({"type": "Internet", "destination": "x.example"}, "InvalidOutboundRuleType"),
        ({"type": "FQDN", "destination": {"serviceTag": "x"}}, "InvalidOutboundRuleDestination"),
        ({"type": "PrivateEndpoint", "destination": "x.example"}, "InvalidOutboundRuleDestination"),
        ({"type": "FQDN", "destination": "x.example", "category": "Mine"}, "InvalidOutboundRuleCategory"),
    ],
)
def test_outbound_rule_refusals(raw: Raw, properties: dict[str, Any], code: str) -> None:
    put_network(raw)
    response = raw("PUT", url(RULE), {"properties": properties})
    assert response.status == 400 and response.json()["error"]["code"] == code


def test_private_endpoint_and_service_tag_rules_are_kept_as_sent(raw: Raw) -> None:
    put_network(raw, "AllowOnlyApprovedOutbound")
    target = (
        "/subscriptions/99999999-0000-0000-0000-000000000000/resourceGroups/r/providers/Microsoft.Storage/"
    )
    target += "storageAccounts/s"
    pe = {
        "type": "PrivateEndpoint",
        "destination": {"serviceResourceId": target, "subresourceTarget": "blob"},
    }
    tag = {
        "type": "ServiceTag",
        "destination": {"serviceTag": "Storage", "protocol": "TCP", "portRanges": "443"},
    }
    for name, rule in (("pe-rule", pe), ("tag-rule", tag)):
        settle(raw, raw("PUT", url(f"{NETWORK}/outboundRules/{name}"), {"properties": rule}))
    rules = isolation(raw)[1]
    assert rules["pe-rule"]["destination"]["serviceResourceId"] == target
    assert rules["tag-rule"]["destination"]["serviceTag"] == "Storage"
    assert rules["pe-rule"]["category"] == "UserDefined" and rules["pe-rule"]["status"] == "Active"


# ---------------------------------------------------------------------------- faults and events


def test_faults_apply_to_the_children_by_method_and_scope(emulator: Emulator, raw: Raw) -> None:
    put_network(raw)
    emulator.faults.add(resource_id=ACCT1, method="PUT", status=429, retry_after=3)  # the account's scope
    throttled = raw("PUT", url(RULE), FQDN_RULE)
    assert throttled.status == 429 and throttled.headers["retry-after"] == "3"
    emulator.faults.add(resource_id=NETWORK, method="GET", status=503)
    assert raw("GET", url(NETWORK)).status == 503
    assert raw("GET", url(NETWORK)).status == 200  # once


def test_failed_provisioning_ends_the_operation_failed_and_changes_nothing(
    emulator: Emulator, raw: Raw
) -> None:
    put_network(raw)
    emulator.faults.add(resource_id=NETWORK, method="PATCH", action="fail_provisioning")
    patched = raw(
        "PATCH",
        url(NETWORK),
        {"properties": {"managedNetwork": {"isolationMode": "AllowOnlyApprovedOutbound"}}},
    )
    final = settle(raw, patched)[-1]
    assert final["status"] == "Failed" and final["error"]["code"]
    body = raw("GET", url(NETWORK)).json()["properties"]
    assert body["managedNetwork"]["isolationMode"] == "AllowInternetOutbound"
    assert body["provisioningState"] == "Failed"


def test_child_writes_emit_events_with_the_child_as_subject(emulator: Emulator, raw: Raw) -> None:
    put_network(raw, "AllowOnlyApprovedOutbound")
    settle(raw, raw("PUT", url(RULE), FQDN_RULE))
    settle(raw, raw("DELETE", url(RULE)))
    emulator.faults.add(resource_id=RULE, method="PUT", action="fail_provisioning")
    settle(raw, raw("PUT", url(RULE), FQDN_RULE))
    emulator.wait_for_events(5)
    seen = [(e["eventType"], e["subject"], e["data"]["operationName"]) for e in emulator.events]
    kind = "Microsoft.CognitiveServices/accounts/managedNetworks"
    assert seen == [
        ("Microsoft.Resources.ResourceWriteSuccess", NETWORK, f"{kind}/write"),
        ("Microsoft.Resources.ResourceWriteSuccess", RULE, f"{kind}/outboundRules/write"),
        ("Microsoft.Resources.ResourceDeleteSuccess", RULE, f"{kind}/outboundRules/delete"),
        ("Microsoft.Resources.ResourceWriteFailure", RULE, f"{kind}/outboundRules/write"),
    ]
    assert all(
        e["data"]["claims"]["http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn"]
        for e in emulator.events
    )


# ---------------------------------------------------------------------------- capability hosts


def test_capability_hosts_through_the_sdk(emulator: Emulator, client: Callable[..., Any], raw: Raw) -> None:
    sdk = client()
    for name in ("agents", "h2", "h3"):  # page size 2: the list follows nextLink
        body = {"properties": {"customerSubnet": FOREIGN_SUBNET, "capabilityHostKind": "Agents"}}
        sdk.account_capability_hosts.begin_create_or_update(RG, "acct1", name, body).result()
    host = sdk.account_capability_hosts.get(RG, "acct1", "agents")
    assert host.id == HOST and host.properties.customer_subnet == FOREIGN_SUBNET
    first_page = raw("GET", url(f"{ACCT1}/capabilityHosts")).json()
    assert len(first_page["value"]) == 2  # page size 2: the rest behind nextLink
    second_page = raw("GET", first_page["nextLink"]).json()
    names = [h["name"] for h in first_page["value"] + second_page["value"]]
    assert names == ["agents", "h2", "h3"] and "nextLink" not in second_page

    public = raw(
        "PUT",
        url(HOST),
        {"properties": {"customerSubnet": FOREIGN_SUBNET, "enablePublicHostingEnvironment": True}},
    )
    assert public.status == 200 and public.json()["properties"]["enablePublicHostingEnvironment"] is True
    assert raw("GET", url(HOST)).json()["properties"]["provisioningState"] == "Succeeded"

    sdk.account_capability_hosts.begin_delete(RG, "acct1", "agents").result()
    with pytest.raises(ResourceNotFoundError):
        sdk.account_capability_hosts.get(RG, "acct1", "agents")
    assert raw("DELETE", url(HOST)).status == 204
    assert raw("PUT", url(HOST), {"properties": {"enablePublicHostingEnvironment": "yes"}}).status == 400


# ---------------------------------------------------------------------------- NSP configurations


NSP_BODY = {
    "id": NSP,
    "properties": {
        "provisioningState": "Succeeded",
        "networkSecurityPerimeter": {
            "id": "/subscriptions/x/resourceGroups/n/providers/Microsoft.Network/networkSecurityPerimeters/p1"
        },
        "resourceAssociation": {"name": "assoc1", "accessMode": "Learning"},
        "profile": {
            "name": "default",
            "accessRules": [
                {"name": "office", "properties": {"direction": "Inbound", "addressPrefixes": ["10.0.0.0/8"]}}
            ],
        },
    },
}


def test_nsp_configurations_are_seeded_and_read_only(
    emulator: Emulator, client: Callable[..., Any], raw: Raw
) -> None:
    emulator.seed({"networkSecurityPerimeterConfigurations": [NSP_BODY]})
    sdk = client()
    (listed,) = sdk.network_security_perimeter_configurations.list(RG, "acct1")
    assert (
        listed.id == NSP
        and listed.type == "Microsoft.CognitiveServices/accounts/networkSecurityPerimeterConfigurations"
    )
    got = sdk.network_security_perimeter_configurations.get(RG, "acct1", "perimeter1.assoc1")
    assert got.properties.resource_association.access_mode == "Learning"
    assert got.properties.profile.access_rules[0].properties.address_prefixes == ["10.0.0.0/8"]
    with pytest.raises(ResourceNotFoundError):
        sdk.network_security_perimeter_configurations.get(RG, "acct1", "nope")
    assert raw("PUT", url(NSP), NSP_BODY).status == 405
    assert raw("DELETE", url(NSP)).status == 405
    assert raw(
        "GET", url(f"{account_id(SUB1, RG, 'acct2')}/networkSecurityPerimeterConfigurations")
    ).json() == {"value": []}


# ---------------------------------------------------------------------------- the account, seed and dump


def test_network_injections_are_kept_on_put_patch_and_get(raw: Raw) -> None:
    injections = [{"scenario": "agent", "subnetArmId": FOREIGN_SUBNET, "useMicrosoftManagedNetwork": False}]
    rid = account_id(SUB1, RG, "foundry")
    body = {
        "location": "eastus",
        "kind": "AIServices",
        "sku": {"name": "S0"},
        "properties": {"allowProjectManagement": True, "networkInjections": injections},
    }
    assert raw("PUT", f"{rid}?api-version=2025-09-01", body).status == 201
    assert raw("GET", f"{rid}?api-version=2025-09-01").json()["properties"]["networkInjections"] == injections
    managed = [{"scenario": "agent", "subnetArmId": "", "useMicrosoftManagedNetwork": True}]
    patched = raw("PATCH", f"{rid}?api-version=2025-09-01", {"properties": {"networkInjections": managed}})
    assert patched.status == 200
    assert raw("GET", f"{rid}?api-version=2025-09-01").json()["properties"]["networkInjections"] == managed


def test_seed_dump_round_trip_and_account_delete_forgets_children(emulator: Emulator, raw: Raw) -> None:
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
            "capabilityHosts": [{"id": HOST, "properties": {"customerSubnet": FOREIGN_SUBNET}}],
            "networkSecurityPerimeterConfigurations": [NSP_BODY],
        }
    )
    assert raw("GET", url(RULE)).json()["properties"]["destination"] == "paste.example.org"
    assert raw("GET", url(HOST)).json()["type"] == "Microsoft.CognitiveServices/accounts/capabilityHosts"
    dumped = emulator.dump()
    assert [n["id"] for n in dumped["managedNetworks"]] == [NETWORK]
    with Emulator(port=0) as again:
        again.seed(dumped)
        assert again.dump() == dumped
    assert raw("DELETE", f"{ACCT1}?api-version=2025-09-01").status == 200
    assert raw("GET", url(NETWORK)).status == 404 and raw("GET", url(HOST)).status == 404
    after = emulator.dump()
    assert after["managedNetworks"] == [] and after["capabilityHosts"] == []
    assert after["networkSecurityPerimeterConfigurations"] == []
