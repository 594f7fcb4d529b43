"""The HTTP control API (`/_emulator/...`): faults, the request log and the tenant, from any process."""

from __future__ import annotations

import http.client
import json
import ssl
from typing import Any

import pytest

from guardrail_workbench.emulator import Emulator

from .conftest import ACCT1, API, RG, SUB1, TENANT

ACLS = {"defaultAction": "Deny", "ipRules": [{"value": "16.17.18.19"}]}


def _patch_acls(raw: Any) -> Any:
    return raw("PATCH", f"{ACCT1}?api-version={API}", {"properties": {"networkAcls": ACLS}})


def test_a_status_fault_over_http_answers_like_the_python_api(emulator: Emulator, raw: Any) -> None:
    made = raw(
        "POST",
        "/_emulator/faults",
        {
            "method": "PATCH",
            "resourceId": ACCT1,
            "action": "status",
            "status": 429,
            "retryAfter": 2,
            "times": 2,
        },
        token=None,
    )
    assert made.status == 201
    fault_id = made.json()["id"]
    first, second, third = (_patch_acls(raw) for _ in range(3))
    assert (first.status, second.status, third.status) == (429, 429, 200)
    assert first.headers["retry-after"] == "2"
    assert first.json()["error"]["code"] == "TooManyRequests"
    listed = raw("GET", "/_emulator/faults", token=None).json()["faults"]
    assert [(f["id"], f["action"], f["fired"], f["times"]) for f in listed] == [(fault_id, "respond", 2, 2)]
    assert emulator.faults.all()[0].fired == 2  # the same queue the Python API sees


def test_times_null_means_forever_and_delete_clears(emulator: Emulator, raw: Any) -> None:
    raw("POST", "/_emulator/faults", {"method": "GET", "status": 503, "times": None}, token=None)
    assert [raw("GET", f"{ACCT1}?api-version={API}").status for _ in range(4)] == [503] * 4
    assert raw("GET", "/_emulator/faults", token=None).json()["faults"][0]["fired"] == 4
    assert raw("DELETE", "/_emulator/faults", token=None).status == 204
    assert raw("GET", "/_emulator/faults", token=None).json() == {"faults": []}
    assert raw("GET", f"{ACCT1}?api-version={API}").status == 200


@pytest.mark.parametrize("action", ["delete", "touch", "fail_provisioning", "latency"])
def test_every_python_action_is_reachable_over_http(emulator: Emulator, raw: Any, action: str) -> None:
    before = emulator.account(ACCT1)
    assert before is not None
    body = {"method": "PATCH", "resourceId": ACCT1, "action": action, "latency": 0.05}
    assert raw("POST", "/_emulator/faults", body, token=None).status == 201
    headers = {"If-Match": before["etag"]} if action == "touch" else None
    response = raw(
        "PATCH", f"{ACCT1}?api-version={API}", {"properties": {"networkAcls": ACLS}}, headers=headers
    )
    expected = {"delete": 404, "touch": 412, "fail_provisioning": 200, "latency": 200}[action]
    assert response.status == expected
    if action == "fail_provisioning":
        assert response.json()["properties"]["provisioningState"] == "Failed"


def test_drop_response_applies_the_write_then_closes_without_an_answer(emulator: Emulator) -> None:
    emulator.faults.add(method="PATCH", resource_id=ACCT1, action="drop_response")
    from guardrail_workbench import tls

    connection = http.client.HTTPSConnection(
        "127.0.0.1", emulator.port, context=tls.client_context(), timeout=10
    )
    body = json.dumps({"properties": {"networkAcls": ACLS}})
    connection.request(
        "PATCH",
        f"{ACCT1}?api-version={API}",
        body=body,
        headers={"Authorization": "Bearer x", "Content-Type": "application/json"},
    )
    with pytest.raises((http.client.RemoteDisconnected, ConnectionError, ssl.SSLError)):
        connection.getresponse()
    connection.close()
    account = emulator.account(ACCT1)
    assert account is not None and account["properties"]["networkAcls"] == ACLS  # the write landed
    assert emulator.faults.all()[0].fired == 1


def test_bad_faults_are_refused_with_a_reason(raw: Any) -> None:
    for body, word in [
        ({"action": "explode"}, "action"),
        ({"status": "429"}, "status"),
        ({"status": 42}, "status"),
        ({"times": 0}, "times"),
        ({"retry": 1}, "retry"),
        ([1], "object"),
    ]:
        refused = raw("POST", "/_emulator/faults", body, token=None)
        assert refused.status == 400, body
        assert word in refused.json()["error"]["message"]
    assert raw("GET", "/_emulator/nothing", token=None).status == 404


def test_the_request_log_pages_by_sequence_number(raw: Any) -> None:
    start = raw("GET", "/_emulator/requests?since=0", token=None).json()
    raw("GET", f"{ACCT1}?api-version={API}")
    raw(
        "GET",
        f"/subscriptions/{SUB1}/resourceGroups/{RG}/providers/Microsoft.CognitiveServices/accounts/nope?api-version={API}",
    )
    page = raw("GET", f"/_emulator/requests?since={start['next']}", token=None).json()
    assert [(r["method"], r["path"], r["status"]) for r in page["requests"]] == [
        ("GET", ACCT1, 200),
        (
            "GET",
            f"/subscriptions/{SUB1}/resourceGroups/{RG}/providers/Microsoft.CognitiveServices/accounts/nope",
            404,
        ),
    ]
    assert page["next"] == page["requests"][-1]["seq"] > start["next"]
    empty = raw("GET", f"/_emulator/requests?since={page['next']}", token=None).json()
    assert empty == {"requests": [], "next": page["next"]}
    assert raw("GET", "/_emulator/requests?since=x", token=None).status == 400


def test_put_tenant_replaces_it_and_get_dumps_it(emulator: Emulator, raw: Any) -> None:
    small = {"subscriptions": [TENANT["subscriptions"][1]]}
    assert raw("PUT", "/_emulator/tenant", small, token=None).json() == {"accounts": 3}
    dumped = raw("GET", "/_emulator/tenant", token=None).json()
    assert [s["subscriptionId"] for s in dumped["subscriptions"]] == [
        small["subscriptions"][0]["subscriptionId"]
    ]
    assert raw("GET", f"{ACCT1}?api-version={API}").status == 404
    assert raw("PUT", "/_emulator/tenant", {"subscriptions": [{"nope": 1}]}, token=None).status == 400
