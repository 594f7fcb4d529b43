"""ArmGateway against the ARM emulator: the real azure-mgmt-cognitiveservices SDK over HTTPS, with
every fault the emulator can inject and the outcome the gateway must give for it."""

from __future__ import annotations

import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from guardrail.gateway import (
    ArmGateway,
    ArmGatewayError,
    ArmSettings,
    InvalidNameError,
    TransientArmError,
    WriteResult,
    parse_account_id,
)
from guardrail.rules.private_endpoint import REJECTION_BODY
from guardrail.settings import SettingsError, load_settings
from guardrail_workbench.emulator import Emulator, account_id

from .conftest import CLOSED, GUARDRAIL_CLAIMS, OPEN, RG, SUB1, SUB2

Decide = Callable[[dict[str, Any]], dict[str, Any] | None]


def patches(emulator: Emulator, rid: str = OPEN) -> list[int]:
    return [status for method, path, status in emulator.app.requests if method == "PATCH" and path == rid]


# ---------------------------------------------------------------------------- settings and reads


def test_settings_from_env(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    settings = load_settings(
        {
            "ARM_ENDPOINT": "https://127.0.0.1:8443",
            "ARM_CA_BUNDLE": str(ca),
            "ARM_CREDENTIAL": "static",
            "ARM_STATIC_TOKEN": "tok",
            "ARM_RETRY_TOTAL": "2",
            "ARM_POLL_INTERVAL": "0.5",
            "ARM_CONFLICT_RETRIES": "7",
        }
    ).arm
    assert settings.endpoint == "https://127.0.0.1:8443"
    assert settings.ca_bundle == str(ca)
    assert settings.credential == "static" and settings.static_token == "tok"
    assert settings.retry_total == 2 and settings.poll_interval == 0.5 and settings.conflict_retries == 7
    assert "tok" not in repr(settings)
    defaults = load_settings({}).arm
    assert defaults == ArmSettings() and defaults.endpoint is None and defaults.credential == "default"
    assert defaults.poll_interval < 30
    with pytest.raises(SettingsError, match="ARM_CREDENTIAL"):
        load_settings({"ARM_CREDENTIAL": "password"})


def test_module_import_stays_light() -> None:
    import os
    import subprocess
    from pathlib import Path

    repo = Path(__file__).resolve().parents[2]
    code = "import sys, guardrail.gateway; print(any(m.startswith('azure') for m in sys.modules))"
    env = {**os.environ, "PYTHONPATH": str(repo)}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=repo, env=env
    ).stdout
    assert out.strip() == "False"


def test_parse_account_id() -> None:
    assert parse_account_id(OPEN) == (SUB1, RG, "open1")
    assert parse_account_id(OPEN.upper())[2] == "OPEN1"
    with pytest.raises(ValueError):
        parse_account_id("/subscriptions/x/resourceGroups/y/providers/Microsoft.Storage/storageAccounts/z")


def test_get_returns_the_raw_camel_case_json(gateway: ArmGateway) -> None:
    account = gateway.get(CLOSED)
    assert account is not None
    assert account["properties"]["networkAcls"]["ipRules"] == [{"value": "20.1.2.0/24"}]
    assert account["properties"]["networkAcls"]["defaultAction"] == "Deny"
    assert account["etag"]


def test_get_keeps_fields_the_sdk_model_does_not_know(emulator: Emulator, gateway: ArmGateway) -> None:
    body = emulator.account(CLOSED)
    assert body is not None
    body["properties"]["futureSetting"] = {"x": 1}
    emulator.put_account(body)
    account = gateway.get(CLOSED)
    assert account is not None and account["properties"]["futureSetting"] == {"x": 1}


def test_get_missing_is_none(gateway: ArmGateway) -> None:
    assert gateway.get(account_id(SUB1, RG, "nope")) is None


def test_get_401_is_a_permanent_error(emulator: Emulator, gateway: ArmGateway) -> None:
    emulator.faults.add(method="GET", status=401, code="InvalidAuthenticationToken")
    with pytest.raises(ArmGatewayError) as caught:
        gateway.get(CLOSED)
    assert not isinstance(caught.value, TransientArmError)
    assert caught.value.status == 401


def test_get_survives_transient_errors(emulator: Emulator, gateway: ArmGateway) -> None:
    emulator.faults.add(method="GET", status=503, times=2)
    assert gateway.get(CLOSED) is not None
    emulator.faults.add(method="GET", status=500, times=None)
    with pytest.raises(TransientArmError):
        gateway.get(CLOSED)


