"""Private endpoints made the way a user makes them (`Microsoft.Network/privateEndpoints`), their
connection on the account, privateLinkResources, and the operations ARM announces for them, over
HTTPS (raw, to see ARM's status codes and links) and through the real SDK where it has the call."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from guardrail_workbench.emulator import Emulator, make_token

from .conftest import ACCT1, API, RG, SUB1

NET = "2021-08-01"
VNET = f"/subscriptions/{SUB1}/resourceGroups/{RG}/providers/Microsoft.Network/virtualNetworks/vnet1"
SUBNET = f"{VNET}/subnets/default"
PE = f"/subscriptions/{SUB1}/resourceGroups/{RG}/providers/Microsoft.Network/privateEndpoints/pe1"
FOREIGN = make_token({"upn": "eve@fabrikam.example", "tid": "99999999-0000-0000-0000-000000000000"})


def _network(raw: Any) -> None:
    body = {
        "location": "westus",
        "properties": {
            "addressSpace": {"addressPrefixes": ["10.0.0.0/16"]},
            "subnets": [{"name": "default", "properties": {"addressPrefix": "10.0.0.0/24"}}],
        },
    }
    assert raw("PUT", f"{VNET}?api-version={NET}", body).status == 201


def _endpoint(kind: str = "privateLinkServiceConnections", **extra: Any) -> dict[str, Any]:
    connection = {
        "name": "pe1",
        "properties": {"privateLinkServiceId": ACCT1, "groupIds": ["account"], **extra},
    }
    return {"location": "westus", "properties": {"subnet": {"id": SUBNET}, kind: [connection]}}


def _connections(raw: Any) -> list[dict[str, Any]]:
    properties = raw("GET", f"{ACCT1}?api-version={API}").json()["properties"]
    result: list[dict[str, Any]] = properties.get("privateEndpointConnections", [])  # seeded: absent
    return result


def _state(connection: dict[str, Any]) -> str:
    return str(connection["properties"]["privateLinkServiceConnectionState"]["status"])


def test_an_owner_s_endpoint_is_approved_on_the_account_and_goes_with_it(
    emulator: Emulator, raw: Any
) -> None:
    _network(raw)
    made = raw("PUT", f"{PE}?api-version={NET}", _endpoint())
    assert made.status == 201
    operation = made.headers["azure-asyncoperation"]
    assert "/providers/Microsoft.Network/locations/westus/operations/" in operation
    assert raw("GET", operation).json()["status"] == "Succeeded"  # outside async mode: already over
    (pls,) = made.json()["properties"]["privateLinkServiceConnections"]
    assert _state(pls) == "Approved"
    (connection,) = _connections(raw)
    assert _state(connection) == "Approved"
    assert connection["properties"]["privateEndpoint"]["id"] == PE
    assert connection["name"].startswith("pe1.")
    one = f"{ACCT1}/privateEndpointConnections/{connection['name']}?api-version={API}"
    assert _state(raw("GET", one).json()) == "Approved"
    # the account's owner rejects it: the endpoint reports what the account holds
    rejected = {"properties": {"privateLinkServiceConnectionState": {"status": "Rejected"}}}
    assert raw("PUT", one, rejected).status == 200
    (pls,) = raw("GET", f"{PE}?api-version={NET}").json()["properties"]["privateLinkServiceConnections"]
    assert _state(pls) == "Rejected"
    gone = raw("DELETE", f"{PE}?api-version={NET}")
    assert gone.status == 202
    assert "/providers/Microsoft.Network/locations/westus/operationResults/" in gone.headers["location"]
    assert raw("GET", gone.headers["azure-asyncoperation"]).json()["status"] == "Succeeded"
    assert _connections(raw) == []
    assert raw("GET", f"{PE}?api-version={NET}").status == 404
    assert raw("DELETE", f"{PE}?api-version={NET}").status == 204
    assert emulator.wait_for_events()
    subjects = [e["subject"] for e in emulator.events if "privateEndpointConnections" in e["subject"]]
    assert subjects and all(s.endswith(connection["name"]) for s in subjects)


def test_a_manual_request_waits_pending_until_the_owner_approves(raw: Any) -> None:
    _network(raw)
    made = raw(
        "PUT",
        f"{PE}?api-version={NET}",
        _endpoint("manualPrivateLinkServiceConnections", requestMessage="please"),
    )
    assert made.status == 201
    (connection,) = _connections(raw)
    assert _state(connection) == "Pending"
    assert connection["properties"]["privateLinkServiceConnectionState"]["description"] == "please"
    one = f"{ACCT1}/privateEndpointConnections/{connection['name']}?api-version={API}"
    approve = {"properties": {"privateLinkServiceConnectionState": {"status": "Approved"}}}
    assert raw("PUT", one, approve).status == 200
    (manual,) = raw("GET", f"{PE}?api-version={NET}").json()["properties"][
        "manualPrivateLinkServiceConnections"
    ]
    assert _state(manual) == "Approved"
    again = raw("PUT", f"{PE}?api-version={NET}", _endpoint("manualPrivateLinkServiceConnections"))
    assert again.status == 200 and len(_connections(raw)) == 1  # the same request, not a second one


def test_another_tenant_s_caller_must_ask_manually(raw: Any) -> None:
    _network(raw)
    refused = raw("PUT", f"{PE}?api-version={NET}", _endpoint(), token=FOREIGN)
    assert refused.status == 403 and refused.json()["error"]["code"] == "LinkedAuthorizationFailed"
    assert "privateEndpointConnectionsApproval/action" in refused.json()["error"]["message"]
    assert _connections(raw) == []
    asked = raw(
        "PUT", f"{PE}?api-version={NET}", _endpoint("manualPrivateLinkServiceConnections"), token=FOREIGN
    )
    assert asked.status == 201
    assert [_state(c) for c in _connections(raw)] == ["Pending"]


def test_an_endpoint_needs_a_known_subnet_and_account(raw: Any) -> None:
    missing_subnet = raw("PUT", f"{PE}?api-version={NET}", _endpoint())
    assert (
        missing_subnet.status == 400 and missing_subnet.json()["error"]["code"] == "InvalidResourceReference"
    )
    _network(raw)
    body = _endpoint()
    body["properties"]["privateLinkServiceConnections"][0]["properties"]["privateLinkServiceId"] = ACCT1 + "x"
    unknown = raw("PUT", f"{PE}?api-version={NET}", body)
    assert unknown.status == 400 and unknown.json()["error"]["code"] == "LinkedInvalidPropertyId"


def test_in_async_mode_the_endpoint_is_updating_until_its_operation_is_polled(
    emulator: Emulator, raw: Any
) -> None:
    _network(raw)
    emulator.async_writes = True
    made = raw("PUT", f"{PE}?api-version={NET}", _endpoint())
    assert made.status == 201 and made.json()["properties"]["provisioningState"] == "Updating"
    operation = made.headers["azure-asyncoperation"]
    assert raw("GET", operation).json()["status"] == "InProgress"  # async_polls=1
    assert raw("GET", operation).json()["status"] == "Succeeded"
    assert raw("GET", f"{PE}?api-version={NET}").json()["properties"]["provisioningState"] == "Succeeded"


def test_private_link_resources_name_the_account_group_and_its_zone(client: Callable[..., Any]) -> None:
    (resource,) = client().private_link_resources.list(RG, "acct1").value
    assert resource.properties.group_id == "account"
    assert resource.properties.required_zone_names == ["privatelink.cognitiveservices.azure.com"]


def test_the_sdk_creates_an_account_through_arm_s_operation_in_async_mode(
    emulator: Emulator, client: Callable[..., Any]
) -> None:
    from azure.mgmt.cognitiveservices.models import Account, Sku

    emulator.async_writes = True
    body = Account(location="westus", kind="AIServices", sku=Sku(name="S0"))
    created = client().accounts.begin_create(RG, "fresh", body, polling_interval=0.01).result()
    assert created.properties.provisioning_state == "Succeeded"
    polled = [p for m, p, s in emulator.app.requests if "/operationResults/" in p]
    assert polled, "the SDK never polled the operation ARM announced"
    keys = client().accounts.list_keys(RG, "fresh")
    assert keys.key1 and keys.key2


def test_deleting_an_account_still_being_created_is_an_operation(emulator: Emulator, raw: Any) -> None:
    emulator.async_writes = True
    rid = ACCT1.replace("acct1", "young")
    body = {"location": "westus", "kind": "Face", "sku": {"name": "S0"}, "properties": {}}
    made = raw("PUT", f"{rid}?api-version={API}", body)
    assert made.status == 201 and made.json()["properties"]["provisioningState"] == "Creating"
    gone = raw("DELETE", f"{rid}?api-version={API}")
    assert gone.status == 202 and gone.headers["location"].endswith("operationResultResponseType=Location")
    assert raw("GET", f"{rid}?api-version={API}").status == 404
    emulator.async_writes = False
    assert raw("DELETE", f"{ACCT1}?api-version={API}").status == 200  # a settled account: 200


def test_regenerating_a_key_changes_that_key_only(client: Callable[..., Any]) -> None:
    before = client().accounts.list_keys(RG, "acct1")
    after = client().accounts.regenerate_key(RG, "acct1", "Key2")
    assert (after.key1, after.key2 != before.key2) == (before.key1, True)


def test_an_endpoint_updated_to_another_account_leaves_the_first(raw: Any) -> None:
    _network(raw)
    lower = PE.replace("resourceGroups", "resourcegroups")  # az sends either casing
    assert raw("PUT", f"{lower}?api-version={NET}", _endpoint()).json()["id"] == PE  # ARM's casing back
    other = ACCT1.replace("acct1", "acct2")
    body = _endpoint()
    body["properties"]["privateLinkServiceConnections"][0]["properties"]["privateLinkServiceId"] = other
    assert raw("PUT", f"{PE}?api-version={NET}", body).status == 200
    assert _connections(raw) == []
    moved = raw("GET", f"{other}?api-version={API}").json()["properties"]["privateEndpointConnections"]
    assert [_state(c) for c in moved] == ["Approved"]
