"""The ARM surfaces generic clients (az, Cloud Custodian) call, beyond the accounts themselves."""

from __future__ import annotations

from typing import Any

from guardrail_workbench.emulator import Emulator, account_id

from .conftest import ACCT1, API, RG, SUB1, SUB2

VNET = f"/subscriptions/{SUB1}/resourceGroups/{RG}/providers/Microsoft.Network/virtualNetworks/myvnet"
SUBNET = f"{VNET}/subnets/mysubnet"
NET_API = "2024-05-01"


def _acls(**extra: Any) -> dict[str, Any]:
    return {"properties": {"networkAcls": {"defaultAction": "Deny", **extra}}}


def test_metadata_endpoints_need_no_token_and_name_the_emulator(emulator: Emulator, raw: Any) -> None:
    response = raw("GET", "/metadata/endpoints?api-version=2019-05-01", token=None)
    assert response.status == 200
    body = response.json()
    assert body["resourceManager"] == emulator.endpoint + "/"
    assert "https://management.core.windows.net/" in body["authentication"]["audiences"]
    assert (
        raw("GET", f"/subscriptions/{SUB1}?api-version={API}", token=None).status == 401
    )  # the rest still does


def test_providers_api_lists_api_versions_newest_first(raw: Any) -> None:
    one = raw(
        "GET", f"/subscriptions/{SUB1}/providers/microsoft.cognitiveservices?api-version=2021-04-01"
    ).json()
    assert one["namespace"] == "Microsoft.CognitiveServices" and one["registrationState"] == "Registered"
    accounts = next(t for t in one["resourceTypes"] if t["resourceType"] == "accounts")
    assert accounts["apiVersions"][0] >= "2025-09-01" and accounts["locations"]
    everything = raw("GET", f"/subscriptions/{SUB1}/providers?api-version=2021-04-01").json()["value"]
    assert {"Microsoft.CognitiveServices", "Microsoft.Network"} <= {p["namespace"] for p in everything}
    unknown = raw("GET", f"/subscriptions/{SUB1}/providers/Microsoft.Nothing?api-version=2021-04-01")
    assert unknown.status == 404 and unknown.json()["error"]["code"] == "InvalidResourceNamespace"


def test_tags_api_is_reflected_in_the_account(emulator: Emulator, raw: Any) -> None:
    tags = f"{ACCT1}/providers/Microsoft.Resources/tags/default?api-version=2021-04-01"
    assert raw("GET", tags).json()["properties"]["tags"] == {"owner": "team-a"}
    merged = raw("PATCH", tags, {"operation": "Merge", "properties": {"tags": {"custodian": "open"}}})
    assert merged.status == 200
    assert merged.json()["properties"]["tags"] == {"owner": "team-a", "custodian": "open"}
    account = emulator.account(ACCT1)
    assert account is not None and account["tags"] == {"owner": "team-a", "custodian": "open"}
    assert raw("PUT", tags, {"properties": {"tags": {"only": "this"}}}).json()["properties"]["tags"] == {
        "only": "this"
    }
    deleted = raw("PATCH", tags, {"operation": "Delete", "properties": {"tags": {"only": "this"}}})
    assert deleted.json()["properties"]["tags"] == {}
    assert emulator.wait_for_events()
    writes = [e for e in emulator.events if e["eventType"] == "Microsoft.Resources.ResourceWriteSuccess"]
    assert writes and writes[-1]["data"]["operationName"] == "Microsoft.Resources/tags/write"


def test_percent_encoded_resource_ids_are_decoded(raw: Any) -> None:
    encoded = ACCT1.replace(
        "/providers/Microsoft.CognitiveServices/accounts/",
        "/providers/Microsoft.CognitiveServices%2Faccounts%2F",
    )
    assert raw("GET", f"{encoded}?api-version={API}").json()["id"] == ACCT1


