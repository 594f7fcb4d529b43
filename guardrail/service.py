"""The one path every caller takes, as one explicit state machine:

    read → evaluate → decide → journal → write → verify → record → alert
      ↑                                     │
      └──────── 412: re-read, recompute ────┘

Events, the reconcile sweep, the CLI and the demo all call `Guardrail.check_account`. The policy
engine judges; the gateway only reads and writes ARM (it never calls back); the state store keeps
the remediation journal, breakers and alert claims; the sinks record findings and deliver alerts.

What is durable at each step, and what a crash there leaves:
- read / evaluate / decide: nothing yet; a crash is redone by Event Grid's redelivery or the sweep.
- journal: an `intent` entry (correlation ID, event ID, actor, what the body replaces, the body,
  the findings it repairs), keyed by the etag read. A crash before the PATCH lands leaves an
  intent that the next check finds with the account unchanged: it writes anew on the same entry.
- write: ARM's acknowledgement moves the entry to `written` when verification cannot follow at
  once (a failed re-read); a crash between the two leaves `intent`, and the next check sees the
  account holding the intended state and completes it the same way.
- verify: the re-read that confirms the fix moves the entry to `verified`; the breaker counts
  these confirmed writes, never attempts.
- record / alert: the `remediated` records carry the journal's Before, actor and event ID, also
  when a later delivery or the sweep completes an unfinished entry (lost response, failed re-read).
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import zip_longest
from typing import TYPE_CHECKING, Any, Literal, Protocol

from guardrail import neverwiden, observe, wellformed
from guardrail.engine import Evaluation, Finding, InvalidAccount, evaluate
from guardrail.events import MalformedEvent, ResourceEvent, parse_event
from guardrail.findings import ActorSource, FindingRecord, Status
from guardrail.resource_ids import id_key, name_key, subscription_of
from guardrail.rules.account_invalid import ACCOUNT_INVALID
from guardrail.rules.outbound import FQDNS, OUTBOUND_FQDN_NOT_ALLOWED, OUTBOUND_NOT_RESTRICTED, RESTRICT
from guardrail.rules.private_endpoint import PRIVATE_ENDPOINT_NOT_ALLOWED
from guardrail.state import UNFINISHED, BreakerState, JournalEntry
from guardrail.vocabulary import Action, Mode, Severity, Trigger

if TYPE_CHECKING:
    from guardrail.gateway import WriteResult
    from guardrail.settings import Settings
    from guardrail.sinks import AlertSink, FindingSink
    from guardrail.state import StateStore

log = logging.getLogger("guardrail")

#: The properties a remediation body may replace; the journal keeps them as read.
_WRITTEN_PROPERTIES = ("networkAcls", "publicNetworkAccess", "disableLocalAuth", RESTRICT, FQDNS)
#: Rules whose fix lies outside networkAcls: their Before/After is that one property.
_OUTSIDE_ACLS: Mapping[str, str] = {
    "local-auth-enabled": "disableLocalAuth",
    "public-network-access": "publicNetworkAccess",
    OUTBOUND_NOT_RESTRICTED.id: RESTRICT,
    OUTBOUND_FQDN_NOT_ALLOWED.id: FQDNS,
}
INVALID_RULE = ACCOUNT_INVALID.id
REJECT_RULE = PRIVATE_ENDPOINT_NOT_ALLOWED.id
#: What a rejected private endpoint connection's state says (the owner sees it in the portal).
REJECTION_DESCRIPTION = (
    "Rejected by the AI Services Network Guardrail: the private endpoint is not in a subscription the "
    "policy allows (network.allowed_private_endpoint_subscriptions)"
)


class Gateway(Protocol):
    def get(self, resource_id: str) -> dict[str, Any] | None: ...

    def list_accounts(self, subscriptions: list[str] | None) -> Iterable[dict[str, Any]]: ...

    def patch(self, resource_id: str, body: Mapping[str, Any], etag: str | None) -> WriteResult: ...

    def reject_private_endpoint(self, connection_id: str, description: str) -> WriteResult: ...

    def list_page(
        self, subscription: str, next_link: str | None
    ) -> tuple[list[dict[str, Any]], str | None]: ...

    def diagnostic_settings(self, resource_id: str) -> list[dict[str, Any]] | None: ...

    def put_diagnostic_setting(self, resource_id: str, setting: Mapping[str, Any]) -> WriteResult: ...


@dataclass
class Outcome:
    """What happened to one account in one pass."""

    resource_id: str
    action: Action
    records: list[FindingRecord] = field(default_factory=list)
    alerted: bool = False
    breaker_tripped: bool = False
    detail: str = ""
    started: float = 0.0
    finished: float = 0.0
    event_time: datetime | None = None
    trigger: Trigger | Literal[""] = ""
    actor: str | None = None

    @property
    def seconds(self) -> float:
        return self.finished - self.started


@dataclass
class SweepReport:
    listed: int = 0
    compliant: int = 0
    outcomes: list[Outcome] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0
    listed_by_subscription: dict[str, int] = field(default_factory=dict)  # lower-case id -> count

    def count(self, action: Action) -> int:
        return sum(1 for outcome in self.outcomes if outcome.action == action)

    def note_listed(self, body: Mapping[str, Any]) -> None:
        rid = body.get("id")
        if isinstance(rid, str) and rid.count("/") > 2:
            sub = subscription_of(rid)
            self.listed_by_subscription[sub] = self.listed_by_subscription.get(sub, 0) + 1


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


def _props(account: Mapping[str, Any] | None) -> Mapping[str, Any]:
    props = account.get("properties") if account else None
    return props if isinstance(props, Mapping) else {}


def _side(rule: str, props: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """A record's Before/After: the networkAcls object, or for a rule fixed outside it, that
    one property (`{"disableLocalAuth": ...}`); None when there is no such state."""
    if props is None:
        return None
    outside = _OUTSIDE_ACLS.get(rule)
    if outside is not None:
        return {outside: props.get(outside)}
    acls = props.get("networkAcls")
    return dict(acls) if isinstance(acls, Mapping) else None


def last_modified_by(account: Mapping[str, Any]) -> str | None:
    """Who last changed the account, from ARM's `systemData` (in the same form as events give)."""
    system = account.get("systemData")
    if not isinstance(system, Mapping):
        return None
    who, kind = system.get("lastModifiedBy"), system.get("lastModifiedByType")
    if not isinstance(who, str) or not who:
        return None
    prefix = {"Application": "app:", "ManagedIdentity": "principal:", "Key": "key:"}.get(str(kind), "")
    return prefix + who


