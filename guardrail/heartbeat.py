"""The sweep's heartbeat: what every completed reconcile sweep leaves behind.

- One findings record per subscription (``Rule`` = ``guardrail-heartbeat``, ``Status`` =
  ``heartbeat``, ``Severity`` = ``low``) through the same finding sinks as the findings, saying
  how many accounts the sweep listed, checked, fixed and failed there (``Value`` holds the counts
  as JSON; see docs/findings.md). An alert on the *absence* of these rows tells that the sweep
  stopped.
- The sweep's summary in the health table (``guardrailhealth``, row ``sweep``/``last``), which the
  health endpoint reads: when the last sweep completed, its counts, and whether the identity could
  list each governed subscription.
"""

from __future__ import annotations

import contextlib
import json
import threading
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final, Protocol

from guardrail import escaping
from guardrail.findings import FindingRecord, format_time
from guardrail.resource_ids import name_key
from guardrail.transport import STORAGE_TIMEOUTS, Timeouts

if TYPE_CHECKING:
    from guardrail.outcomes import SweepReport
    from guardrail.storage import StorageSettings
    from guardrail.vocabulary import Mode

log = escaping.logger("guardrail")

HEARTBEAT_RULE = "guardrail-heartbeat"
HEALTH_TABLE = "guardrailhealth"
TENANT_SCOPE = "/"  # the heartbeat's ResourceId when the sweep saw no subscription at all


@dataclass
class SubscriptionCounts:
    subscription: str
    listed: int = 0
    checked: int = 0
    fixed: int = 0
    failed: int = 0
    readable: bool | None = True  # None: the listing failed without saying for which subscription
    error: str | None = None

    def value(self) -> str:
        body = {
            "listed": self.listed,
            "checked": self.checked,
            "fixed": self.fixed,
            "failed": self.failed,
            "readable": self.readable,
        }
        return json.dumps(body, separators=(",", ":"))


def _subscription_of(resource_id: str) -> str:
    parts = resource_id.split("/")
    return name_key(parts[2]) if len(parts) > 2 else ""


def sweep_counts(
    report: SweepReport, governed: Sequence[str], listed: Mapping[str, int]
) -> list[SubscriptionCounts]:
    """Per subscription (the governed ones, else every one seen): listed = accounts the listing
    returned; checked = those judged (compliant at listing, or taken through the whole path);
    fixed = remediated; failed = checks that failed, were invalid, or raised."""
    rows: dict[str, SubscriptionCounts] = {}
    for sub in governed:
        rows.setdefault(name_key(sub), SubscriptionCounts(name_key(sub)))
    for sub, count in listed.items():
        rows.setdefault(name_key(sub), SubscriptionCounts(name_key(sub))).listed += count
    raised: dict[str, int] = {}
    listing_errors: list[str] = []
    for message in report.errors:
        if message.startswith("listing:"):
            listing_errors.append(message)
            continue
        sub = _subscription_of(message.split(":", 1)[0])
        raised[sub] = raised.get(sub, 0) + 1
    for outcome in report.outcomes:
        row = rows.setdefault(_subscription_of(outcome.resource_id), SubscriptionCounts(""))
        if outcome.action == "remediated":
            row.fixed += 1
        elif outcome.action in ("failed", "invalid"):
            row.failed += 1
    for sub, row in rows.items():
        row.subscription = row.subscription or sub
        row.failed += raised.get(sub, 0)
        row.checked = max(0, row.listed - raised.get(sub, 0))
        for message in listing_errors:
            if sub and sub in message.lower():
                row.readable, row.error = False, message.removeprefix("listing: ")
            elif row.readable and row.listed == 0:
                row.readable, row.error = None, message.removeprefix("listing: ")
    return [rows[sub] for sub in sorted(rows)]


