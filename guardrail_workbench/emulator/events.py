"""Event shapes (Event Grid schema and CloudEvents 1.0) and their delivery to subscribers.

Shapes follow contracts/events/derived_cogsvc_*.json (Microsoft.Resources.* from a subscription
system topic) and derived_arn_*.json (Azure Resource Notifications). Delivery runs on one
background thread per subscriber, never inside the request handler, so a callback that calls
back into the emulator cannot deadlock it.
"""

from __future__ import annotations

import collections
import copy
import itertools
import json
import logging
import queue
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

_log = logging.getLogger(__name__)

Schema = Literal["eventgrid", "cloudevents"]
Kind = Literal["resources", "notifications"]
ALL_KINDS: frozenset[str] = frozenset({"resources", "notifications"})

ACCOUNT_TYPE = "Microsoft.CognitiveServices/accounts"


def event_time(moment: datetime | None = None) -> str:
    """ARM's timestamp style: seven fractional digits and a Z."""
    moment = moment or datetime.now(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z"


@dataclass(frozen=True)
class WriteContext:
    """Who made a change, and how: what the events need to know about the request."""

    claims: Mapping[str, str]
    evidence: Mapping[str, str]
    tenant_id: str
    correlation_id: str
    client_request_id: str
    client_ip: str
    method: str
    url: str
    api_version: str


def _subscription_of(resource_id: str) -> str:
    parts = resource_id.split("/")
    return parts[2] if len(parts) > 2 else ""


def _provider_and_type(resource_id: str) -> tuple[str, str]:
    parts = resource_id.strip("/").split("/")
    lowered = [p.lower() for p in parts]
    if "providers" in lowered:
        index = len(lowered) - 1 - lowered[::-1].index("providers")
        tail = parts[index + 1 :]
        if tail:
            provider = tail[0]
            types = [tail[i] for i in range(1, len(tail), 2)]
            return provider, "/".join([provider, *types])
    return "Microsoft.Resources", "Microsoft.Resources/resources"


def resource_event(
    *,
    event_type: str,
    resource_id: str,
    operation: Literal["write", "delete"],
    status: Literal["Succeeded", "Failed"],
    context: WriteContext,
    include_http_request: bool,
) -> dict[str, Any]:
    """A `Microsoft.Resources.Resource*` event in Event Grid schema."""
    subscription = _subscription_of(resource_id)
    provider, full_type = _provider_and_type(resource_id)
    action = f"{full_type}/{operation}"
    data: dict[str, Any] = {
        "authorization": {"scope": resource_id, "action": action, "evidence": dict(context.evidence)},
        "claims": dict(context.claims),
        "correlationId": context.correlation_id,
    }
    if include_http_request:
        data["httpRequest"] = {
            "clientRequestId": context.client_request_id,
            "clientIpAddress": context.client_ip,
            "method": context.method,
            "url": context.url,
        }
    data.update(
        {
            "resourceProvider": provider,
            "resourceUri": resource_id,
            "operationName": action,
            "status": status,
            "subscriptionId": subscription,
            "tenantId": context.tenant_id,
        }
    )
    return {
        "subject": resource_id,
        "eventType": event_type,
        "eventTime": event_time(),
        "id": str(uuid.uuid4()),
        "data": data,
        "dataVersion": "2",
        "metadataVersion": "1",
        "topic": f"/subscriptions/{subscription}",
    }


def notification_event(
    *, resource: Mapping[str, Any] | None, resource_id: str, deleted: bool, api_version: str
) -> dict[str, Any]:
    """An Azure Resource Notifications event (CreatedOrUpdated with the full resource, or Deleted)."""
    subscription = _subscription_of(resource_id)
    now = event_time()
    data: dict[str, Any]
    if deleted or resource is None:
        name = resource_id.rstrip("/").rsplit("/", 1)[-1]
        data = {
            "resourceInfo": {"id": resource_id, "name": name, "type": _provider_and_type(resource_id)[1]},
            "operationalInfo": {"resourceEventTime": now},
        }
        event_type = "Microsoft.ResourceNotifications.Resources.Deleted"
    else:
        info: dict[str, Any] = {}
        if "tags" in resource:
            info["tags"] = copy.deepcopy(resource["tags"])
        for key in ("id", "name", "type", "location"):
            if key in resource:
                info[key] = resource[key]
        info["properties"] = copy.deepcopy(resource.get("properties", {}))
        data = {
            "resourceInfo": info,
            "apiVersion": api_version,
            "operationalInfo": {"resourceEventTime": now},
        }
        event_type = "Microsoft.ResourceNotifications.Resources.CreatedOrUpdated"
    return {
        "id": str(uuid.uuid4()),
        "topic": f"/subscriptions/{subscription}",
        "subject": resource_id,
        "data": data,
        "eventType": event_type,
        "dataVersion": "1",
        "metadataVersion": "1",
        "eventTime": now,
    }


def to_cloudevent(event: Mapping[str, Any]) -> dict[str, Any]:
    """The same event in CloudEvents 1.0 (Event Grid's CloudEvents mapping)."""
    return {
        "id": event["id"],
        "source": event["topic"],
        "subject": event["subject"],
        "type": event["eventType"],
        "time": event["eventTime"],
        "specversion": "1.0",
        "data": copy.deepcopy(event["data"]),
    }


def kind_of(event: Mapping[str, Any]) -> str:
    return (
        "notifications"
        if str(event["eventType"]).startswith("Microsoft.ResourceNotifications")
        else "resources"
    )


LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})


