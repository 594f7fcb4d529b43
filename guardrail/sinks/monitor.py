"""Findings to Azure Monitor Logs through the Logs Ingestion API (a DCE + DCR).

One `send(records)` per invocation uploads them all (the SDK gzips and chunks at 1 MiB). Each
chunk is retried by the client's own azure-core RetryPolicy (`sink_retry_policy`: bounded, with
Retry-After); records of chunks that still fail are written to the `guardrail.findings` logger,
one JSON line per record, so Application Insights keeps them. `send` never raises."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final

from guardrail import escaping
from guardrail.escaping import json_line
from guardrail.sinks._common import (
    AttemptCounter,
    DeliveryResult,
    RetrySettings,
    describe_error,
    sink_retry_policy,
)
from guardrail.transport import CREDENTIAL_TIMEOUTS, Timeouts

if TYPE_CHECKING:
    from guardrail.findings import FindingRecord

DEFAULT_STREAM: Final[str] = "Custom-GuardrailFindings_CL"
MONITOR_SCOPE: Final[str] = "https://monitor.azure.com/.default"

log = escaping.logger("guardrail.sinks.monitor")
findings_log = escaping.logger("guardrail.findings")


def log_undelivered(rows: Sequence[Mapping[str, Any]], *, sink: str, reason: str) -> None:
    """Write each row to the `guardrail.findings` logger as one JSON line (ERROR level):
    {"type": "guardrail.finding", "undelivered": sink, "reason": ..., "record": {...}}."""
    for row in rows:
        line = {"type": "guardrail.finding", "undelivered": sink, "reason": reason, "record": dict(row)}
        findings_log.error(json_line(line))


class MonitorSink:
    """Uploads FindingRecords with azure.monitor.ingestion.LogsIngestionClient.

    credential: None means DefaultAzureCredential (managed identity in Azure; set AZURE_CLIENT_ID
    for a user-assigned identity); locally pass StaticTokenCredential and connection_verify=
    the local CA bundle. The identity needs 'Monitoring Metrics Publisher' on the DCR."""

    name = "monitor"

    def __init__(
        self,
        endpoint: str,
        rule_id: str,
        *,
        stream_name: str = DEFAULT_STREAM,
        credential: Any = None,
        connection_verify: str | bool | None = None,
        retry: RetrySettings | None = None,
        credential_timeouts: Timeouts = CREDENTIAL_TIMEOUTS,
    ) -> None:
        self.endpoint = endpoint
        self._credential_timeouts = credential_timeouts
        self.rule_id = rule_id
        self.stream_name = stream_name
        self._credential = credential
        self._verify = connection_verify
        self.retry = retry or RetrySettings()
        self._attempts = AttemptCounter()
        self._client: Any = None

    def _get_client(self) -> Any:
        if self._client is None:
            from azure.monitor.ingestion import LogsIngestionClient

            credential = self._credential
            if credential is None:
                from guardrail.credentials import AzureIdentity

                credential = self._credential = AzureIdentity(None, self._credential_timeouts)
            kwargs: dict[str, Any] = {
                "credential_scopes": [MONITOR_SCOPE],
                "retry_policy": sink_retry_policy(self.retry),
                "per_retry_policies": [self._attempts.policy()],
                "connection_timeout": self.retry.timeout_s,
                "read_timeout": self.retry.timeout_s,
            }
            if self._verify is not None:
                kwargs["connection_verify"] = self._verify
            self._client = LogsIngestionClient(self.endpoint, credential, **kwargs)
        return self._client

    def send(self, records: Sequence[FindingRecord]) -> DeliveryResult:
        rows: list[dict[str, Any]] = [r.to_json() for r in records]
        if not rows:
            return DeliveryResult(self.name, True, 0, detail="nothing to send")
        failed: list[dict[str, Any]] = []
        errors: list[BaseException] = []

        def on_error(err: Any) -> None:  # a chunk that failed after the pipeline's retries
            errors.append(err.error)
            failed.extend(dict(x) for x in err.failed_logs)

        self._attempts.start()
        try:
            self._get_client().upload(
                rule_id=self.rule_id, stream_name=self.stream_name, logs=rows, on_error=on_error
            )
        except Exception as err:  # client construction or anything not routed to on_error
            errors.append(err)
            failed = rows
        attempts = max(1, self._attempts.count)
        pending = failed if errors else []
        reason = describe_error(errors[-1]) if errors else "ok"
        if not pending:
            return DeliveryResult(self.name, True, attempts, count=len(rows), detail="ok")
        log_undelivered(pending, sink=self.name, reason=reason)
        log.error(
            "gave up uploading %d findings to Azure Monitor after %d requests (%s); written to the log",
            len(pending),
            attempts,
            reason,
        )
        return DeliveryResult(
            self.name, False, attempts, count=len(rows) - len(pending), failed=len(pending), detail=reason
        )

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