def _put_vnet(raw: Any, endpoints: list[dict[str, str]]) -> None:
    body = {
        "location": "westus",
        "properties": {
            "addressSpace": {"addressPrefixes": ["10.1.0.0/16"]},
            "subnets": [
                {
                    "name": "mysubnet",
                    "properties": {"addressPrefix": "10.1.0.0/24", "serviceEndpoints": endpoints},
                }
            ],
        },
    }
    assert raw("PUT", f"{VNET}?api-version={NET_API}", body).status == 201


def test_virtual_networks_and_subnets_with_service_endpoints(raw: Any) -> None:
    _put_vnet(raw, [])
    subnet = raw("GET", f"{SUBNET}?api-version={NET_API}").json()
    assert subnet["id"] == SUBNET and subnet["properties"]["serviceEndpoints"] == []
    subnet["properties"]["serviceEndpoints"] = [{"service": "Microsoft.CognitiveServices"}]
    updated = raw("PUT", f"{SUBNET}?api-version={NET_API}", subnet)
    assert updated.status == 200
    assert updated.json()["properties"]["serviceEndpoints"][0]["provisioningState"] == "Succeeded"
    listed = raw("GET", f"{VNET}/subnets?api-version={NET_API}").json()["value"]
    assert [s["name"] for s in listed] == ["mysubnet"]
    vnets = raw(
        "GET",
        f"/subscriptions/{SUB1}/resourceGroups/{RG}/providers/Microsoft.Network/virtualNetworks?api-version={NET_API}",
    )
    assert [v["id"] for v in vnets.json()["value"]] == [VNET]
    assert raw("GET", f"{VNET}/subnets/nope?api-version={NET_API}").status == 404


def test_a_subnet_without_the_service_endpoint_is_refused_unless_ignored(raw: Any) -> None:
    _put_vnet(raw, [{"service": "Microsoft.Storage"}])
    refused = raw("PATCH", f"{ACCT1}?api-version={API}", _acls(virtualNetworkRules=[{"id": SUBNET}]))
    assert refused.status == 400
    assert "Microsoft.CognitiveServices" in refused.json()["error"]["message"]
    ignored = raw(
        "PATCH",
        f"{ACCT1}?api-version={API}",
        _acls(virtualNetworkRules=[{"id": SUBNET, "ignoreMissingVnetServiceEndpoint": True}]),
    )
    assert ignored.status == 200
    rule = ignored.json()["properties"]["networkAcls"]["virtualNetworkRules"][0]
    assert rule["state"] == "Succeeded" and rule["ignoreMissingVnetServiceEndpoint"] is True


def test_outbound_restriction_round_trips(raw: Any) -> None:
    body = {"properties": {"restrictOutboundNetworkAccess": True, "allowedFqdnList": ["contoso.example"]}}
    raw("PATCH", f"{ACCT1}?api-version={API}", body)
    properties = raw("GET", f"{ACCT1}?api-version={API}").json()["properties"]
    assert properties["restrictOutboundNetworkAccess"] is True
    assert properties["allowedFqdnList"] == ["contoso.example"]


def test_custom_subdomain_is_set_once_and_unique(raw: Any) -> None:
    acct2 = account_id(SUB1, RG, "acct2")
    changed = raw("PATCH", f"{ACCT1}?api-version={API}", {"properties": {"customSubDomainName": "other"}})
    assert changed.status == 400
    taken = raw("PATCH", f"{acct2}?api-version={API}", {"properties": {"customSubDomainName": "acct1"}})
    assert taken.status == 400 or taken.status == 409  # acct2 already has its own (acct2)
    fresh = {"location": "westus", "kind": "OpenAI", "sku": {"name": "S0"}, "properties": {}}
    new = account_id(SUB1, RG, "oai")
    created = raw("PUT", f"{new}?api-version={API}", fresh).json()
    assert created["properties"]["endpoint"] == "https://westus.api.cognitive.microsoft.com/"
    clash = raw("PATCH", f"{new}?api-version={API}", {"properties": {"customSubDomainName": "ACCT1"}})
    assert clash.status == 409 and clash.json()["error"]["code"] == "CustomDomainInUse"
    named = raw("PATCH", f"{new}?api-version={API}", {"properties": {"customSubDomainName": "my-oai"}}).json()
    assert named["properties"]["endpoint"] == "https://my-oai.openai.azure.com/"
    again = raw("PATCH", f"{new}?api-version={API}", {"properties": {"customSubDomainName": "my-oai"}})
    assert again.status == 200  # the same value is no change


