"""The hooks the reconcile loop calls to say what happened (metrics, the sweep's heartbeat).

`guardrail.service` calls these at four points: a check finished (its Outcome), a check raised,
an event was ignored (with its reason), a sweep finished (its report). They never raise: the
guardrail's own health reporting must not stop a remediation or a sweep.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING

from guardrail import escaping, telemetry

if TYPE_CHECKING:
    from guardrail.service import Guardrail, Outcome, SweepReport
    from guardrail.vocabulary import Trigger

log = escaping.logger("guardrail")

#: `event_ignored` reasons (the ``reason`` attribute of ``guardrail.events.ignored``).
IGNORE_REASONS = ("malformed", "not-an-account", "event-type")


def check_finished(outcome: Outcome) -> None:
    try:
        telemetry.record_check(outcome)
    except Exception as error:
        log.warning("telemetry: %s: %s", type(error).__name__, error)


def check_raised(trigger: Trigger, error: BaseException) -> None:
    try:
        telemetry.record_check_error(trigger, error)
    except Exception as failure:
        log.warning("telemetry: %s: %s", type(failure).__name__, failure)


def event_ignored(reason: str) -> None:
    try:
        telemetry.record_ignored(reason)
    except Exception as error:
        log.warning("telemetry: %s: %s", type(error).__name__, error)


def sweep_finished(
    guardrail: Guardrail,
    report: SweepReport,
    subscriptions: Sequence[str] = (),
    correlation_id: str | None = None,
) -> None:
    """The heartbeat records (through the guardrail's finding sinks), the health table's summary
    and the sweep metrics. `subscriptions`: the ones the sweep was asked to cover (empty: every
    visible one). `correlation_id`: the sweep's, when this is one slice of a fanned-out sweep (its
    slices' rows then share it and the health table merges them)."""
    from guardrail import heartbeat
    from guardrail.sinks import deliver_findings

    settings = guardrail.settings
    now = guardrail.clock()
    correlation = correlation_id or str(uuid.uuid4())
    counts = heartbeat.sweep_counts(report, subscriptions, getattr(report, "listed_by_subscription", {}))
    try:
        records = heartbeat.heartbeat_records(
            counts,
            mode=settings.mode,
            seconds=report.seconds,
            now=now,
            correlation_id=correlation,
            identity=settings.identity,
        )
        deliver_findings(records, guardrail.finding_sinks)
    except Exception as error:
        log.error("sweep heartbeat records not written: %s: %s", type(error).__name__, error)
    try:
        heartbeat.open_health_store(settings).save_sweep(heartbeat.summary(counts, report, now, correlation))
    except Exception as error:  # the health endpoint then shows the previous sweep
        log.error("sweep summary not saved in the health table: %s: %s", type(error).__name__, error)
    try:
        totals = {
            "listed": sum(c.listed for c in counts),
            "checked": sum(c.checked for c in counts),
            "fixed": sum(c.fixed for c in counts),
            "failed": sum(c.failed for c in counts),
        }
        telemetry.record_sweep(report, totals)
    except Exception as error:
        log.warning("telemetry: %s: %s", type(error).__name__, error)
