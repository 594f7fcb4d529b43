"""Metrics about the guardrail itself, through OpenTelemetry.

Instruments (meter ``guardrail``; every name below is a public interface, see docs/operating.md):

| name | kind | attributes |
|---|---|---|
| ``guardrail.checks`` | counter | ``trigger``, ``action`` (the Outcome's action) |
| ``guardrail.remediations`` | counter | ``trigger`` |
| ``guardrail.failures`` | counter | ``trigger``, ``cause`` (see `failure_cause`) |
| ``guardrail.breaker.trips`` | counter | ``trigger`` |
| ``guardrail.events.ignored`` | counter | ``reason`` (``malformed``, ``not-an-account``, ``event-type``) |
| ``guardrail.event_to_verified`` | histogram, s | ``trigger``: event time → verified on re-read |
| ``guardrail.sweep.duration`` | histogram, s | ``result`` (``ok`` / ``errors``) |
| ``guardrail.sweep.accounts`` | histogram | ``stage`` (``listed``, ``checked``, ``fixed``, ``failed``) |

Where they go is decided once per worker by `setup` (called by the composition root,
`guardrail.functions.build_app`), which returns the worker's `Telemetry`:

- ``APPLICATIONINSIGHTS_CONNECTION_STRING`` set: the Azure Monitor metric exporter
  (``azure-monitor-opentelemetry-exporter`` on the OpenTelemetry SDK) every
  ``GUARDRAIL_METRICS_EXPORT_SECONDS`` (default 60), with the managed identity when
  ``APPLICATIONINSIGHTS_AUTHENTICATION_STRING`` says ``Authorization=AAD`` (as the infrastructure
  sets it: local auth is disabled); they land in Application Insights' ``customMetrics``;
- else ``GUARDRAIL_METRICS_LOG`` set: each export is one INFO JSON line per data point on the
  logger ``guardrail.metrics`` (local runs);
- else nothing: the hooks return at once and OpenTelemetry is never imported.

Tests record through their own provider with ``Telemetry(provider)`` (an ``InMemoryMetricReader``).
Nothing here is imported by ``function_app.py``; the OpenTelemetry SDK and the exporter load only
inside `setup`. No state lives in this module: the `Telemetry` the root built holds the provider.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from guardrail import escaping

if TYPE_CHECKING:
    from guardrail.outcomes import Outcome, SweepReport
    from guardrail.settings import TelemetrySettings
    from guardrail.vocabulary import Trigger

log = escaping.logger("guardrail")
metrics_log = escaping.logger("guardrail.metrics")

METER_NAME = "guardrail"
#: Seconds; event → verified spans a few seconds (a write and its poll) up to Event Grid's retries.
LATENCY_BUCKETS = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0)
SWEEP_BUCKETS = (1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 1800.0, 3600.0)
ACCOUNT_BUCKETS = (0.0, 1.0, 10.0, 100.0, 1000.0, 5000.0, 20000.0)

_CODE = re.compile(r"^[A-Za-z][A-Za-z0-9]{1,63}$")


@dataclass
class Instruments:
    checks: Any
    remediations: Any
    failures: Any
    breaker_trips: Any
    events_ignored: Any
    event_to_verified: Any
    sweep_duration: Any
    sweep_accounts: Any

    @classmethod
    def create(cls, meter: Any) -> Instruments:
        def histogram(name: str, unit: str, description: str, buckets: tuple[float, ...]) -> Any:
            return meter.create_histogram(
                name, unit=unit, description=description, explicit_bucket_boundaries_advisory=list(buckets)
            )

        return cls(
            checks=meter.create_counter("guardrail.checks", "{check}", "accounts checked, by action"),
            remediations=meter.create_counter(
                "guardrail.remediations", "{remediation}", "remediations written and verified"
            ),
            failures=meter.create_counter("guardrail.failures", "{failure}", "failed checks, by cause"),
            breaker_trips=meter.create_counter("guardrail.breaker.trips", "{trip}", "circuit breaker trips"),
            events_ignored=meter.create_counter(
                "guardrail.events.ignored", "{event}", "delivered events not checked, by reason"
            ),
            event_to_verified=histogram(
                "guardrail.event_to_verified",
                "s",
                "from the event's time to the re-read that verified the remediation",
                LATENCY_BUCKETS,
            ),
            sweep_duration=histogram(
                "guardrail.sweep.duration", "s", "reconcile sweep wall time", SWEEP_BUCKETS
            ),
            sweep_accounts=histogram(
                "guardrail.sweep.accounts", "{account}", "accounts per sweep, by stage", ACCOUNT_BUCKETS
            ),
        )


class Telemetry:
    """The worker's metrics: the instruments on `provider` (an OpenTelemetry MeterProvider), or
    nothing at all when `provider` is None (every hook returns at once). `kind` says what `setup`
    chose: ``azure-monitor``, ``log`` or ``off`` (``custom`` for a provider handed in)."""

    def __init__(self, provider: Any = None, kind: str = "custom") -> None:
        from guardrail import __version__

        self.provider = provider
        self.kind = kind if provider is not None else "off"
        self.instruments = (
            Instruments.create(provider.get_meter(METER_NAME, __version__)) if provider is not None else None
        )

    @property
    def enabled(self) -> bool:
        return self.instruments is not None

    def flush(self) -> None:
        """Export what is buffered now (the CLI before it exits; tests)."""
        provider = self.provider
        if provider is not None and hasattr(provider, "force_flush"):
            try:
                provider.force_flush()
            except Exception as error:
                log.warning("telemetry flush failed: %s", error)

    def shutdown(self) -> None:
        """Export what is left, stop the exporter and stop recording (a worker that is rebuilt)."""
        provider, self.provider, self.instruments = self.provider, None, None
        if provider is not None and hasattr(provider, "shutdown"):
            try:
                provider.shutdown()
            except Exception as error:
                log.warning("telemetry shutdown failed: %s", error)

    # -- what the reconciler reports ------------------------------------------------------
    def record_check(self, outcome: Outcome, now: datetime | None = None) -> None:
        instruments = self.instruments
        if instruments is None:
            return
        trigger = outcome.trigger or "unknown"
        instruments.checks.add(1, {"trigger": trigger, "action": outcome.action})
        if outcome.action == "remediated":
            instruments.remediations.add(1, {"trigger": trigger})
            if outcome.event_time is not None:
                # When the outcome was finished (verified), not now: recording and alerting come after.
                since_finished = time.monotonic() - outcome.finished if outcome.finished > 0 else 0.0
                moment = now or datetime.now(UTC) - timedelta(seconds=max(0.0, since_finished))
                event_time = outcome.event_time
                if event_time.tzinfo is None:
                    event_time = event_time.replace(tzinfo=UTC)
                seconds = (moment - event_time).total_seconds()
                if seconds >= 0:
                    instruments.event_to_verified.record(seconds, {"trigger": trigger})
        elif outcome.action in ("failed", "invalid"):
            instruments.failures.add(1, {"trigger": trigger, "cause": failure_cause(outcome)})
        if outcome.breaker_tripped:
            instruments.breaker_trips.add(1, {"trigger": trigger})

    def record_check_error(self, trigger: Trigger, error: BaseException) -> None:
        """A check that raised (transient ARM trouble: Event Grid redelivers, the sweep goes on)."""
        instruments = self.instruments
        if instruments is None:
            return
        from guardrail.gateway import TransientArmError

        cause = "transient" if isinstance(error, TransientArmError) else type(error).__name__
        instruments.checks.add(1, {"trigger": trigger, "action": "error"})
        instruments.failures.add(1, {"trigger": trigger, "cause": cause})

    def record_ignored(self, reason: str) -> None:
        instruments = self.instruments
        if instruments is not None:
            instruments.events_ignored.add(1, {"reason": reason})

    def record_sweep(self, report: SweepReport, counts: Mapping[str, int]) -> None:
        instruments = self.instruments
        if instruments is None:
            return
        result = "errors" if report.errors else "ok"
        instruments.sweep_duration.record(report.seconds, {"result": result})
        for stage, value in counts.items():
            instruments.sweep_accounts.record(value, {"stage": stage})


def setup(config: TelemetrySettings, credential: Any = None) -> Telemetry:
    """The exporter the settings name (`Settings.telemetry`), for one worker. `credential`: the
    worker's identity, used when the authentication string asks for Entra ID. Never raises:
    telemetry must not stop the guardrail (a failure is logged and telemetry stays off)."""
    connection = config.connection_string
    if not connection and not config.log:
        return Telemetry()
    interval = config.export_seconds
    try:
        if connection:
            aad, _client_id = entra_id_auth(config.authentication)
            provider = _azure_monitor_provider(connection, interval, credential if aad else None)
        else:
            provider = _log_provider(interval)
    except Exception as error:  # a broken exporter install or connection string
        log.error("telemetry disabled: %s: %s", type(error).__name__, error)
        return Telemetry()
    return Telemetry(provider, "azure-monitor" if connection else "log")


def entra_id_auth(text: str) -> tuple[bool, str | None]:
    """(use Entra ID, the managed identity's client id or None for the system-assigned one) from
    the host's ``APPLICATIONINSIGHTS_AUTHENTICATION_STRING`` (``ClientId=...;Authorization=AAD``)."""
    parts = {}
    for item in text.split(";"):
        key, sep, value = item.partition("=")
        if sep:
            parts[key.strip().lower()] = value.strip()
    if parts.get("authorization", "").upper() != "AAD":
        return False, None
    return True, parts.get("clientid") or None


def _azure_monitor_provider(connection_string: str, interval: float, credential: Any = None) -> Any:
    from azure.monitor.opentelemetry.exporter import AzureMonitorMetricExporter
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
    from opentelemetry.sdk.resources import Resource

    options: dict[str, Any] = {"connection_string": connection_string}
    if credential is not None:  # Entra ID (local auth is disabled on the component)
        options["credential"] = credential
    exporter = AzureMonitorMetricExporter(**options)
    reader = PeriodicExportingMetricReader(exporter, export_interval_millis=interval * 1000)
    resource = Resource.create({"service.name": "ai-services-network-guardrail"})
    return MeterProvider(metric_readers=[reader], resource=resource)


def _log_provider(interval: float) -> Any:
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import (
        MetricExporter,
        MetricExportResult,
        PeriodicExportingMetricReader,
    )

    class LogExporter(MetricExporter):
        """One JSON line per data point on the `guardrail.metrics` logger."""

        def export(self, metrics_data: Any, timeout_millis: float = 10_000, **kwargs: Any) -> Any:
            for line in metric_lines(metrics_data):
                metrics_log.info("%s", line)
            return MetricExportResult.SUCCESS

        def force_flush(self, timeout_millis: float = 10_000) -> bool:
            return True

        def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
            return None

    reader = PeriodicExportingMetricReader(LogExporter(), export_interval_millis=interval * 1000)
    return MeterProvider(metric_readers=[reader])


def metric_lines(metrics_data: Any) -> list[str]:
    """`{"type":"guardrail.metric","name":...,"attributes":{...},"value"|"count"/"sum":...}` lines."""
    lines: list[str] = []
    if metrics_data is None:
        return lines
    for resource in metrics_data.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                for point in metric.data.data_points:
                    row: dict[str, Any] = {
                        "type": "guardrail.metric",
                        "name": metric.name,
                        "unit": metric.unit,
                        "attributes": dict(point.attributes or {}),
                    }
                    if hasattr(point, "bucket_counts"):
                        row.update(count=point.count, sum=point.sum, min=point.min, max=point.max)
                    else:
                        row["value"] = point.value
                    lines.append(json.dumps(row, separators=(",", ":"), sort_keys=True))
    return lines


def failure_cause(outcome: Outcome) -> str:
    """A short, bounded cause for a failed or invalid check (for the ``cause`` attribute)."""
    detail = outcome.detail or ""
    if outcome.action == "invalid":
        return "invalid-account"
    if detail.startswith("cannot read the account"):
        return "read-denied" if "403" in detail or "Authorization" in detail else "read-failed"
    if detail.startswith("refused:"):
        return "widening-refused"
    if "did not verify" in detail:
        return "not-verified"
    code = detail.split(":", 1)[0].strip()
    return code if _CODE.match(code) else "write-failed"
