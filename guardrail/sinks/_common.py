"""Shared pieces of the sinks: results, retry settings, a static local credential."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, Final

from guardrail import escaping
from guardrail.credentials import StaticTokenCredential

log = escaping.logger("guardrail.sinks")


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    """What a sink did: `delivered` is False after the last attempt failed (never raised)."""

    sink: str
    delivered: bool
    attempts: int
    count: int = 0
    """Records (finding sinks) or messages (alert sinks) delivered."""
    failed: int = 0
    """Records or messages not delivered."""
    detail: str = ""
    """Short, secret-free description: 'ok', 'HTTP 503', 'timeout', ..."""


@dataclass(frozen=True, slots=True)
class RetrySettings:
    """Bounded retries for the sinks (`guardrail.settings` reads them from GUARDRAIL_SINK_*),
    carried out by azure-core's `RetryPolicy` in each sink's pipeline (`sink_retry_policy`): at
    most `attempts` HTTP requests per request the sink makes, exponential backoff from `backoff_s`
    capped at `max_backoff_s`, and a server's Retry-After honoured up to `max_backoff_s` (a longer
    one is cut short: a sink never holds up the remediation for long). Tests use backoff_s=0."""

    attempts: int = 3
    backoff_s: float = 0.5
    max_backoff_s: float = 4.0
    timeout_s: float = 10.0
    """Per-request connect/read timeout."""

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("attempts must be >= 1")


#: The sinks POST, and their requests are safe to repeat (Monitor is at least once, email keeps one
#: Operation-Id, Teams at worst shows a card twice): POST is retried like the idempotent methods.
_RETRIED_METHODS: Final = frozenset({"HEAD", "GET", "PUT", "DELETE", "OPTIONS", "TRACE", "POST"})


def sink_retry_policy(settings: RetrySettings) -> Any:
    """azure-core's RetryPolicy with the sink settings: 408/429/5xx, connection errors and
    timeouts are retried (POST too); Retry-After (seconds or an HTTP date, or Azure's
    millisecond headers) is read by `guardrail.retry_after` and waited for at most
    `max_backoff_s`."""
    from azure.core.pipeline.policies import RetryPolicy

    from guardrail.retry_after import retry_after_from_headers
    from guardrail.transport import bounded_retry_policy

    cap = settings.max_backoff_s

    class _SinkRetryPolicy(RetryPolicy):  # type: ignore[type-arg]
        def get_retry_after(self, response: Any) -> float | None:
            seconds = retry_after_from_headers(getattr(response.http_response, "headers", None))
            return None if seconds is None else min(seconds, cap)

    return bounded_retry_policy(
        _SinkRetryPolicy,
        retries=settings.attempts - 1,
        backoff=settings.backoff_s,
        backoff_max=settings.max_backoff_s,
        methods=_RETRIED_METHODS,
    )


class AttemptCounter:
    """Counts the HTTP attempts a sink's `send` makes, per thread (a sink is shared by the sweep's
    workers, and each call runs its pipeline in its own thread): `start()`, send, read `count`.
    `policy()` goes into the pipeline after the RetryPolicy (`per_retry_policies`)."""

    def __init__(self) -> None:
        self._local = threading.local()

    def start(self) -> None:
        self._local.count = 0

    @property
    def count(self) -> int:
        return int(getattr(self._local, "count", 0))

    def policy(self) -> Any:
        from azure.core.pipeline.policies import SansIOHTTPPolicy

        local = self._local

        class _Count(SansIOHTTPPolicy):  # type: ignore[type-arg]
            def on_request(self, request: Any) -> None:
                local.count = getattr(local, "count", 0) + 1

        return _Count()


def describe_error(err: BaseException) -> str:
    """A short, secret-free description (never the request URL or the message body)."""
    status = getattr(getattr(err, "response", None), "status_code", None)
    if status is None:
        status = getattr(err, "status_code", None)
    if status is None:
        status = getattr(err, "code", None) if type(err).__name__ == "HTTPError" else None
    if isinstance(status, int):
        return f"HTTP {status}"
    name = type(err).__name__
    text = str(err).lower()
    if "timed out" in text or "timeout" in name.lower() or "timeout" in text:
        return f"timeout ({name})"
    return name


def log_undelivered_alert(alert: Any, *, sink: str, reason: str) -> None:
    """One ERROR line on `guardrail.alerts` for an alert a sink gave up on (no secrets: the
    alert's own fields only): {"type": "guardrail.alert", "undelivered": sink, ...}."""
    line = {
        "type": "guardrail.alert",
        "undelivered": sink,
        "reason": reason,
        "title": alert.title,
        "severity": alert.severity,
        "resourceId": alert.resource_id,
        "correlationIds": list(alert.correlation_ids),
    }
    from guardrail.escaping import json_line

    escaping.logger("guardrail.alerts").error(json_line(line))


__all__ = [
    "AttemptCounter",
    "DeliveryResult",
    "RetrySettings",
    "StaticTokenCredential",
    "describe_error",
    "log",
    "log_undelivered_alert",
    "sink_retry_policy",
]