def test_list_accounts_every_page_across_subscriptions(emulator: Emulator, gateway: ArmGateway) -> None:
    names = sorted(a["name"] for a in gateway.list_accounts([SUB1, SUB2]))
    assert names == ["b0", "b1", "b2", "b3", "b4", "closed1", "closed2", "closed3", "open1", "open2"]
    pages = [r for r in emulator.app.requests if r[1].endswith("/accounts")]
    assert len(pages) == 6  # 5 accounts per subscription at 2 per page


def test_list_accounts_discovers_subscriptions(emulator: Emulator, gateway: ArmGateway) -> None:
    emulator.app.add_subscription("dddddddd-0000-0000-0000-000000000000", "Gone", state="Disabled")
    assert sorted(gateway.list_subscriptions()) == sorted([SUB1, SUB2])
    accounts = list(gateway.list_accounts())
    assert len(accounts) == 10
    assert all("properties" in a for a in accounts)


def test_list_accounts_survives_a_throttled_page(emulator: Emulator, gateway: ArmGateway) -> None:
    emulator.faults.add(method="GET", status=429, retry_after=0.01, times=2)
    assert len(list(gateway.list_accounts([SUB1, SUB2]))) == 10


def test_list_accounts_raises_when_a_subscription_keeps_failing(
    emulator: Emulator, gateway: ArmGateway
) -> None:
    emulator.faults.add(resource_id=f"/subscriptions/{SUB2}", method="GET", status=503, times=None)
    seen: list[str] = []
    with pytest.raises(TransientArmError):
        for item in gateway.list_accounts([SUB1, SUB2]):
            seen.append(item["name"])
    assert len(seen) == 5  # the healthy subscription was still yielded


def test_one_client_per_subscription(gateway: ArmGateway) -> None:
    assert gateway._client(SUB1) is gateway._client(SUB1.upper())
    assert gateway._client(SUB1) is not gateway._client(SUB2)


# ---------------------------------------------------------------------------- writes


def fix(gateway: ArmGateway, decide: Decide, rid: str = OPEN) -> WriteResult:
    """What the service does around one write: read, judge, PATCH with the etag read."""
    account = gateway.get(rid)
    assert account is not None
    body = decide(account)
    assert body is not None, "the account needs no fix"
    return gateway.patch(rid, body, account["etag"])


def test_get_returns_bodies_the_sdk_models_would_refuse(emulator: Emulator, gateway: ArmGateway) -> None:
    body = emulator.account(CLOSED)
    assert body is not None
    body["sku"] = "S0"  # the Sku model wants an object
    body["tags"] = ["a", "b"]
    body["properties"]["networkAcls"]["ipRules"] = ["20.1.2.0/24", 7]
    emulator.put_account(body)
    account = gateway.get(CLOSED)
    assert account is not None
    assert account["sku"] == "S0" and account["tags"] == ["a", "b"]
    assert account["properties"]["networkAcls"]["ipRules"] == ["20.1.2.0/24", 7]


def test_get_403_names_the_cause(emulator: Emulator, gateway: ArmGateway) -> None:
    emulator.faults.add(method="GET", status=403, code="AuthorizationFailed")
    with pytest.raises(ArmGatewayError) as caught:
        gateway.get(CLOSED)
    assert not isinstance(caught.value, TransientArmError)
    assert (caught.value.status, caught.value.code) == (403, "AuthorizationFailed")


def test_write_happy_path(emulator: Emulator, gateway: ArmGateway, decide: Decide) -> None:
    before_etag = emulator.account(OPEN)["etag"]  # type: ignore[index]
    result = fix(gateway, decide)
    assert result.status == "written", result
    assert result.after is not None and result.after["properties"]["networkAcls"]["defaultAction"] == "Deny"
    assert result.after["etag"] != before_etag
    assert decide(result.after) is None
    assert patches(emulator) == [200]


def test_the_write_carries_the_guardrail_identity(
    emulator: Emulator, gateway: ArmGateway, decide: Decide
) -> None:
    got: list[dict[str, Any]] = []
    emulator.subscribe(got.append, kinds={"resources"})
    assert fix(gateway, decide).status == "written"
    assert emulator.wait_for_events()
    [write] = got
    assert write["data"]["claims"]["appid"] == GUARDRAIL_CLAIMS["appid"]
    oid = "http://schemas.microsoft.com/identity/claims/objectidentifier"
    assert write["data"]["claims"][oid] == GUARDRAIL_CLAIMS["oid"]


