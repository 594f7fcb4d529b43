"""Alerts by email through Azure Communication Services Email (azure-communication-email).

`begin_send` answers 202 and returns a poller; we poll every `poll_interval_s` (default 1 s,
never the SDK's 30 s default) and wait at most `max_wait_s`: a message still running by then
counts as delivered ("accepted"), since ACS has queued it. Retries are the client's own
azure-core RetryPolicy (`sink_retry_policy`: bounded, with Retry-After, POST included); each
alert has one Operation-Id, which every retry of its send repeats, so a retry after a lost answer
does not send the email twice.
The ACS connection string (access key) is a secret and is never logged."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from guardrail import escaping
from guardrail.sinks._common import (
    AttemptCounter,
    DeliveryResult,
    RetrySettings,
    describe_error,
    log_undelivered_alert,
    sink_retry_policy,
)
from guardrail.transport import CREDENTIAL_TIMEOUTS, Timeouts

if TYPE_CHECKING:
    from guardrail.alerts import Alert

log = escaping.logger("guardrail.sinks.email")


def build_message(
    sender: str, recipients: Sequence[str], subject: str, plain: str, html: str
) -> dict[str, Any]:
    """The ACS Email `message` body (contracts/alerts/acs_email_message.json)."""
    return {
        "senderAddress": sender,
        "recipients": {"to": [{"address": a} for a in recipients]},
        "content": {"subject": subject, "plainText": plain, "html": html},
    }


def parse_recipients(value: str) -> list[str]:
    return [a.strip() for a in value.replace(";", ",").split(",") if a.strip()]


class EmailSink:
    """Sends `to_email(alert)` to the configured recipients.

    Pass either `connection_string` ("endpoint=https://...;accesskey=..."; HMAC auth) or
    `endpoint` (+ `credential`, default DefaultAzureCredential: managed identity in Azure)."""

    name = "email"

    def __init__(
        self,
        *,
        sender: str,
        recipients: Sequence[str],
        endpoint: str | None = None,
        connection_string: str | None = None,
        credential: Any = None,
        connection_verify: str | bool | None = None,
        retry: RetrySettings | None = None,
        poll_interval_s: float = 1.0,
        max_wait_s: float = 20.0,
        credential_timeouts: Timeouts = CREDENTIAL_TIMEOUTS,
    ) -> None:
        if not recipients:
            raise ValueError("ALERT_EMAIL_RECIPIENTS is empty")
        if not sender:
            raise ValueError("ALERT_EMAIL_SENDER is empty")
        if not endpoint and not connection_string:
            raise ValueError("set ACS_ENDPOINT (managed identity) or ACS_CONNECTION_STRING")
        self.sender = sender
        self.recipients = list(recipients)
        self._endpoint = endpoint
        self.__connection_string = connection_string
        self._credential = credential
        self._verify = connection_verify
        self.retry = retry or RetrySettings()
        self.poll_interval_s = poll_interval_s
        self.max_wait_s = max_wait_s
        self._credential_timeouts = credential_timeouts
        self._attempts = AttemptCounter()
        self._client: Any = None

    def __repr__(self) -> str:
        return f"EmailSink(to={len(self.recipients)} recipients)"

    def _get_client(self) -> Any:
        if self._client is None:
            from azure.communication.email import EmailClient

            kwargs: dict[str, Any] = {
                "retry_policy": sink_retry_policy(self.retry),
                "per_retry_policies": [self._attempts.policy()],
                "connection_timeout": self.retry.timeout_s,
                "read_timeout": self.retry.timeout_s,
                "polling_interval": self.poll_interval_s,
            }
            if self._verify is not None:
                kwargs["connection_verify"] = self._verify
            if self.__connection_string:
                self._client = EmailClient.from_connection_string(self.__connection_string, **kwargs)
            else:
                credential = self._credential
                if credential is None:
                    from guardrail.credentials import AzureIdentity

                    credential = self._credential = AzureIdentity(None, self._credential_timeouts)
                self._client = EmailClient(self._endpoint or "", credential, **kwargs)
        return self._client

    def send_alert(self, alert: Alert) -> DeliveryResult:
        from guardrail.alerts import to_email

        subject, plain, html = to_email(alert)
        result = self.send_email(subject, plain, html)
        if not result.delivered:
            log_undelivered_alert(alert, sink=self.name, reason=result.detail)
        return result

    def send_email(self, subject: str, plain: str, html: str) -> DeliveryResult:
        message = build_message(self.sender, self.recipients, subject, plain, html)
        operation_id = str(uuid.uuid4())
        self._attempts.start()
        try:
            poller = self._get_client().begin_send(
                message, operation_id=operation_id, polling_interval=self.poll_interval_s
            )
            attempts = max(1, self._attempts.count)  # the POSTs of this thread (polls run in the poller's)
            result = poller.result(timeout=self.max_wait_s)
            if not poller.done():
                log.info(
                    "alert email %s accepted by ACS; still running after %.1fs", operation_id, self.max_wait_s
                )
                return DeliveryResult(self.name, True, attempts, count=1, detail="accepted")
            status = str((result or {}).get("status", "unknown"))
            if status.lower() == "succeeded":
                log.info("alert email %s sent (attempt %d)", operation_id, attempts)
                return DeliveryResult(self.name, True, attempts, count=1, detail="Succeeded")
            reason = f"status {status}"
        except Exception as err:
            attempts = max(1, self._attempts.count)
            reason = describe_error(err)
        log.error("gave up sending alert email %s after %d attempts: %s", operation_id, attempts, reason)
        return DeliveryResult(self.name, False, attempts, failed=1, detail=reason)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
