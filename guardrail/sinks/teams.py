"""Alerts to Microsoft Teams through a Workflows webhook ("When a Teams webhook request is
received"). The webhook URL carries its own signature (`sig=`): it is a secret, and is never
logged, put in an exception or in a result; logs name it "teams webhook (<host>)"."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit

from guardrail import escaping
from guardrail.sinks._common import (
    AttemptCounter,
    DeliveryResult,
    RetrySettings,
    describe_error,
    log_undelivered_alert,
    sink_retry_policy,
)

if TYPE_CHECKING:
    from guardrail.alerts import Alert
    from guardrail.transport import HttpEnvironment

log = escaping.logger("guardrail.sinks.teams")


class _RedactWebhooks(logging.Filter):
    """urllib3 logs each request line at DEBUG, path and query included: a webhook's path and
    query (its workflow and signature) must not reach a log even then."""

    def __init__(self) -> None:
        super().__init__()
        self.secrets: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = message
        for secret in sorted(self.secrets, key=len, reverse=True):
            redacted = redacted.replace(secret, "<teams webhook>")
        if redacted != message:
            record.msg, record.args = redacted, ()
        return True


_REDACT: Final = _RedactWebhooks()
logging.getLogger("urllib3.connectionpool").addFilter(_REDACT)


class TeamsSink:
    """POSTs `to_adaptive_card(alert)` (or any message dict) to the webhook through an azure-core
    pipeline (the pooled transport the gateway uses, the sinks' RetryPolicy); 2xx is success
    (Workflows answer 202). Timeouts, 408, 429 and 5xx are retried; `send_*` never raises."""

    name = "teams"

    def __init__(
        self,
        webhook_url: str,
        *,
        ca_bundle: str | None = None,
        retry: RetrySettings | None = None,
        environment: HttpEnvironment | None = None,
    ) -> None:
        parts = urlsplit(webhook_url)
        if parts.scheme != "https" or not parts.hostname:
            # do not echo the URL: it is a secret
            raise ValueError("TEAMS_WEBHOOK_URL must be an https URL")
        self.__url = webhook_url
        self.label = f"teams webhook ({parts.hostname})"
        self._ca_bundle = ca_bundle
        self._environment = environment
        self.retry = retry or RetrySettings()
        self._attempts = AttemptCounter()
        self._client: Any = None
        self._client_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"TeamsSink({self.label})"

    def send_alert(self, alert: Alert) -> DeliveryResult:
        from guardrail.alerts import to_adaptive_card

        result = self.send_message(to_adaptive_card(alert))
        if not result.delivered:
            log_undelivered_alert(alert, sink=self.name, reason=result.detail)
        return result

    def _pipeline(self) -> Any:
        """Built on first use (azure-core is not imported at cold start)."""
        with self._client_lock:
            if self._client is None:
                from azure.core import PipelineClient
                from azure.core.pipeline.policies import HeadersPolicy

                from guardrail.transport import pooled_transport

                parts = urlsplit(self.__url)
                _REDACT.secrets.update(x for x in (parts.path, parts.query) if x)
                transport = pooled_transport(
                    pool_size=4,
                    connection_timeout=self.retry.timeout_s,
                    read_timeout=self.retry.timeout_s,
                    connection_verify=self._ca_bundle,
                    environment=self._environment,
                )
                # No logging policies: they would log the URL, and the URL is the secret.
                self._client = PipelineClient(
                    base_url=self.__url,
                    policies=[
                        HeadersPolicy({"Content-Type": "application/json"}),
                        sink_retry_policy(self.retry),
                        self._attempts.policy(),
                    ],
                    transport=transport,
                )
            return self._client

    def send_message(self, message: Mapping[str, Any]) -> DeliveryResult:
        from azure.core.rest import HttpRequest

        body = json.dumps(message, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        self._attempts.start()
        try:
            response = self._pipeline().send_request(HttpRequest("POST", self.__url, content=body))
            status = response.status_code
            response.read()
            reason = f"HTTP {status}"
        except Exception as err:  # connection errors, timeouts, TLS errors: described without the URL
            status, reason = None, describe_error(err)
        attempts = max(1, self._attempts.count)
        if status is not None and 200 <= status < 300:
            log.info("alert posted to %s (HTTP %d, attempt %d)", self.label, status, attempts)
            return DeliveryResult(self.name, True, attempts, count=1, detail=reason)
        log.error("gave up posting alert to %s after %d attempts: %s", self.label, attempts, reason)
        return DeliveryResult(self.name, False, attempts, failed=1, detail=reason)

    def close(self) -> None:
        with self._client_lock:
            if self._client is not None:
                self._client.close()
                self._client = None
