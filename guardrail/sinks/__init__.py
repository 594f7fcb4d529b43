"""Sinks: where findings and alerts go (Azure Monitor, JSON Lines / log, Teams, email).

Every sink is a small adapter that never raises into the caller: it retries a bounded number
of times, logs, and returns a `DeliveryResult`. Azure SDKs are imported lazily inside the
functions that need them (the Functions host pays module imports at every cold start)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from guardrail import escaping
from guardrail.sinks._common import DeliveryResult, RetrySettings, StaticTokenCredential

if TYPE_CHECKING:
    from guardrail.alerts import Alert
    from guardrail.findings import FindingRecord
    from guardrail.settings import SinkSettings


class FindingSink(Protocol):
    name: str

    def send(self, records: Sequence[FindingRecord]) -> DeliveryResult: ...


class AlertSink(Protocol):
    name: str

    def send_alert(self, alert: Alert) -> DeliveryResult: ...


_log = escaping.logger("guardrail.sinks")

__all__ = [
    "AlertSink",
    "DeliveryResult",
    "FindingSink",
    "RetrySettings",
    "StaticTokenCredential",
    "alert_sinks",
    "deliver_alert",
    "deliver_findings",
    "finding_sinks",
]


def finding_sinks(config: SinkSettings, credential: Any = None) -> list[FindingSink]:
    """Azure Monitor when its endpoint and rule are set, a JSON Lines file when
    GUARDRAIL_FINDINGS_FILE is set, and the structured log when Monitor is not set (so findings
    always land somewhere). `credential`: the worker's identity (for Monitor, unless the local
    receivers' bearer token is set)."""
    from guardrail.sinks.jsonl import JsonlSink, LogSink
    from guardrail.sinks.monitor import MonitorSink

    sinks: list[FindingSink] = []
    if config.monitor is not None:
        token = config.local_bearer_token
        sinks.append(
            MonitorSink(
                config.monitor.endpoint,
                config.monitor.rule_id,
                stream_name=config.monitor.stream_name,
                credential=StaticTokenCredential(token) if token else credential,
                connection_verify=config.ca_bundle,
                retry=config.retry,
                credential_timeouts=config.credential_timeouts,
            )
        )
    if config.findings_file:
        sinks.append(JsonlSink(config.findings_file))
    if config.monitor is None:
        sinks.append(LogSink())
    return sinks


def alert_sinks(config: SinkSettings, credential: Any = None) -> list[AlertSink]:
    """Teams when its webhook is set; email when its sender, recipients and service are. May be
    empty. `credential`: the worker's identity (for Communication Services by endpoint)."""
    from guardrail.sinks.email import EmailSink
    from guardrail.sinks.teams import TeamsSink

    sinks: list[AlertSink] = []
    if config.teams_webhook_url:
        sinks.append(
            TeamsSink(
                config.teams_webhook_url,
                ca_bundle=config.ca_bundle,
                retry=config.retry,
                environment=config.http,
            )
        )
    email = config.email
    if email is not None:
        sinks.append(
            EmailSink(
                sender=email.sender,
                recipients=email.recipients,
                endpoint=email.endpoint,
                connection_string=email.connection_string,
                credential=credential,
                connection_verify=config.ca_bundle,
                retry=config.retry,
                poll_interval_s=email.poll_interval_s,
                max_wait_s=email.max_wait_s,
                credential_timeouts=config.credential_timeouts,
            )
        )
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
