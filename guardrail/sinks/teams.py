"""Alerts to Microsoft Teams through a Workflows webhook ("When a Teams webhook request is
received"). The webhook URL carries its own signature (`sig=`): it is a secret, and is never
logged, put in an exception or in a result; logs name it "teams webhook (<host>)"."""

from __future__ import annotations

import json
import logging
import os
import ssl
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from guardrail.sinks._common import (
    DeliveryResult,
    RetrySettings,
    describe_error,
    env_flag,
    log_undelivered_alert,
    retry_after_of,
    sleep_before_retry,
)

if TYPE_CHECKING:
    from guardrail.alerts import Alert

log = logging.getLogger("guardrail.sinks.teams")


class TeamsSink:
    """POSTs `to_adaptive_card(alert)` (or any message dict) to the webhook; 2xx is success
    (Workflows answer 202). Timeouts and non-2xx answers are retried; `send_*` never raises."""

    name = "teams"

    def __init__(
        self, webhook_url: str, *, ca_bundle: str | None = None, retry: RetrySettings | None = None
    ) -> None:
        parts = urlsplit(webhook_url)
        if parts.scheme != "https" or not parts.hostname:
            # do not echo the URL: it is a secret
            raise ValueError("TEAMS_WEBHOOK_URL must be an https URL")
        self.__url = webhook_url
        self.label = f"teams webhook ({parts.hostname})"
        self._context = (
            ssl.create_default_context(cafile=ca_bundle) if ca_bundle else ssl.create_default_context()
        )
        self.retry = retry or RetrySettings()

    def __repr__(self) -> str:
        return f"TeamsSink({self.label})"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> TeamsSink | None:
        """TEAMS_WEBHOOK_URL (a Key Vault reference in Azure); GUARDRAIL_CA_BUNDLE locally.
        None when not configured."""
        e = os.environ if env is None else env
        url = env_flag(e, "TEAMS_WEBHOOK_URL")
        if not url:
            return None
        if url.startswith("@Microsoft.KeyVault"):
            log.error("TEAMS_WEBHOOK_URL is an unresolved Key Vault reference: Teams alerts are off")
            return None
        try:
            return cls(url, ca_bundle=env_flag(e, "GUARDRAIL_CA_BUNDLE"), retry=RetrySettings.from_env(e))
        except ValueError as err:
            log.error("Teams alerts are off: %s", err)
            return None

    def send_alert(self, alert: Alert) -> DeliveryResult:
        from guardrail.alerts import to_adaptive_card

        result = self.send_message(to_adaptive_card(alert))
        if not result.delivered:
            log_undelivered_alert(alert, sink=self.name, reason=result.detail)
        return result

    def send_message(self, message: Mapping[str, Any]) -> DeliveryResult:
        body = json.dumps(message, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        reason = "not attempted"
        for attempt in range(1, self.retry.attempts + 1):
            request = urllib.request.Request(
                self.__url, data=body, method="POST", headers={"Content-Type": "application/json"}
            )
            retry_after: float | None = None
            try:
                with urllib.request.urlopen(
                    request, timeout=self.retry.timeout_s, context=self._context
                ) as resp:
                    status = resp.status
                    resp.read()
                if 200 <= status < 300:
                    log.info("alert posted to %s (HTTP %d, attempt %d)", self.label, status, attempt)
                    return DeliveryResult(self.name, True, attempt, count=1, detail=f"HTTP {status}")
                reason = f"HTTP {status}"
            except urllib.error.HTTPError as err:
                reason = f"HTTP {err.code}"
                retry_after = retry_after_of(err)
                err.close()
            except Exception as err:  # URLError, timeouts, TLS errors: describe without the URL
                inner = getattr(err, "reason", None)
                reason = describe_error(inner if isinstance(inner, BaseException) else err)
            log.warning(
                "posting alert to %s failed (attempt %d/%d): %s",
                self.label,
                attempt,
                self.retry.attempts,
                reason,
            )
            if attempt < self.retry.attempts:
                sleep_before_retry(self.retry, attempt, retry_after)
        log.error(
            "gave up posting alert to %s after %d attempts: %s", self.label, self.retry.attempts, reason
        )
        return DeliveryResult(self.name, False, self.retry.attempts, failed=1, detail=reason)
