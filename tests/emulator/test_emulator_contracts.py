"""The emulator's answers against the shared contracts (../shared/contracts): account bodies, status
codes, LRO headers, the 409 error body and event shapes (same keys at every level)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from guardrail_workbench.emulator import Emulator, account_id, make_token

from .conftest import ACCT1, API, OPEN_ACLS, RG, SUB1, key_shape


def load(contracts: Path, relative: str) -> Any:
    return json.loads((contracts / relative).read_text(encoding="utf-8"))


def keys_at_every_level(value: Any, prefix: str = "") -> set[str]:
    found: set[str] = set()
    if isinstance(value, dict):
        for key, item in value.items():
            found.add(prefix + key)
            found |= keys_at_every_level(item, f"{prefix}{key}.")
    elif isinstance(value, list) and value:
        found |= keys_at_every_level(value[0], prefix + "[].")
    return found


def _path(rid: str, version: str = API) -> str:
    return f"{rid}?api-version={version}"


# ---------------------------------------------------------------------------- account bodies


def test_get_account_has_the_example_fields(contracts: Path, emulator: Emulator, raw: Any) -> None:
    example = load(contracts, "examples/2025-09-01_GetAccount.json")
    expected = example["responses"]["200"]["body"]
    rid = account_id(SUB1, RG, "myAccount")
    request = {k: expected[k] for k in ("location", "sku", "kind", "tags")}
    assert raw("PUT", _path(rid), request).status == 201
    body = raw("GET", _path(rid)).json()
    assert keys_at_every_level(expected) <= keys_at_every_level(body)
    for key in ("name", "type", "location", "sku", "kind", "tags"):
        assert body[key] == expected[key], key
    assert body["properties"]["provisioningState"] == "Succeeded"


def test_create_account_example_gives_201_with_the_example_shape(contracts: Path, raw: Any) -> None:
    example = load(contracts, "examples/2026-09-01_CreateAccount.json")
    params = example["parameters"]
    rid = account_id(SUB1, RG, params["accountName"])
    created = raw("PUT", _path(rid, params["api-version"]), params["account"])
    assert created.status == 201
    expected = example["responses"]["201"]["body"]
    assert keys_at_every_level(expected) <= keys_at_every_level(created.json())
    assert created.json()["properties"]["userOwnedStorage"] == expected["properties"]["userOwnedStorage"]
    replaced = raw("PUT", _path(rid, params["api-version"]), params["account"])
    assert replaced.status == 200
    assert keys_at_every_level(example["responses"]["200"]["body"]) <= keys_at_every_level(replaced.json())


def test_update_example_answers_200_then_202_with_lro_headers(
    contracts: Path, emulator: Emulator, raw: Any
) -> None:
    example = load(contracts, "examples/2025-09-01_UpdateAccount.json")
    rid = account_id(SUB1, RG, "acct1")
    body = example["parameters"]["account"]
    ok = raw("PATCH", _path(rid), body)
    assert ok.status == 200
    assert keys_at_every_level(example["responses"]["200"]["body"]) <= keys_at_every_level(ok.json())
    assert ok.json()["sku"] == body["sku"]
    emulator.async_writes = True
    accepted = raw("PATCH", _path(rid), body)
    assert accepted.status == 202
    for header in example["responses"]["202"]["headers"]:
        assert header.lower() in accepted.headers, header
    assert accepted.headers["azure-asyncoperation"].startswith(emulator.endpoint)
    assert accepted.headers["location"].startswith(emulator.endpoint)
    status = raw("GET", accepted.headers["azure-asyncoperation"]).json()
    assert status["status"] in ("InProgress", "Succeeded", "Failed")


def test_recorded_accounts_come_back_unchanged(contracts: Path) -> None:
    files = sorted((contracts / "recorded-accounts").glob("*__GET__*.json"))
    assert len(files) >= 20
    arm = Emulator()
    for path in files:
        recorded = json.loads(path.read_text())["account"]
        arm.put_account(recorded)
        stored = arm.account(recorded["id"])
        assert stored is not None
        if "properties" in recorded:
            for key, value in recorded["properties"].items():
                assert stored["properties"][key] == value, (path.name, key)
        for key in ("id", "name", "type", "etag", "location", "sku", "kind"):
            if key in recorded:
                assert stored[key] == recorded[key], (path.name, key)


def test_request_conflict_body_matches_the_contract(contracts: Path, emulator: Emulator, raw: Any) -> None:
    expected = load(contracts, "arm/error_409_RequestConflict.json")
    assert f"'{ACCT1}'" in expected["error"]["message"]  # the fixture account is the contract's account
    emulator.set_busy(ACCT1, calls=1)
    response = raw("PATCH", _path(ACCT1), {"properties": {}})
    assert response.status == 409
    assert response.json() == expected


def test_throttle_body_matches_the_contract(contracts: Path, emulator: Emulator, raw: Any) -> None:
    expected = load(contracts, "arm/error_429_body_illustrative.json")
    emulator.write_rate = 1
    assert raw("PATCH", _path(ACCT1), {"properties": {}}).status == 200
    throttled = raw("PATCH", _path(ACCT1), {"properties": {}})
    assert throttled.status == 429
    assert throttled.json() == expected
    assert "retry-after" in throttled.headers


# ---------------------------------------------------------------------------- events


def _collect(emulator: Emulator, schema: str) -> list[dict[str, Any]]:
    got: list[dict[str, Any]] = []
    emulator.subscribe(got.append, schema=schema)  # type: ignore[arg-type]
    return got


def _write_then_delete(raw: Callable[..., Any]) -> None:
    acls = dict(OPEN_ACLS)
    assert raw("PATCH", _path(ACCT1), {"properties": {"networkAcls": acls}}).status == 200
    assert raw("DELETE", _path(ACCT1)).status == 200


@pytest.mark.parametrize(
    ("schema", "write_file", "notification_file"),
    [
        (
            "eventgrid",
            "events/derived_cogsvc_ResourceWriteSuccess.eventgrid.json",
            "events/derived_arn_CreatedOrUpdated.eventgrid.json",
        ),
        (
            "cloudevents",
            "events/derived_cogsvc_ResourceWriteSuccess.cloudevents.json",
            "events/derived_arn_CreatedOrUpdated.cloudevents.json",
        ),
    ],
)
def test_write_events_have_the_contract_shape(
    contracts: Path, emulator: Emulator, raw: Any, schema: str, write_file: str, notification_file: str
) -> None:
    got = _collect(emulator, schema)
    _write_then_delete(raw)
    assert emulator.wait_for_events()
    type_key = "type" if schema == "cloudevents" else "eventType"
    by_type = {event[type_key]: event for event in got}
    write = by_type["Microsoft.Resources.ResourceWriteSuccess"]
    assert key_shape(write) == key_shape(load(contracts, write_file)[0])
    notification = by_type["Microsoft.ResourceNotifications.Resources.CreatedOrUpdated"]
    expected = load(contracts, notification_file)
    assert keys_at_every_level(notification) - {
        k for k in keys_at_every_level(notification) if k.startswith("data.resourceInfo.properties.")
    } == keys_at_every_level(expected) - {
        k for k in keys_at_every_level(expected) if k.startswith("data.resourceInfo.properties.")
    }
    stored_acls = notification["data"]["resourceInfo"]["properties"]["networkAcls"]
    assert stored_acls == OPEN_ACLS  # full properties, as the account has them
    assert write["subject"] == ACCT1
    assert write["data"]["operationName"] == "Microsoft.CognitiveServices/accounts/write"
    assert write["data"]["httpRequest"]["method"] == "PATCH"


def test_delete_events_have_the_contract_shape(contracts: Path, emulator: Emulator, raw: Any) -> None:
    got = _collect(emulator, "eventgrid")
    _write_then_delete(raw)
    assert emulator.wait_for_events()
    by_type = {event["eventType"]: event for event in got}
    delete = by_type["Microsoft.Resources.ResourceDeleteSuccess"]
    assert key_shape(delete) == key_shape(
        load(contracts, "events/derived_cogsvc_ResourceDeleteSuccess.eventgrid.json")[0]
    )
    assert delete["data"]["operationName"] == "Microsoft.CognitiveServices/accounts/delete"
    deleted = by_type["Microsoft.ResourceNotifications.Resources.Deleted"]
    assert key_shape(deleted) == key_shape(load(contracts, "events/derived_arn_Deleted.eventgrid.json"))


def test_failed_write_event_has_the_contract_shape(contracts: Path, emulator: Emulator, raw: Any) -> None:
    got = _collect(emulator, "eventgrid")
    emulator.faults.add(resource_id=ACCT1, method="PATCH", action="fail_provisioning")
    assert raw("PATCH", _path(ACCT1), {"properties": {}}).status == 200
    assert emulator.wait_for_events()
    [failure] = [e for e in got if e["eventType"].endswith("ResourceWriteFailure")]
    assert key_shape(failure) == key_shape(
        load(contracts, "events/derived_cogsvc_ResourceWriteFailure.eventgrid.json")[0]
    )
    assert failure["data"]["status"] == "Failed"


def test_create_event_has_no_http_request(emulator: Emulator, raw: Any) -> None:
    got = _collect(emulator, "eventgrid")
    from .conftest import account_body

    assert raw("PUT", _path(account_id(SUB1, RG, "brand-new")), account_body("brand-new")).status == 201
    assert emulator.wait_for_events()
    write = next(e for e in got if e["eventType"] == "Microsoft.Resources.ResourceWriteSuccess")
    assert "httpRequest" not in write["data"]  # present only on updates and deletes


def test_events_name_the_caller_from_the_token(emulator: Emulator, raw: Any) -> None:
    got = _collect(emulator, "eventgrid")
    app_token = make_token({"appid": "guardrail-app-id", "oid": "guardrail-oid", "idtyp": "app"})
    assert raw("PATCH", _path(ACCT1), {"properties": {}}, token=app_token).status == 200
    user_token = make_token({"upn": "bob@contoso.example", "oid": "bob-oid", "name": "Bob"})
    assert raw("PATCH", _path(ACCT1), {"properties": {}}, token=user_token).status == 200
    emulator.register_token("opaque-token", {"appid": "registered-app", "oid": "reg-oid"})
    assert raw("PATCH", _path(ACCT1), {"properties": {}}, token="opaque-token").status == 200
    assert raw("PATCH", _path(ACCT1), {"properties": {}}, token="unknown-token").status == 200
    assert emulator.wait_for_events()
    writes = [e for e in got if e["eventType"] == "Microsoft.Resources.ResourceWriteSuccess"]
    app, user, registered, default = (w["data"] for w in writes)
    oid = "http://schemas.microsoft.com/identity/claims/objectidentifier"
    upn = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn"
    assert app["claims"]["appid"] == "guardrail-app-id"
    assert app["claims"][oid] == "guardrail-oid"
    assert app["authorization"]["evidence"]["principalType"] == "ServicePrincipal"
    assert app["authorization"]["evidence"]["principalId"] == "guardrailoid"
    assert user["claims"][upn] == "bob@contoso.example"
    assert user["authorization"]["evidence"]["principalType"] == "User"
    assert registered["claims"]["appid"] == "registered-app"
    assert default["claims"][upn] == "jane@contoso.example"
    ids = {w["id"] for w in writes}
    correlations = {w["data"]["correlationId"] for w in writes}
    assert len(ids) == len(writes) == len(correlations) == 4


def test_subscriber_kinds_filter(emulator: Emulator, raw: Any) -> None:
    resources: list[dict[str, Any]] = []
    notifications: list[dict[str, Any]] = []
    emulator.subscribe(resources.append, kinds={"resources"})
    emulator.subscribe(notifications.append, kinds={"notifications"})
    _write_then_delete(raw)
    assert emulator.wait_for_events()
    assert {e["eventType"] for e in resources} == {
        "Microsoft.Resources.ResourceWriteSuccess",
        "Microsoft.Resources.ResourceDeleteSuccess",
    }
    assert {e["eventType"] for e in notifications} == {
        "Microsoft.ResourceNotifications.Resources.CreatedOrUpdated",
        "Microsoft.ResourceNotifications.Resources.Deleted",
    }


def test_a_callback_may_call_back_into_the_emulator(
    emulator: Emulator, client: Callable[..., Any], raw: Any
) -> None:
    sdk = client()
    seen: list[str] = []

    def on_event(event: dict[str, Any]) -> None:
        # runs on the delivery thread: reading the account back must not deadlock
        account = sdk.accounts.get(RG, "acct1")
        seen.append(str(account.properties.network_acls.default_action))

    emulator.subscribe(on_event, kinds={"resources"})
    assert (
        raw("PATCH", _path(ACCT1), {"properties": {"networkAcls": {"defaultAction": "Deny"}}}).status == 200
    )
    assert emulator.wait_for_events(timeout=10)
    assert seen == ["Deny"]


def test_a_failing_callback_does_not_stop_delivery(emulator: Emulator, raw: Any) -> None:
    calls: list[str] = []

    def flaky(event: dict[str, Any]) -> None:
        calls.append(event["id"])
        raise RuntimeError("boom")

    subscriber = emulator.subscribe(flaky, kinds={"resources"})
    raw("PATCH", _path(ACCT1), {"properties": {}})
    raw("PATCH", _path(ACCT1), {"properties": {}})
    assert emulator.wait_for_events()
    assert len(calls) == 2
    assert len(subscriber.errors) == 2


def test_http_delivery_like_event_grid(emulator: Emulator, raw: Any) -> None:
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    received: list[tuple[str, str | None, Any]] = []

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            received.append((self.path, self.headers.get("aeg-event-type"), body))
            self.send_response(202)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}/runtime/webhooks/EventGrid"
        grid = emulator.subscribe_http(f"{base}?functionName=on_resource_write", kinds={"resources"})
        cloud = emulator.subscribe_http(
            f"{base}?functionName=on_cloud", schema="cloudevents", kinds={"resources"}
        )
        assert raw("PATCH", _path(ACCT1), {"properties": {}}).status == 200
        assert emulator.wait_for_events()
    finally:
        server.shutdown()
        server.server_close()
    grid_posts = [r for r in received if "on_resource_write" in r[0]]
    cloud_posts = [r for r in received if "on_cloud" in r[0]]
    assert len(grid_posts) == 1 and len(cloud_posts) == 1
    assert grid_posts[0][1] == "Notification"
    assert isinstance(grid_posts[0][2], list) and grid_posts[0][2][0]["eventType"].endswith(
        "ResourceWriteSuccess"
    )
    assert isinstance(cloud_posts[0][2], dict) and cloud_posts[0][2]["specversion"] == "1.0"
    assert grid.deliveries[0].status == 202 and cloud.deliveries[0].status == 202


def test_http_delivery_refuses_non_loopback_targets(emulator: Emulator) -> None:
    with pytest.raises(ValueError, match="loopback"):
        emulator.subscribe_http("http://example.com/hook")


# ---------------------------------------------------------------------------- diagnostic settings


def test_diagnostic_settings_with_azure_mgmt_monitor(emulator: Emulator) -> None:
    import time

    from azure.core.credentials import AccessToken
    from azure.mgmt.monitor import MonitorManagementClient

    class Credential:
        def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
            return AccessToken("token", int(time.time()) + 3600)

    monitor = MonitorManagementClient(
        Credential(), SUB1, base_url=emulator.endpoint, connection_verify=emulator.ca_bundle, retry_total=0
    )
    assert list(monitor.diagnostic_settings.list(ACCT1)) == []
    workspace = (
        f"/subscriptions/{SUB1}/resourceGroups/{RG}/providers/Microsoft.OperationalInsights/workspaces/ws"
    )
    created = monitor.diagnostic_settings.create_or_update(
        ACCT1,
        "guardrail",
        {"workspace_id": workspace, "logs": [{"category_group": "allLogs", "enabled": True}]},
    )
    assert created.workspace_id == workspace
    [listed] = list(monitor.diagnostic_settings.list(ACCT1))
    assert listed.name == "guardrail"
    assert listed.logs[0].category_group == "allLogs" and listed.logs[0].enabled
    assert monitor.diagnostic_settings.get(ACCT1, "guardrail").workspace_id == workspace
    stored = emulator.dump()["diagnosticSettings"][0]
    assert stored["properties"]["workspaceId"] == workspace
    assert stored["properties"]["logs"] == [{"categoryGroup": "allLogs", "enabled": True}]
    monitor.diagnostic_settings.delete(ACCT1, "guardrail")
    assert list(monitor.diagnostic_settings.list(ACCT1)) == []
