"""`guardrail replay-deadletter`: put events that Event Grid dead-lettered back through the path.

Event Grid writes an event it could not deliver to the dead-letter container (``eventgrid-deadletter``
in the host's storage account, see infra/modules/host.bicep) as a blob
``{SUBSCRIPTION-NAME}/{yyyy}/{m}/{d}/{h}/{guid}.json`` holding a JSON array of events, each the
original event (Event Grid schema, as the subscriptions deliver it) with the dead-letter
properties added: ``deadLetterReason``, ``deliveryAttempts``, ``lastDeliveryOutcome``,
``lastHttpStatusCode``, ``publishTime``, ``lastDeliveryAttemptTime``.

Each event, without those properties, goes to `Guardrail.handle_event` (what the function's
trigger calls): the account is read fresh and judged now (a replay is never the fast path: a Resource
Notification's `resourceInfo`, the account's body as it was when the event was sent, is taken out
before the handler sees the event, so the handler cannot judge the account from it and always reads
ARM), and the records name the event's actor,
event ID and correlation ID, so the audit trail keeps who changed what. A blob whose events were
all handled gets the metadata ``guardrailreplayed`` (the time) so a second run skips it; a blob
with an event that raised (ARM still failing) is left unmarked for the next run. The blob is not
moved or deleted: it stays as evidence, and lifecycle rules can age it out.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from guardrail.storage import StorageSettings

from guardrail import escaping
from guardrail.transport import STORAGE_RETRIES, STORAGE_TIMEOUTS, Timeouts

log = escaping.logger("guardrail")

DEFAULT_CONTAINER = "eventgrid-deadletter"
REPLAYED = "guardrailreplayed"  # blob metadata: when the replay handled every event of the blob
REPLAYED_EVENTS = "guardrailreplayedevents"
DEAD_LETTER_PROPERTIES = (
    "deadLetterReason",
    "deliveryAttempts",
    "lastDeliveryOutcome",
    "lastHttpStatusCode",
    "publishTime",
    "lastDeliveryAttemptTime",
)
_DURATION = re.compile(r"^\s*(\d+)\s*([mhd])\s*$")


class DeadLetterError(ValueError):
    """A dead-letter blob that is not what Event Grid writes (the message names the blob)."""


@dataclass
class DeadLetteredEvent:
    blob: str
    event: dict[str, Any]  # the original event, dead-letter properties removed
    reason: str | None
    attempts: int | None
    last_outcome: str | None
    publish_time: str | None

    def describe(self) -> dict[str, Any]:
        return {
            "blob": self.blob,
            "event_id": self.event.get("id"),
            "event_type": self.event.get("eventType") or self.event.get("type"),
            "subject": self.event.get("subject"),
            "dead_letter_reason": self.reason,
            "delivery_attempts": self.attempts,
            "last_delivery_outcome": self.last_outcome,
            "publish_time": self.publish_time,
        }


@dataclass
class ReplayReport:
    dry_run: bool
    blobs: int = 0  # dead-letter blobs considered (inside --since, not yet replayed)
    already_replayed: int = 0
    outside_since: int = 0
    events: list[dict[str, Any]] = field(default_factory=list)  # one row per event
    marked: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "blobs": self.blobs,
            "events": len(self.events),
            "replayed": sum(1 for e in self.events if e.get("action") not in ("would-replay", "error")),
            "marked": len(self.marked),
            "already_replayed": self.already_replayed,
            "outside_since": self.outside_since,
            "errors": self.errors,
        }


def parse_since(text: str | None, now: datetime) -> datetime | None:
    """``--since``: an ISO 8601 date or timestamp (UTC when no offset), or ``30m``/``12h``/``7d``."""
    if text is None:
        return None
    match = _DURATION.match(text)
    if match:
        amount, unit = int(match.group(1)), match.group(2)
        units = {"m": "minutes", "h": "hours", "d": "days"}
        return now - timedelta(**{units[unit]: amount})
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise DeadLetterError(
            f"--since: {text!r} is neither an ISO 8601 date/timestamp nor a duration like 12h or 7d"
        ) from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def parse_blob(name: str, data: bytes) -> list[DeadLetteredEvent]:
    """The events of one dead-letter blob (a JSON array of event objects)."""
    try:
        document = json.loads(data.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise DeadLetterError(f"{name}: not JSON: {error}") from None
    if isinstance(document, Mapping):  # tolerate a single event
        document = [document]
    if not isinstance(document, list):
        raise DeadLetterError(f"{name}: expected a JSON array of events, got {type(document).__name__}")
    events = []
    for index, item in enumerate(document):
        if not isinstance(item, Mapping) or not item.get("id"):
            raise DeadLetterError(f"{name}: item {index} is not an event (an object with an id)")
        event = {k: v for k, v in item.items() if k not in DEAD_LETTER_PROPERTIES}
        attempts = item.get("deliveryAttempts")
        events.append(
            DeadLetteredEvent(
                blob=name,
                event=event,
                reason=_text(item.get("deadLetterReason")),
                attempts=attempts if isinstance(attempts, int) else None,
                last_outcome=_text(item.get("lastDeliveryOutcome")),
                publish_time=_text(item.get("publishTime")),
            )
        )
    return events


def without_body(event: Mapping[str, Any]) -> dict[str, Any]:
    """`event` without the resource body a Resource Notification carries (`data.resourceInfo`): a
    replayed event names an account to read, never what it looked like when the event was sent.
    The subject (the account's ID, which Event Grid always sets) still names it; an event without
    one keeps the body's `id` as its subject."""
    data = event.get("data")
    if not isinstance(data, Mapping) or "resourceInfo" not in data:
        return dict(event)
    body = data["resourceInfo"]
    replayed = {**event, "data": {k: v for k, v in data.items() if k != "resourceInfo"}}
    if (
        not isinstance(event.get("subject"), str)
        and isinstance(body, Mapping)
        and isinstance(body.get("id"), str)
    ):
        replayed["subject"] = body["id"]
    return replayed


def _text(value: Any) -> str | None:
    return str(value) if value is not None else None


def replay(
    container: Any,
    handler: Callable[[Mapping[str, Any]], Any],
    *,
    since: datetime | None = None,
    dry_run: bool = False,
    now: datetime | None = None,
) -> ReplayReport:
    """Replay every dead-letter blob of `container` (an azure-storage-blob ContainerClient) not yet
    marked, created at or after `since`, through `handler` (returns an Outcome or None)."""
    moment = now or datetime.now(UTC)
    report = ReplayReport(dry_run=dry_run)
    for blob in _blobs(container):
        metadata = dict(blob.metadata or {})
        if metadata.get(REPLAYED):
            report.already_replayed += 1
            continue
        created = getattr(blob, "creation_time", None) or blob.last_modified
        if since is not None and created is not None and created < since:
            report.outside_since += 1
            continue
        report.blobs += 1
        try:
            events = parse_blob(blob.name, container.download_blob(blob.name).readall())
        except DeadLetterError as error:
            report.errors.append(str(error))
            continue
        failed = False
        for item in events:
            row = item.describe()
            if dry_run:
                row["action"] = "would-replay"
            else:
                try:
                    outcome = handler(without_body(item.event))
                except Exception as error:  # ARM still failing: leave the blob for the next run
                    failed = True
                    row.update(action="error", detail=f"{type(error).__name__}: {error}")
                    report.errors.append(f"{blob.name}: event {row['event_id']}: {row['detail']}")
                else:
                    row["action"] = getattr(outcome, "action", None) or "ignored"
                    detail = getattr(outcome, "detail", None)
                    if detail:
                        row["detail"] = detail
            report.events.append(row)
        if dry_run or failed:
            continue
        metadata.update({REPLAYED: moment.isoformat(), REPLAYED_EVENTS: str(len(events))})
        container.get_blob_client(blob.name).set_blob_metadata(metadata)
        report.marked.append(blob.name)
        log.info("replayed %d dead-lettered event(s) from %s", len(events), blob.name)
    return report


def _blobs(container: Any) -> Iterable[Any]:
    return sorted(container.list_blobs(include=["metadata"]), key=lambda b: b.name)


def open_container(
    storage: StorageSettings, credential: Any, name: str, *, timeouts: Timeouts = STORAGE_TIMEOUTS
) -> Any:
    """The dead-letter container in the guardrail's storage: ``AzureWebJobsStorage`` (a connection
    string; Azurite locally) or identity-based (``AzureWebJobsStorage__blobServiceUri`` or
    ``__accountName``, with `credential`, the worker's identity). Every request waits at most
    `timeouts`."""
    from azure.storage.blob import ContainerClient

    bounded: dict[str, Any] = {
        "connection_timeout": timeouts.connect,
        "read_timeout": timeouts.read,
        **STORAGE_RETRIES,
    }
    if storage.connection_string:
        return ContainerClient.from_connection_string(storage.connection_string, name, **bounded)
    endpoint = storage.endpoint("blob")
    if not endpoint:
        raise DeadLetterError(
            "no storage for the dead-letter container: set AzureWebJobsStorage (a connection string) "
            "or AzureWebJobsStorage__accountName / AzureWebJobsStorage__blobServiceUri"
        )
    return ContainerClient(endpoint, name, credential=credential, **bounded)
