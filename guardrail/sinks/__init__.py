"""Sinks: where findings and alerts go (Azure Monitor, JSON Lines / log, Teams, email).

Every sink is a small adapter that never raises into the caller: it retries a bounded number
of times, logs, and returns a `DeliveryResult`. Azure SDKs are imported lazily inside the
functions that need them (the Functions host pays module imports at every cold start)."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Protocol

from guardrail.sinks._common import DeliveryResult, RetrySettings, StaticTokenCredential

if TYPE_CHECKING:
    from guardrail.alerts import Alert
    from guardrail.findings import FindingRecord


class FindingSink(Protocol):
    name: str

    def send(self, records: Sequence[FindingRecord]) -> DeliveryResult: ...


class AlertSink(Protocol):
    name: str

    def send_alert(self, alert: Alert) -> DeliveryResult: ...


_log = logging.getLogger("guardrail.sinks")

__all__ = [
    "AlertSink",
    "DeliveryResult",
    "FindingSink",
    "RetrySettings",
    "StaticTokenCredential",
    "alert_sinks_from_env",
    "deliver_alert",
    "deliver_findings",
    "finding_sinks_from_env",
]


def finding_sinks_from_env(env: Mapping[str, str] | None = None) -> list[FindingSink]:
    """Azure Monitor when MONITOR_DCE_ENDPOINT/MONITOR_DCR_IMMUTABLE_ID are set, a JSON Lines
    file when GUARDRAIL_FINDINGS_FILE is set, and the structured log when Monitor is not set
    (so findings always land somewhere)."""
    from guardrail.sinks.jsonl import JsonlSink, LogSink
    from guardrail.sinks.monitor import MonitorSink

    e = os.environ if env is None else env
    sinks: list[FindingSink] = []
    monitor = MonitorSink.from_env(e)
    if monitor is not None:
        sinks.append(monitor)
    path = (e.get("GUARDRAIL_FINDINGS_FILE") or "").strip()
    if path:
        sinks.append(JsonlSink(path))
    if monitor is None:
        sinks.append(LogSink())
    return sinks


def alert_sinks_from_env(env: Mapping[str, str] | None = None) -> list[AlertSink]:
    """Teams when TEAMS_WEBHOOK_URL is set; email when ALERT_EMAIL_RECIPIENTS, ALERT_EMAIL_SENDER
    and ACS_ENDPOINT or ACS_CONNECTION_STRING are set. May be empty."""
    from guardrail.sinks.email import EmailSink
    from guardrail.sinks.teams import TeamsSink

    e = os.environ if env is None else env
    sinks: list[AlertSink] = []
    teams = TeamsSink.from_env(e)
    if teams is not None:
        sinks.append(teams)
    email = EmailSink.from_env(e)
    if email is not None:
        sinks.append(email)
    return sinks


def deliver_findings(records: Sequence[FindingRecord], sinks: Iterable[FindingSink]) -> list[DeliveryResult]:
    """One `send` per sink for the whole batch; never raises."""
    results: list[DeliveryResult] = []
    for sink in sinks:
        try:
            results.append(sink.send(records))
        except Exception as err:  # a sink bug must not break the invocation
            _log.exception("finding sink %s raised", getattr(sink, "name", sink))
            results.append(
                DeliveryResult(
                    getattr(sink, "name", "?"), False, 1, failed=len(records), detail=type(err).__name__
                )
            )
    return results


def deliver_alert(alert: Alert, sinks: Iterable[AlertSink]) -> list[DeliveryResult]:
    """Send one alert to every alert sink; never raises."""
    results: list[DeliveryResult] = []
    for sink in sinks:
        try:
            results.append(sink.send_alert(alert))
        except Exception as err:
            _log.exception("alert sink %s raised", getattr(sink, "name", sink))
            results.append(
                DeliveryResult(getattr(sink, "name", "?"), False, 1, failed=1, detail=type(err).__name__)
            )
    return results
