"""The emulator's ARM behaviour, driven through the real azure-mgmt-cognitiveservices SDK over HTTPS
(and raw HTTPS where the SDK would hide the status or header under test)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError

from guardrail_workbench.emulator import Emulator, account_id, make_token

from .conftest import ACCT1, API, RG, SUB1, SUB2, TENANT, RawResponse, account_body


def _path(rid: str) -> str:
    return f"{rid}?api-version={API}"


def raw_get(client: Any, group: str, name: str) -> dict[str, Any]:
    result: dict[str, Any] = client.accounts.get(group, name, cls=lambda pr, d, h: pr.http_response.json())
    return result


# ---------------------------------------------------------------------------- reads


def test_get_returns_the_seeded_body_with_arm_headers(client: Callable[..., Any], raw: Any) -> None:
    account = raw_get(client(), RG, "acct1")
    assert account["id"] == ACCT1
    assert account["type"] == "Microsoft.CognitiveServices/accounts"
    assert account["properties"]["networkAcls"]["defaultAction"] == "Allow"
    assert account["properties"]["provisioningState"] == "Succeeded"
    assert account["etag"].startswith('"')
    response = raw("GET", _path(ACCT1))
    assert response.status == 200
    assert response.headers["content-type"].startswith("application/json")
    for header in (
        "x-ms-request-id",
        "x-ms-correlation-request-id",
        "x-ms-ratelimit-remaining-subscription-reads",
    ):
        assert header in response.headers


def test_ids_are_case_insensitive_and_keep_their_casing(raw: Any) -> None:
    response = raw("GET", _path(ACCT1.upper().replace("SUBSCRIPTIONS", "subscriptions")))
    assert response.status == 200
    assert response.json()["id"] == ACCT1
    assert response.json()["name"] == "acct1"


def test_missing_account_is_404_resource_not_found(client: Callable[..., Any], raw: Any) -> None:
    with pytest.raises(ResourceNotFoundError):
        client().accounts.get(RG, "nope")
    response = raw("GET", _path(account_id(SUB1, RG, "nope")))
    assert response.status == 404
    assert response.json()["error"]["code"] == "ResourceNotFound"


def test_unknown_route_and_missing_api_version(raw: Any) -> None:
    unknown = raw("GET", f"/subscriptions/{SUB1}/providers/Microsoft.Unknown/things?api-version={API}")
    assert unknown.status == 404
    assert unknown.json()["error"]["code"] == "InvalidResourceType"
    missing = raw("GET", ACCT1)
    assert missing.status == 400
    assert missing.json()["error"]["code"] == "MissingApiVersionParameter"


@pytest.mark.parametrize("header", [None, "Basic abc", "Bearer "])
def test_requests_without_a_bearer_token_get_401(raw: Any, header: str | None) -> None:
    response = raw("GET", _path(ACCT1), token=None, headers={"Authorization": header} if header else None)
    assert response.status == 401
    assert response.json()["error"]["code"] in ("AuthenticationFailed", "InvalidAuthenticationToken")


def test_any_bearer_token_is_accepted(raw: Any) -> None:
    assert raw("GET", _path(ACCT1), token="not-a-jwt").status == 200


def test_list_by_subscription_pages_with_next_link(emulator: Emulator, client: Callable[..., Any]) -> None:
    names = sorted(a.name for a in client().accounts.list())
    assert names == ["acct1", "acct2", "acct3", "other1", "other2"]
    pages = [r for r in emulator.app.requests if r[0] == "GET" and r[1].endswith("/accounts")]
    assert len(pages) == 3  # 5 accounts at 2 per page


def test_list_by_resource_group_and_other_subscription(client: Callable[..., Any]) -> None:
    assert sorted(a.name for a in client().accounts.list_by_resource_group("rg2")) == ["other1", "other2"]
    assert sorted(a.name for a in client(SUB2).accounts.list()) == ["b0", "b1", "b2"]


def test_next_link_points_back_at_the_emulator(emulator: Emulator, raw: Any) -> None:
    first = raw(
        "GET", f"/subscriptions/{SUB1}/providers/Microsoft.CognitiveServices/accounts?api-version={API}"
    )
    body = first.json()
    assert len(body["value"]) == 2
    assert body["nextLink"].startswith(emulator.endpoint + "/subscriptions/")
    second = raw("GET", body["nextLink"])
    assert [a["name"] for a in second.json()["value"]] == ["acct3", "other1"]


def test_subscription_listing_shape(raw: Any) -> None:
    body = raw("GET", "/subscriptions?api-version=2022-12-01").json()
    assert {s["subscriptionId"] for s in body["value"]} == {SUB1, SUB2}
    for sub in body["value"]:
        assert sub["id"] == f"/subscriptions/{sub['subscriptionId']}"
        assert sub["state"] == "Enabled"
        assert sub["displayName"]


# ---------------------------------------------------------------------------- writes


def test_put_creates_201_then_replaces_200(emulator: Emulator, raw: Any) -> None:
    rid = account_id(SUB1, RG, "fresh")
    created = raw("PUT", _path(rid), account_body("fresh"))
    assert created.status == 201
    assert created.json()["properties"]["provisioningState"] == "Succeeded"
    replaced = raw("PUT", _path(rid), {**account_body("fresh"), "tags": {"v": "2"}})
    assert replaced.status == 200
    assert replaced.json()["tags"] == {"v": "2"}
    assert replaced.json()["etag"] != created.json()["etag"]
    missing_group = raw("PUT", _path(account_id(SUB1, "no-such-rg", "x")), account_body("x"))
    assert missing_group.status == 404
    assert missing_group.json()["error"]["code"] == "ResourceGroupNotFound"


def test_delete_answers_200_then_204(emulator: Emulator, raw: Any) -> None:
    assert raw("DELETE", _path(ACCT1)).status == 200
    assert raw("DELETE", _path(ACCT1)).status == 204
    assert raw("GET", _path(ACCT1)).status == 404


def test_patch_merges_properties_but_replaces_network_acls_and_arrays(raw: Any) -> None:
    before = raw("GET", _path(ACCT1)).json()
    acls = {"defaultAction": "Deny", "ipRules": [{"value": "8.8.8.0/24"}]}
    response = raw("PATCH", _path(ACCT1), {"properties": {"networkAcls": acls}, "tags": {"new": "1"}})
    assert response.status == 200
    after = response.json()
    assert after["properties"]["networkAcls"] == acls  # replaced wholesale: bypass and vnet rules gone
    assert after["properties"]["disableLocalAuth"] is False  # other properties kept
    assert after["properties"]["customSubDomainName"] == "acct1"
    assert after["tags"] == {"new": "1"}
    assert after["sku"] == before["sku"]
    assert after["etag"] != before["etag"]
    assert after["properties"]["provisioningState"] == "Succeeded"
    assert "x-ms-ratelimit-remaining-subscription-writes" in response.headers


def test_patch_ignores_read_only_properties(raw: Any) -> None:
    response = raw(
        "PATCH", _path(ACCT1), {"properties": {"endpoint": "https://evil/", "provisioningState": "Failed"}}
    )
    assert response.json()["properties"]["endpoint"] == "https://acct1.cognitiveservices.azure.com/"
    assert response.json()["properties"]["provisioningState"] == "Succeeded"


def test_if_match_is_honoured(raw: Any) -> None:
    etag = raw("GET", _path(ACCT1)).json()["etag"]
    stale = raw("PATCH", _path(ACCT1), {"properties": {}}, headers={"If-Match": '"stale"'})
    assert stale.status == 412
    assert stale.json()["error"]["code"] == "PreconditionFailed"
    fresh = raw("PATCH", _path(ACCT1), {"properties": {}}, headers={"If-Match": etag})
    assert fresh.status == 200
    anything = raw("PATCH", _path(ACCT1), {"properties": {}}, headers={"If-Match": "*"})
    assert anything.status == 200


REFUSED_RULES = [
    ("2001:db8::1", "IPv6"),
    ("2001:db8::/32", "IPv6 range"),
    ("8.8.8.8/32", "/32"),
    ("8.8.8.8/31", "/31"),
    ("10.1.2.3", "private 10/8"),
    ("172.20.0.0/16", "private 172.16/12"),
    ("192.168.1.0/24", "private 192.168/16"),
    ("8.8.8.256", "bad octet"),
]


@pytest.mark.parametrize(("value", "why"), REFUSED_RULES)
def test_refused_ip_rules_answer_400(raw: Any, value: str, why: str) -> None:
    response = raw(
        "PATCH",
        _path(ACCT1),
        {"properties": {"networkAcls": {"defaultAction": "Deny", "ipRules": [{"value": value}]}}},
    )
    assert response.status == 400, why
    assert set(response.json()["error"]) >= {"code", "message"}
    assert value in response.json()["error"]["message"]


@pytest.mark.parametrize("value", ["8.8.8.8", "8.8.8.0/24", "20.0.0.0/8", "172.32.0.1"])
def test_public_ip_rules_are_accepted(raw: Any, value: str) -> None:
    response = raw(
        "PATCH",
        _path(ACCT1),
        {"properties": {"networkAcls": {"defaultAction": "Deny", "ipRules": [{"value": value}]}}},
    )
    assert response.status == 200


def test_non_public_mode_refuses_documentation_ranges() -> None:
    from guardrail_workbench.emulator import ArmApp, Request

    app = ArmApp(ip_refusal="non-public")
    app.seed(TENANT)
    body = {"properties": {"networkAcls": {"defaultAction": "Deny", "ipRules": [{"value": "203.0.113.5"}]}}}
    request = Request(
        "PATCH", ACCT1, {"api-version": API}, {"authorization": "Bearer x"}, json.dumps(body).encode()
    )
    assert app.handle(request).status == 400
    documented_only = ArmApp()  # the default: only ARM's documented private ranges are refused
    documented_only.seed(TENANT)
    assert documented_only.handle(request).status == 200


def test_rule_count_limits(raw: Any) -> None:
    many_ips = [{"value": f"20.{i // 250}.{i % 250}.1"} for i in range(101)]
    assert raw("PATCH", _path(ACCT1), {"properties": {"networkAcls": {"ipRules": many_ips}}}).status == 400
    assert (
        raw("PATCH", _path(ACCT1), {"properties": {"networkAcls": {"ipRules": many_ips[:100]}}}).status == 200
    )
    subnet = (
        f"/subscriptions/{SUB1}/resourceGroups/{RG}/providers/Microsoft.Network/virtualNetworks/v/subnets/s"
    )
    many_vnets = [{"id": f"{subnet}{i}"} for i in range(101)]
    response = raw(
        "PATCH", _path(ACCT1), {"properties": {"networkAcls": {"virtualNetworkRules": many_vnets}}}
    )
    assert response.status == 400
    assert "100" in response.json()["error"]["message"]


# ---------------------------------------------------------------------------- faults


def test_fault_429_carries_retry_after_and_ratelimit_header(emulator: Emulator, raw: Any) -> None:
    fault = emulator.faults.add(resource_id=ACCT1, method="PATCH", status=429, times=1, retry_after=3)
    response = raw("PATCH", _path(ACCT1), {"properties": {}})
    assert response.status == 429
    assert response.headers["retry-after"] == "3"
    assert response.headers["x-ms-ratelimit-remaining-subscription-writes"] == "0"
    assert response.json()["error"]["code"] == "TooManyRequests"
    assert fault.fired == 1
    assert raw("PATCH", _path(ACCT1), {"properties": {}}).status == 200  # times=1: used up


def test_faults_match_method_and_scope(emulator: Emulator, raw: Any) -> None:
    emulator.faults.add(resource_id=ACCT1, method="PATCH", status=503, times=None)
    assert raw("GET", _path(ACCT1)).status == 200  # other method
    other = account_id(SUB1, RG, "acct2")
    assert raw("PATCH", _path(other), {"properties": {}}).status == 200  # other account
    assert (
        raw("PATCH", _path(account_id(SUB1, RG, "acct10")), {"properties": {}}).status == 404
    )  # not a prefix hit
    assert raw("PATCH", _path(ACCT1), {"properties": {}}).status == 503
    assert raw("PATCH", _path(ACCT1), {"properties": {}}).status == 503  # forever
    emulator.faults.clear()
    assert raw("PATCH", _path(ACCT1), {"properties": {}}).status == 200


@pytest.mark.parametrize("status", [500, 503])
def test_server_error_faults(emulator: Emulator, raw: Any, status: int) -> None:
    emulator.faults.add(method="GET", status=status)
    response = raw("GET", _path(ACCT1))
    assert response.status == status
    assert response.json()["error"]["code"] in ("InternalServerError", "ServiceUnavailable")


def test_busy_account_answers_409_request_conflict_until_terminal(emulator: Emulator, raw: Any) -> None:
    emulator.set_busy(ACCT1, calls=2)
    assert raw("GET", _path(ACCT1)).json()["properties"]["provisioningState"] == "Accepted"
    conflict = raw("PATCH", _path(ACCT1), {"properties": {}})
    assert conflict.status == 409
    assert conflict.json()["error"]["code"] == "RequestConflict"
    assert raw("GET", _path(ACCT1)).json()["properties"]["provisioningState"] == "Succeeded"
    assert raw("PATCH", _path(ACCT1), {"properties": {}}).status == 200


def test_linked_authorization_failed_on_vnet_rules(emulator: Emulator, raw: Any) -> None:
    subnet = (
        f"/subscriptions/{SUB1}/resourceGroups/{RG}/providers/Microsoft.Network/virtualNetworks/v/subnets/s"
    )
    body = {"properties": {"networkAcls": {"defaultAction": "Deny", "virtualNetworkRules": [{"id": subnet}]}}}
    emulator.deny_vnet_join(ACCT1)
    denied = raw("PATCH", _path(ACCT1), body)
    assert denied.status == 403
    assert denied.json()["error"]["code"] == "LinkedAuthorizationFailed"
    assert raw("PATCH", _path(account_id(SUB1, RG, "acct2")), body).status == 200  # per-account switch
    no_vnets = {"properties": {"networkAcls": {"defaultAction": "Deny"}}}
    assert raw("PATCH", _path(ACCT1), no_vnets).status == 200
    emulator.allow_vnet_join(ACCT1)
    assert raw("PATCH", _path(ACCT1), body).status == 200


def test_latency_fault_delays_then_answers(emulator: Emulator, raw: Any) -> None:
    emulator.faults.add(method="GET", action="latency", latency=0.3)
    started = time.monotonic()
    assert raw("GET", _path(ACCT1)).status == 200
    assert time.monotonic() - started >= 0.3


def test_delete_fault_removes_the_account_before_the_write(emulator: Emulator, raw: Any) -> None:
    emulator.faults.add(resource_id=ACCT1, method="PATCH", action="delete")
    response = raw("PATCH", _path(ACCT1), {"properties": {}})
    assert response.status == 404
    assert emulator.account(ACCT1) is None


def test_failed_provisioning_fault_in_sync_mode(emulator: Emulator, raw: Any) -> None:
    emulator.faults.add(resource_id=ACCT1, method="PATCH", action="fail_provisioning")
    response = raw("PATCH", _path(ACCT1), {"properties": {"publicNetworkAccess": "Disabled"}})
    assert response.status == 200
    assert response.json()["properties"]["provisioningState"] == "Failed"
    assert response.json()["properties"]["publicNetworkAccess"] == "Enabled"  # not applied
    emulator.wait_for_events()
    assert emulator.events[-1]["eventType"] == "Microsoft.Resources.ResourceWriteFailure"


def test_write_throttle_token_bucket(emulator: Emulator, raw: Any) -> None:
    emulator.write_rate = 2
    statuses = [raw("PATCH", _path(ACCT1), {"properties": {}}) for _ in range(3)]
    assert [r.status for r in statuses[:2]] == [200, 200]
    throttled = statuses[2]
    assert throttled.status == 429
    assert int(throttled.headers["retry-after"]) >= 1
    assert throttled.headers["x-ms-ratelimit-remaining-subscription-writes"] == "0"
    # another subscription has its own bucket
    assert raw("PATCH", _path(account_id(SUB2, "rg-b", "b0")), {"properties": {}}).status == 200
    time.sleep(0.55)
    assert raw("PATCH", _path(ACCT1), {"properties": {}}).status == 200


def test_write_throttle_is_per_principal(emulator: Emulator, raw: Any) -> None:
    """ARM scopes its limits to the principal and the subscription: another caller's writes in the
    same subscription draw on their own bucket."""
    emulator.write_rate = 1
    assert raw("PATCH", _path(ACCT1), {"properties": {}}).status == 200
    assert raw("PATCH", _path(ACCT1), {"properties": {}}).status == 429
    other = make_token({"appid": "pipeline-app", "oid": "sp-pipeline-app", "idtyp": "app"})
    assert raw("PATCH", _path(ACCT1), {"properties": {}}, token=other).status == 200
    assert raw("PATCH", _path(ACCT1), {"properties": {}}, token=other).status == 429


# ---------------------------------------------------------------------------- async (202) writes


def test_async_patch_answers_202_and_the_sdk_poller_completes(
    emulator: Emulator, client: Callable[..., Any]
) -> None:
    emulator.async_writes = True
    started = time.monotonic()
    poller = client().accounts.begin_update(
        RG,
        "acct1",
        json.dumps({"properties": {"publicNetworkAccess": "Disabled"}}).encode(),
        polling_interval=0.01,
    )
    result = poller.result()
    assert time.monotonic() - started < 3
    assert result.properties.public_network_access == "Disabled"
    assert result.properties.provisioning_state == "Succeeded"
    statuses = [r for r in emulator.app.requests if "operationResults" in r[1]]
    assert statuses, "the poller never asked the operation-status endpoint"
    assert any(r[0] == "PATCH" and r[2] == 202 for r in emulator.app.requests)


def test_async_account_is_accepted_while_in_progress(emulator: Emulator, raw: Any) -> None:
    emulator.async_writes = True
    response = raw("PATCH", _path(ACCT1), {"properties": {}})
    assert response.status == 202
    operation = response.headers["azure-asyncoperation"]
    location = response.headers["location"]
    assert operation.startswith(emulator.endpoint) and location.startswith(emulator.endpoint)
    assert raw("GET", _path(ACCT1)).json()["properties"]["provisioningState"] == "Accepted"
    assert raw("PATCH", _path(ACCT1), {"properties": {}}).status == 409  # not terminal
    assert raw("GET", operation).json()["status"] == "InProgress"  # one in-progress answer (async_polls=1)
    assert raw("GET", location).status == 200  # the next poll, by either link, completes it
    done = raw("GET", operation).json()
    assert done["status"] == "Succeeded"
    assert "endTime" in done
    assert raw("GET", _path(ACCT1)).json()["properties"]["provisioningState"] == "Succeeded"


def test_async_failed_provisioning_makes_the_poller_fail(
    emulator: Emulator, client: Callable[..., Any]
) -> None:
    emulator.async_writes = True
    emulator.faults.add(resource_id=ACCT1, method="PATCH", action="fail_provisioning")
    poller = client().accounts.begin_update(RG, "acct1", b'{"properties": {}}', polling_interval=0.01)
    with pytest.raises(HttpResponseError):
        poller.result()
    assert emulator.account(ACCT1)["properties"]["provisioningState"] == "Failed"  # type: ignore[index]


def test_async_operation_completes_on_its_own_after_a_while() -> None:
    with Emulator(async_writes=True, async_seconds=0.2) as arm:
        arm.seed(TENANT)
        from guardrail_workbench.emulator import Request

        request = Request("PATCH", ACCT1, {"api-version": API}, {"authorization": "Bearer t"}, b"{}")
        assert arm.app.handle(request).status == 202
        time.sleep(0.3)
        get = Request("GET", ACCT1, {"api-version": API}, {"authorization": "Bearer t"})
        assert arm.app.handle(get).body["properties"]["provisioningState"] == "Succeeded"


def test_accepted_mode_200_then_the_sdk_polls_the_account(
    emulator: Emulator, client: Callable[..., Any]
) -> None:
    emulator.accepted_writes = True
    poller = client().accounts.begin_update(
        RG, "acct1", b'{"properties": {"publicNetworkAccess": "Disabled"}}', polling_interval=0.01
    )
    assert poller.result().properties.provisioning_state == "Succeeded"
    log = [(m, s) for m, p, s in emulator.app.requests if p == ACCT1]
    assert log[0] == ("PATCH", 200)
    assert log.count(("GET", 200)) >= 2  # Accepted, then Succeeded


def test_accepted_mode_answers_accepted_then_turns_terminal(emulator: Emulator, raw: Any) -> None:
    emulator.accepted_writes = True
    emulator.faults.add(resource_id=ACCT1, method="PATCH", action="fail_provisioning")
    response = raw("PATCH", _path(ACCT1), {"properties": {}})
    assert response.status == 200
    assert response.json()["properties"]["provisioningState"] == "Accepted"
    assert raw("GET", _path(ACCT1)).json()["properties"]["provisioningState"] == "Accepted"
    assert raw("GET", _path(ACCT1)).json()["properties"]["provisioningState"] == "Failed"


# ---------------------------------------------------------------------------- SDK error mapping


def test_sdk_maps_errors_as_contracts_say(emulator: Emulator, client: Callable[..., Any]) -> None:
    emulator.set_busy(ACCT1, calls=1)
    with pytest.raises(ResourceExistsError) as conflict:  # 409 maps to ResourceExistsError
        client().accounts.begin_update(RG, "acct1", b'{"properties": {}}', polling_interval=0.01)
    assert conflict.value.status_code == 409
    emulator.deny_vnet_join()
    body = {"properties": {"networkAcls": {"virtualNetworkRules": [{"id": "/subscriptions/x/subnets/s"}]}}}
    with pytest.raises(HttpResponseError) as forbidden:
        client().accounts.begin_update(RG, "acct2", json.dumps(body).encode(), polling_interval=0.01)
    assert forbidden.value.status_code == 403
    assert forbidden.value.error is not None and forbidden.value.error.code == "LinkedAuthorizationFailed"


# ---------------------------------------------------------------------------- throughput


def test_concurrent_clients(emulator: Emulator, client: Callable[..., Any]) -> None:
    sdk = client()
    errors: list[BaseException] = []
    started = time.monotonic()

    def work() -> None:
        try:
            for _ in range(40):
                raw_get(sdk, RG, "acct2")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    assert not errors
    # SDK clients and the server share one process (and its GIL) here; the bar is deliberately low.
    assert 320 / elapsed > 80, f"only {320 / elapsed:.0f} requests/s"


# ---------------------------------------------------------------------------- seed / dump


def test_seed_dump_round_trip(emulator: Emulator) -> None:
    dumped = emulator.dump()
    again = Emulator()
    again.seed(dumped)
    assert again.dump() == dumped
    assert len(again.accounts()) == 8


def test_seed_file_json_and_yaml(tmp_path: Any) -> None:
    import yaml

    from .conftest import REPO

    sample = Emulator()
    sample.seed_file(REPO / "samples" / "tenant.json")
    assert len(sample.dump()["subscriptions"]) == 2
    assert len(sample.accounts()) >= 4
    path = tmp_path / "tenant.yaml"
    path.write_text(yaml.safe_dump(TENANT))
    from_yaml = Emulator()
    from_yaml.seed_file(path)
    assert {a["name"] for a in from_yaml.accounts()} >= {"acct1", "b2"}


def test_response_objects(raw: Callable[..., RawResponse]) -> None:
    response = raw("GET", _path(ACCT1))
    assert response.headers["x-ms-correlation-request-id"]
    echoed = raw("GET", _path(ACCT1), headers={"x-ms-correlation-request-id": "abc"})
    assert echoed.headers["x-ms-correlation-request-id"] == "abc"


def test_system_data_names_creator_and_last_modifier(raw: Any) -> None:
    from guardrail_workbench.emulator import make_token

    rid = account_id(SUB1, RG, "stamped")
    assert raw("PUT", _path(rid), account_body("stamped")).status == 201  # Jane (the fixture's user token)
    app = make_token({"appid": "pipeline-app", "oid": "pipeline-oid"})
    after = raw("PATCH", _path(rid), {"properties": {}}, token=app).json()["systemData"]
    assert (after["createdBy"], after["createdByType"]) == ("jane@contoso.example", "User")
    assert (after["lastModifiedBy"], after["lastModifiedByType"]) == ("pipeline-app", "Application")
    assert after["lastModifiedAt"] >= after["createdAt"]


def test_main_serves_a_seeded_tenant_until_terminated(tmp_path: Any) -> None:
    import os
    import signal
    import ssl
    import subprocess
    import sys
    import urllib.request

    from .conftest import REPO

    dump = tmp_path / "dump.json"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "guardrail_workbench.emulator",
            "--port",
            "0",
            "--page-size",
            "2",
            "--seed",
            str(REPO / "samples" / "tenant.json"),
            "--dump-on-exit",
            str(dump),
        ],
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    try:
        assert process.stdout is not None
        lines = []
        for line in process.stdout:
            lines.append(line)
            if line.startswith("}"):
                break
        info = json.loads("".join(lines))
        assert info["accounts"] == 6 and len(info["subscriptions"]) == 2
        assert info["env"]["ARM_ENDPOINT"] == info["endpoint"]
        request = urllib.request.Request(
            info["endpoint"] + "/subscriptions?api-version=2022-12-01", headers={"Authorization": "Bearer x"}
        )
        # the CA is per process: the child's own bundle (printed) must verify its certificate
        context = ssl.create_default_context(cafile=info["ca_bundle"])
        with urllib.request.urlopen(request, context=context, timeout=10) as response:
            listed = json.loads(response.read())
        assert len(listed["value"]) == 2
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=10)
    assert process.returncode == 0
    assert len(json.loads(dump.read_text())["subscriptions"]) == 2
