"""The reconciler: the one path every caller takes, level-triggered as a Kubernetes controller's
`Reconcile` is. An event only says "look"; the reconciler reads a fresh snapshot, the pure engine
returns the findings and a plan of typed actions, and `Guardrail._reconcile` carries it out, top
to bottom:

    read → finish earlier plans → plan → guard → journal → act → verify → settle → deliver
      ↑                                            │
      └──────────── 412: read again, plan again ───┘

- **read**: the account and the child resources the policy's rules read (`engine.children_for`),
  while the journal partition (entries, breaker, undelivered outbox rows) is read beside it.
- **finish**: an unfinished entry of an earlier check (a lost response, a failed re-read, a plan
  that stopped half way, a crash) is settled against the fresh snapshot: its acknowledged or
  visible actions are recorded as landed, the rest abandoned.
- **plan**: `engine.plan(snapshot, policy, now)`; a body it cannot judge is an `account-invalid`
  finding; no action means report only. Audit mode is a plan that is recorded, not executed.
- **guard**: every action is judged by its type's widening model (the rules' declared parts)
  and the account PATCH also by the independent model of `guardrail.neverwiden`; then the breaker
  (confirmed writes inside the window, never attempts).
- **journal**: the whole plan as one `intent` entry, keyed by what was read (etag, last-modified
  time and state), so the write event and the notification of one change share it.
- **act**: the actions in order through the gateway's `write`; a write ARM refused, or answered
  with a failure, stops the plan (what it acknowledged before is kept in the entry).
- **verify**: one re-read of the snapshot; each action has landed when planning again no longer
  yields it.
- **settle**: the entry's new state and its records (and alert intent) in one entity-group
  transaction: the outbox (`guardrail.state`). A landed action always has its records; an action
  that did not land never has a `remediated` one.
- **deliver**: the outbox rows to the finding and alert sinks, then deleted; a row a crash left is
  delivered by the next check of the account or by the sweep.

The gateway only reads and writes ARM, the state store only remembers, the sinks only deliver:
none of them calls back.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import zip_longest
from typing import TYPE_CHECKING, Any, Literal, Protocol

from guardrail import escaping, neverwiden, wellformed
from guardrail.actions import Action, ChildRead, Method, Snapshot, holds, properties_of
from guardrail.engine import Evaluation, Finding, InvalidAccount, action_widening, children_for, plan
from guardrail.events import MalformedEvent, ResourceEvent, parse_event
from guardrail.findings import FindingRecord, Status
from guardrail.observe import Observer
from guardrail.outcomes import Outcome, SweepReport
from guardrail.records import (
    RecordContext,
    StatusOf,
    alert_key,
    every_fixed,
    last_modified_by,
    nothing,
    provenance,
    repairing,
    side,
    written,
)
from guardrail.resource_ids import id_key, name_key, same_id, subscription_of
from guardrail.rules import WRITTEN_PROPERTIES
from guardrail.state import UNFINISHED, Journal, JournalEntry, JournalState, OutboxItem
from guardrail.vocabulary import Mode, Trigger

if TYPE_CHECKING:
    from guardrail.gateway import WriteResult
    from guardrail.settings import Settings
    from guardrail.sinks import AlertSink, FindingSink
    from guardrail.state import StateStore

__all__ = ["Guardrail", "Outcome", "SweepReport", "WritePacer", "holds", "last_modified_by", "provenance"]

log = escaping.logger("guardrail")  # every argument logged from input escaped


class Gateway(Protocol):
    def get(self, resource_id: str) -> dict[str, Any] | None: ...

    def list_accounts(self, subscriptions: list[str] | None) -> Iterable[dict[str, Any]]: ...

    def list_page(
        self, subscription: str, next_link: str | None
    ) -> tuple[list[dict[str, Any]], str | None]: ...

    def read_children(self, account_id: str, reads: Iterable[ChildRead]) -> dict[str, Any]: ...

    def write(
        self, method: Method, target: str, body: Mapping[str, Any] | None, etag: str | None = None
    ) -> WriteResult: ...


#: Asks for the account to be checked again after a delay (a provisioning that ended Failed).
Recheck = Callable[[str, timedelta], None]


class WritePacer:
    """ARM-like write pacing per subscription: a token bucket holding `burst` writes, refilled at
    `per_second` (ARM refills subscription writes at about 10 per second). An event's write goes
    at once while the bucket holds a token; the sweep (`steady=True`) also keeps to the refill
    rate, so it never spends the burst that events may need."""

    def __init__(self, per_second: float, burst: int = 10) -> None:
        self._rate = per_second
        self._burst = float(max(1, burst))
        self._buckets: dict[str, tuple[float, float]] = {}  # subscription -> (tokens, stamp)
        self._next_steady: dict[str, float] = {}
        self._lock = threading.Lock()

    def acquire(self, subscription: str, *, steady: bool = False) -> float:
        """Take one write; sleeps as long as needed and returns the seconds slept."""
        key = name_key(subscription)
        with self._lock:
            now = time.monotonic()
            tokens, stamp = self._buckets.get(key, (self._burst, now))
            tokens = min(self._burst, tokens + (now - stamp) * self._rate) - 1.0
            self._buckets[key] = (tokens, now)
            wait = max(0.0, -tokens / self._rate)
            if steady:
                slot = max(now, self._next_steady.get(key, now))
                self._next_steady[key] = slot + 1.0 / self._rate
                wait = max(wait, slot - now)
        if wait > 0:
            time.sleep(wait)
        return wait


def _modified_at(account: Mapping[str, Any]) -> str | None:
    system = account.get("systemData")
    at = system.get("lastModifiedAt") if isinstance(system, Mapping) else None
    return at if isinstance(at, str) else None


def _read_digest(snapshot: Snapshot) -> str:
    """What the plan was made from, for the journal key: the last-modified time and the state the
    rules read (account properties and children), canonical JSON."""
    text = json.dumps(
        [_modified_at(snapshot.account), properties_of(snapshot.account), snapshot.children],
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass
class _Executed:
    """What acting on a plan came to: the indexes ARM acknowledged, and where it stopped."""

    acked: list[int]
    stopped: WriteResult | None = None  # the write that was not made (refused, failed, 412, gone)
    stopped_at: int | None = None


class Guardrail:
    def __init__(
        self,
        settings: Settings,
        gateway: Gateway,
        state: StateStore,
        finding_sinks: Sequence[FindingSink] = (),
        alert_sinks: Sequence[AlertSink] = (),
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        precondition_retries: int = 3,
        recheck: Recheck | None = None,
        observe: Observer | None = None,
    ) -> None:
        self.settings = settings
        self.policy = settings.policy
        self.gateway = gateway
        self.state = state
        self.finding_sinks = list(finding_sinks)
        self.alert_sinks = list(alert_sinks)
        self.clock = clock
        self.pacer = WritePacer(settings.writes_per_second)
        self.precondition_retries = precondition_retries  # 412s: re-read and recompute this often
        self.recheck = recheck
        # Told what happened (metrics, the sweep's heartbeat); it never reads the loop.
        self.observe = observe if observe is not None else Observer(mode=settings.mode, clock=clock)
        self.observers: list[Callable[[Outcome], None]] = []  # told of every outcome (demo, CLI)
        self._locks: dict[str, tuple[threading.Lock, list[int]]] = {}  # lock, [checks holding or waiting]
        self._locks_guard = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None

    def _background(self) -> ThreadPoolExecutor:
        """Threads for state-store reads made while ARM answers (never for ARM calls)."""
        with self._locks_guard:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=32, thread_name_prefix="guardrail-state")
            return self._pool

    @contextlib.contextmanager
    def _account_lock(self, resource_id: str) -> Iterator[None]:
        """One check at a time per account in this worker (across workers, the journal's
        conditional writes and If-Match keep one change from being written or counted twice).
        An account's lock lives while a check holds or waits for it: kept for every account ever
        checked, a sweep worker's locks grew with the tenant (issue #27)."""
        key = id_key(resource_id)
        with self._locks_guard:
            lock, users = self._locks.setdefault(key, (threading.Lock(), [0]))
            users[0] += 1
        try:
            with lock:
                yield
        finally:
            with self._locks_guard:
                users[0] -= 1
                if not users[0]:
                    del self._locks[key]

    @property
    def _reads(self) -> tuple[ChildRead, ...]:
        return children_for(self.policy)

    def _reads_for(self, account: Mapping[str, Any]) -> list[ChildRead]:
        """The child resources of this account the policy's rules read (none: the body says all)."""
        return [read for read in self._reads if read.applies(account)]

    # -- entry points -----------------------------------------------------------------------
    def handle_event(self, payload: Mapping[str, Any]) -> Outcome | None:
        """One delivered event. Malformed or irrelevant events are logged and dropped; transient
        ARM failures raise so that Event Grid redelivers."""
        try:
            event = parse_event(payload)
        except MalformedEvent as error:
            log.error("dropping malformed event: %s", error)
            self.observe.event_ignored("malformed")
            return None
        if not event.relevant or event.account_id is None:
            log.log(event.ignore_level, "ignoring event %s: %s", event.event_id, event.ignore_reason())
            self.observe.event_ignored("not-an-account" if event.account_id is None else "event-type")
            return None
        identity = self.settings.identity
        if identity and event.actor and identity.lower() in event.actor.lower():
            log.info("event %s comes from the guardrail's own write: expecting a no-op", event.event_id)
        if event.resource is not None and not self._reads_for(event.resource):
            # A Resource Notification of this very account (events.py checks `resourceInfo.id`)
            # carries its full properties: a compliant one needs no read (when the rules read no
            # child resource of it). An unfinished journal entry is completed by the write event's
            # delivery or the sweep.
            quick = plan(Snapshot(event.resource), self.policy, self.clock())
            if isinstance(quick, Evaluation) and not quick.findings:
                log.info(
                    "event %s: %s is compliant (from the notification)", event.event_id, event.account_id
                )
                now = time.monotonic()
                quick_outcome = Outcome(event.account_id, "compliant", started=now, finished=now)
                quick_outcome.trigger = "event"
                self.observe.check_finished(quick_outcome)
                return quick_outcome
        return self.check_account(event.account_id, trigger="event", event=event)

    def check_account(
        self,
        resource_id: str,
        *,
        trigger: Trigger,
        event: ResourceEvent | None = None,
        account: Mapping[str, Any] | None = None,
    ) -> Outcome:
        """Check one account through the whole path. `account` (a body just listed) saves a read
        in audit mode only; every write decision is taken on a fresh read."""
        started = time.monotonic()
        with self._account_lock(resource_id):
            try:
                outcome = self._reconcile(resource_id, trigger, event, account)
            except Exception as error:
                self.observe.check_raised(trigger, error)
                raise
            outcome.started, outcome.finished = started, time.monotonic()
            outcome.event_time = event.event_time if event else None
            outcome.trigger = trigger
            outcome.actor = next(
                (r.actor for r in outcome.records if r.actor), event.actor if event else None
            )
            self._deliver(outcome, event)
        self.observe.check_finished(outcome)
        for observer in self.observers:
            observer(outcome)
        log.info(
            "%s %s: %s%s (%d finding records)",
            trigger,
            resource_id,
            outcome.action,
            f" ({outcome.detail})" if outcome.detail else "",
            len(outcome.records),
        )
        return outcome

    def sweep(self, subscriptions: Sequence[str] | None = None) -> SweepReport:
        """Reconcile every account in the configured subscriptions (or every one visible), and
        every account the journal names as unfinished or unreadable, in this process (the CLI,
        small tenants). The function app fans the sweep out instead: one queue message per
        subscription page, each checked by `sweep_accounts` (guardrail.fanout)."""
        started = time.monotonic()
        report = SweepReport()
        subs = list(subscriptions or self.settings.subscriptions) or None
        listed: list[dict[str, Any]] = []
        try:
            listed.extend(self.gateway.list_accounts(subs))
        except Exception as error:  # a subscription that cannot be listed: check the others
            log.error("sweep: listing failed: %s: %s", type(error).__name__, error)
            report.errors.append(f"listing: {type(error).__name__}: {error}")
        self.sweep_accounts(listed, report, unfinished=self.unfinished_accounts(subs))
        # Table Storage has no TTL: the sweep clears remembered rows that have expired.
        self.state.purge(self.clock())
        report.seconds = time.monotonic() - started
        log.info(
            "sweep: %d listed, %d compliant, %d remediated, %d failed, %d suspended, %d errors in %.1fs",
            report.listed,
            report.compliant,
            report.count("remediated"),
            report.count("failed"),
            report.count("suspended"),
            len(report.errors),
            report.seconds,
        )
        self.observe.sweep_finished(report, subs or ())
        return report

    def unfinished_accounts(self, subscriptions: Sequence[str] | None = None) -> list[str]:
        """Accounts the journal names as unfinished, unreadable or with undelivered records (enforce
        mode only), in the given subscriptions (None: all)."""
        if self.settings.mode != "enforce":
            return []
        wanted = {name_key(sub) for sub in subscriptions} if subscriptions else None
        return [rid for rid in self.state.unfinished() if wanted is None or subscription_of(rid) in wanted]

    def sweep_accounts(
        self,
        listed: Iterable[Mapping[str, Any]],
        report: SweepReport | None = None,
        *,
        unfinished: Sequence[str] = (),
    ) -> SweepReport:
        """The sweep's per-slice part: first the `unfinished` accounts the journal named, then the
        listed bodies that need it, each through `check_account` (the one path); the outcomes and
        errors go to `report`. The in-process sweep hands it every listed account; a sweep-queue
        message one page of one subscription."""
        report = report if report is not None else SweepReport()
        now = self.clock()
        pending: dict[str, list[str]] = {}  # by subscription, in listing order
        seen: set[str] = set()
        for rid in unfinished:
            pending.setdefault(subscription_of(rid), []).append(rid)
            seen.add(id_key(rid))
        bodies: dict[str, Mapping[str, Any]] = {}
        for body in listed:
            report.listed += 1
            report.note_listed(body)
            rid = str(body.get("id") or "")
            if not name_key(rid) or id_key(rid) in seen:
                continue
            result = plan(Snapshot(body), self.policy, now)
            if isinstance(result, Evaluation) and not result.findings and not self._reads_for(body):
                report.compliant += 1
                continue
            seen.add(id_key(rid))
            bodies[rid] = body
            pending.setdefault(subscription_of(rid), []).append(rid)
        # Round-robin over subscriptions: writes are paced per subscription, so a queue grouped
        # by subscription would park every worker on one subscription's pacing and the sweep
        # would take the sum, not the max, of the subscriptions' write times.
        order = [rid for batch in zip_longest(*pending.values()) for rid in batch if rid is not None]
        with ThreadPoolExecutor(max_workers=self.settings.sweep_concurrency) as pool:
            # The listed body spares a read in audit mode; in enforce mode every write decision
            # is taken on a fresh read.
            futures = {
                pool.submit(self.check_account, rid, trigger="sweep", account=bodies.get(rid)): rid
                for rid in order
            }
            for future in as_completed(futures):
                try:
                    report.outcomes.append(future.result())
                except Exception as error:  # one bad account must not stop the sweep
                    message = f"{futures[future]}: {type(error).__name__}: {error}"
                    log.warning("sweep: %s", message)
                    report.errors.append(message)
        return report

    # -- the reconciler ---------------------------------------------------------------------
    def _reconcile(
        self,
        resource_id: str,
        trigger: Trigger,
        event: ResourceEvent | None,
        listed: Mapping[str, Any] | None,
    ) -> Outcome:
        """Read, finish earlier plans, plan, guard, journal, act, verify, settle (module doc)."""
        from guardrail.gateway import TransientArmError

        ctx = self._context(trigger, event)
        if self.settings.mode == "audit":  # a plan recorded, never executed
            return self._audit(resource_id, ctx, listed)
        pending = self._background().submit(self.state.read_journal, resource_id, ctx.now)
        journal: Journal | None = None
        earlier = Outcome(resource_id, "compliant")  # records and outbox rows of earlier plans
        for _ in range(self.precondition_retries + 1):
            try:
                snapshot = self._snapshot(resource_id, ctx)  # -- read
            finally:
                journal = journal or pending.result()
            if isinstance(snapshot, Outcome):
                return _joined(earlier, snapshot)
            journal = self._finish(journal, snapshot, ctx, earlier)  # -- finish earlier plans
            judged = self._plan(snapshot, ctx)  # -- plan
            if isinstance(judged, Outcome) or not judged.actions:
                return _joined(earlier, self._unplanned(snapshot, judged, ctx))
            refused = self._refusal(snapshot, judged.actions)  # -- guard: never widen, never fight
            held = refused or self._fight(resource_id, journal, ctx.now)
            if held is not None:
                return _joined(earlier, self._held(snapshot, judged, ctx, *held))
            entry, created = self.state.begin(self._intent(snapshot, judged, ctx))  # -- journal
            if not created:
                log.info(
                    "%s: joining journal entry %s (same change, another delivery)", resource_id, entry.key
                )
            executed = self._act(entry, created, judged.actions, snapshot, trigger)  # -- act
            if executed.stopped is not None and executed.stopped.status == "precondition-failed":
                log.info("%s: 412 on the write: reading again", resource_id)
                journal = dataclasses.replace(journal, entries=[*journal.entries, entry])
                continue
            after = self._verifying_read(snapshot, entry, executed, ctx)  # -- verify
            return _joined(earlier, self._settle(entry, judged, snapshot, executed, after, ctx))
        raise TransientArmError(
            f"PATCH {resource_id}: the account kept changing (412 x{self.precondition_retries + 1})",
            status=412,
            code="PreconditionFailed",
        )

    # -- read --------------------------------------------------------------------------------
    def _context(self, trigger: Trigger, event: ResourceEvent | None) -> RecordContext:
        return RecordContext(
            trigger=trigger,
            mode=self.settings.mode,
            actor=None,
            correlation_id=(event.correlation_id if event else None) or str(uuid.uuid4()),
            event_id=event.event_id if event else None,
            now=self.clock(),
            event=event,
        )

    def _snapshot(
        self, resource_id: str, ctx: RecordContext, listed: Mapping[str, Any] | None = None
    ) -> Snapshot | Outcome:
        """The fresh read: the account and the child resources the rules read, or the outcome
        when it is gone or cannot be read (a `remediation-failed` record naming the cause; the
        sweep retries it). Transient trouble raises (Event Grid redelivers)."""
        from guardrail.gateway import ArmGatewayError, TransientArmError

        try:
            account = dict(listed) if listed is not None else self.gateway.get(resource_id)
            reads = self._reads_for(account) if account else []
            children = self.gateway.read_children(resource_id, reads) if reads else {}
        except TransientArmError:
            raise
        except ArmGatewayError as error:  # e.g. 403 during role propagation: not for a retry now
            cause = f"cannot read the account: {error.code or error.status or 'Failed'}: {error}"
            log.error("%s: %s", resource_id, cause)
            if self.settings.mode == "enforce":
                self.state.mark_unreadable(resource_id, cause, ctx.now)
            record = ctx.invalid(resource_id, cause, str(error.code or error.status or "Failed"), True)
            return Outcome(resource_id, "failed", [record], detail=cause)
        if account is None:
            return Outcome(resource_id, "gone", detail="the account no longer exists")
        return Snapshot(account, children)

    # -- finish earlier plans ----------------------------------------------------------------
    def _finish(self, journal: Journal, snapshot: Snapshot, ctx: RecordContext, into: Outcome) -> Journal:
        """Settle what earlier checks left unfinished, against the fresh snapshot: an entry whose
        account is as it was read is left for the write that follows (it joins it); any other is
        verified for the actions ARM acknowledged or whose effect is visible and that planning
        again no longer needs, with their records (the journal's Before, actor and event ID), or
        abandoned when none of it landed. Undelivered outbox rows are claimed for delivery."""
        if any(entry.state == "unreadable" for entry in journal.entries):
            self.state.clear_unreadable(snapshot.resource_id)
        kept: list[JournalEntry] = []
        replanned: Evaluation | InvalidAccount | None = None
        for entry in journal.entries:
            if entry.state == "unreadable":
                continue
            if entry.state not in UNFINISHED or _unchanged(entry, snapshot.account):
                kept.append(entry)
                continue
            replanned = replanned or plan(snapshot, self.policy, ctx.now)
            landed = _landed(entry, snapshot, replanned)
            records = _journal_records(entry, snapshot.account, self.settings.mode, ctx.now, landed)
            outbox = self._outbox(entry, records) if landed else None
            done = self.state.settle(entry, "verified" if landed else "abandoned", ctx.now, outbox)
            if done is None:  # another delivery settled it: its records are its own
                continue
            kept.append(done)
            if outbox is not None:
                log.info(
                    "%s: completed journal entry %s (%d records)", entry.resource_id, entry.key, len(records)
                )
                into.records += records
                into.outbox.append(outbox)
        for item in journal.outbox:
            claimed = self.state.claim_outbox(item, ctx.now)
            if claimed is not None:
                into.records += [FindingRecord.from_json(row) for row in claimed.records]
                into.outbox.append(claimed)
                into.breaker_tripped = into.breaker_tripped or claimed.breaker_tripped
        return dataclasses.replace(journal, entries=kept, outbox=[])

    # -- plan ----------------------------------------------------------------------------------
    def _plan(self, snapshot: Snapshot, ctx: RecordContext) -> Evaluation | Outcome:
        """Judge the fresh snapshot; a body the guardrail cannot judge is an `account-invalid` record."""
        account = snapshot.account
        resource_id = snapshot.resource_id or str(account.get("id") or "")
        ctx.actor, ctx.actor_source = provenance(account, ctx.event)
        problem = wellformed.problem(account)
        result = (
            plan(snapshot, self.policy, ctx.now) if problem is None else InvalidAccount(problem, resource_id)
        )
        if isinstance(result, InvalidAccount):
            log.error("%s: cannot judge the account body: %s", resource_id, result.message)
            message = f"cannot judge the account body: {result.message}"
            record = ctx.invalid(resource_id, message, None, False, kind=str(account.get("kind") or ""))
            return Outcome(resource_id, "invalid", [record], detail=result.message)
        return result

    def _audit(self, resource_id: str, ctx: RecordContext, listed: Mapping[str, Any] | None) -> Outcome:
        """Audit mode: the plan is reported, never executed."""
        snapshot = self._snapshot(resource_id, ctx, listed)
        if isinstance(snapshot, Outcome):
            return snapshot
        judged = self._plan(snapshot, ctx)
        if isinstance(judged, Outcome):
            return judged
        if not judged.findings:
            return Outcome(resource_id, "compliant")
        return Outcome(
            resource_id, "audit", ctx.records(judged, nothing, properties_of(snapshot.account), None)
        )

    def _unplanned(self, snapshot: Snapshot, judged: Evaluation | Outcome, ctx: RecordContext) -> Outcome:
        """Nothing to write: report-only findings (or none), or a body that cannot be judged."""
        if isinstance(judged, Outcome):
            return judged
        records = ctx.records(judged, nothing, properties_of(snapshot.account), None)
        return Outcome(judged.resource_id, "reported" if judged.findings else "compliant", records)

    # -- guard -------------------------------------------------------------------------------
    def _refusal(self, snapshot: Snapshot, actions: Sequence[Action]) -> tuple[str, bool, Status] | None:
        """Every action judged by its type's widening model (the rule modules' declared parts), the
        account PATCH also by `neverwiden`'s independent model; the engine guarantees neither
        objects, so an objection is a bug: refuse rather than trust."""
        reasons: list[str] = []
        for action in actions:
            reasons += action_widening(snapshot, action)
            if action.kind == "patch-account" and action.body is not None:
                unknown = sorted(set(properties_of(action.body)) - set(WRITTEN_PROPERTIES))
                reasons += [f"the PATCH sets {name}, which no rule declares it writes" for name in unknown]
                reasons += neverwiden.widens(snapshot.account, action.body)
        if not reasons:
            return None
        cause = "refused: the remediation would widen access (" + "; ".join(dict.fromkeys(reasons)) + ")"
        log.critical("%s: %s", snapshot.resource_id, cause)
        return cause, False, "remediation-failed"

    def _fight(self, resource_id: str, journal: Journal, now: datetime) -> tuple[str, bool, Status] | None:
        """(cause, tripped by this call, status) when the guardrail must not write; None to go
        ahead. Counts confirmed writes (journal entries written inside the window), never attempts."""
        window = self.settings.breaker_window
        limit = self.settings.breaker_max_remediations
        if journal.breaker is not None:
            return (
                f"breaker open until {journal.breaker.until.isoformat()}: not writing",
                False,
                "remediation-suspended",
            )
        confirmed = sum(1 for entry in journal.entries if entry.confirmed_at(now, window))
        if confirmed < limit:
            return None
        tripped = self.state.trip_breaker(resource_id, now)
        minutes = int(window.total_seconds() // 60)
        cause = (
            f"{confirmed} writes within {minutes} minutes; the {_ordinal(confirmed + 1)} was suspended: "
            f"another actor keeps re-applying this configuration; the guardrail stops writing to this "
            f"account for {minutes} minutes"
        )
        return cause, tripped, "remediation-suspended"

    def _held(
        self,
        snapshot: Snapshot,
        judged: Evaluation,
        ctx: RecordContext,
        cause: str,
        tripped: bool,
        status: Status,
    ) -> Outcome:
        """A plan the guard refused (failed) or the breaker holds (suspended): nothing written."""
        records = ctx.records(judged, every_fixed(status, cause), properties_of(snapshot.account), None)
        action: Literal["failed", "suspended"] = (
            "suspended" if status == "remediation-suspended" else "failed"
        )
        return Outcome(judged.resource_id, action, records, breaker_tripped=tripped, detail=cause)

    # -- journal and act -----------------------------------------------------------------------
    def _intent(self, snapshot: Snapshot, judged: Evaluation, ctx: RecordContext) -> JournalEntry:
        account = snapshot.account
        props = properties_of(account)
        etag = account.get("etag")
        before_etag = etag if isinstance(etag, str) else None
        return JournalEntry(
            resource_id=id_key(judged.resource_id),
            key=JournalEntry.key_for(before_etag, _read_digest(snapshot)),
            state="intent",
            before_etag=before_etag,
            correlation_id=ctx.correlation_id,
            event_id=ctx.event_id,
            actor=ctx.actor,
            actor_source=ctx.actor_source,
            trigger=ctx.trigger,
            kind=judged.kind,
            before={key: props[key] for key in WRITTEN_PROPERTIES if key in props},
            body=dict(judged.remediation or {}),
            findings=tuple(
                {
                    "rule": f.rule,
                    "severity": f.severity,
                    "message": f.message,
                    "value": f.value,
                    "action": index,
                }
                for f in judged.findings
                for index in [repairing(judged.actions, f)]
                if index is not None
            ),
            created_at=ctx.now,
            actions=tuple(action.journal_json() for action in judged.actions),
            before_modified=_modified_at(account),
        )

    def _act(
        self,
        entry: JournalEntry,
        created: bool,
        actions: Sequence[Action],
        snapshot: Snapshot,
        trigger: Trigger,
    ) -> _Executed:
        """The plan's actions in order, each paced per subscription; the account PATCH carries
        If-Match (the etag read). Stops at the first write that was not made. Transient trouble
        raises: the entry then keeps what ARM acknowledged (`written`), or is abandoned when ARM
        answered that nothing was written, so nobody later records a write the guardrail did not
        make (issue #23, item 3); a lost answer leaves it unfinished for the next check. An entry
        another delivery made (`created` false) is that delivery's to abandon."""
        from guardrail.gateway import TransientArmError

        executed = _Executed([])
        etag = snapshot.account.get("etag")
        for index, action in enumerate(actions):
            self.pacer.acquire(subscription_of(action.target), steady=trigger == "sweep")
            try:
                result = self.gateway.write(
                    action.method, action.target, action.body, etag if isinstance(etag, str) else None
                )
            except TransientArmError as error:
                answered = error.status is not None and error.status != 412  # ARM said: not written
                if executed.acked:
                    self.state.advance(
                        dataclasses.replace(entry, acked=tuple(executed.acked)), "written", self.clock()
                    )
                elif answered and created:
                    self.state.advance(entry, "abandoned", self.clock())
                raise
            if result.status == "written" or (result.status == "gone" and action.kind != "patch-account"):
                executed.acked.append(index)  # gone: the child to reject or delete is no more
                continue
            executed.stopped, executed.stopped_at = result, index
            break
        return executed

    def _verifying_read(
        self, before: Snapshot, entry: JournalEntry, executed: _Executed, ctx: RecordContext
    ) -> Snapshot | None:
        """The one re-read after acting (None: the account is gone; `before` when nothing was
        written). When it cannot be made, the entry keeps what ARM acknowledged (`written`) for the
        next check to settle, and this raises."""
        from guardrail.gateway import TransientArmError

        if not executed.acked:
            return before
        try:
            after = self._snapshot(before.resource_id, ctx)
        except TransientArmError:
            self.state.advance(dataclasses.replace(entry, acked=tuple(executed.acked)), "written", ctx.now)
            raise
        return after if isinstance(after, Snapshot) else None

    # -- settle ----------------------------------------------------------------------------------
    def _settle(
        self,
        entry: JournalEntry,
        judged: Evaluation,
        before: Snapshot,
        executed: _Executed,
        after: Snapshot | None,
        ctx: RecordContext,
    ) -> Outcome:
        """The entry's outcome and records, settled in one transaction with its outbox row: each
        acknowledged action verified on the re-read (remediated), or failed with the cause."""
        rid = judged.resource_id
        stopped = executed.stopped
        if not executed.acked and stopped is not None and stopped.status == "gone":
            self.state.settle(entry, "abandoned", ctx.now, None)
            return Outcome(rid, "gone", detail="deleted before the write")
        entry = dataclasses.replace(entry, acked=tuple(executed.acked))
        failures = _failures(judged.actions, executed, before, after, self.policy, ctx.now)
        if after is None:  # deleted after the write: what ARM acknowledged landed (issue #23, item 2)
            failures = {index: cause for index, cause in failures.items() if index not in executed.acked}
        after_props = (
            properties_of(after.account) if after is not None else _acknowledged(before, judged, executed)
        )
        records = ctx.records(
            judged, _statuses(judged.actions, executed, failures), properties_of(before.account), after_props
        )
        outbox = self._outbox(entry, records)
        state: JournalState = (
            "abandoned"
            if not executed.acked
            else "gone"
            if after is None
            else "failed"
            if failures
            else "verified"
        )
        settled = self.state.settle(entry, state, ctx.now, outbox)
        if settled is None and executed.acked:
            settled = self._settle_abandoned(entry, state, ctx.now, outbox)
        if settled is None:
            log.info("%s: journal entry %s was completed by another delivery", rid, entry.key)
            return Outcome(rid, "remediated", detail="recorded by another delivery")
        if failures and self.recheck is not None and _provisioning_failed(stopped, failures):
            self.recheck(rid, self.settings.recheck_delay)  # not the next sweep, hours away (#22, item 8)
        cause = "; ".join(dict.fromkeys(failures.values()))
        if after is None:
            cause = "the account was deleted right after the write (acknowledged, not verified)"
        action: Literal["remediated", "failed"] = "failed" if failures else "remediated"
        return Outcome(rid, action, records, outbox=[outbox], detail=cause)

    def _settle_abandoned(
        self, entry: JournalEntry, state: JournalState, now: datetime, outbox: OutboxItem
    ) -> JournalEntry | None:
        """The shared entry moved under this delivery: when another delivery of the same change
        abandoned it (ARM refused that one's write, e.g. 429) while this one's write was
        acknowledged, the write is this delivery's to record (an abandoned entry may still be
        found written by the one who wrote it). None: another delivery really settled it."""
        current = next((e for e in self.state.journal(entry.resource_id) if e.key == entry.key), None)
        if current is None or current.state != "abandoned":
            return None
        log.info(
            "%s: journal entry %s was abandoned by another delivery: recording this write",
            entry.resource_id,
            entry.key,
        )
        return self.state.settle(dataclasses.replace(current, acked=entry.acked), state, now, outbox)

    def _outbox(self, entry: JournalEntry, records: Sequence[FindingRecord]) -> OutboxItem:
        return OutboxItem(
            resource_id=entry.resource_id,
            key=OutboxItem.key_for(entry.key),
            records=tuple(record.to_json() for record in records),
            created_at=self.clock(),
        )

    # -- deliver ---------------------------------------------------------------------------------
    def _deliver(self, outcome: Outcome, event: ResourceEvent | None) -> None:
        """Every record to the finding sinks (a sink never blocks or undoes a remediation); the
        outbox rows that carried them deleted with the alert's cool-down claims (one transaction in
        the account's journal partition); the alert to the alert sinks. A crash before the delete
        leaves the rows for the next check (at least once: the records' correlation ID, rule, value
        and status identify a repeat)."""
        from guardrail.sinks import deliver_findings

        if outcome.records:
            deliver_findings(outcome.records, self.finding_sinks)
        if not self._alert(outcome, event):  # the claims did not take the outbox rows with them
            for item in outcome.outbox:
                self.state.outbox_delivered(item)

    def _alert(self, outcome: Outcome, event: ResourceEvent | None) -> bool:
        """Alert what is new within the cool-down; True when the claims deleted the outbox rows
        (one transaction in the journal partition)."""
        from guardrail.alerts import compose_alert
        from guardrail.sinks import deliver_alert

        active = [r for r in outcome.records if r.status != "exempted"]
        if not active:
            return False
        now = self.clock()
        if (
            event is not None
            and not outcome.outbox
            and not self.state.claim_event(event.event_id, now)
            and not outcome.breaker_tripped
        ):
            log.info("event %s was delivered before: no second alert", event.event_id)
            return False
        # One claim per (rule, value, status): only what is new within the cool-down alerts, so the
        # re-check after the guardrail's own write (a subset of what was alerted) stays quiet. The
        # account's claims are made together (one partition read and one transaction).
        cooldown = self.settings.alert_cooldown
        keys = [alert_key(r) for r in active]
        fresh = self.state.claim_alerts(outcome.resource_id, keys, now, cooldown, delivered=outcome.outbox)
        if not any(fresh) and not outcome.breaker_tripped:
            log.info("%s: findings already alerted within the cool-down", outcome.resource_id)
            return True
        alert = compose_alert(outcome.records)
        if alert is not None:
            outcome.alerted = True
            deliver_alert(alert, self.alert_sinks)
        return True


# -- the reconciler's pure helpers ---------------------------------------------------------------


def _joined(earlier: Outcome, outcome: Outcome) -> Outcome:
    """This check's outcome, after the records and outbox rows of the earlier plans it settled."""
    if not earlier.records and not earlier.outbox:
        return outcome
    outcome.records[:0] = earlier.records
    outcome.outbox[:0] = earlier.outbox
    outcome.breaker_tripped = outcome.breaker_tripped or earlier.breaker_tripped
    if outcome.action in ("compliant", "reported"):
        outcome.action = "remediated"
    return outcome


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _unchanged(entry: JournalEntry, account: Mapping[str, Any]) -> bool:
    """The account is as the entry's plan read it: nothing of it landed yet."""
    return account.get("etag") == entry.before_etag and _modified_at(account) == entry.before_modified


def _still_planned(action: Action, replanned: Evaluation | InvalidAccount) -> bool:
    if not isinstance(replanned, Evaluation):
        return True
    return any(a.kind == action.kind and same_id(a.target, action.target) for a in replanned.actions)


def _landed(entry: JournalEntry, snapshot: Snapshot, replanned: Evaluation | InvalidAccount) -> set[int]:
    """The indexes of an unfinished entry's actions that landed: those the fresh snapshot no longer
    needs and that ARM acknowledged or whose effect the snapshot shows (the account holds the
    PATCH's body; for others, only an acknowledgement counts unless the whole plan is done)."""
    actions = [Action.from_json(data) for data in entry.actions] or (
        [Action("patch-account", "PATCH", entry.resource_id, dict(entry.body), ())] if entry.body else []
    )
    landed: set[int] = set()
    for index, action in enumerate(actions):
        if _still_planned(action, replanned):
            continue
        if index in entry.acked or (action.kind == "patch-account" and holds(snapshot.account, action.body)):
            landed.add(index)
        elif action.kind != "patch-account" and (index == 0 or index - 1 in landed):
            landed.add(index)  # made in order: visible, and everything before it landed
    return landed


def _failures(
    actions: Sequence[Action],
    executed: _Executed,
    before: Snapshot,
    after: Snapshot | None,
    policy: Any,
    now: datetime,
) -> dict[int, str]:
    """Why each action of the plan did not land, by index: refused or not made (the write that
    stopped the plan, and those after it), or acknowledged but not verified on the re-read."""
    failures: dict[int, str] = {}
    stopped = executed.stopped
    if stopped is not None and executed.stopped_at is not None:
        cause = f"{stopped.error_code or 'Failed'}: {stopped.error_message or 'the write did not succeed'}"
        for index in range(executed.stopped_at, len(actions)):
            failures[index] = cause if index == executed.stopped_at else f"not made: {cause}"
    if after is None:
        return failures
    if properties_of(after.account).get("provisioningState") == "Failed":
        for index in executed.acked:
            failures[index] = "ProvisioningFailed: the account's provisioningState is Failed after the write"
        return failures
    replanned = plan(after, policy, now) if wellformed.problem(after.account) is None else None
    for index in executed.acked:
        action = actions[index]
        if replanned is None or _still_planned(action, replanned):
            remaining = (
                "a judgeable body" if not isinstance(replanned, Evaluation) else _needs(action, replanned)
            )
            failures[index] = f"VerificationFailed: still needs {remaining} after the write"
    return failures


def _provisioning_failed(stopped: WriteResult | None, failures: Mapping[int, str]) -> bool:
    if stopped is not None and stopped.status == "provisioning-failed":
        return True
    return any(cause.startswith("ProvisioningFailed") for cause in failures.values())


def _needs(action: Action, replanned: Evaluation) -> str:
    again = next((a for a in replanned.actions if a.kind == action.kind), None)
    if action.kind == "patch-account" and again is not None:
        return str(again.body)
    return f"{action.kind} {action.target}"


def _statuses(actions: Sequence[Action], executed: _Executed, failures: Mapping[int, str]) -> StatusOf:
    """The status of each fixed finding: remediated when its action landed, failed with the cause."""

    def status(finding: Finding) -> tuple[Status, str | None] | None:
        index = repairing(actions, finding)
        if index is None:
            return None
        if index in failures:
            return "remediation-failed", failures[index]
        return ("remediated", None) if index in executed.acked else None

    return status


def _acknowledged(before: Snapshot, judged: Evaluation, executed: _Executed) -> Mapping[str, Any]:
    """The account's properties as ARM acknowledged the PATCH (the account is gone: no re-read)."""
    props = dict(properties_of(before.account))
    for index in executed.acked:
        body = judged.actions[index].body
        if judged.actions[index].kind == "patch-account" and body is not None:
            props.update(properties_of(body))
    return props


def _journal_records(
    entry: JournalEntry, account: Mapping[str, Any], mode: Mode, now: datetime, landed: set[int]
) -> list[FindingRecord]:
    """The `remediated` records of a journal entry settled later, for its actions that landed: the
    journal's Before, actor, event ID and correlation ID; After as the account now holds it (or,
    for a rule that shows its action, what the action wrote)."""
    context = RecordContext(
        trigger=entry.trigger,  # type: ignore[arg-type]
        mode=mode,
        actor=entry.actor,
        correlation_id=entry.correlation_id or str(uuid.uuid4()),
        event_id=entry.event_id,
        now=now,
        actor_source=entry.actor_source,  # type: ignore[arg-type]
    )
    actions = [Action.from_json(data) for data in entry.actions]
    after = properties_of(account)
    return [
        context.record(
            str(account.get("id") or entry.resource_id),
            str(finding["rule"]),
            finding["severity"],
            "remediated",
            str(finding["message"]),
            finding.get("value"),
            entry.kind,
            side(str(finding["rule"]), entry.before),
            written(str(finding["rule"]), after, actions[index] if index < len(actions) else None),
        )
        for finding in entry.findings
        if (index := int(finding.get("action", 0))) in landed
    ]