def test_deleted_accounts_are_soft_deleted_and_hold_their_name(raw: Any) -> None:
    assert raw("DELETE", f"{ACCT1}?api-version={API}").status == 200
    listed = raw(
        "GET",
        f"/subscriptions/{SUB1}/providers/Microsoft.CognitiveServices/deletedAccounts?api-version={API}",
    )
    (deleted,) = listed.json()["value"]
    assert deleted["name"] == "acct1" and "/deletedAccounts/acct1" in deleted["id"]
    assert raw("GET", f"{deleted['id']}?api-version={API}").json()["properties"]["deletionDate"]
    body = {"location": "westus", "kind": "AIServices", "sku": {"name": "S0"}, "properties": {}}
    held = raw("PUT", f"{ACCT1}?api-version={API}", body)
    assert held.status == 409 and held.json()["error"]["code"] == "FlagMustBeSetForRestore"
    other = account_id(SUB1, RG, "fresh")
    clash = raw("PUT", f"{other}?api-version={API}", {**body, "properties": {"customSubDomainName": "acct1"}})
    assert clash.status == 409  # the deleted account still holds its subdomain
    restored = raw("PUT", f"{ACCT1}?api-version={API}", {**body, "properties": {"restore": True}})
    assert restored.status == 201 and "restore" not in restored.json()["properties"]  # recorded-arm 2025
    assert restored.json()["properties"]["customSubDomainName"] == "acct1"
    assert raw(
        "GET",
        f"/subscriptions/{SUB1}/providers/Microsoft.CognitiveServices/deletedAccounts?api-version={API}",
    ).json() == {"value": []}
    raw("DELETE", f"{ACCT1}?api-version={API}")
    purge = raw("DELETE", f"{deleted['id']}?api-version={API}")
    assert purge.status == 202  # ARM purges as an operation (recorded-arm, softdelete 2025)
    assert "/operationResults/" in purge.headers["azure-asyncoperation"]
    assert raw("GET", purge.headers["azure-asyncoperation"]).json()["status"] == "Succeeded"
    assert raw("GET", purge.headers["location"]).status == 204  # nothing left to return
    assert raw("PUT", f"{ACCT1}?api-version={API}", body).status == 201


def test_private_endpoint_connections_from_a_foreign_subscription(emulator: Emulator, raw: Any) -> None:
    endpoint = f"/subscriptions/{SUB2}/resourceGroups/rg-b/providers/Microsoft.Network/privateEndpoints/pe1"
    made = raw(
        "POST",
        "/_emulator/privateEndpointConnections",
        {"accountId": ACCT1, "privateEndpointId": endpoint},
        token=None,
    )
    assert made.status == 201
    connection = made.json()
    assert connection["properties"]["privateLinkServiceConnectionState"]["status"] == "Approved"
    pecs = f"{ACCT1}/privateEndpointConnections"
    assert [c["name"] for c in raw("GET", f"{pecs}?api-version={API}").json()["value"]] == [
        connection["name"]
    ]
    one = f"{pecs}/{connection['name']}?api-version={API}"
    assert raw("GET", one).json()["properties"]["privateEndpoint"]["id"] == endpoint
    rejected = raw(
        "PUT",
        one,
        {"properties": {"privateLinkServiceConnectionState": {"status": "Rejected", "description": "no"}}},
    )
    assert rejected.status == 200
    account = raw("GET", f"{ACCT1}?api-version={API}").json()
    state = account["properties"]["privateEndpointConnections"][0]["properties"][
        "privateLinkServiceConnectionState"
    ]
    assert state["status"] == "Rejected"
    assert (
        raw("PUT", one, {"properties": {"privateLinkServiceConnectionState": {"status": "Maybe"}}}).status
        == 400
    )
    assert raw("DELETE", one).status == 200
    assert raw("GET", one).status == 404
    assert raw("GET", f"{ACCT1}?api-version={API}").json()["properties"]["privateEndpointConnections"] == []
    assert emulator.wait_for_events()
    subjects = [e["subject"] for e in emulator.events if e["eventType"].startswith("Microsoft.Resources.")]
    assert subjects.count(connection["id"]) == 3  # created, state changed, deleted
    ops = [e["data"]["operationName"] for e in emulator.events if e["subject"] == connection["id"]]
    assert ops[-1] == "Microsoft.CognitiveServices/accounts/privateEndpointConnections/delete"


