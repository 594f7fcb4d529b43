"""The hooks the reconciler calls to say what happened (metrics, the sweep's heartbeat).

The reconciler (`guardrail.service.Guardrail.observe`) calls an `Observer` at four points: a check
finished (its Outcome), a check raised, an event was ignored (with its reason), a sweep (or one
slice of a fanned-out sweep) finished (its report). The observer is handed what it needs by the
composition root (`guardrail.functions.build_app`): the mode and identity it stamps on the
heartbeat, the clock, the finding sinks, the health table and the worker's `Telemetry`; it reads
only the loop's results (`guardrail.outcomes`), never the loop. It never raises: the guardrail's own
health reporting must not stop a remediation or a sweep.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from guardrail import escaping
from guardrail.telemetry import Telemetry

if TYPE_CHECKING:
    from guardrail.heartbeat import HealthStore
    from guardrail.outcomes import Outcome, SweepReport
    from guardrail.sinks import FindingSink
    from guardrail.vocabulary import Mode, Trigger

log = escaping.logger("guardrail")

#: `event_ignored` reasons (the ``reason`` attribute of ``guardrail.events.ignored``).
IGNORE_REASONS = ("malformed", "not-an-account", "event-type")


class Observer:
    """What the reconciler tells: metrics through `telemetry`; a sweep's heartbeat records through
    `finding_sinks` and its summary in `health`. Without `health` (and sinks) only the metrics."""

    def __init__(
        self,
        *,
        mode: Mode = "enforce",
        identity: str | None = None,
        telemetry: Telemetry | None = None,
        finding_sinks: Sequence[FindingSink] = (),
        health: HealthStore | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.mode: Mode = mode
        self.identity = identity
        self.telemetry = telemetry if telemetry is not None else Telemetry()
        self.finding_sinks = list(finding_sinks)
        self.health = health
        self.clock = clock

    def check_finished(self, outcome: Outcome) -> None:
        try:
            self.telemetry.record_check(outcome)
        except Exception as error:
            log.warning("telemetry: %s: %s", type(error).__name__, error)

    def check_raised(self, trigger: Trigger, error: BaseException) -> None:
        try:
            self.telemetry.record_check_error(trigger, error)
        except Exception as failure:
            log.warning("telemetry: %s: %s", type(failure).__name__, failure)

    def event_ignored(self, reason: str) -> None:
        try:
            self.telemetry.record_ignored(reason)
        except Exception as error:
            log.warning("telemetry: %s: %s", type(error).__name__, error)

    def sweep_finished(
        self,
        report: SweepReport,
        subscriptions: Sequence[str] = (),
        correlation_id: str | None = None,
    ) -> None:
        """The heartbeat records (through the finding sinks), the health table's summary and the
        sweep metrics. `subscriptions`: the ones the sweep was asked to cover (empty: every visible
        one). `correlation_id`: the sweep's, when this is one slice of a fanned-out sweep (its
        slices' rows then share it and the health table merges them)."""
        from guardrail import heartbeat
        from guardrail.sinks import deliver_findings

        now = self.clock()
        correlation = correlation_id or str(uuid.uuid4())
        counts = heartbeat.sweep_counts(report, subscriptions, report.listed_by_subscription)
        try:
            records = heartbeat.heartbeat_records(
                counts,
                mode=self.mode,
                seconds=report.seconds,
                now=now,
                correlation_id=correlation,
                identity=self.identity,
            )
            deliver_findings(records, self.finding_sinks)
        except Exception as error:
            log.error("sweep heartbeat records not written: %s: %s", type(error).__name__, error)
        if self.health is not None:
            try:
                self.health.save_sweep(heartbeat.summary(counts, report, now, correlation))
            except Exception as error:  # the health endpoint then shows the previous sweep
                log.error("sweep summary not saved in the health table: %s: %s", type(error).__name__, error)
        try:
            totals = {
                "listed": sum(c.listed for c in counts),
                "checked": sum(c.checked for c in counts),
                "fixed": sum(c.fixed for c in counts),
                "failed": sum(c.failed for c in counts),
            }
            self.telemetry.record_sweep(report, totals)
        except Exception as error:
            log.warning("telemetry: %s: %s", type(error).__name__, error)
