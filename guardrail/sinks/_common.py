"""Shared pieces of the sinks: results, retry settings, a static local credential."""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from guardrail.credentials import StaticTokenCredential

log = logging.getLogger("guardrail.sinks")


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
    """Bounded retries with capped exponential backoff. Tests use backoff_s=0."""

    attempts: int = 3
    backoff_s: float = 0.5
    max_backoff_s: float = 4.0
    timeout_s: float = 10.0
    """Per-request connect/read timeout."""

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("attempts must be >= 1")

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to sleep after failed attempt number `attempt` (1-based)."""
        base = self.backoff_s * (2 ** (attempt - 1))
        if retry_after is not None:
            base = max(base, retry_after)
        return float(min(base, self.max_backoff_s))

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> RetrySettings:
        """GUARDRAIL_SINK_ATTEMPTS, GUARDRAIL_SINK_BACKOFF_SECONDS, GUARDRAIL_SINK_MAX_BACKOFF_SECONDS,
        GUARDRAIL_SINK_TIMEOUT_SECONDS (all optional)."""
        e = os.environ if env is None else env
        d = cls()
        return cls(
            attempts=int(e.get("GUARDRAIL_SINK_ATTEMPTS", d.attempts)),
            backoff_s=float(e.get("GUARDRAIL_SINK_BACKOFF_SECONDS", d.backoff_s)),
            max_backoff_s=float(e.get("GUARDRAIL_SINK_MAX_BACKOFF_SECONDS", d.max_backoff_s)),
            timeout_s=float(e.get("GUARDRAIL_SINK_TIMEOUT_SECONDS", d.timeout_s)),
        )


def sleep_before_retry(settings: RetrySettings, attempt: int, retry_after: float | None = None) -> None:
    seconds = settings.delay(attempt, retry_after)
    if seconds > 0:
        time.sleep(seconds)


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


def retry_after_of(err: BaseException) -> float | None:
    headers: Any = getattr(getattr(err, "response", None), "headers", None)
    if headers is None:
        headers = getattr(err, "headers", None)
    if headers is None:
        return None
    value = headers.get("Retry-After") or headers.get("retry-after")
    try:
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None


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
    logging.getLogger("guardrail.alerts").error(json.dumps(line, separators=(",", ":"), ensure_ascii=False))


def env_flag(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name, "").strip()
    return value or None


__all__ = [
    "DeliveryResult",
    "RetrySettings",
    "StaticTokenCredential",
    "describe_error",
    "env_flag",
    "log",
    "log_undelivered_alert",
    "retry_after_of",
    "sleep_before_retry",
]