def heartbeat_records(
    counts: Sequence[SubscriptionCounts],
    *,
    mode: Mode,
    seconds: float,
    now: datetime,
    correlation_id: str | None = None,
    identity: str | None = None,
) -> list[FindingRecord]:
    """One record per subscription (one tenant-wide record when the sweep saw none)."""
    correlation = correlation_id or str(uuid.uuid4())
    rows = list(counts) or [SubscriptionCounts("", readable=None, error="no subscription was visible")]
    records = []
    for row in rows:
        message = (
            f"reconcile sweep completed in {seconds:.1f} s: {row.listed} listed, {row.checked} checked, "
            f"{row.fixed} fixed, {row.failed} failed"
        )
        if row.error:
            message += f"; listing: {row.error}"
        records.append(
            FindingRecord(
                time_generated=format_time(now),
                resource_id=f"/subscriptions/{row.subscription}" if row.subscription else TENANT_SCOPE,
                subscription_id=row.subscription,
                resource_group="",
                account_name="",
                kind="",
                rule=HEARTBEAT_RULE,
                severity="low",
                status="heartbeat",
                message=message,
                value=row.value(),
                before=None,
                after=None,
                actor=identity,
                correlation_id=correlation,
                event_id=None,
                trigger="sweep",
                mode=mode,
            )
        )
    return records


def summary(
    counts: Sequence[SubscriptionCounts], report: SweepReport, now: datetime, correlation_id: str
) -> dict[str, Any]:
    """What the health table keeps of the last completed sweep (and the health endpoint shows)."""
    return {
        "completed": format_time(now),
        "seconds": round(report.seconds, 3),
        "correlation_id": correlation_id,
        "listed": sum(row.listed for row in counts),
        "checked": sum(row.checked for row in counts),
        "fixed": sum(row.fixed for row in counts),
        "failed": sum(row.failed for row in counts),
        "errors": len(report.errors),
        "subscriptions": [asdict(row) for row in counts],
    }


def merge_summaries(previous: Mapping[str, Any] | None, new: Mapping[str, Any]) -> dict[str, Any]:
    """The health table's summary after `new`: a slice of the same fanned-out sweep (same
    correlation ID) replaces its subscriptions' rows in `previous` and the totals are summed again;
    any other sweep replaces the summary."""
    if previous is None or previous.get("correlation_id") != new.get("correlation_id"):
        return dict(new)
    rows = {row["subscription"]: row for row in previous.get("subscriptions") or []}
    rows.update({row["subscription"]: row for row in new.get("subscriptions") or []})
    merged = dict(new)
    merged["subscriptions"] = [rows[key] for key in sorted(rows)]
    for key in ("listed", "checked", "fixed", "failed"):
        merged[key] = sum(int(row.get(key) or 0) for row in merged["subscriptions"])
    merged["errors"] = int(previous.get("errors") or 0) + int(new.get("errors") or 0)
    merged["seconds"] = max(float(previous.get("seconds") or 0), float(new.get("seconds") or 0))
    return merged


# -- the health table ------------------------------------------------------------------------
class HealthStore(Protocol):
    def save_sweep(self, summary: Mapping[str, Any]) -> None: ...

    def last_sweep(self) -> dict[str, Any] | None: ...


class MemoryHealthStore:
    """Without storage: the worker remembers its own last sweep (lost on restart)."""

    def __init__(self) -> None:
        self._last: dict[str, Any] | None = None
        self._lock = threading.Lock()

    def save_sweep(self, summary: Mapping[str, Any]) -> None:
        with self._lock:
            self._last = json.loads(json.dumps(merge_summaries(self._last, summary)))

    def last_sweep(self) -> dict[str, Any] | None:
        with self._lock:
            return json.loads(json.dumps(self._last)) if self._last is not None else None


#: Characters of the summary's JSON per string property: Table Storage refuses a string property
#: over 64 KiB (32K UTF-16 characters), which one row per subscription passes at ~250 subscriptions.
SUMMARY_CHUNK: Final = 30_000


