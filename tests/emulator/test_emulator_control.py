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


def _without_etags(document: Any) -> Any:
    if isinstance(document, dict):
        return {k: _without_etags(v) for k, v in document.items() if k != "etag"}
    if isinstance(document, list):
        return [_without_etags(v) for v in document]
    return document


def test_generate_tenant_over_http_seeds_what_a_put_of_the_same_document_would(raw: Any) -> None:
    from guardrail_workbench.tenant import generate_tenant

    asked = {"accounts": 120, "subscriptions": 4, "seed": 5, "openFraction": 0.25}
    assert raw("POST", "/_emulator/tenant/generate", asked, token=None).json() == {"accounts": 120}
    generated = _without_etags(raw("GET", "/_emulator/tenant", token=None).json())
    document = generate_tenant(120, 4, seed=5, open_fraction=0.25)
    assert raw("PUT", "/_emulator/tenant", document, token=None).json() == {"accounts": 120}
    assert generated == _without_etags(raw("GET", "/_emulator/tenant", token=None).json())
    for bad in ({"accounts": 1}, {"accounts": 1, "subscriptions": 1, "openFraction": 2}, {"nope": 1}):
        assert raw("POST", "/_emulator/tenant/generate", bad, token=None).status == 400


def test_listing_a_generated_subscription_pages_through_its_accounts_once_each(
    emulator: Emulator, raw: Any
) -> None:
    from guardrail_workbench.tenant import subscription_ids

    raw("POST", "/_emulator/tenant/generate", {"accounts": 90, "subscriptions": 3, "seed": 9}, token=None)
    sub = subscription_ids(3, 9)[1]
    link: str | None = (
        f"/subscriptions/{sub}/providers/Microsoft.CognitiveServices/accounts?api-version={API}"
    )
    seen: list[str] = []
    pages = 0
    while link:
        page = raw("GET", link).json()
        assert len(page["value"]) <= 2  # the fixture's page size
        seen += [a["id"].lower() for a in page["value"]]
        link = page.get("nextLink")
        pages += 1
    assert len(seen) == 30 and len(set(seen)) == 30 and pages == 15
    assert seen == sorted(seen) and all(f"/subscriptions/{sub}/" in rid for rid in seen)
    kinds = raw("GET", "/_emulator/stats", token=None).json()["kinds"]
    assert kinds["GET accounts list"] >= 15


def test_settings_over_http_switch_the_python_behaviours(emulator: Emulator, raw: Any) -> None:
    current = raw("GET", "/_emulator/settings", token=None).json()
    assert current["asyncWrites"] is False and current["networkAclsPatch"] == "replace"
    changed = raw("PATCH", "/_emulator/settings", {"asyncWrites": True, "denyVnetJoin": [ACCT1]}, token=None)
    assert changed.status == 200 and changed.json()["asyncWrites"] is True
    assert emulator.async_writes is True
    assert _patch_acls(raw).status == 202
    for bad in ({"asyncWrites": "yes"}, {"networkAclsPatch": "sometimes"}, {"pageSize": 0}, {"nope": 1}):
        assert raw("PATCH", "/_emulator/settings", bad, token=None).status == 400, bad
    raw("PATCH", "/_emulator/settings", {"asyncWrites": False, "denyVnetJoin": []}, token=None)
    assert emulator.async_writes is False and not emulator.app.vnet_join_denied


def test_busy_over_http_answers_request_conflict(raw: Any) -> None:
    assert raw("POST", "/_emulator/busy", {"resourceId": ACCT1, "calls": 1}, token=None).status == 204
    assert _patch_acls(raw).status == 409
    assert raw("POST", "/_emulator/busy", {"resourceId": ACCT1 + "x"}, token=None).status == 404


def test_events_over_http_page_by_sequence_number(emulator: Emulator, raw: Any) -> None:
    start = raw("GET", "/_emulator/events?since=0", token=None).json()["next"]
    _patch_acls(raw)
    page = raw("GET", f"/_emulator/events?since={start}", token=None).json()
    assert [e["eventType"] for e in page["events"]] == [
        "Microsoft.Resources.ResourceWriteSuccess",
        "Microsoft.ResourceNotifications.Resources.CreatedOrUpdated",
    ]
    assert page["next"] == start + 2
    assert raw("GET", f"/_emulator/events?since={page['next']}", token=None).json()["events"] == []


