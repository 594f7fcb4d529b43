"""The guardrail's memory: remediation journal, circuit breaker, event de-duplication and alert
cool-down.

Everything lives in Azure Table Storage on the Functions storage account (``AzureWebJobsStorage``),
Azurite locally. Four questions are answered from it:

* What did the guardrail set out to write, and did it land? The remediation journal: one entry per
  change the guardrail repairs, keyed by the account and the etag it read (``begin``: a conditional
  insert, so the write event and the Resource Notification of one change share one entry), moved
  ``intent`` → ``written`` → ``verified`` with etag-conditional updates (``advance``: exactly one
  caller wins each step). ``journal`` lists an account's entries in one query.
* Were the records of a settled remediation delivered? The outbox: a settled entry's finding records
  and alert intent are inserted into the journal's partition in the same entity-group transaction
  as the state change that makes them true (``settle``: verified, failed, gone, abandoned), so a
  write that landed always has its records, exactly once; the reconciler delivers them and deletes
  the row (``outbox_delivered``); a row left by a crash is found by the next read of the journal
  (``read_journal``) or the sweep (``unfinished``), claimed (``claim_outbox``) and delivered again.
* Is the guardrail fighting someone over an account? The entries written inside ``window`` are the
  confirmed writes (never attempts); when ``max_remediations`` of them are inside it and another
  write is needed, the caller trips the breaker with ``trip_breaker`` (exactly one caller wins and
  raises the critical alert) and stops remediating while ``breaker_state`` reports it open; it
  closes by itself after ``window``.
* Has this Event Grid event been handled already? ``claim_event`` (at-least-once delivery).
* Was this alert sent inside its cool-down? ``claim_alert``, keyed per account by the alert key the
  reconciler builds for each (rule, value, status) of a finding (``records.alert_key``), in the
  account's journal partition, so the claims and the delete of the outbox rows they deliver are
  one transaction.

Resource IDs are compared case-insensitively (as ARM does). Table keys are sha256 digests, the
readable values are kept in properties. Claims are atomic across threads, processes and instances:
they insert with ``create_entity`` (a second insert fails with 409) and re-claim an expired entity
only with an etag-conditional replace (a concurrent re-claim fails with 412).

When the store cannot be reached, :func:`open_state_store`'s :class:`ResilientStateStore` logs one
warning ``running without memory: <reason>`` on the ``guardrail.state`` logger and answers as
:class:`NullStateStore` does, so the guardrail still evaluates and remediates.

azure.data.tables is imported lazily: importing this module costs nothing at a cold start.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import re
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeVar, runtime_checkable

if TYPE_CHECKING:
    from guardrail.transport import HttpEnvironment

from guardrail import escaping
from guardrail.resource_ids import id_key
from guardrail.table_batch import submit_transaction

__all__ = [
    "DEFAULT_EVENT_TTL",
    "DEFAULT_MAX_REMEDIATIONS",
    "DEFAULT_TABLE_PREFIX",
    "DEFAULT_WINDOW",
    "BreakerState",
    "Journal",
    "JournalEntry",
    "JournalState",
    "NullStateStore",
    "OutboxItem",
    "ResilientStateStore",
    "StateStore",
    "TableNames",
    "TableStateStore",
    "normalize_resource_id",
    "open_state_store",
]

logger = escaping.logger("guardrail.state")

DEFAULT_WINDOW = timedelta(minutes=30)
DEFAULT_MAX_REMEDIATIONS = 3
DEFAULT_EVENT_TTL = timedelta(hours=24)
DEFAULT_TABLE_PREFIX = "guardrail"

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_TABLE_PREFIX_RE = re.compile(r"^[A-Za-z][A-Za-z0-9]{0,50}$")
_BREAKER_ROW = "breaker"
_UNREADABLE_ROW = "unreadable"
#: How long a journal entry is kept (the sweep purges it after): Event Grid retries for 24 hours;
#: longer when the breaker window is longer (its count is read from the journal).
JOURNAL_TTL = timedelta(hours=24)
_EVENT_ROW = "event"
_MAX_TEXT = 1024  # readable copies of ids kept in properties are capped at this many characters
_CLAIM_ATTEMPTS = 4
_TRANSACTION_LIMIT = 100  # operations in one entity-group transaction
_OUTBOX_PREFIX = "outbox-"
_ALERT_PREFIX = "alert-"  # an alert claim's row in the account's journal partition
#: How long an undelivered outbox row is kept (the sweep delivers it long before).
OUTBOX_TTL = timedelta(days=7)
#: A claimed outbox row is being delivered; after this long its claim lapses (the claimer died).
OUTBOX_CLAIM = timedelta(minutes=5)
_CHUNK = 30_000  # characters per string property (Table Storage: 64 KiB, UTF-16)
_MAX_CHUNKS = 25  # an entity holds at most 1 MiB
#: From this many alert keys of one account on, one transaction costs less than the single claims:
#: a transaction request costs the client ~6-7 ms of CPU (its multipart body and answer), a single
#: insert ~2 ms (measured against Azurite; docs/benchmarks.md).
_BATCH_FROM = 4


# --------------------------------------------------------------------------------------------
# Values and the interface
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class BreakerState:
    """An open circuit breaker: the guardrail stops remediating the account until ``until``."""

    resource_id: str  # normalised (lower case)
    tripped_at: datetime
    until: datetime

    def is_open(self, now: datetime) -> bool:
        return _utc(now, "now") < self.until


JournalState = Literal["intent", "written", "verified", "failed", "gone", "abandoned", "unreadable"]
#: States of an entry still to be completed by a later delivery or the sweep.
UNFINISHED: tuple[JournalState, ...] = ("intent", "written")


@dataclass(frozen=True)
class JournalEntry:
    """One plan the guardrail set out to carry out (or, state ``unreadable``, an account it could
    not read: the sweep retries those). ``actions`` is the plan (`Action.journal_json`), ``acked``
    the indexes of its actions ARM acknowledged (recorded when a plan stops half way); ``body``
    the account PATCH's body (also in ``actions``); ``before`` the account's properties the body
    replaces, as read; ``findings`` the fixed findings' rule, severity, message, value and the
    index of the action that repairs each (``action``)."""

    resource_id: str  # normalised (lower case)
    key: str  # RowKey: sha256 of what was read before the write (`key_for`)
    state: JournalState
    before_etag: str | None = None
    correlation_id: str = ""
    event_id: str | None = None
    actor: str | None = None
    actor_source: str = "none"
    trigger: str = "event"
    kind: str = ""
    before: dict[str, Any] = dataclasses.field(default_factory=dict)
    body: dict[str, Any] = dataclasses.field(default_factory=dict)
    findings: tuple[dict[str, Any], ...] = ()
    cause: str = ""
    created_at: datetime = _EPOCH
    written_at: datetime | None = None
    etag: str | None = None  # the table row's etag (optimistic concurrency)
    actions: tuple[dict[str, Any], ...] = ()
    acked: tuple[int, ...] = ()
    before_modified: str | None = None  # the read's systemData.lastModifiedAt

    @staticmethod
    def key_for(before_etag: str | None, read: str = "") -> str:
        """The entry's key: the write event and the notification of one change read the same
        etag, last-modified time and state (`read`: the caller's digest of them), so they share
        it; a new change has a new one even where ARM's etag stays the same (issue #22, item 2)."""
        if not before_etag:
            return _digest(f"none:{uuid.uuid4()}")
        return _digest(f"etag:{before_etag}") if not read else _digest(f"etag:{before_etag}\x1f{read}")

    def confirmed_at(self, now: datetime, window: timedelta) -> bool:
        """A confirmed write inside ``(now - window, now]``."""
        return self.written_at is not None and now - window < self.written_at <= now


@dataclass(frozen=True)
class OutboxItem:
    """A settled plan's finding records (``FindingRecord.to_json`` rows) and alert intent, kept in
    the journal's partition until they are delivered."""

    resource_id: str  # normalised (lower case)
    key: str  # RowKey: ``outbox-`` + the entry's key
    records: tuple[dict[str, Any], ...]
    breaker_tripped: bool = False
    created_at: datetime = _EPOCH
    etag: str | None = None

    @staticmethod
    def key_for(entry_key: str) -> str:
        return _OUTBOX_PREFIX + entry_key


@dataclass(frozen=True)
class Journal:
    """One read of an account's journal partition: its entries (oldest first), its open breaker,
    and the outbox rows nobody is delivering (left by a crash or a failed delivery)."""

    entries: list[JournalEntry]
    breaker: BreakerState | None = None
    outbox: list[OutboxItem] = dataclasses.field(default_factory=list)


@dataclass(frozen=True)
class TableNames:
    """The tables one store uses; all share a prefix (default ``guardrail``)."""

    remediations: str
    events: str

    @classmethod
    def with_prefix(cls, prefix: str = DEFAULT_TABLE_PREFIX) -> TableNames:
        if not _TABLE_PREFIX_RE.match(prefix):
            raise ValueError(
                f"table prefix {prefix!r} must start with a letter and hold 1-51 letters or digits "
                "(Azure table names are alphanumeric, 3-63 characters)"
            )
        return cls(
            remediations=f"{prefix}remediations",
            events=f"{prefix}events",
        )

    def all(self) -> tuple[str, ...]:
        return (self.remediations, self.events)


@runtime_checkable
class StateStore(Protocol):
    """What the guardrail remembers between invocations. All datetimes must be timezone-aware."""

    @property
    def window(self) -> timedelta:
        """The fight-detection window; also how long a tripped breaker stays open."""
        ...

    @property
    def max_remediations(self) -> int:
        """More than this many remediations of one account inside ``window`` trips the breaker."""
        ...

    def journal(self, resource_id: str) -> list[JournalEntry]:
        """The account's journal entries (one query), oldest first."""
        ...

    def read_journal(self, resource_id: str, now: datetime) -> Journal:
        """The account's journal entries, open breaker and undelivered outbox rows (one query)."""
        ...

    def begin(self, entry: JournalEntry) -> tuple[JournalEntry, bool]:
        """Insert ``entry`` unless one with its key exists: (the stored entry, True when this
        call created it). The write event and the Resource Notification of one change share it."""
        ...

    def settle(
        self, entry: JournalEntry, state: JournalState, now: datetime, outbox: OutboxItem | None
    ) -> JournalEntry | None:
        """Move ``entry`` to ``state`` (as ``advance``) and insert ``outbox`` (its records) in one
        entity-group transaction: both or neither. None: another caller settled it first (its
        records are that caller's). Raises when the store cannot be reached for an entry it holds."""
        ...

    def claim_outbox(self, item: OutboxItem, now: datetime) -> OutboxItem | None:
        """Take an undelivered outbox row for delivery (etag-conditional): the claimed row, or
        None when another caller took it."""
        ...

    def outbox_delivered(self, item: OutboxItem) -> None:
        """Delete a delivered outbox row."""
        ...

    def advance(self, entry: JournalEntry, state: JournalState, now: datetime) -> JournalEntry | None:
        """Move ``entry`` forward to ``state`` if nobody changed it since it was read
        (etag-conditional); ``written``/``verified`` stamp ``written_at`` when unset. None: someone
        else moved it, or it is already there (exactly one caller wins each step)."""
        ...

    def mark_unreadable(self, resource_id: str, cause: str, now: datetime) -> None:
        """Remember that the account could not be read (the sweep retries it)."""
        ...

    def clear_unreadable(self, resource_id: str) -> None:
        """Forget an unreadable mark (the account was read)."""
        ...

    def unfinished(self) -> list[str]:
        """Accounts with an unfinished journal entry or an unreadable mark (for the sweep)."""
        ...

    def breaker_state(self, resource_id: str, now: datetime) -> BreakerState | None:
        """The open breaker for the account, or None when it is closed (never tripped or expired)."""
        ...

    def trip_breaker(self, resource_id: str, now: datetime) -> bool:
        """Open the breaker until ``now + window``. True only for the one caller that opened it
        (raise the critical alert then); False when it is already open."""
        ...

    def claim_event(self, event_id: str, now: datetime) -> bool:
        """True the first time an event id is seen (within the event TTL), False for repeats."""
        ...

    def claim_alert(self, resource_id: str, fingerprint: str, now: datetime, cooldown: timedelta) -> bool:
        """True (and recorded) when no alert with this key (`fingerprint`: the service's alert key of
        one finding) was sent for the account within ``cooldown`` before ``now``; False otherwise.
        Different keys are independent.
        A zero cool-down always answers True (nothing recorded); a negative one is a ValueError."""
        ...

    def claim_alerts(
        self,
        resource_id: str,
        fingerprints: Sequence[str],
        now: datetime,
        cooldown: timedelta,
        *,
        delivered: Sequence[OutboxItem] = (),
    ) -> list[bool]:
        """``claim_alert`` for each of one account's alert keys at once, answers in order (the
        same guarantee per key: exactly one of concurrent callers wins it). A store with memory
        grants a key repeated in ``fingerprints`` at most once, to its first occurrence. The
        account's outbox rows in ``delivered`` are deleted with the claims (in the same
        transaction when it can be one)."""
        ...

    def purge(self, before: datetime) -> int:
        """Delete records that expired at or before ``before``; return how many were deleted.
        Purging never changes an answer: expired records are already ignored."""
        ...

    def close(self) -> None:
        """Release connections. Safe to call more than once."""
        ...


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------
def normalize_resource_id(resource_id: str) -> str:
    """The key of a resource ID, as ARM compares IDs (`guardrail.resource_ids.id_key`: ordinal,
    ignore case, no trailing '/'; an ASCII ID keys as its lower case, as it always did)."""
    return id_key(resource_id)


def _digest(text: str) -> str:
    """A Table-key-safe stand-in for text (keys may not hold '/', '\\', '#', '?')."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def _utc(value: datetime, name: str) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware (use datetime.now(UTC)), got naive {value!r}")
    return value.astimezone(UTC)


def _plain_utc(value: Any) -> datetime:
    """A stored Edm.DateTime (TablesEntityDatetime) as a plain aware datetime in UTC."""
    if not isinstance(value, datetime):
        raise TypeError(f"expected a datetime property, got {type(value).__name__}")
    aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    v = aware.astimezone(UTC)
    return datetime(v.year, v.month, v.day, v.hour, v.minute, v.second, v.microsecond, tzinfo=UTC)


def _epoch_key(at: datetime) -> str:
    """Zero-padded microseconds since the epoch: sorts as text in time order."""
    return f"{(at - _EPOCH) // _MICROSECOND:020d}"


def _check_cooldown(cooldown: timedelta) -> None:
    if cooldown < timedelta(0):
        raise ValueError(f"cooldown must not be negative, got {cooldown}")


def _check_positive(value: timedelta, name: str) -> None:
    if value <= timedelta(0):
        raise ValueError(f"{name} must be positive, got {value}")


class _Limits:
    """The breaker's limits every store answers with (checked once, here)."""

    def __init__(self, window: timedelta, max_remediations: int) -> None:
        _check_positive(window, "window")
        if max_remediations < 1:
            raise ValueError(f"max_remediations must be at least 1, got {max_remediations}")
        self._window = window
        self._max_remediations = max_remediations

    @property
    def window(self) -> timedelta:
        return self._window

    @property
    def max_remediations(self) -> int:
        return self._max_remediations


# --------------------------------------------------------------------------------------------
# No memory
# --------------------------------------------------------------------------------------------
class NullStateStore(_Limits):
    """No memory at all: the permissive answers.

    Every claim is granted (better a duplicate alert than a lost one), a remediation is the only
    one known (count 1) and no breaker is ever open, so the guardrail keeps evaluating and
    remediating. Argument checks still apply, so a caller's bug shows up without a store too.
    """

    def __init__(
        self,
        *,
        window: timedelta = DEFAULT_WINDOW,
        max_remediations: int = DEFAULT_MAX_REMEDIATIONS,
    ) -> None:
        super().__init__(window, max_remediations)

    def journal(self, resource_id: str) -> list[JournalEntry]:
        normalize_resource_id(resource_id)
        return []

    def read_journal(self, resource_id: str, now: datetime) -> Journal:
        return Journal(self.journal(resource_id), self.breaker_state(resource_id, now))

    def begin(self, entry: JournalEntry) -> tuple[JournalEntry, bool]:
        return entry, True

    def advance(self, entry: JournalEntry, state: JournalState, now: datetime) -> JournalEntry | None:
        return _advanced(entry, state, _utc(now, "now")) if _forward(entry.state, state) else None

    def settle(
        self, entry: JournalEntry, state: JournalState, now: datetime, outbox: OutboxItem | None
    ) -> JournalEntry | None:
        return self.advance(entry, state, now)

    def claim_outbox(self, item: OutboxItem, now: datetime) -> OutboxItem | None:
        return item

    def outbox_delivered(self, item: OutboxItem) -> None:
        pass

    def mark_unreadable(self, resource_id: str, cause: str, now: datetime) -> None:
        normalize_resource_id(resource_id)
        _utc(now, "now")

    def clear_unreadable(self, resource_id: str) -> None:
        normalize_resource_id(resource_id)

    def unfinished(self) -> list[str]:
        return []

    def breaker_state(self, resource_id: str, now: datetime) -> BreakerState | None:
        normalize_resource_id(resource_id)
        _utc(now, "now")
        return None

    def trip_breaker(self, resource_id: str, now: datetime) -> bool:
        normalize_resource_id(resource_id)
        _utc(now, "now")
        return True

    def claim_event(self, event_id: str, now: datetime) -> bool:
        if not event_id:
            raise ValueError("event id must not be empty")
        _utc(now, "now")
        return True

    def claim_alert(self, resource_id: str, fingerprint: str, now: datetime, cooldown: timedelta) -> bool:
        return self.claim_alerts(resource_id, [fingerprint], now, cooldown)[0]

    def claim_alerts(
        self,
        resource_id: str,
        fingerprints: Sequence[str],
        now: datetime,
        cooldown: timedelta,
        *,
        delivered: Sequence[OutboxItem] = (),
    ) -> list[bool]:
        normalize_resource_id(resource_id)
        _utc(now, "now")
        _check_cooldown(cooldown)
        return [True] * len(fingerprints)

    def purge(self, before: datetime) -> int:
        _utc(before, "before")
        return 0

    def close(self) -> None:
        pass


# --------------------------------------------------------------------------------------------
# Azure Table Storage
# --------------------------------------------------------------------------------------------


class TableStateStore(_Limits):
    """The state store on Azure Table Storage (azure-data-tables).

    Tables (``<prefix>`` defaults to ``guardrail``), created on first use, once per process:

    ``<prefix>remediations``
        The remediation journal. PartitionKey sha256(account id), RowKey sha256(etag read before
        the write); State, BeforeEtag, CorrelationId, EventId, Actor, ActorSource, Trigger, Kind,
        Before, Body, Findings (JSON), CreatedAt, WrittenAt. Row ``unreadable``: the account
        could not be read (Cause). Row ``breaker``: the circuit breaker (TrippedAt, Until). Rows
        ``outbox-<key>``: a settled entry's records not yet delivered (Records0..n, ClaimedAt).
        Rows ``alert-<sha256(fingerprint)>``: the alert cool-down's claims (SentAt, Fingerprint).
        An account's rows, its breaker's, outbox's and claims' included, are read with one
        partition query, and its claims and delivered outbox rows are written in one transaction.
    ``<prefix>events``
        PartitionKey sha256(event id), RowKey ``event``; SeenAt.

    Every row keeps the readable id in a property and an ``ExpiresAt`` used by :meth:`purge`.
    """

    def __init__(
        self,
        service_client: Any,
        *,
        table_prefix: str = DEFAULT_TABLE_PREFIX,
        window: timedelta = DEFAULT_WINDOW,
        max_remediations: int = DEFAULT_MAX_REMEDIATIONS,
        event_ttl: timedelta = DEFAULT_EVENT_TTL,
    ) -> None:
        """``service_client`` is an ``azure.data.tables.TableServiceClient``."""
        super().__init__(window, max_remediations)
        _check_positive(event_ttl, "event_ttl")
        from azure.core import MatchConditions
        from azure.core.exceptions import (
            ResourceExistsError,
            ResourceModifiedError,
            ResourceNotFoundError,
        )
        from azure.data.tables import TableTransactionError, UpdateMode

        self._service = service_client
        self._tables = TableNames.with_prefix(table_prefix)
        self._event_ttl = event_ttl
        self._clients: dict[str, Any] = {}
        self._clients_lock = threading.Lock()
        self._created: set[str] = set()  # the tables this store created (or found) since it was built
        self._created_lock = threading.Lock()
        self._ResourceExistsError: type[Exception] = ResourceExistsError
        self._ResourceModifiedError: type[Exception] = ResourceModifiedError
        self._ResourceNotFoundError: type[Exception] = ResourceNotFoundError
        self._TableTransactionError: type[Exception] = TableTransactionError
        self._if_not_modified = MatchConditions.IfNotModified
        self._replace = UpdateMode.REPLACE

    @classmethod
    def from_connection_string(
        cls,
        connection_string: str,
        *,
        connection_timeout: float = 2.0,
        read_timeout: float = 3.0,
        retry_total: int = 1,
        http: HttpEnvironment | None = None,
        **options: Any,
    ) -> TableStateStore:
        """Connect with an account connection string (``UseDevelopmentStorage=true`` = Azurite).

        ``options`` are the constructor's keyword arguments (table_prefix, window, ...)."""
        from azure.data.tables import TableServiceClient

        service = TableServiceClient.from_connection_string(
            connection_string, **_transport_options(connection_timeout, read_timeout, retry_total, http)
        )
        return cls(service, **options)

    @classmethod
    def from_endpoint(
        cls,
        endpoint: str,
        credential: Any,
        *,
        connection_timeout: float = 2.0,
        read_timeout: float = 3.0,
        retry_total: int = 1,
        http: HttpEnvironment | None = None,
        **options: Any,
    ) -> TableStateStore:
        """Connect to ``https://<account>.table.core.windows.net`` with a credential (for example
        a managed identity's ``DefaultAzureCredential``, when shared-key access is disabled)."""
        from azure.data.tables import TableServiceClient

        service = TableServiceClient(
            endpoint,
            credential=credential,
            **_transport_options(connection_timeout, read_timeout, retry_total, http),
        )
        return cls(service, **options)

    @property
    def tables(self) -> TableNames:
        return self._tables

    # -- operations ------------------------------------------------------------------------
    def journal(self, resource_id: str) -> list[JournalEntry]:
        return self._journal_from(self._partition(normalize_resource_id(resource_id)))[0]

    def read_journal(self, resource_id: str, now: datetime) -> Journal:
        rid = normalize_resource_id(resource_id)
        now = _utc(now, "now")
        rows = self._partition(rid)
        entries, breaker = self._journal_from(rows)
        outbox = [
            item
            for item in (_outbox_from_row(row) for row in rows if _is_outbox(row))
            if item is not None and not _claimed(rows, item, now)
        ]
        return Journal(entries, _open_breaker(rid, breaker, now) if breaker is not None else None, outbox)

    def _partition(self, rid: str) -> list[Any]:
        try:
            return list(
                self._client(self._tables.remediations).query_entities(
                    "PartitionKey eq @pk", parameters={"pk": _digest(rid)}
                )
            )
        except self._ResourceNotFoundError:
            return []

    @staticmethod
    def _journal_from(rows: list[Any]) -> tuple[list[JournalEntry], Any]:
        breaker = next((row for row in rows if row.get("RowKey") == _BREAKER_ROW), None)
        entries = [
            entry
            for entry in (
                _entry_from_row(row)
                for row in rows
                if row.get("RowKey") != _BREAKER_ROW and not _is_outbox(row) and not _is_alert(row)
            )
            if entry is not None
        ]
        return sorted(entries, key=lambda e: e.created_at), breaker

    def settle(
        self, entry: JournalEntry, state: JournalState, now: datetime, outbox: OutboxItem | None
    ) -> JournalEntry | None:
        if not _forward(entry.state, state):
            return None
        now = _utc(now, "now")
        updated = _advanced(entry, state, now)
        row = _entry_to_row(updated, max(JOURNAL_TTL, self._window))
        operations: list[tuple[Any, ...]] = []
        if entry.etag is None:
            operations.append(("upsert", row, {"mode": self._replace}))
        else:
            conditions = {"mode": self._replace, "etag": entry.etag, "match_condition": self._if_not_modified}
            operations.append(("update", row, conditions))
        if outbox is not None:
            operations.append(("upsert", _outbox_to_row(outbox, now), {"mode": self._replace}))
        client = self._client(self._tables.remediations)
        try:
            answers = submit_transaction(client, operations)
        except (self._TableTransactionError, self._ResourceModifiedError, self._ResourceNotFoundError):
            return None  # another caller moved the entry first: nothing was written
        first = answers[0] if answers else None
        return dataclasses.replace(updated, etag=_etag_of(first) or None)

    def claim_outbox(self, item: OutboxItem, now: datetime) -> OutboxItem | None:
        now = _utc(now, "now")
        row = _outbox_to_row(item, now)
        client = self._client(self._tables.remediations)
        try:
            metadata = client.update_entity(
                row, mode=self._replace, etag=item.etag, match_condition=self._if_not_modified
            )
        except (self._ResourceModifiedError, self._ResourceNotFoundError):
            return None
        return dataclasses.replace(item, etag=_etag_of(metadata))

    def outbox_delivered(self, item: OutboxItem) -> None:
        with contextlib.suppress(self._ResourceNotFoundError):
            self._client(self._tables.remediations).delete_entity(_digest(item.resource_id), item.key)

    def _delete_outbox(self, items: Sequence[OutboxItem]) -> None:
        for item in items:
            self.outbox_delivered(item)

    def begin(self, entry: JournalEntry) -> tuple[JournalEntry, bool]:
        table = self._tables.remediations
        row = _entry_to_row(entry, max(JOURNAL_TTL, self._window))
        for _ in range(_CLAIM_ATTEMPTS):
            try:
                metadata = self._insert(table, row)
                return dataclasses.replace(entry, etag=_etag_of(metadata)), True
            except self._ResourceExistsError:
                existing = self._get(table, row["PartitionKey"], row["RowKey"])
                found = _entry_from_row(existing) if existing is not None else None
                if found is not None:
                    return found, False
        raise RuntimeError(f"journal entry {entry.key} for {entry.resource_id} kept vanishing")

    def advance(self, entry: JournalEntry, state: JournalState, now: datetime) -> JournalEntry | None:
        if not _forward(entry.state, state):
            return None
        updated = _advanced(entry, state, _utc(now, "now"))
        row = _entry_to_row(updated, max(JOURNAL_TTL, self._window))
        client = self._client(self._tables.remediations)
        try:
            if entry.etag is None:
                client.upsert_entity(row, mode=self._replace)
            else:
                metadata = client.update_entity(
                    row, mode=self._replace, etag=entry.etag, match_condition=self._if_not_modified
                )
                return dataclasses.replace(updated, etag=_etag_of(metadata))
        except (self._ResourceModifiedError, self._ResourceNotFoundError):
            return None
        return updated

    def mark_unreadable(self, resource_id: str, cause: str, now: datetime) -> None:
        rid = normalize_resource_id(resource_id)
        now = _utc(now, "now")
        entity = {
            "PartitionKey": _digest(rid),
            "RowKey": _UNREADABLE_ROW,
            "ResourceId": rid[:_MAX_TEXT],
            "State": "unreadable",
            "Cause": cause[:_MAX_TEXT],
            "CreatedAt": now,
            "ExpiresAt": now + JOURNAL_TTL,
        }
        try:
            self._client(self._tables.remediations).upsert_entity(entity, mode=self._replace)
        except self._ResourceNotFoundError:
            self._ensure_table(self._tables.remediations, force=True)
            self._client(self._tables.remediations).upsert_entity(entity, mode=self._replace)

    def clear_unreadable(self, resource_id: str) -> None:
        rid = normalize_resource_id(resource_id)
        with contextlib.suppress(self._ResourceNotFoundError):
            self._client(self._tables.remediations).delete_entity(_digest(rid), _UNREADABLE_ROW)

    def unfinished(self) -> list[str]:
        query = " or ".join(f"State eq '{state}'" for state in (*UNFINISHED, "unreadable", "outbox"))
        try:
            rows = self._client(self._tables.remediations).query_entities(query, select=["ResourceId"])
            return sorted({str(row["ResourceId"]) for row in rows if row.get("ResourceId")})
        except self._ResourceNotFoundError:
            return []

    def breaker_state(self, resource_id: str, now: datetime) -> BreakerState | None:
        rid = normalize_resource_id(resource_id)
        now = _utc(now, "now")
        entity = self._get(self._tables.remediations, _digest(rid), _BREAKER_ROW)
        return _open_breaker(rid, entity, now) if entity is not None else None

    def trip_breaker(self, resource_id: str, now: datetime) -> bool:
        rid = normalize_resource_id(resource_id)
        now = _utc(now, "now")
        until = now + self._window
        return self._claim(
            self._tables.remediations,
            {
                "PartitionKey": _digest(rid),
                "RowKey": _BREAKER_ROW,
                "ResourceId": rid[:_MAX_TEXT],
                "TrippedAt": now,
                "Until": until,
                "ExpiresAt": until,
            },
            still_held=lambda existing: now < _plain_utc(existing["Until"]),
        )

    def claim_event(self, event_id: str, now: datetime) -> bool:
        if not event_id:
            raise ValueError("event id must not be empty")
        now = _utc(now, "now")
        ttl = self._event_ttl
        return self._claim(
            self._tables.events,
            {
                "PartitionKey": _digest(event_id),
                "RowKey": _EVENT_ROW,
                "EventId": event_id[:_MAX_TEXT],
                "SeenAt": now,
                "ExpiresAt": now + ttl,
            },
            still_held=lambda existing: now < _plain_utc(existing["SeenAt"]) + ttl,
        )

    def claim_alert(self, resource_id: str, fingerprint: str, now: datetime, cooldown: timedelta) -> bool:
        return self.claim_alerts(resource_id, [fingerprint], now, cooldown)[0]

    def claim_alerts(
        self,
        resource_id: str,
        fingerprints: Sequence[str],
        now: datetime,
        cooldown: timedelta,
        *,
        delivered: Sequence[OutboxItem] = (),
    ) -> list[bool]:
        """The claims are rows of the account's journal partition (``alert-`` + the key's digest).
        With outbox rows to delete, or from four keys on, first one entity-group transaction
        inserting every key (and deleting the outbox rows): one round trip for the claims and the
        outbox. Fewer keys and nothing to delete: each claimed alone (an insert when it is new).
        When a key exists (the transaction is all or nothing: it took none), one query of the
        partition, then one transaction that inserts the new keys and replaces the expired ones on
        the etags read (keys within the cool-down are answered by the query); a concurrent caller
        that took a key first makes each be claimed alone. Outbox rows not deleted with the claims
        are deleted afterwards."""
        rid = normalize_resource_id(resource_id)
        now = _utc(now, "now")
        _check_cooldown(cooldown)
        table = self._tables.remediations
        pk = _digest(rid)
        deletes = [("delete", {"PartitionKey": pk, "RowKey": item.key}) for item in delivered]
        if not cooldown:  # no cool-down configured: every alert goes out
            self._delete_outbox(delivered)
            return [True] * len(fingerprints)
        rows: dict[str, dict[str, Any]] = {}  # RowKey -> row; the first occurrence of each key
        for fingerprint in fingerprints:
            rows.setdefault(
                _ALERT_PREFIX + _digest(fingerprint),
                {
                    "PartitionKey": pk,
                    "RowKey": _ALERT_PREFIX + _digest(fingerprint),
                    "ResourceId": rid[:_MAX_TEXT],
                    "Fingerprint": fingerprint[:_MAX_TEXT],
                    "SentAt": now,
                    "ExpiresAt": now + cooldown,
                },
            )

        # Judge by this call's cool-down, so changing the setting takes effect at once.
        def still_held(existing: Any) -> bool:
            return now < _plain_utc(existing["SentAt"]) + cooldown

        granted: dict[str, bool] | None = None
        tried = False
        if (deletes or len(rows) >= _BATCH_FROM) and 0 < len(rows) + len(deletes) <= _TRANSACTION_LIMIT:
            operations: list[tuple[Any, ...]] = [("create", row) for row in rows.values()]
            try:
                tried = True
                submit_transaction(self._client(table), [*operations, *deletes])
                granted, delivered = dict.fromkeys(rows, True), ()
            except (self._TableTransactionError, self._ResourceNotFoundError):
                pass  # a key exists, or an outbox row is gone: nothing was written
        if granted is None:
            granted = (
                self._claim_many(table, pk, rows, still_held, insert_first=not tried)
                if len(rows) >= _BATCH_FROM
                else {key: self._claim(table, row, still_held=still_held) for key, row in rows.items()}
            )
        self._delete_outbox(delivered)
        answers = []
        for fingerprint in fingerprints:
            key = _ALERT_PREFIX + _digest(fingerprint)
            answers.append(granted.pop(key, False))  # a repeated key: already answered
        return answers

    def purge(self, before: datetime) -> int:
        before = _utc(before, "before")
        deleted = 0
        for table in self._tables.all():
            client = self._client(table)
            try:
                expired = list(client.query_entities("ExpiresAt le @before", parameters={"before": before}))
            except self._ResourceNotFoundError:
                continue
            for entity in expired:
                try:
                    # Conditional: a row re-claimed since the query is fresh again; keep it.
                    client.delete_entity(
                        entity["PartitionKey"],
                        entity["RowKey"],
                        etag=entity.metadata["etag"],
                        match_condition=self._if_not_modified,
                    )
                    deleted += 1
                except (self._ResourceModifiedError, self._ResourceNotFoundError):
                    pass
        return deleted

    def close(self) -> None:
        """Close the HTTP sessions (the Functions host keeps one store for the process' life)."""
        with self._clients_lock:
            clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            client.close()
        self._service.close()

    # -- table plumbing ----------------------------------------------------------------------
    def _client(self, table: str) -> Any:
        client = self._clients.get(table)
        if client is not None:
            return client
        with self._clients_lock:
            client = self._clients.get(table)
            if client is None:
                self._ensure_table(table, force=False)
                client = self._service.get_table_client(table)
                self._clients[table] = client
            return client

    def _ensure_table(self, table: str, *, force: bool) -> None:
        with self._created_lock:
            if force or table not in self._created:
                self._service.create_table_if_not_exists(table)
                self._created.add(table)

    def _insert(self, table: str, entity: Mapping[str, Any]) -> Any:
        """create_entity (its response metadata, with the new row's etag); recreates the table
        once if it vanished since this process created it."""
        try:
            return self._client(table).create_entity(entity)
        except self._ResourceNotFoundError:
            self._ensure_table(table, force=True)
            return self._client(table).create_entity(entity)

    def _get(self, table: str, pk: str, rk: str) -> Any:
        try:
            return self._client(table).get_entity(pk, rk)
        except self._ResourceNotFoundError:
            return None

    def _claim_many(
        self,
        table: str,
        pk: str,
        rows: Mapping[str, Mapping[str, Any]],
        still_held: Callable[[Any], bool],
        *,
        insert_first: bool = True,
    ) -> dict[str, bool]:
        """:meth:`_claim` for several rows of one partition. First one transaction inserting them
        all (they are usually new); when any exists, one query of the partition and one
        transaction (per 100 rows, the transaction's limit) of inserts and etag-conditional
        replaces of the expired; a race falls back to one claim per row."""
        if insert_first and len(rows) <= _TRANSACTION_LIMIT:
            try:
                submit_transaction(self._client(table), [("create", row) for row in rows.values()])
                return dict.fromkeys(rows, True)
            except (self._TableTransactionError, self._ResourceNotFoundError):
                pass  # one of them exists (or the table vanished): nothing was written
        try:
            existing = {
                str(row["RowKey"]): row
                for row in self._client(table).query_entities("PartitionKey eq @pk", parameters={"pk": pk})
            }
        except self._ResourceNotFoundError:  # the table vanished: the single claims recreate it
            return {key: self._claim(table, row, still_held=still_held) for key, row in rows.items()}
        granted: dict[str, bool] = {}
        operations: list[tuple[str, tuple[Any, ...]]] = []
        for key, row in rows.items():
            found = existing.get(key)
            if found is None:
                operations.append((key, ("create", row)))
                continue
            if _held(table, found, still_held):
                granted[key] = False
            else:
                conditions = {
                    "mode": self._replace,
                    "etag": found.metadata["etag"],
                    "match_condition": self._if_not_modified,
                }
                operations.append((key, ("update", row, conditions)))
        for start in range(0, len(operations), _TRANSACTION_LIMIT):
            chunk = operations[start : start + _TRANSACTION_LIMIT]
            try:
                submit_transaction(self._client(table), [operation for _, operation in chunk])
                granted.update((key, True) for key, _ in chunk)
            except (self._TableTransactionError, self._ResourceNotFoundError):
                # Raced (or the table vanished): nothing in this chunk was written.
                for key, _ in chunk:
                    granted[key] = self._claim(table, rows[key], still_held=still_held)
        return granted

    def _claim(
        self,
        table: str,
        entity: Mapping[str, Any],
        *,
        still_held: Callable[[Any], bool],
    ) -> bool:
        """Atomically take (PartitionKey, RowKey): True for exactly one of concurrent callers.

        Insert wins if the row is new; otherwise an existing row that is no longer held (expired)
        is replaced conditionally on the etag read, so only one of the racing re-claimers wins."""
        for _ in range(_CLAIM_ATTEMPTS):
            try:
                self._insert(table, entity)
                return True
            except self._ResourceExistsError:
                pass
            existing = self._get(table, entity["PartitionKey"], entity["RowKey"])
            if existing is None:  # purged between our insert and read: insert again
                continue
            if _held(table, existing, still_held):
                return False
            try:
                self._client(table).update_entity(
                    entity,
                    mode=self._replace,
                    etag=existing.metadata["etag"],
                    match_condition=self._if_not_modified,
                )
                return True
            except self._ResourceModifiedError:
                return False  # another caller re-claimed it first
            except self._ResourceNotFoundError:
                continue  # purged meanwhile
        return False


_RANK: dict[str, int] = {"intent": 0, "abandoned": 0, "written": 1, "verified": 2, "failed": 2, "gone": 2}


def _forward(current: JournalState, target: JournalState) -> bool:
    """Entries only move forward (intent → written → verified, failed or gone); an unfinished one
    may be abandoned; an abandoned one may still be found written by the one who wrote it."""
    if target == "abandoned":
        return current in UNFINISHED
    return _RANK.get(target, -1) > _RANK.get(current, 3)


def _advanced(entry: JournalEntry, state: JournalState, now: datetime) -> JournalEntry:
    """`entry` in `state`; a write acknowledged (written, failed on verification, gone after it)
    or confirmed (verified) is stamped with its time once: the breaker counts it."""
    written_at = entry.written_at
    if state in ("written", "verified", "failed", "gone") and written_at is None:
        written_at = now  # failed and gone: acknowledged writes (nothing written is abandoned)
    return dataclasses.replace(entry, state=state, written_at=written_at)


def _is_alert(row: Any) -> bool:
    return str(row.get("RowKey") or "").startswith(_ALERT_PREFIX)


def _is_outbox(row: Any) -> bool:
    return str(row.get("RowKey") or "").startswith(_OUTBOX_PREFIX)


def _claimed(rows: list[Any], item: OutboxItem, now: datetime) -> bool:
    """Is someone delivering the outbox row (claimed within OUTBOX_CLAIM)?"""
    for row in rows:
        if row.get("RowKey") == item.key:
            claimed = row.get("ClaimedAt")
            return claimed is not None and now - _plain_utc(claimed) < OUTBOX_CLAIM
    return False


def _outbox_to_row(item: OutboxItem, now: datetime) -> dict[str, Any]:
    """The row: its records as compact JSON cut into string properties Records0, Records1, ...
    (a string property holds 64 KiB); ClaimedAt: now (whoever writes the row delivers it)."""
    text = json.dumps(list(item.records), separators=(",", ":"), ensure_ascii=False)
    chunks = [text[start : start + _CHUNK] for start in range(0, len(text), _CHUNK)] or [""]
    if len(chunks) > _MAX_CHUNKS:
        raise ValueError(
            f"outbox row for {item.resource_id}: {len(text)} characters of records (at most 1 MiB)"
        )
    row: dict[str, Any] = {
        "PartitionKey": _digest(item.resource_id),
        "RowKey": item.key,
        "ResourceId": item.resource_id[:_MAX_TEXT],
        "State": "outbox",
        "BreakerTripped": item.breaker_tripped,
        "Chunks": len(chunks),
        "CreatedAt": item.created_at if item.created_at != _EPOCH else now,
        "ClaimedAt": now,
        "ExpiresAt": now + OUTBOX_TTL,
    }
    for index, chunk in enumerate(chunks):
        row[f"Records{index}"] = chunk
    return row


def _outbox_from_row(row: Any) -> OutboxItem | None:
    try:
        text = "".join(str(row[f"Records{index}"]) for index in range(int(row["Chunks"])))
        records = json.loads(text)
        if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
            raise ValueError("records are not a list of objects")
        return OutboxItem(
            resource_id=str(row["ResourceId"]),
            key=str(row["RowKey"]),
            records=tuple(records),
            breaker_tripped=bool(row.get("BreakerTripped")),
            created_at=_plain_utc(row["CreatedAt"]),
            etag=row.metadata.get("etag") if hasattr(row, "metadata") else None,
        )
    except (KeyError, TypeError, ValueError):
        logger.warning("ignoring a malformed outbox row")
        return None


def _held(table: str, existing: Any, still_held: Callable[[Any], bool]) -> bool:
    """Whether a claim's existing row still holds; a malformed (hand-edited or foreign) row does
    not: the claim takes it over."""
    try:
        return still_held(existing)
    except (KeyError, TypeError, ValueError):
        logger.warning("replacing a malformed row in %s", table)
        return False


def _open_breaker(rid: str, entity: Any, now: datetime) -> BreakerState | None:
    """The breaker row as an open breaker; None when it has expired or is malformed (the next
    trip_breaker replaces it)."""
    try:
        state = BreakerState(
            resource_id=rid,
            tripped_at=_plain_utc(entity["TrippedAt"]),
            until=_plain_utc(entity["Until"]),
        )
    except (KeyError, TypeError, ValueError):
        logger.warning("ignoring a malformed breaker row for %s", rid)
        return None
    return state if state.is_open(now) else None


def _etag_of(metadata: Any) -> str | None:
    etag = metadata.get("etag") if isinstance(metadata, Mapping) else None
    return str(etag) if etag else None


def _entry_to_row(entry: JournalEntry, ttl: timedelta = JOURNAL_TTL) -> dict[str, Any]:
    created = entry.created_at
    row: dict[str, Any] = {
        "PartitionKey": _digest(entry.resource_id),
        "RowKey": entry.key,
        "ResourceId": entry.resource_id[:_MAX_TEXT],
        "State": entry.state,
        "BeforeEtag": entry.before_etag or "",
        "CorrelationId": entry.correlation_id,
        "EventId": entry.event_id or "",
        "Actor": entry.actor or "",
        "ActorSource": entry.actor_source,
        "Trigger": entry.trigger,
        "Kind": entry.kind,
        "Before": json.dumps(entry.before, separators=(",", ":")),
        "Body": json.dumps(entry.body, separators=(",", ":")),
        "Findings": json.dumps(list(entry.findings), separators=(",", ":")),
        "Cause": entry.cause[:_MAX_TEXT],
        "CreatedAt": created,
        "ExpiresAt": created + ttl,
        "Actions": json.dumps(list(entry.actions), separators=(",", ":")),
        "Acked": ",".join(str(index) for index in entry.acked),
        "BeforeModified": entry.before_modified or "",
    }
    if entry.written_at is not None:
        row["WrittenAt"] = entry.written_at
    return row


def _entry_from_row(row: Any) -> JournalEntry | None:
    try:
        written = row.get("WrittenAt")
        return JournalEntry(
            resource_id=str(row["ResourceId"]),
            key=str(row["RowKey"]),
            state=row["State"],
            before_etag=row.get("BeforeEtag") or None,
            correlation_id=str(row.get("CorrelationId") or ""),
            event_id=row.get("EventId") or None,
            actor=row.get("Actor") or None,
            actor_source=str(row.get("ActorSource") or "none"),
            trigger=str(row.get("Trigger") or "event"),
            kind=str(row.get("Kind") or ""),
            before=json.loads(row.get("Before") or "{}"),
            body=json.loads(row.get("Body") or "{}"),
            findings=tuple(json.loads(row.get("Findings") or "[]")),
            cause=str(row.get("Cause") or ""),
            created_at=_plain_utc(row["CreatedAt"]),
            written_at=_plain_utc(written) if written is not None else None,
            etag=row.metadata.get("etag") if hasattr(row, "metadata") else None,
            actions=tuple(json.loads(row.get("Actions") or "[]")),
            acked=tuple(int(index) for index in str(row.get("Acked") or "").split(",") if index),
            before_modified=row.get("BeforeModified") or None,
        )
    except (KeyError, TypeError, ValueError):
        logger.warning("ignoring a malformed journal row")
        return None


def _transport_options(
    connection_timeout: float, read_timeout: float, retry_total: int, http: HttpEnvironment | None
) -> dict[str, Any]:
    from guardrail.transport import pooled_transport

    return {
        # One client serves every worker of a sweep: a pool as big as that concurrency.
        "transport": pooled_transport(
            pool_size=32, connection_timeout=connection_timeout, read_timeout=read_timeout, environment=http
        ),
        "retry_total": retry_total,
        "retry_backoff_factor": 0.2,
        "retry_backoff_max": 1,
    }


# --------------------------------------------------------------------------------------------
# Degrade instead of failing
# --------------------------------------------------------------------------------------------
_T = TypeVar("_T")


class ResilientStateStore:
    """Wraps a store; while it is unreachable, answers as :class:`NullStateStore`.

    The first failure (connection refused, timeout, authentication, any Azure SDK error) logs one
    warning ``running without memory: <reason>`` on ``guardrail.state``; calls then skip the store
    for ``retry_after`` (so one invocation pays the timeout at most once) before trying it again.
    When a retry succeeds, an info message says memory is back; a later failure warns again.
    Programming errors (naive datetimes, empty ids) are not swallowed.
    """

    def __init__(
        self,
        inner: StateStore,
        *,
        retry_after: timedelta = timedelta(seconds=60),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        from azure.core.exceptions import AzureError

        self._inner = inner
        self._fallback = NullStateStore(window=inner.window, max_remediations=inner.max_remediations)
        self._retry_after = retry_after.total_seconds()
        self._clock = clock
        self._unavailable_errors: tuple[type[BaseException], ...] = (AzureError, OSError)
        self._lock = threading.Lock()
        self._degraded_until: float | None = None  # monotonic time; None = healthy

    @property
    def inner(self) -> StateStore:
        return self._inner

    @property
    def degraded(self) -> bool:
        """True while answers come from the fallback (the store failed recently)."""
        return self._degraded_until is not None

    @property
    def window(self) -> timedelta:
        return self._inner.window

    @property
    def max_remediations(self) -> int:
        return self._inner.max_remediations

    def journal(self, resource_id: str) -> list[JournalEntry]:
        return self._call(lambda s: s.journal(resource_id), lambda: self._fallback.journal(resource_id))

    def read_journal(self, resource_id: str, now: datetime) -> Journal:
        return self._call(
            lambda s: s.read_journal(resource_id, now), lambda: self._fallback.read_journal(resource_id, now)
        )

    def begin(self, entry: JournalEntry) -> tuple[JournalEntry, bool]:
        return self._call(lambda s: s.begin(entry), lambda: self._fallback.begin(entry))

    def settle(
        self, entry: JournalEntry, state: JournalState, now: datetime, outbox: OutboxItem | None
    ) -> JournalEntry | None:
        """An entry the store holds (it has a row etag) is settled there or not at all: when the
        store cannot be reached, this raises and the entry stays unfinished, so a redelivery or the
        sweep settles it and emits its records once (never the fallback's records now and the
        sweep's again later: issue #23, item 4). An entry made without memory settles without it."""
        if entry.etag is None:
            return self._call(
                lambda s: s.settle(entry, state, now, outbox),
                lambda: self._fallback.settle(entry, state, now, outbox),
            )
        try:
            return self._inner.settle(entry, state, now, outbox)
        except self._unavailable_errors as error:
            self._mark_degraded(error)
            raise

    def claim_outbox(self, item: OutboxItem, now: datetime) -> OutboxItem | None:
        return self._call(lambda s: s.claim_outbox(item, now), lambda: None)

    def outbox_delivered(self, item: OutboxItem) -> None:
        self._call(lambda s: s.outbox_delivered(item), lambda: None)

    def advance(self, entry: JournalEntry, state: JournalState, now: datetime) -> JournalEntry | None:
        return self._call(
            lambda s: s.advance(entry, state, now), lambda: self._fallback.advance(entry, state, now)
        )

    def mark_unreadable(self, resource_id: str, cause: str, now: datetime) -> None:
        self._call(
            lambda s: s.mark_unreadable(resource_id, cause, now),
            lambda: self._fallback.mark_unreadable(resource_id, cause, now),
        )

    def clear_unreadable(self, resource_id: str) -> None:
        self._call(
            lambda s: s.clear_unreadable(resource_id), lambda: self._fallback.clear_unreadable(resource_id)
        )

    def unfinished(self) -> list[str]:
        return self._call(lambda s: s.unfinished(), self._fallback.unfinished)

    def breaker_state(self, resource_id: str, now: datetime) -> BreakerState | None:
        return self._call(
            lambda s: s.breaker_state(resource_id, now),
            lambda: self._fallback.breaker_state(resource_id, now),
        )

    def trip_breaker(self, resource_id: str, now: datetime) -> bool:
        return self._call(
            lambda s: s.trip_breaker(resource_id, now),
            lambda: self._fallback.trip_breaker(resource_id, now),
        )

    def claim_event(self, event_id: str, now: datetime) -> bool:
        return self._call(
            lambda s: s.claim_event(event_id, now),
            lambda: self._fallback.claim_event(event_id, now),
        )

    def claim_alert(self, resource_id: str, fingerprint: str, now: datetime, cooldown: timedelta) -> bool:
        return self.claim_alerts(resource_id, [fingerprint], now, cooldown)[0]

    def claim_alerts(
        self,
        resource_id: str,
        fingerprints: Sequence[str],
        now: datetime,
        cooldown: timedelta,
        *,
        delivered: Sequence[OutboxItem] = (),
    ) -> list[bool]:
        return self._call(
            lambda s: s.claim_alerts(resource_id, fingerprints, now, cooldown, delivered=delivered),
            lambda: self._fallback.claim_alerts(resource_id, fingerprints, now, cooldown),
        )

    def purge(self, before: datetime) -> int:
        return self._call(lambda s: s.purge(before), lambda: self._fallback.purge(before))

    def close(self) -> None:
        with contextlib.suppress(*self._unavailable_errors):
            self._inner.close()

    def _call(self, operation: Callable[[StateStore], _T], fallback: Callable[[], _T]) -> _T:
        with self._lock:
            skip = self._degraded_until is not None and self._clock() < self._degraded_until
        if skip:
            return fallback()
        try:
            result = operation(self._inner)
        except self._unavailable_errors as error:
            self._mark_degraded(error)
            return fallback()
        with self._lock:
            recovered = self._degraded_until is not None
            self._degraded_until = None
        if recovered:
            logger.info("memory is back: the state store answers again")
        return result

    def _mark_degraded(self, error: BaseException) -> None:
        with self._lock:
            first = self._degraded_until is None
            self._degraded_until = self._clock() + self._retry_after
        if first:
            logger.warning("running without memory: %s", _reason(error))


def _reason(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    first_line = text[0] if text else ""
    if len(first_line) > 300:
        first_line = first_line[:297] + "..."
    return f"{type(error).__name__}: {first_line}" if first_line else type(error).__name__


# --------------------------------------------------------------------------------------------
# Factory
# --------------------------------------------------------------------------------------------
def open_state_store(
    connection_string: str | None,
    *,
    table_endpoint: str | None = None,
    credential: Any = None,
    table_prefix: str = DEFAULT_TABLE_PREFIX,
    window: timedelta = DEFAULT_WINDOW,
    max_remediations: int = DEFAULT_MAX_REMEDIATIONS,
    event_ttl: timedelta = DEFAULT_EVENT_TTL,
    connection_timeout: float = 2.0,
    read_timeout: float = 3.0,
    retry_total: int = 1,
    retry_after: timedelta = timedelta(seconds=60),
    http: HttpEnvironment | None = None,
) -> StateStore:
    """The guardrail's state store, never raising for an unreachable or misconfigured store.

    ``connection_string`` is the ``AzureWebJobsStorage`` setting (``UseDevelopmentStorage=true``
    for Azurite). For identity-based storage (shared keys disabled) pass ``connection_string=None``
    with ``table_endpoint`` (``https://<account>.table.core.windows.net``) and ``credential``.
    Without either, or with an unparsable connection string, a warning ``running without memory``
    is logged and a :class:`NullStateStore` returned. Nothing touches the network until the first
    call; see :class:`ResilientStateStore` for what happens when that fails.
    """
    options: dict[str, Any] = {
        "table_prefix": table_prefix,
        "window": window,
        "max_remediations": max_remediations,
        "event_ttl": event_ttl,
    }
    transport: dict[str, Any] = {
        "connection_timeout": connection_timeout,
        "read_timeout": read_timeout,
        "retry_total": retry_total,
        "http": http,
    }
    TableNames.with_prefix(table_prefix)  # configuration errors are the caller's: raise them
    null = NullStateStore(window=window, max_remediations=max_remediations)
    try:
        if connection_string:
            inner = TableStateStore.from_connection_string(connection_string, **transport, **options)
        elif table_endpoint and credential is not None:
            inner = TableStateStore.from_endpoint(table_endpoint, credential, **transport, **options)
        else:
            logger.warning("running without memory: no storage connection string (AzureWebJobsStorage)")
            return null
    except (ValueError, TypeError) as error:  # malformed connection string / endpoint
        logger.warning("running without memory: unusable storage settings: %s", _reason(error))
        return null
    return ResilientStateStore(inner, retry_after=retry_after)