@dataclass
class Delivery:
    """One HTTP delivery attempt series (for inspection in tests and demos)."""

    url: str
    event_ids: list[str]
    status: int | None
    attempts: int
    error: str | None = None


@dataclass
class Subscriber:
    """A consumer of events: a callback or a loopback URL, with a schema and event kinds.

    `concurrency` deliveries run at once (Event Grid delivers concurrently, so events may arrive
    out of order); `urls` are further endpoints of the same subscriber, each attempt going to the
    next one in turn (the front end of a function app scaled out to several instances), a retry
    included."""

    schema: Schema
    kinds: frozenset[str]
    callback: Callable[[dict[str, Any]], object] | None = None
    url: str | None = None
    retry_delays: tuple[float, ...] = (0.5, 2.0)
    timeout: float = 30.0
    concurrency: int = 1
    urls: tuple[str, ...] = ()
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    errors: list[BaseException] = field(default_factory=list)
    deliveries: list[Delivery] = field(default_factory=list)
    _turn: itertools.count[int] = field(default_factory=itertools.count, repr=False)

    def endpoints(self) -> tuple[str, ...]:
        return ((self.url,) if self.url is not None else ()) + self.urls

    def next_url(self) -> str:
        """The endpoint of the next attempt (round-robin; `next` on a count is atomic in CPython)."""
        endpoints = self.endpoints()
        return endpoints[next(self._turn) % len(endpoints)]

    def summary(self) -> dict[str, Any]:
        """What `GET /_emulator/subscriptions` shows: the deliveries made, the attempts they took,
        and those given up on (no 2xx after every retry)."""
        deliveries = list(self.deliveries)
        return {
            "id": self.id,
            "urls": list(self.endpoints()),
            "schema": self.schema,
            "kinds": sorted(self.kinds),
            "concurrency": self.concurrency,
            "retryDelays": list(self.retry_delays),
            "timeout": self.timeout,
            "deliveries": len(deliveries),
            "attempts": sum(d.attempts for d in deliveries),
            "failed": sum(1 for d in deliveries if d.status is None or not 200 <= d.status < 300),
            "errors": len(self.errors),
        }