def test_429_is_survived_honouring_retry_after(
    emulator: Emulator, gateway: ArmGateway, decide: Decide
) -> None:
    emulator.faults.add(resource_id=OPEN, method="PATCH", status=429, retry_after=0.2, times=2)
    started = time.monotonic()
    assert fix(gateway, decide).status == "written"
    assert time.monotonic() - started >= 0.4  # slept Retry-After twice
    assert patches(emulator) == [429, 429, 200]


def test_429_with_a_huge_retry_after_is_transient_at_once(
    emulator: Emulator, gateway: ArmGateway, decide: Decide
) -> None:
    emulator.faults.add(resource_id=OPEN, method="PATCH", status=429, retry_after=3600, times=None)
    started = time.monotonic()
    with pytest.raises(TransientArmError) as caught:
        fix(gateway, decide)
    assert time.monotonic() - started < 2
    assert caught.value.status == 429 and caught.value.retry_after == 3600


def test_409_request_conflict_is_retried_with_the_same_etag(
    emulator: Emulator, gateway: ArmGateway, decide: Decide
) -> None:
    emulator.faults.add(resource_id=OPEN, method="PATCH", status=409, code="RequestConflict", times=2)
    assert fix(gateway, decide).status == "written"
    assert patches(emulator) == [409, 409, 200]


def test_busy_account_is_waited_for(emulator: Emulator, gateway: ArmGateway, decide: Decide) -> None:
    emulator.set_busy(OPEN, calls=3)  # GET, PATCH(409), PATCH(409), then terminal
    assert fix(gateway, decide).status == "written"
    assert 409 in patches(emulator)


def test_409_exhausted_is_transient(emulator: Emulator, gateway: ArmGateway, decide: Decide) -> None:
    emulator.faults.add(resource_id=OPEN, method="PATCH", status=409, code="RequestConflict", times=None)
    with pytest.raises(TransientArmError) as caught:
        fix(gateway, decide)
    assert caught.value.status == 409 and caught.value.code == "RequestConflict"
    assert len(patches(emulator)) == 4  # conflict_retries=3 plus the first


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_server_errors_are_survived(
    emulator: Emulator, gateway: ArmGateway, decide: Decide, status: int
) -> None:
    emulator.faults.add(resource_id=OPEN, method="PATCH", status=status, times=2)
    assert fix(gateway, decide).status == "written"
    assert patches(emulator) == [status, status, 200]


@pytest.mark.parametrize("status", [429, 500, 503])
def test_transient_errors_exhausted_raise(
    emulator: Emulator, gateway: ArmGateway, decide: Decide, status: int
) -> None:
    emulator.faults.add(resource_id=OPEN, method="PATCH", status=status, times=None, retry_after=0.01)
    with pytest.raises(TransientArmError) as caught:
        fix(gateway, decide)
    assert caught.value.status == status
    assert len(patches(emulator)) == 4  # retry_total=3 plus the first: bounded


def test_linked_authorization_failed_is_refused(emulator: Emulator, gateway: ArmGateway) -> None:
    subnet = (
        f"/subscriptions/{SUB1}/resourceGroups/{RG}/providers/Microsoft.Network/virtualNetworks/v/subnets/s"
    )
    body = {"properties": {"networkAcls": {"defaultAction": "Deny", "virtualNetworkRules": [{"id": subnet}]}}}
    emulator.deny_vnet_join()
    result = gateway.patch(OPEN, body, emulator.account(OPEN)["etag"])  # type: ignore[index]
    assert result.status == "refused"
    assert result.error_code == "LinkedAuthorizationFailed"
    assert result.http_status == 403
    assert patches(emulator) == [403]  # permanent: not retried


def test_other_409s_are_refused(emulator: Emulator, gateway: ArmGateway, decide: Decide) -> None:
    emulator.faults.add(resource_id=OPEN, method="PATCH", status=409, code="ScopeLocked", times=None)
    result = fix(gateway, decide)  # a delete/read-only lock: retrying will not help
    assert result.status == "refused"
    assert (result.error_code, result.http_status) == ("ScopeLocked", 409)
    assert patches(emulator) == [409]


def test_refused_slash_32_is_refused(emulator: Emulator, gateway: ArmGateway) -> None:
    body = {"properties": {"networkAcls": {"defaultAction": "Deny", "ipRules": [{"value": "20.1.2.3/32"}]}}}
    result = gateway.patch(OPEN, body, None)
    assert result.status == "refused"
    assert result.http_status == 400
    assert result.error_code and result.error_message and "20.1.2.3/32" in result.error_message
    assert patches(emulator) == [400]


def test_deleted_between_read_and_write_is_gone(
    emulator: Emulator, gateway: ArmGateway, decide: Decide
) -> None:
    emulator.faults.add(resource_id=OPEN, method="PATCH", action="delete")
    assert fix(gateway, decide).status == "gone"