def provenance(
    account: Mapping[str, Any] | None, event: ResourceEvent | None
) -> tuple[str | None, ActorSource]:
    """Who last modified the state being fixed: ARM's `systemData.lastModifiedBy` on the fresh
    read; the event's claims only when systemData names nobody (an event may be late or forged)."""
    recorded = last_modified_by(account) if account is not None else None
    if recorded is not None:
        return recorded, "systemData"
    claimed = event.actor if event is not None else None
    if claimed:
        return claimed, "event-claims"
    return None, "none"


def holds(account: Mapping[str, Any], body: Mapping[str, Any]) -> bool:
    """Does the account hold every property the body sets (the intended state)?"""
    props = _props(account)
    sent = body.get("properties")
    return isinstance(sent, Mapping) and all(props.get(key) == value for key, value in sent.items())


def _alert_key(record: FindingRecord) -> str:
    text = f"{record.rule}\x1f{record.value or ''}\x1f{record.status}"
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


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
        self.observers: list[Callable[[Outcome], None]] = []  # told of every outcome (demo, CLI)
        self._locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None

    def _background(self) -> ThreadPoolExecutor:
        """Threads for state-store reads made while ARM answers (never for ARM calls)."""
        with self._locks_guard:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=32, thread_name_prefix="guardrail-state")
            return self._pool

    def _account_lock(self, resource_id: str) -> threading.Lock:
        """One check at a time per account in this worker (across workers, the journal's
        conditional writes and If-Match keep one change from being written or counted twice)."""
        with self._locks_guard:
            return self._locks.setdefault(id_key(resource_id), threading.Lock())

    # -- entry points -----------------------------------------------------------------------
    def handle_event(self, payload: Mapping[str, Any]) -> Outcome | None:
        """One delivered event. Malformed or irrelevant events are logged and dropped; transient
        ARM failures raise so that Event Grid redelivers."""
        try:
            event = parse_event(payload)
        except MalformedEvent as error:
            log.error("dropping malformed event: %s", error)
            observe.event_ignored("malformed")
            return None
        if not event.relevant or event.account_id is None:
            log.log(event.ignore_level, "ignoring event %s: %s", event.event_id, event.ignore_reason())
            observe.event_ignored("not-an-account" if event.account_id is None else "event-type")
            return None
        identity = self.settings.identity
        if identity and event.actor and identity.lower() in event.actor.lower():
            log.info("event %s comes from the guardrail's own write: expecting a no-op", event.event_id)
        if event.resource is not None and self.policy.diagnostics is None:
            # A Resource Notification of this very account (events.py checks `resourceInfo.id`)
            # carries its full properties: a compliant one needs no read. (An unfinished journal
            # entry is completed by the write event's delivery or the sweep.)
            quick = evaluate(event.resource, self.policy, self.clock())
            if isinstance(quick, Evaluation) and not quick.findings:
                log.info(
                    "event %s: %s is compliant (from the notification)", event.event_id, event.account_id
                )
                now = time.monotonic()
                quick_outcome = Outcome(event.account_id, "compliant", started=now, finished=now)
                quick_outcome.trigger = "event"
                observe.check_finished(quick_outcome)
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
                outcome = self._check(resource_id, trigger, event, account)
            except Exception as error:
                observe.check_raised(trigger, error)
                raise
            outcome.started, outcome.finished = started, time.monotonic()
            outcome.event_time = event.event_time if event else None
            outcome.trigger = trigger
            outcome.actor = next(
                (r.actor for r in outcome.records if r.actor), event.actor if event else None
            )
            self._record(outcome.records)
            self._alert(outcome, event)
        observe.check_finished(outcome)
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
        observe.sweep_finished(self, report, subs or ())
        return report

    def unfinished_accounts(self, subscriptions: Sequence[str] | None = None) -> list[str]:
        """Accounts the journal names as unfinished or unreadable (enforce mode only), in the given
        subscriptions (None: all)."""
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
            result = evaluate(body, self.policy, now)
            if isinstance(result, Evaluation) and not result.findings and self.policy.diagnostics is None:
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

    # -- the path ---------------------------------------------------------------------------
    def _check(
        self,
        resource_id: str,
        trigger: Trigger,
        event: ResourceEvent | None,
        listed: Mapping[str, Any] | None,
    ) -> Outcome:
        from guardrail.gateway import TransientArmError, WriteResult

        now = self.clock()
        context = _RecordContext(
            trigger=trigger,
            mode=self.settings.mode,
            actor=None,
            correlation_id=(event.correlation_id if event else None) or str(uuid.uuid4()),
            event_id=event.event_id if event else None,
            now=now,
        )
        diagnostics = self.gateway.diagnostic_settings(resource_id) if self.policy.diagnostics else None
        if self.settings.mode == "audit":
            account = dict(listed) if listed is not None else self._read(resource_id, context)
            if isinstance(account, Outcome):
                return account
            return self._judge_only(resource_id, account, event, context, diagnostics)

        # One query (unfinished entries, confirmed writes, the breaker), made while ARM answers
        # the read.
        pending = self._background().submit(self.state.journal_and_breaker, resource_id, now)
        journal: list[JournalEntry] | None = None
        breaker: BreakerState | None = None
        completed: list[FindingRecord] = []
        mine: JournalEntry | None = None
        for _ in range(self.precondition_retries + 1):
            # -- read
            try:
                account = self._read(resource_id, context)
            finally:
                if journal is None:
                    journal, breaker = pending.result()
            if isinstance(account, Outcome):
                return account
            if any(entry.state == "unreadable" for entry in journal):
                self.state.clear_unreadable(resource_id)
                journal = [entry for entry in journal if entry.state != "unreadable"]
            # -- complete what earlier checks left unfinished (a lost response, a failed re-read)
            journal, done = self._complete(journal, account, now)
            completed += done
            # -- evaluate
            judged = self._evaluate(resource_id, account, event, context, diagnostics)
            if isinstance(judged, Outcome):
                judged.records[:0] = completed
                return judged
            result = judged
            body = result.remediation
            rejections = result.private_endpoint_rejections  # writes of their own, beside the PATCH
            before = _props(account)
            # -- decide
            if body is None and not rejections:  # nothing to write: report-only (or nothing) remains
                records = completed + context.records(result, lambda f: None, before, None)
                outcome = Outcome(resource_id, "remediated" if completed else "reported", records)
                if not result.findings and not completed:
                    outcome.action = "compliant"
                return self._with_diagnostics(resource_id, account, result, outcome, now)
            refused = neverwiden.widens(account, body) if body is not None else []
            if refused:  # the engine guarantees this never happens; refuse rather than trust
                cause = "refused: the remediation would widen access (" + "; ".join(refused) + ")"
                log.critical("%s: %s", resource_id, cause)
                return self._unwritten(resource_id, result, context, before, "failed", cause, completed)
            suspended = self._fight(resource_id, journal, now, breaker)
            if suspended is None:
                # -- journal
                mine, created = self.state.begin(self._intent(resource_id, account, result, context, now))
            if suspended is not None:
                cause, tripped = suspended
                outcome = self._unwritten(resource_id, result, context, before, "suspended", cause, completed)
                outcome.breaker_tripped = tripped
                return outcome
            assert mine is not None
            if not created:
                log.info(
                    "%s: joining journal entry %s (same change, another delivery)", resource_id, mine.key
                )
            # -- write: the PATCH (If-Match), then each private endpoint connection to reject
            written = WriteResult("written", resource_id)
            if body is not None:
                self.pacer.acquire(subscription_of(resource_id), steady=trigger == "sweep")
                written = self.gateway.patch(resource_id, body, account.get("etag"))
            if written.status == "precondition-failed":  # someone wrote meanwhile: re-read, recompute
                log.info("%s: 412 on the write: reading again", resource_id)
                journal = [e for e in journal if e.key != mine.key] + [mine]
                continue
            if written.status == "gone":
                self.state.advance(mine, "abandoned", now)
                return Outcome(resource_id, "gone", completed, detail="deleted before the write")
            for connection in rejections if written.status == "written" else ():
                self.pacer.acquire(subscription_of(resource_id), steady=trigger == "sweep")
                rejected = self.gateway.reject_private_endpoint(connection, REJECTION_DESCRIPTION)
                if rejected.status not in ("written", "gone"):  # gone: the connection is no more
                    written = rejected
                    break
            if written.status != "written":
                self.state.advance(mine, "abandoned", now)
                error = written.error_message or "the write did not succeed"
                cause = f"{written.error_code or 'Failed'}: {error}"
                return self._unwritten(resource_id, result, context, before, "failed", cause, completed)
            # -- verify (a re-read that cannot be made leaves the entry `written` for completion)
            try:
                after = self.gateway.get(resource_id)
            except TransientArmError:
                self.state.advance(mine, "written", now)
                raise
            outcome = self._verified(resource_id, result, context, mine, before, after, body or {}, now)
            outcome.records[:0] = completed
            return self._with_diagnostics(resource_id, after or account, result, outcome, now)
        raise TransientArmError(
            f"PATCH {resource_id}: the account kept changing (412 x{self.precondition_retries + 1})",
            status=412,
            code="PreconditionFailed",
        )

    def _read(self, resource_id: str, context: _RecordContext) -> dict[str, Any] | Outcome:
        """The fresh read: the account, or the outcome when it is gone or cannot be read (a
        `remediation-failed` record naming the cause; the sweep retries it)."""
        from guardrail.gateway import ArmGatewayError, TransientArmError

        try:
            account = self.gateway.get(resource_id)
        except TransientArmError:
            raise  # Event Grid redelivers; the sweep counts it as an error and goes on
        except ArmGatewayError as error:  # e.g. 403 during role propagation: not for a retry now
            cause = f"cannot read the account: {error.code or error.status or 'Failed'}: {error}"
            log.error("%s: %s", resource_id, cause)
            if self.settings.mode == "enforce":
                self.state.mark_unreadable(resource_id, cause, context.now)
            record = context.invalid(resource_id, cause, str(error.code or error.status or "Failed"), True)
            return Outcome(resource_id, "failed", [record], detail=cause)
        if account is None:
            return Outcome(resource_id, "gone", detail="the account no longer exists")
        return account

    def _evaluate(
        self,
        resource_id: str,
        account: Mapping[str, Any],
        event: ResourceEvent | None,
        context: _RecordContext,
        diagnostics: list[dict[str, Any]] | None,
    ) -> Evaluation | Outcome:
        """Judge the fresh read; a body the guardrail cannot judge is an `account-invalid` record."""
        context.actor, context.actor_source = provenance(account, event)
        problem = wellformed.problem(account)
        result = (
            evaluate(account, self.policy, context.now, diagnostic_settings=diagnostics)
            if problem is None
            else InvalidAccount(problem, resource_id)
        )
        if isinstance(result, InvalidAccount):
            log.error("%s: cannot judge the account body: %s", resource_id, result.message)
            message = f"cannot judge the account body: {result.message}"
            record = context.invalid(resource_id, message, None, False, kind=str(account.get("kind") or ""))
            return Outcome(resource_id, "invalid", [record], detail=result.message)
        return result

    def _judge_only(
        self,
        resource_id: str,
        account: Mapping[str, Any],
        event: ResourceEvent | None,
        context: _RecordContext,
        diagnostics: list[dict[str, Any]] | None,
    ) -> Outcome:
        """Audit mode: report, never write."""
        judged = self._evaluate(resource_id, account, event, context, diagnostics)
        if isinstance(judged, Outcome):
            return judged
        if not judged.findings:
            return Outcome(resource_id, "compliant")
        return Outcome(resource_id, "audit", context.records(judged, lambda f: None, _props(account), None))

    def _fight(
        self, resource_id: str, journal: Sequence[JournalEntry], now: datetime, breaker: BreakerState | None
    ) -> tuple[str, bool] | None:
        """(cause, tripped by this call) when the guardrail must not write; None to go ahead.
        `breaker` is the open breaker read with the journal. Counts confirmed writes (journal
        entries written inside the window), never attempts."""
        window = self.settings.breaker_window
        limit = self.settings.breaker_max_remediations
        if breaker is not None:
            return f"breaker open until {breaker.until.isoformat()}: not writing", False
        confirmed = sum(1 for entry in journal if entry.confirmed_at(now, window))
        if confirmed < limit:
            return None
        tripped = self.state.trip_breaker(resource_id, now)
        minutes = int(window.total_seconds() // 60)
        cause = (
            f"{confirmed} writes within {minutes} minutes; the {_ordinal(confirmed + 1)} was suspended: "
            f"another actor keeps re-applying this configuration; the guardrail stops writing to this "
            f"account for {minutes} minutes"
        )
        return cause, tripped

    def _intent(
        self,
        resource_id: str,
        account: Mapping[str, Any],
        result: Evaluation,
        context: _RecordContext,
        now: datetime,
    ) -> JournalEntry:
        props = _props(account)
        etag = account.get("etag")
        return JournalEntry(
            resource_id=id_key(resource_id),
            key=JournalEntry.key_for(etag if isinstance(etag, str) else None),
            state="intent",
            before_etag=etag if isinstance(etag, str) else None,
            correlation_id=context.correlation_id,
            event_id=context.event_id,
            actor=context.actor,
            actor_source=context.actor_source,
            trigger=context.trigger,
            kind=result.kind,
            before={key: props[key] for key in _WRITTEN_PROPERTIES if key in props},
            body=dict(result.remediation or {}),
            findings=tuple(
                {"rule": f.rule, "severity": f.severity, "message": f.message, "value": f.value}
                for f in result.findings
                if f.fixed and f.rule != "diagnostics-missing"
            ),
            created_at=now,
        )

    def _verified(
        self,
        resource_id: str,
        result: Evaluation,
        context: _RecordContext,
        entry: JournalEntry,
        before: Mapping[str, Any],
        after: Mapping[str, Any] | None,
        body: Mapping[str, Any],
        now: datetime,
    ) -> Outcome:
        """The re-read after an acknowledged write: verified, or a failure naming why."""
        if after is None:
            self.state.advance(entry, "written", now)
            return Outcome(resource_id, "gone", detail="deleted right after the write")
        problem = None
        if _props(after).get("provisioningState") == "Failed":
            problem = "ProvisioningFailed: the account's provisioningState is Failed after the write"
        else:
            again = evaluate(after, self.policy, now) if wellformed.problem(after) is None else None
            if not isinstance(again, Evaluation) or again.remediation is not None:
                remaining = again.remediation if isinstance(again, Evaluation) else "a judgeable body"
                problem = f"VerificationFailed: still needs {remaining} after the write"
            elif again.private_endpoint_rejections:
                left = ", ".join(again.private_endpoint_rejections)
                problem = f"VerificationFailed: private endpoint connections still to reject: {left}"
        if problem is not None:
            self.state.advance(entry, "written", now)  # it was written: the breaker counts it
            return self._unwritten(resource_id, result, context, before, "failed", problem, [])
        if self.state.advance(entry, "verified", now) is None:
            # Another delivery completed this entry first and recorded it: nothing more to say.
            log.info("%s: journal entry %s was completed by another delivery", resource_id, entry.key)
            return Outcome(resource_id, "remediated", detail="recorded by another delivery")
        fixed = status_of_fixed("remediated")
        return Outcome(resource_id, "remediated", context.records(result, fixed, before, _props(after)))

    def _complete(
        self, journal: Sequence[JournalEntry], account: Mapping[str, Any], now: datetime
    ) -> tuple[list[JournalEntry], list[FindingRecord]]:
        """Finish the journal's unfinished entries against the fresh read: an entry whose body the
        account now holds (or is compliant because of), or whose private endpoint rejections were
        made, is verified and its `remediated` records are emitted with the journal's Before, actor
        and event ID (less a rejection still due: this check makes and records it); an entry whose
        account is still at the etag read is left for the write that follows; any other is
        abandoned."""
        kept: list[JournalEntry] = []
        records: list[FindingRecord] = []
        for entry in journal:
            if entry.state not in UNFINISHED:
                kept.append(entry)
                continue
            if account.get("etag") == entry.before_etag:  # the write never landed
                kept.append(entry)
                continue
            outstanding = self._outstanding(account, entry, now)
            if outstanding is not None:
                done = self.state.advance(entry, "verified", now)
                if done is None:  # another delivery completed it
                    continue
                kept.append(done)
                records += [  # a rejection still due is this check's to make and record
                    r
                    for r in _journal_records(done, account, self.settings.mode, now)
                    if not (r.rule == REJECT_RULE and r.value in outstanding)
                ]
                log.info(
                    "%s: completed journal entry %s from %s (%d records)",
                    entry.resource_id,
                    entry.key,
                    entry.created_at.isoformat(),
                    len(records),
                )
                continue
            self.state.advance(entry, "abandoned", now)  # changed since by someone else
        return kept, records

    def _outstanding(
        self, account: Mapping[str, Any], entry: JournalEntry, now: datetime
    ) -> set[str | None] | None:
        """What of an unfinished entry's change the account still lacks: the values of its private
        endpoint findings whose connections are still to reject; None when none of it landed (the
        account neither holds its body nor is past needing it, and every rejection it meant is due)."""
        result = evaluate(account, self.policy, now) if wellformed.problem(account) is None else None
        if not isinstance(result, Evaluation):  # a body it cannot judge: only the PATCH can be seen
            return set() if holds(account, entry.body) else None
        due = {f.value for f in result.findings if f.rule == REJECT_RULE and f.fixed}
        meant = {f.get("value") for f in entry.findings if f.get("rule") == REJECT_RULE}
        patched = bool(entry.body) and (holds(account, entry.body) or result.remediation is None)
        if not patched and not meant - due:
            return None
        return meant & due

    def _unwritten(
        self,
        resource_id: str,
        result: Evaluation,
        context: _RecordContext,
        before: Mapping[str, Any],
        action: Action,
        cause: str,
        completed: list[FindingRecord],
    ) -> Outcome:
        """Records for a write that was not made or did not take: failed or suspended."""
        status: Status = "remediation-suspended" if action == "suspended" else "remediation-failed"
        records = completed + context.records(result, status_of_fixed(status, cause), before, None)
        return Outcome(resource_id, action, records, detail=cause)

    def _with_diagnostics(
        self,
        resource_id: str,
        account: Mapping[str, Any],
        result: Evaluation,
        outcome: Outcome,
        now: datetime,
    ) -> Outcome:
        if result.diagnostic_setting is None or outcome.action in ("gone", "suspended"):
            return outcome
        return self._write_diagnostics(resource_id, account, result.diagnostic_setting, outcome, now)

    def _write_diagnostics(
        self,
        resource_id: str,
        account: Mapping[str, Any],
        setting: dict[str, Any],
        outcome: Outcome,
        now: datetime,
    ) -> Outcome:
        """diagnostics-missing: create the setting, read the settings back, judge again."""
        written = self.gateway.put_diagnostic_setting(resource_id, setting)
        if written.status == "gone":
            return Outcome(resource_id, "gone", detail="deleted before the write")
        status: Status = "remediated"
        cause = ""
        if written.status != "written":
            status = "remediation-failed"
            cause = (
                f"{written.error_code or 'Failed'}: {written.error_message or 'the write did not succeed'}"
            )
        else:
            settings = list((written.after or {}).get("value") or [])
            verified = evaluate(account, self.policy, now, diagnostic_settings=settings)
            if not isinstance(verified, Evaluation) or any(
                f.rule == "diagnostics-missing" for f in verified.findings
            ):
                status, cause = "remediation-failed", "the diagnostic setting did not verify on re-read"
        records = [
            dataclasses.replace(
                r,
                status=status,
                message=f"{r.message} — {cause}" if cause else r.message,
                before=None,
                after=dict(setting) if status == "remediated" else None,
            )
            if r.rule == "diagnostics-missing" and r.status == "violation"
            else r
            for r in outcome.records
        ]
        action = outcome.action
        if status == "remediation-failed":
            action, outcome.detail = "failed", cause
        elif action in ("reported", "compliant"):
            action = "remediated"
        return dataclasses.replace(outcome, action=action, records=records)

    # -- record and alert ---------------------------------------------------------------------
    def _record(self, records: list[FindingRecord]) -> None:
        """Every sink gets the batch; a sink never blocks or undoes a remediation (undelivered
        records go to the function log as JSON)."""
        from guardrail.sinks import deliver_findings

        if records:
            deliver_findings(records, self.finding_sinks)

    def _alert(self, outcome: Outcome, event: ResourceEvent | None) -> None:
        from guardrail.alerts import compose_alert
        from guardrail.sinks import deliver_alert

        active = [r for r in outcome.records if r.status != "exempted"]
        if not active:
            return
        now = self.clock()
        if (
            event is not None
            and not self.state.claim_event(event.event_id, now)
            and not outcome.breaker_tripped
        ):
            log.info("event %s was delivered before: no second alert", event.event_id)
            return
        # One claim per (rule, value, status): only what is new within the cool-down alerts, so the
        # re-check after the guardrail's own write (a subset of what was alerted) stays quiet. The
        # account's claims are made together (one partition read and one transaction).
        cooldown = self.settings.alert_cooldown
        keys = [_alert_key(r) for r in active]
        fresh = self.state.claim_alerts(outcome.resource_id, keys, now, cooldown)
        if not any(fresh) and not outcome.breaker_tripped:
            log.info("%s: findings already alerted within the cool-down", outcome.resource_id)
            return
        alert = compose_alert(outcome.records)
        if alert is None:
            return
        outcome.alerted = True
        deliver_alert(alert, self.alert_sinks)


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def status_of_fixed(
    state: Status, cause: str | None = None
) -> Callable[[Finding], tuple[Status, str | None] | None]:
    """The status of the fixed findings (the diagnostics rule is decided by its own write)."""
    return lambda f: None if f.rule == "diagnostics-missing" else (state, cause)


def _journal_records(
    entry: JournalEntry, account: Mapping[str, Any], mode: Mode, now: datetime
) -> list[FindingRecord]:
    """The `remediated` records of a journal entry completed later: the journal's Before, actor,
    event ID and correlation ID; After as the account now holds it."""
    after = _props(account)
    return [
        FindingRecord.create(
            resource_id=str(account.get("id") or entry.resource_id),
            rule=str(finding["rule"]),
            severity=finding["severity"],
            status="remediated",
            message=str(finding["message"]),
            correlation_id=entry.correlation_id or str(uuid.uuid4()),
            trigger=entry.trigger,  # type: ignore[arg-type]
            mode=mode,
            kind=entry.kind,
            value=finding.get("value"),
            before=_side(str(finding["rule"]), entry.before),
            after=_side(str(finding["rule"]), after),
            actor=entry.actor,
            actor_source=entry.actor_source,  # type: ignore[arg-type]
            event_id=entry.event_id,
            time_generated=now,
        )
        for finding in entry.findings
    ]


@dataclass
class _RecordContext:
    trigger: Trigger
    mode: Mode
    actor: str | None
    correlation_id: str
    event_id: str | None
    now: datetime
    actor_source: ActorSource = "none"

    def invalid(
        self, resource_id: str, message: str, value: str | None, failed: bool, kind: str = ""
    ) -> FindingRecord:
        """The `account-invalid` record: the guardrail could not judge (or read) the account."""
        status: Status = "audit" if self.mode == "audit" else "violation"
        if failed and self.mode == "enforce":
            status = "remediation-failed"
        return self._record(
            resource_id, INVALID_RULE, ACCOUNT_INVALID.severity, status, message, value, kind, None, None
        )

    def records(
        self,
        evaluation: Evaluation,
        status_of_fixed: Callable[[Finding], tuple[Status, str | None] | None],
        before: Mapping[str, Any] | None,
        after: Mapping[str, Any] | None,
    ) -> list[FindingRecord]:
        """One record per finding; `before`/`after` are the account's properties as read and,
        when something was written, as re-read."""
        records = []
        for finding in evaluation.findings:
            message = finding.message
            status: Status
            written = False
            if finding.exempted:
                status = "exempted"
            elif self.mode == "audit":
                status = "audit"
            else:
                decided = status_of_fixed(finding) if finding.fixed else None
                if decided is None:
                    status = "violation"
                else:
                    status, cause = decided
                    written = status == "remediated"
                    if cause:
                        message = f"{message} — {cause}"
            records.append(
                self._record(
                    evaluation.resource_id,
                    finding.rule,
                    finding.severity,
                    status,
                    message,
                    finding.value,
                    evaluation.kind,
                    _side(finding.rule, before),
                    _side(finding.rule, after) if written else None,
                )
            )
        return records

    def _record(
        self,
        resource_id: str,
        rule: str,
        severity: Severity,
        status: Status,
        message: str,
        value: str | None,
        kind: str,
        before: Mapping[str, Any] | None,
        after: Mapping[str, Any] | None,
    ) -> FindingRecord:
        return FindingRecord.create(
            resource_id=resource_id,
            rule=rule,
            severity=severity,
            status=status,
            message=message,
            correlation_id=self.correlation_id,
            trigger=self.trigger,
            mode=self.mode,
            kind=kind,
            value=value,
            before=before,
            after=after,
            actor=self.actor,
            actor_source=self.actor_source,
            event_id=self.event_id,
            time_generated=self.now,
        )