class Dispatcher:
    """Queues events per subscriber and delivers them on background threads."""

    def __init__(self, history_limit: int = 100_000) -> None:
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._pending = 0
        self._subscribers: dict[str, tuple[Subscriber, queue.Queue[dict[str, Any] | None]]] = {}
        self._threads: list[threading.Thread] = []
        # every event emitted (Event Grid schema), the most recent `history_limit` kept
        self.history: collections.deque[dict[str, Any]] = collections.deque(maxlen=history_limit)
        self.published = 0  # events emitted in all (the sequence number of the newest)

    def subscribe(self, subscriber: Subscriber) -> Subscriber:
        for url in subscriber.endpoints():
            host = urllib.parse.urlsplit(url).hostname or ""
            if host not in LOOPBACK_HOSTS and not host.startswith("127."):
                raise ValueError(f"the emulator only delivers to loopback addresses, not {host!r}")
        if subscriber.concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        inbox: queue.Queue[dict[str, Any] | None] = queue.Queue()
        threads = [
            threading.Thread(
                target=self._run,
                args=(subscriber, inbox),
                name=f"emulator-events-{subscriber.id[:8]}-{n}",
                daemon=True,
            )
            for n in range(subscriber.concurrency)
        ]
        with self._lock:
            self._subscribers[subscriber.id] = (subscriber, inbox)
            self._threads.extend(threads)
        for thread in threads:
            thread.start()
        return subscriber

    def subscribers(self) -> list[Subscriber]:
        with self._lock:
            return [subscriber for subscriber, _ in self._subscribers.values()]

    @property
    def pending(self) -> int:
        """Events queued or being delivered (retries included)."""
        with self._lock:
            return self._pending

    def unsubscribe(self, subscriber_id: str) -> None:
        with self._lock:
            entry = self._subscribers.pop(subscriber_id, None)
        if entry is not None:
            for _ in range(entry[0].concurrency):
                entry[1].put(None)

    def publish(self, events: Iterable[dict[str, Any]]) -> None:
        """Queue Event Grid schema events for every interested subscriber (never blocks)."""
        events = list(events)
        with self._lock:
            self.history.extend(events)
            self.published += len(events)
            targets = list(self._subscribers.values())
            for subscriber, inbox in targets:
                for event in events:
                    if kind_of(event) in subscriber.kinds:
                        self._pending += 1
                        inbox.put(event)

    def since(self, seq: int) -> tuple[list[dict[str, Any]], int]:
        """The kept events numbered after `seq` (1 = the first ever emitted), and the newest number."""
        with self._lock:
            first = self.published - len(self.history) + 1
            skip = max(0, seq + 1 - first)
            return [copy.deepcopy(e) for e in list(self.history)[skip:]], self.published

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Block until every queued event has been delivered (or failed); False on timeout."""
        deadline = time.monotonic() + timeout
        with self._idle:
            while self._pending:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._idle.wait(remaining)
        return True

    def close(self) -> None:
        with self._lock:
            entries = list(self._subscribers.values())
            self._subscribers.clear()
        for subscriber, inbox in entries:
            for _ in range(subscriber.concurrency):
                inbox.put(None)

    def _done(self) -> None:
        with self._idle:
            self._pending -= 1
            if self._pending <= 0:
                self._pending = 0
                self._idle.notify_all()

    def _run(self, subscriber: Subscriber, inbox: queue.Queue[dict[str, Any] | None]) -> None:
        while True:
            event = inbox.get()
            if event is None:
                return
            try:
                body = to_cloudevent(event) if subscriber.schema == "cloudevents" else copy.deepcopy(event)
                if subscriber.callback is not None:
                    subscriber.callback(body)
                elif subscriber.endpoints():
                    self._post(subscriber, body)
            except BaseException as exc:  # a subscriber's failure must not kill delivery
                _log.warning("event delivery to %s failed: %s", subscriber.id, exc)
                subscriber.errors.append(exc)
            finally:
                self._done()

    @staticmethod
    def _post(subscriber: Subscriber, body: dict[str, Any]) -> None:
        payload: Any = body if subscriber.schema == "cloudevents" else [body]
        data = json.dumps(payload).encode()
        content_type = (
            "application/cloudevents+json; charset=utf-8"
            if subscriber.schema == "cloudevents"
            else "application/json; charset=utf-8"
        )
        delays = (0.0, *subscriber.retry_delays)
        status: int | None = None
        error: str | None = None
        attempts = 0
        url = ""
        for delay in delays:
            if delay:
                time.sleep(delay)
            attempts += 1
            url = subscriber.next_url()
            request = urllib.request.Request(
                url,
                data=data,
                method="POST",
                headers={"Content-Type": content_type, "aeg-event-type": "Notification"},
            )
            try:
                with urllib.request.urlopen(request, timeout=subscriber.timeout) as response:
                    status = int(response.status)
                    error = None
            except urllib.error.HTTPError as exc:
                status, error = exc.code, str(exc)
            except OSError as exc:
                status, error = None, str(exc)
            if status is not None and 200 <= status < 300:
                break
        subscriber.deliveries.append(Delivery(url, [str(body["id"])], status, attempts, error))
