"""The one path every caller takes: read → evaluate → remediate → verify → record → alert.

Events, the reconcile sweep, the CLI and the demo all call `Guardrail.check_account`. The
policy engine decides; the gateway reads and writes ARM; the state store remembers
remediations, breakers and alerts; the sinks record findings and deliver alerts.
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
from typing import TYPE_CHECKING, Any, Protocol

from guardrail.engine import Evaluation, Finding, InvalidAccount, apply_patch, evaluate, widening
from guardrail.events import MalformedEvent, ResourceEvent, parse_event
from guardrail.findings import FindingRecord, Status

if TYPE_CHECKING:
    from guardrail.settings import Settings
    from guardrail.sinks import AlertSink, FindingSink
    from guardrail.state import StateStore

log = logging.getLogger("guardrail")


class Gateway(Protocol):
    def get(self, resource_id: str) -> dict[str, Any] | None: ...

    def list_accounts(self, subscriptions: list[str] | None) -> Iterable[dict[str, Any]]: ...

    def remediate(
        self, resource_id: str, decide: Callable[[dict[str, Any]], dict[str, Any] | None]
    ) -> Any: ...

    def diagnostic_settings(self, resource_id: str) -> list[dict[str, Any]] | None: ...

    def put_diagnostic_setting(self, resource_id: str, setting: Mapping[str, Any]) -> Any: ...


@dataclass
class Outcome:
    """What happened to one account in one pass."""

    resource_id: str
    action: str  # compliant | remediated | failed | suspended | audit | reported | gone | invalid | skipped
    records: list[FindingRecord] = field(default_factory=list)
    alerted: bool = False
    breaker_tripped: bool = False
    detail: str = ""
    started: float = 0.0
    finished: float = 0.0
    event_time: datetime | None = None
    trigger: str = ""
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

    def count(self, action: str) -> int:
        return sum(1 for outcome in self.outcomes if outcome.action == action)


class WriteRate:
    """Spaces writes per subscription (ARM refills subscription writes at about 10 per second)."""

    def __init__(self, per_second: float) -> None:
        self._interval = 1.0 / per_second
        self._next: dict[str, float] = {}
        self._lock = threading.Lock()

    def acquire(self, subscription: str) -> None:
        with self._lock:
            now = time.monotonic()
            slot = max(now, self._next.get(subscription.lower(), now))
            self._next[subscription.lower()] = slot + self._interval
        if slot > now:
            time.sleep(slot - now)


def _acls(account: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if not account:
        return None
    props = account.get("properties")
    acls = props.get("networkAcls") if isinstance(props, Mapping) else None
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
    ) -> None:
        self.settings = settings
        self.policy = settings.policy
        self.gateway = gateway
        self.state = state
        self.finding_sinks = list(finding_sinks)
        self.alert_sinks = list(alert_sinks)
        self.clock = clock
        self.write_rate = WriteRate(settings.writes_per_second)
        self.observers: list[Callable[[Outcome], None]] = []  # told of every outcome (demo, CLI)
        self._locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()

    def _account_lock(self, resource_id: str) -> threading.Lock:
        """One check at a time per account in this worker: a write event and its Resource
        Notification arrive together, and only one of them should write."""
        with self._locks_guard:
            return self._locks.setdefault(resource_id.lower(), threading.Lock())

    # -- entry points -----------------------------------------------------------------------
    def handle_event(self, payload: Mapping[str, Any]) -> Outcome | None:
        """One delivered event. Malformed or irrelevant events are logged and dropped; transient
        ARM failures raise so that Event Grid redelivers."""
        try:
            event = parse_event(payload)
        except MalformedEvent as error:
            log.error("dropping malformed event: %s", error)
            return None
        if not event.relevant or event.account_id is None:
            log.log(event.ignore_level, "ignoring event %s: %s", event.event_id, event.ignore_reason())
            return None
        identity = self.settings.identity
        if identity and event.actor and identity.lower() in event.actor.lower():
            log.info("event %s comes from the guardrail's own write: expecting a no-op", event.event_id)
        if event.resource is not None and self.policy.diagnostics is None:
            # A Resource Notification carries the full properties: a compliant one needs no read.
            quick = evaluate(event.resource, self.policy, self.clock())
            if isinstance(quick, Evaluation) and not quick.findings:
                log.info(
                    "event %s: %s is compliant (from the notification)", event.event_id, event.account_id
                )
                now = time.monotonic()
                return Outcome(event.account_id, "compliant", started=now, finished=now)
        return self.check_account(event.account_id, trigger="event", event=event)

    def check_account(
        self,
        resource_id: str,
        *,
        trigger: str,
        event: ResourceEvent | None = None,
        account: Mapping[str, Any] | None = None,
    ) -> Outcome:
        """Check one account through the whole path. `account` (a body just listed) saves a read
        in audit mode only; every write decision is taken on a fresh read."""
        started = time.monotonic()
        with self._account_lock(resource_id):
            outcome = self._check(resource_id, trigger, event, account)
            outcome.started, outcome.finished = started, time.monotonic()
            outcome.event_time = event.event_time if event else None
            outcome.trigger = trigger
            outcome.actor = next(
                (r.actor for r in outcome.records if r.actor), event.actor if event else None
            )
            self._record(outcome.records)
            self._alert(outcome, event)
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
        """Reconcile every account in the configured subscriptions (or every one visible)."""
        started = time.monotonic()
        report = SweepReport()
        subs = list(subscriptions or self.settings.subscriptions) or None
        now = self.clock()
        pending: dict[str, list[dict[str, Any]]] = {}  # by subscription, in listing order
        try:
            for body in self.gateway.list_accounts(subs):
                report.listed += 1
                result = evaluate(body, self.policy, now)
                if isinstance(result, Evaluation) and not result.findings and self.policy.diagnostics is None:
                    report.compliant += 1
                    continue
                rid = body.get("id")
                if isinstance(rid, str):
                    pending.setdefault(rid.split("/")[2].lower(), []).append(body)
        except Exception as error:  # a subscription that cannot be listed: check the others
            log.error("sweep: listing failed: %s: %s", type(error).__name__, error)
            report.errors.append(f"listing: {type(error).__name__}: {error}")
        # Round-robin over subscriptions: writes are paced per subscription (`write_rate`), so a
        # queue grouped by subscription would park every worker on one subscription's pacing and
        # the sweep would take the sum, not the max, of the subscriptions' write times.
        order = [body for batch in zip_longest(*pending.values()) for body in batch if body is not None]
        with ThreadPoolExecutor(max_workers=self.settings.sweep_concurrency) as pool:
            # The listed body spares a read in audit mode; in enforce mode the write decision is
            # taken on the gateway's fresh read.
            futures = {
                pool.submit(self.check_account, body["id"], trigger="sweep", account=body): body["id"]
                for body in order
            }
            for future in as_completed(futures):
                try:
                    report.outcomes.append(future.result())
                except Exception as error:  # one bad account must not stop the sweep
                    message = f"{futures[future]}: {type(error).__name__}: {error}"
                    log.warning("sweep: %s", message)
                    report.errors.append(message)
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
        return report

    # -- the path ---------------------------------------------------------------------------
    def _check(
        self,
        resource_id: str,
        trigger: str,
        event: ResourceEvent | None,
        listed: Mapping[str, Any] | None,
    ) -> Outcome:
        from guardrail.gateway import ArmGatewayError, TransientArmError

        now = self.clock()
        context = _RecordContext(
            trigger=trigger,
            mode=self.settings.mode,
            actor=event.actor if event else None,
            correlation_id=(event.correlation_id if event else None) or str(uuid.uuid4()),
            event_id=event.event_id if event else None,
            now=now,
        )
        decide = _Decide(self, resource_id, now)
        written = None
        try:
            diagnostics = self.gateway.diagnostic_settings(resource_id) if self.policy.diagnostics else None
            if self.settings.mode == "audit":
                account = dict(listed) if listed is not None else self.gateway.get(resource_id)
            else:
                # The gateway reads the account fresh, asks `decide` for the body, writes it with
                # If-Match and reads again to verify: a single read when nothing needs fixing.
                written = self.gateway.remediate(resource_id, decide)
                account = written.before
        except TransientArmError:
            raise  # Event Grid redelivers; the sweep counts it as an error and goes on
        except ArmGatewayError as error:  # e.g. 403 on read: retrying will not help
            log.error("%s: cannot read the account: %s", resource_id, error)
            return Outcome(resource_id, "failed", detail=f"cannot read the account: {error}")
        if account is None or (written is not None and written.status == "gone"):
            return Outcome(resource_id, "gone", detail="the account no longer exists")
        if context.actor is None:  # Resource Notifications and the sweep name no caller
            context.actor = last_modified_by(account)
        result = evaluate(account, self.policy, now, diagnostic_settings=diagnostics)
        if isinstance(result, InvalidAccount):
            log.error("%s: cannot judge the account body: %s", resource_id, result.message)
            return Outcome(resource_id, "invalid", detail=result.message)
        if not result.findings:
            return Outcome(resource_id, "compliant")
        before = _acls(account)
        if written is None:  # audit mode: report, never write
            return Outcome(resource_id, "audit", context.records(result, lambda f: None, before, None))
        outcome = self._account_outcome(resource_id, result, written, decide, context, before)
        if result.diagnostic_setting is not None and outcome.action not in ("gone", "suspended"):
            outcome = self._write_diagnostics(resource_id, account, result.diagnostic_setting, outcome, now)
        return outcome

    def _account_outcome(
        self,
        resource_id: str,
        result: Evaluation,
        written: Any,
        decide: _Decide,
        context: _RecordContext,
        before: dict[str, Any] | None,
    ) -> Outcome:
        """Findings and action after the gateway's remediate (the diagnostics rule is decided
        separately, by its own write)."""

        def status(
            state: str, cause: str | None = None
        ) -> Callable[[Finding], tuple[str, str | None] | None]:
            return lambda f: None if f.rule == "diagnostics-missing" else (state, cause)

        if decide.refused:
            cause = decide.refused
            records = context.records(result, status("remediation-failed", cause), before, None)
            return Outcome(resource_id, "failed", records, detail=cause)
        if decide.suspended:
            cause = decide.suspended
            records = context.records(result, status("remediation-suspended", cause), before, None)
            return Outcome(resource_id, "suspended", records, breaker_tripped=decide.tripped, detail=cause)
        if written.status == "compliant":  # nothing to write: record what remains (report-only)
            records = context.records(result, lambda f: None, before, None)
            return Outcome(resource_id, "reported", records)
        if written.status == "remediated":
            records = context.records(result, status("remediated"), before, _acls(written.after))
            return Outcome(resource_id, "remediated", records)
        cause = f"{written.error_code or 'Failed'}: {written.error_message or 'the write did not succeed'}"
        records = context.records(result, status("remediation-failed", cause), before, None)
        return Outcome(resource_id, "failed", records, detail=cause)

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
        if written.status != "remediated":
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
            dataclasses.replace(r, status=status, message=f"{r.message} — {cause}" if cause else r.message)
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
        # re-check after the guardrail's own write (a subset of what was alerted) stays quiet.
        cooldown = self.settings.alert_cooldown
        fresh = [self.state.claim_alert(outcome.resource_id, _alert_key(r), now, cooldown) for r in active]
        if not any(fresh) and not outcome.breaker_tripped:
            log.info("%s: findings already alerted within the cool-down", outcome.resource_id)
            return
        alert = compose_alert(outcome.records)
        if alert is None:
            return
        outcome.alerted = True
        deliver_alert(alert, self.alert_sinks)


class _Decide:
    """What the gateway asks on its fresh read right before writing: the PATCH body, or None.

    The breaker is consulted here, at the last moment and only when the fresh read still needs a
    write, and a write it allows is counted once; a body that would widen access is refused."""

    def __init__(self, guardrail: Guardrail, resource_id: str, now: datetime) -> None:
        self.guardrail = guardrail
        self.resource_id = resource_id
        self.now = now
        self.counted = False
        self.refused = ""
        self.suspended = ""
        self.tripped = False

    def __call__(self, current: dict[str, Any]) -> dict[str, Any] | None:
        g = self.guardrail
        judged = evaluate(current, g.policy, g.clock())
        body = judged.remediation if isinstance(judged, Evaluation) else None
        if body is None or self.counted:
            return body
        self.counted = True
        widened = widening(current, apply_patch(current, body))
        if widened:  # the engine guarantees this never happens; refuse rather than trust
            self.refused = "refused: the remediation would widen access (" + "; ".join(widened) + ")"
            log.critical("%s: %s", self.resource_id, self.refused)
            return None
        breaker = g.state.breaker_state(self.resource_id, self.now)
        if breaker is not None:
            self.suspended = f"breaker open until {breaker.until.isoformat()}: not writing"
            return None
        count = g.state.record_remediation(self.resource_id, self.now)
        if count > g.settings.breaker_max_remediations:
            self.tripped = g.state.trip_breaker(self.resource_id, self.now)
            minutes = int(g.settings.breaker_window.total_seconds() // 60)
            self.suspended = (
                f"{count} remediations within {minutes} minutes: another actor keeps re-applying this "
                f"configuration; the guardrail stops writing to this account for {minutes} minutes"
            )
            return None
        g.write_rate.acquire(self.resource_id.split("/")[2])
        return body


@dataclass
class _RecordContext:
    trigger: str
    mode: str
    actor: str | None
    correlation_id: str
    event_id: str | None
    now: datetime

    def records(
        self,
        evaluation: Evaluation,
        status_of_fixed: Callable[[Finding], tuple[str, str | None] | None],
        before: Mapping[str, Any] | None,
        after: Mapping[str, Any] | None,
    ) -> list[FindingRecord]:
        records = []
        for finding in evaluation.findings:
            message = finding.message
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
                    if cause:
                        message = f"{message} — {cause}"
            records.append(
                FindingRecord.create(
                    resource_id=evaluation.resource_id,
                    rule=finding.rule,
                    severity=finding.severity,  # type: ignore[arg-type]
                    status=status,  # type: ignore[arg-type]
                    message=message,
                    correlation_id=self.correlation_id,
                    trigger=self.trigger,  # type: ignore[arg-type]
                    mode=self.mode,  # type: ignore[arg-type]
                    kind=evaluation.kind,
                    value=finding.value,
                    before=before,
                    after=after,
                    actor=self.actor,
                    event_id=self.event_id,
                    time_generated=self.now,
                )
            )
        return records
