"""Sinks: where findings and alerts go (Azure Monitor, JSON Lines / log, Teams, email).

Every sink is a small adapter that never raises into the caller: it retries a bounded number
of times, logs, and returns a `DeliveryResult`. Azure SDKs are imported lazily inside the
functions that need them (the Functions host pays module imports at every cold start)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from guardrail.sinks._common import DeliveryResult, RetrySettings, StaticTokenCredential

if TYPE_CHECKING:
    from collections.abc import Sequence

    from guardrail.alerts import Alert
    from guardrail.findings import FindingRecord


class FindingSink(Protocol):
    name: str

    def send(self, records: Sequence[FindingRecord]) -> DeliveryResult: ...


class AlertSink(Protocol):
    name: str

    def send_alert(self, alert: Alert) -> DeliveryResult: ...


__all__ = ["AlertSink", "DeliveryResult", "FindingSink", "RetrySettings", "StaticTokenCredential"]