def test_writing_a_missing_account_is_gone(emulator: Emulator, gateway: ArmGateway) -> None:
    rid = account_id(SUB1, RG, "never-was")
    assert gateway.patch(rid, {"properties": {"disableLocalAuth": True}}, None) == WriteResult("gone", rid)


def test_failed_provisioning_is_reported(emulator: Emulator, gateway: ArmGateway, decide: Decide) -> None:
    emulator.faults.add(resource_id=OPEN, method="PATCH", action="fail_provisioning")
    result = fix(gateway, decide)
    assert result.status == "provisioning-failed"
    assert result.error_code == "ProvisioningFailed"
    assert result.after is not None and result.after["properties"]["provisioningState"] == "Failed"


def test_failed_provisioning_in_async_mode(emulator: Emulator, gateway: ArmGateway, decide: Decide) -> None:
    emulator.async_writes = True
    emulator.faults.add(resource_id=OPEN, method="PATCH", action="fail_provisioning")
    result = fix(gateway, decide)
    assert result.status == "provisioning-failed"
    assert result.error_code == "ProvisioningFailed"


def test_async_write_completes_quickly(emulator: Emulator, gateway: ArmGateway, decide: Decide) -> None:
    emulator.async_writes = True
    started = time.monotonic()
    result = fix(gateway, decide)
    assert result.status == "written"
    assert time.monotonic() - started < 3
    assert patches(emulator) == [202]
    assert any("operationResults" in path for _, path, _ in emulator.app.requests)
    assert result.after is not None and result.after["properties"]["provisioningState"] == "Succeeded"


def test_accepted_200_is_polled_to_the_end(emulator: Emulator, gateway: ArmGateway, decide: Decide) -> None:
    emulator.accepted_writes = True
    started = time.monotonic()
    result = fix(gateway, decide)
    assert result.status == "written"
    assert time.monotonic() - started < 3  # the poll interval, not the SDK's 30 s
    assert result.after is not None and result.after["properties"]["provisioningState"] == "Succeeded"


def test_accepted_200_ending_failed_is_reported(
    emulator: Emulator, gateway: ArmGateway, decide: Decide
) -> None:
    emulator.accepted_writes = True
    emulator.faults.add(resource_id=OPEN, method="PATCH", action="fail_provisioning")
    assert fix(gateway, decide).status == "provisioning-failed"


def test_412_is_returned_for_the_caller_to_recompute(
    emulator: Emulator, gateway: ArmGateway, decide: Decide
) -> None:
    emulator.faults.add(resource_id=OPEN, method="PATCH", action="touch")  # a concurrent writer
    assert fix(gateway, decide).status == "precondition-failed"
    assert patches(emulator) == [412]  # the gateway never re-reads or decides by itself


def test_a_lost_response_is_retried_and_ends_in_412(
    emulator: Emulator, make_gateway: Callable[..., ArmGateway], decide: Decide
) -> None:
    # The first PATCH is applied after its sleep, when the client has stopped reading (1 s); the
    # SDK's retry of the same If-Match arrives meanwhile and is answered after the first landed:
    # 412. The gateway says so; the service re-reads and completes from its journal.
    gateway = make_gateway(read_timeout=1.0, retry_total=1)
    emulator.faults.add(resource_id=OPEN, method="PATCH", action="latency", latency=1.3)
    emulator.faults.add(resource_id=OPEN, method="PATCH", action="latency", latency=0.6)
    assert fix(gateway, decide).status == "precondition-failed"
    assert decide(emulator.account(OPEN)) is None  # type: ignore[arg-type]  # yet it landed
    assert patches(emulator) == [200, 412]


def test_read_timeout_is_transient(emulator: Emulator, make_gateway: Callable[..., ArmGateway]) -> None:
    gateway = make_gateway(read_timeout=0.2, retry_total=1)
    emulator.faults.add(method="GET", action="latency", latency=0.6, times=None)
    with pytest.raises(TransientArmError):
        gateway.get(CLOSED)


def test_connection_refused_is_transient(make_gateway: Callable[..., ArmGateway]) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    gateway = make_gateway(endpoint=f"https://127.0.0.1:{port}", retry_total=1)
    with pytest.raises(TransientArmError):
        gateway.get(CLOSED)


def test_the_engine_fix_is_accepted_by_arm_for_every_seeded_account(
    emulator: Emulator, gateway: ArmGateway, decide: Decide
) -> None:
    results = [
        gateway.patch(a["id"], body, a["etag"])
        for a in gateway.list_accounts([SUB1, SUB2])
        if (body := decide(a)) is not None
    ]
    assert [r.status for r in results] == ["written", "written"]
    for account in emulator.accounts():
        assert decide(account) is None