def test_event_subscriptions_over_http_deliver_to_loopback_only(emulator: Emulator, raw: Any) -> None:
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    received: list[tuple[str | None, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((self.headers.get("aeg-event-type"), json.loads(body)))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/events"
        made = raw("POST", "/_emulator/subscriptions", {"url": url, "kinds": ["resources"]}, token=None)
        assert made.status == 201
        _patch_acls(raw)
        assert emulator.wait_for_events()
        assert [(kind, body[0]["subject"]) for kind, body in received] == [("Notification", ACCT1)]
    finally:
        server.shutdown()
        server.server_close()
    refused = raw("POST", "/_emulator/subscriptions", {"url": "http://192.0.2.1/x"}, token=None)
    assert refused.status == 400


def test_stats_over_http_count_answers_and_time_writes_per_subscription(emulator: Emulator, raw: Any) -> None:
    assert raw("DELETE", "/_emulator/stats", token=None).status == 204
    raw("POST", "/_emulator/faults", {"method": "PATCH", "status": 429, "retryAfter": 1}, token=None)
    assert _patch_acls(raw).status == 429
    assert _patch_acls(raw).status == 200
    assert raw("GET", f"{ACCT1}?api-version={API}").status == 200
    stats = raw("GET", "/_emulator/stats", token=None).json()
    assert stats["requests"] == 3  # control requests are not counted
    assert stats["statuses"] == {"PATCH 429": 1, "PATCH 200": 1, "GET 200": 1}
    assert stats["kinds"] == {"PATCH account": 2, "GET account": 1}
    window = stats["writes"][SUB1.lower()]
    assert window["count"] == 1 and stats["since"] <= window["first"] <= window["last"]
    assert set(stats["writes"]) == {SUB1.lower()}
    assert raw("DELETE", "/_emulator/stats", token=None).status == 204
    assert raw("GET", "/_emulator/stats", token=None).json()["statuses"] == {}
    assert raw("POST", "/_emulator/stats", token=None).status == 405


def test_the_request_log_can_be_switched_off_over_http(emulator: Emulator, raw: Any) -> None:
    assert raw("GET", "/_emulator/settings", token=None).json()["requestLog"] is True
    start = raw("GET", "/_emulator/requests?since=0", token=None).json()["next"]
    assert (
        raw("PATCH", "/_emulator/settings", {"requestLog": False}, token=None).json()["requestLog"] is False
    )
    raw("GET", f"{ACCT1}?api-version={API}")
    assert raw("GET", f"/_emulator/requests?since={start}", token=None).json()["requests"] == []
    assert raw("GET", "/_emulator/stats", token=None).json()["statuses"].get("GET 200", 0) >= 1
    assert raw("PATCH", "/_emulator/settings", {"requestLog": "no"}, token=None).status == 400


def test_an_event_subscription_spreads_deliveries_over_its_endpoints_and_retries_on_the_next(
    emulator: Emulator, raw: Any
) -> None:
    """Event Grid's delivery to a scaled-out function app: concurrent, the attempts spread over the
    instances, a 500 retried after the subscription's retryDelays; the counts over HTTP."""
    import threading

    from guardrail_workbench.eventhost import EventHost

    lock = threading.Lock()
    seen: dict[str, list[int]] = {}

    def handler(index: int) -> Any:
        def run(event: Any) -> None:
            with lock:
                attempts = seen.setdefault(event.id, [])
                attempts.append(index)
                first = len(attempts) == 1
            if first:
                raise RuntimeError("transient")  # 500: Event Grid redelivers

        return run

    hosts = [EventHost({"f": handler(i)}, threads=2).start() for i in range(2)]
    urls = [host.url("f") for host in hosts]
    made = raw(
        "POST",
        "/_emulator/subscriptions",
        {"url": urls[0], "urls": urls[1:], "kinds": ["resources"], "concurrency": 2, "retryDelays": [0]},
        token=None,
    ).json()
    try:
        for _ in range(4):
            assert _patch_acls(raw).status == 200
        assert emulator.wait_for_events()
        assert raw("GET", "/_emulator/events?since=0", token=None).json()["pending"] == 0
        assert len(seen) == 4
        assert all(len(attempts) == 2 for attempts in seen.values())
        assert {index for attempts in seen.values() for index in attempts} == {0, 1}
        listed = raw("GET", "/_emulator/subscriptions", token=None).json()["subscriptions"]
        mine = next(s for s in listed if s["id"] == made["id"])
        assert (mine["deliveries"], mine["attempts"], mine["failed"], mine["urls"]) == (4, 8, 0, urls)
        assert sum(sum(h.counts()["failures"].values()) for h in hosts) == 4
    finally:
        emulator.dispatcher.unsubscribe(made["id"])
        for host in hosts:
            host.stop()
    bad = raw("POST", "/_emulator/subscriptions", {"url": urls[0], "concurrency": 0}, token=None)
    assert bad.status == 400