def summary_columns(text: str) -> dict[str, str]:
    """The summary's JSON in `Summary`, then `Summary1`, `Summary2`, ... (each at most
    SUMMARY_CHUNK characters): one entity holds up to 1 MiB, a summary of ~7,000 subscriptions."""
    chunks = [text[i : i + SUMMARY_CHUNK] for i in range(0, len(text), SUMMARY_CHUNK)] or [""]
    return {f"Summary{i or ''}": chunk for i, chunk in enumerate(chunks)}


def summary_text(entity: Mapping[str, Any]) -> str:
    """The summary's JSON from the columns `summary_columns` wrote (a row with only `Summary`, as
    written before the summary was split, reads the same)."""
    parts = [str(entity["Summary"])]
    while f"Summary{len(parts)}" in entity:
        parts.append(str(entity[f"Summary{len(parts)}"]))
    return "".join(parts)


class TableHealthStore:
    """One row (PartitionKey ``sweep``, RowKey ``last``) in the ``guardrailhealth`` table, the
    summary as JSON in ``Summary`` (continued in ``Summary1``, ... when longer than one string
    property may be: `summary_columns`) and ``Completed`` as a typed column for readers."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self._created = False

    @classmethod
    def open(
        cls,
        connection_string: str | None,
        table_endpoint: str | None,
        credential: Any,
        timeouts: Timeouts = STORAGE_TIMEOUTS,
    ) -> TableHealthStore:
        from azure.data.tables import TableClient

        transport: dict[str, Any] = {
            "connection_timeout": timeouts.connect,
            "read_timeout": timeouts.read,
            "retry_total": 1,
        }
        if connection_string:
            client = TableClient.from_connection_string(connection_string, HEALTH_TABLE, **transport)
        else:
            client = TableClient(str(table_endpoint), HEALTH_TABLE, credential=credential, **transport)
        return cls(client)

    def save_sweep(self, summary: Mapping[str, Any]) -> None:
        """Merge with the stored summary (slices of one sweep from several instances): an
        etag-conditional replace, or a conditional insert, re-read and retried on a race."""
        from azure.core import MatchConditions
        from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError

        if not self._created:
            with contextlib.suppress(ResourceExistsError):
                self._client.create_table()
            self._created = True
        for _ in range(5):
            try:
                entity = self._client.get_entity("sweep", "last")
            except ResourceNotFoundError:
                entity = None
            merged = merge_summaries(json.loads(summary_text(entity)) if entity else None, summary)
            row = {
                "PartitionKey": "sweep",
                "RowKey": "last",
                "Completed": str(merged.get("completed", "")),
                **summary_columns(json.dumps(merged, separators=(",", ":"))),
            }
            try:
                if entity is None:
                    self._client.create_entity(row)
                else:
                    self._client.update_entity(
                        row,
                        mode="replace",
                        etag=entity.metadata["etag"],
                        match_condition=MatchConditions.IfNotModified,
                    )
                return
            except (ResourceExistsError, ResourceModifiedError):
                continue  # another slice saved first: merge with it
        raise RuntimeError("the health summary kept changing: not saved")

    def last_sweep(self) -> dict[str, Any] | None:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            entity = self._client.get_entity("sweep", "last")
        except ResourceNotFoundError:  # no table yet, or no sweep yet
            return None
        value: dict[str, Any] = json.loads(summary_text(entity))
        return value


def open_health_store(
    storage: StorageSettings, credential: Any, timeouts: Timeouts = STORAGE_TIMEOUTS
) -> HealthStore:
    """The health table in the guardrail's storage (AzureWebJobsStorage, by connection string or
    by identity with `credential`), or the worker's memory when no storage is configured. The
    composition root opens one per worker."""
    if storage.reaches("table"):
        return TableHealthStore.open(
            storage.connection_string, storage.endpoint("table"), credential, timeouts
        )
    return MemoryHealthStore()