def test_many_workers_share_one_gateway(
    emulator: Emulator, gateway: ArmGateway, decide: Decide, caplog: pytest.LogCaptureFixture
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from .conftest import account

    rids = [account_id(SUB2, "rg-b", f"w{i}") for i in range(40)]
    for rid in rids:
        emulator.put_account(account(rid.rsplit("/", 1)[-1]), rid)
    with caplog.at_level("WARNING", logger="urllib3"), ThreadPoolExecutor(max_workers=16) as pool:
        results = list(pool.map(lambda rid: fix(gateway, decide, rid), rids))
    assert [r.status for r in results] == ["written"] * 40
    assert not [r for r in caplog.records if "pool is full" in r.getMessage()]


# ---------------------------------------------------------------------------- diagnostic settings

WORKSPACE = f"/subscriptions/{SUB1}/resourceGroups/{RG}/providers/Microsoft.OperationalInsights/workspaces/ws"
SETTING = {
    "name": "guardrail-audit",
    "properties": {"workspaceId": WORKSPACE, "logs": [{"categoryGroup": "audit", "enabled": True}]},
}


def test_diagnostic_settings_round_trip(emulator: Emulator, gateway: ArmGateway) -> None:
    assert gateway.diagnostic_settings(CLOSED) == []
    result = gateway.put_diagnostic_setting(CLOSED, SETTING)
    assert result.status == "written"
    assert result.after is not None
    [listed] = result.after["value"]
    assert listed["name"] == "guardrail-audit"
    assert listed["properties"]["workspaceId"] == WORKSPACE
    assert {"categoryGroup": "audit", "enabled": True}.items() <= listed["properties"]["logs"][0].items()
    stored = emulator.dump()["diagnosticSettings"]
    assert [s["properties"]["workspaceId"] for s in stored] == [WORKSPACE]
    assert gateway.diagnostic_settings(CLOSED) == result.after["value"]


def test_diagnostic_settings_of_a_missing_account(gateway: ArmGateway) -> None:
    rid = account_id(SUB1, RG, "never-was")
    assert gateway.diagnostic_settings(rid) is None
    assert gateway.put_diagnostic_setting(rid, SETTING).status == "gone"


def test_diagnostic_setting_refused_is_a_failed_result(gateway: ArmGateway) -> None:
    result = gateway.put_diagnostic_setting(
        CLOSED, {"name": "x", "properties": {"logs": []}}
    )  # no destination
    assert result.status == "refused"
    assert result.error_code == "BadRequest"


def test_diagnostic_settings_transient_errors(emulator: Emulator, gateway: ArmGateway) -> None:
    scope = CLOSED + "/providers/Microsoft.Insights/diagnosticSettings"
    emulator.faults.add(resource_id=scope, method="PUT", status=503, times=2)
    assert gateway.put_diagnostic_setting(CLOSED, SETTING).status == "written"
    emulator.faults.add(resource_id=scope, method="GET", status=503, times=None)
    with pytest.raises(TransientArmError):
        gateway.diagnostic_settings(CLOSED)


@pytest.mark.parametrize("bad", ["..", ".", "a?b", "a#b", "a%2Fb", "a\\b", "a\nb", "x" * 1025])
def test_no_url_is_built_from_a_hostile_name(emulator: Emulator, gateway: ArmGateway, bad: str) -> None:
    # Issue #22 item 4: names from ARM bodies (a listing's account IDs, a connection's name) pass one
    # door, `checked_names`, before any URL is built; nothing is sent for a bad one.
    rid = account_id(SUB1, RG, "acct")
    before = len(emulator.app.requests)
    with pytest.raises(InvalidNameError, match="refusing to build a URL"):
        gateway.get(account_id(SUB1, RG, bad))
    with pytest.raises(InvalidNameError):
        gateway.diagnostic_settings(account_id(SUB1, bad, "acct"))
    for written in (
        gateway.put_private_endpoint_connection(f"{rid}/privateEndpointConnections/{bad}", REJECTION_BODY),
        gateway.patch(account_id(SUB1, RG, bad), {"properties": {}}, None),
        gateway.put_diagnostic_setting(rid, {"name": bad, "properties": {}}),
    ):
        assert written.status == "refused" and written.error_code == "InvalidResourceName"
        assert "\n" not in (written.error_message or "") and len(written.error_message or "") < 700
    assert len(emulator.app.requests) == before