def test_management_locks_at_a_percent_encoded_scope_are_enforced(raw: Any) -> None:
    encoded = "/" + ACCT1.replace("/", "%2F")  # how azure-mgmt-resource's locks client sends {scope}
    lock = f"{encoded}/providers/Microsoft.Authorization/locks/no-delete?api-version=2016-09-01"
    made = raw("PUT", lock, {"properties": {"level": "CanNotDelete", "notes": "custodian"}})
    assert (
        made.status == 201
        and made.json()["id"] == f"{ACCT1}/providers/Microsoft.Authorization/locks/no-delete"
    )
    listed = raw("GET", f"{ACCT1}/providers/Microsoft.Authorization/locks?api-version=2016-09-01").json()[
        "value"
    ]
    assert [item["name"] for item in listed] == ["no-delete"]
    assert raw("PATCH", f"{ACCT1}?api-version={API}", _acls()).status == 200  # CanNotDelete: writes go
    refused = raw("DELETE", f"{ACCT1}?api-version={API}")
    assert refused.status == 409 and refused.json()["error"]["code"] == "ScopeLocked"
    group = f"/subscriptions/{SUB1}/resourceGroups/{RG}"
    group_lock = f"{group}/providers/Microsoft.Authorization/locks/ro?api-version=2016-09-01"
    assert raw("PUT", group_lock, {"properties": {"level": "ReadOnly"}}).status == 201
    assert raw("PATCH", f"{ACCT1}?api-version={API}", _acls()).json()["error"]["code"] == "ScopeLocked"
    assert raw("PUT", group_lock, {"properties": {"level": "Sometimes"}}).status == 400
    assert raw("DELETE", group_lock).status == 200 and raw("DELETE", lock).status == 200
    assert raw("DELETE", f"{ACCT1}?api-version={API}").status == 200


def test_the_gateway_reports_a_read_only_lock_as_a_refusal_not_a_retry(emulator: Emulator) -> None:
    from guardrail.gateway import ArmGateway, ArmSettings

    emulator.app.locks[f"{ACCT1}/providers/microsoft.authorization/locks/ro".lower()] = {
        "id": f"{ACCT1}/providers/Microsoft.Authorization/locks/ro",
        "name": "ro",
        "type": "Microsoft.Authorization/locks",
        "properties": {"level": "ReadOnly"},
    }
    settings = ArmSettings(
        endpoint=emulator.endpoint,
        ca_bundle=emulator.ca_bundle,
        credential="static",
        static_token="local",
        retry_backoff=0.01,
        conflict_backoff=0.01,
        poll_interval=0.01,
    )
    gateway = ArmGateway(settings)
    account = gateway.get(ACCT1)
    assert account is not None
    result = gateway.patch(ACCT1, _acls(), account.get("etag"))
    assert (result.status, result.error_code, result.http_status) == ("refused", "ScopeLocked", 409)
    patches = [m for m, p, _ in emulator.app.requests if m == "PATCH" and p.lower() == ACCT1.lower()]
    assert len(patches) == 1  # a refusal, not a retry
