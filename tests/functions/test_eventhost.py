"""The Functions host's Event Grid webhook, locally (guardrail_workbench.eventhost): what a running
host answers (../shared/contracts/README.md: 202 when every invocation succeeded, 500 when one
raised, 404 for an unknown function, 400 without `aeg-event-type`), and the app's own triggers."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from guardrail_workbench.eventhost import EventHost

EVENT = {
    "id": "e-1",
    "subject": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.CognitiveServices/accounts/a",
    "eventType": "Microsoft.Resources.ResourceWriteSuccess",
    "eventTime": "2026-01-01T00:00:00.0000000Z",
    "data": {},
    "dataVersion": "2",
    "metadataVersion": "1",
    "topic": "/subscriptions/s",
}


def _post(url: str, body: Any, headers: dict[str, str] | None = None) -> int:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Content-Type": "application/json", "aeg-event-type": "Notification", **(headers or {})},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


def test_the_webhook_answers_as_the_functions_host_does() -> None:
    received: list[Any] = []

    def ok(event: Any) -> None:
        received.append((event.id, event.event_type, event.subject))

    def fails(event: Any) -> None:
        raise RuntimeError("transient")

    with EventHost({"ok": ok, "fails": fails}, threads=2) as host:
        assert _post(host.url("ok"), [EVENT]) == 202
        assert received == [("e-1", EVENT["eventType"], EVENT["subject"])]  # a func.EventGridEvent
        assert _post(host.url("fails"), [EVENT]) == 500
        assert _post(host.url("nope"), [EVENT]) == 404
        assert _post(host.url("ok"), [EVENT], {"aeg-event-type": "SubscriptionValidation"}) == 400
        assert host.counts()["invocations"] == {"ok": 1, "fails": 1}
        assert host.counts()["failures"] == {"fails": 1}


def test_by_default_it_serves_the_function_apps_event_grid_triggers() -> None:
    host = EventHost(threads=1)
    try:
        assert {"on_resource_write", "on_resource_notification"} <= set(host.handlers)
    finally:
        host.server.server_close()
        host.pool.shutdown()
