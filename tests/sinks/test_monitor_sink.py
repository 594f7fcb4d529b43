"""MonitorSink with the real LogsIngestionClient against the local Logs Ingestion receiver."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

import pytest

from guardrail.findings import FindingRecord
from guardrail.rules import RULE_IDS
from guardrail.settings import load_settings
from guardrail.sinks import RetrySettings, StaticTokenCredential, finding_sinks
from guardrail.sinks.monitor import MONITOR_SCOPE, MonitorSink
from guardrail_workbench.receivers import IngestionReceiver

MakeRecord = Callable[..., FindingRecord]


def _sink(
    rx: IngestionReceiver, ca: str, retry: RetrySettings, **kw: Any
) -> tuple[MonitorSink, StaticTokenCredential]:
    cred = StaticTokenCredential("local-test-token")
    sink = MonitorSink(
        rx.endpoint, rx.dcr_immutable_id, credential=cred, connection_verify=ca, retry=retry, **kw
    )
    return sink, cred


def _unsent(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    lines = [r.getMessage() for r in caplog.records if r.name == "guardrail.findings"]
    return [json.loads(line) for line in lines]


def test_records_land_in_the_ingestion_endpoint(
    ingestion_rx: IngestionReceiver, ca_bundle: str, fast_retry: RetrySettings, make_record: MakeRecord
) -> None:
    records = [make_record(rule=RULE_IDS[i], value=f"20.0.0.{i}") for i in range(5)] + [
        make_record(
            value=None, before=None, after=None, actor=None, event_id=None, status="audit", mode="audit"
        )
    ]
    sink, cred = _sink(ingestion_rx, ca_bundle, fast_retry)
    result = sink.send(records)
    assert result.delivered and result.count == 6 and result.attempts == 1
    assert ingestion_rx.violations == []
    assert len(ingestion_rx.batches) == 1  # one batch per invocation
    assert ingestion_rx.records == [r.to_json() for r in records]
    request = ingestion_rx.requests[0]
    assert (
        request.path
        == f"/dataCollectionRules/{ingestion_rx.dcr_immutable_id}/streams/Custom-GuardrailFindings_CL"
    )
    assert request.query["api-version"] == ["2023-01-01"]
    assert request.headers["content-encoding"] == "gzip"
    assert cred.scopes_requested and cred.scopes_requested[0] == (MONITOR_SCOPE,)


def test_total_outage_loses_no_record_and_does_not_raise(
    ingestion_rx: IngestionReceiver,
    ca_bundle: str,
    fast_retry: RetrySettings,
    make_record: MakeRecord,
    caplog: pytest.LogCaptureFixture,
) -> None:
    records = [make_record(rule=RULE_IDS[i]) for i in range(3)]
    ingestion_rx.fail_next(100, status=503)
    sink, _ = _sink(ingestion_rx, ca_bundle, fast_retry)
    with caplog.at_level(logging.INFO):
        result = sink.send(records)
    assert not result.delivered and result.failed == 3 and result.attempts == 3
    assert result.detail == "HTTP 503"
    assert len(ingestion_rx.requests) == 3  # bounded: exactly `attempts` uploads
    unsent = _unsent(caplog)
    assert [u["record"] for u in unsent] == [r.to_json() for r in records]
    assert all(u["undelivered"] == "monitor" and u["reason"] == "HTTP 503" for u in unsent)
    assert all(r.levelno == logging.ERROR for r in caplog.records if r.name == "guardrail.findings")


def test_transient_outage_is_retried_and_succeeds(
    ingestion_rx: IngestionReceiver,
    ca_bundle: str,
    fast_retry: RetrySettings,
    make_record: MakeRecord,
    caplog: pytest.LogCaptureFixture,
) -> None:
    records = [make_record(rule=RULE_IDS[i]) for i in range(3)]
    ingestion_rx.fail_next(2, status=503)
    sink, _ = _sink(ingestion_rx, ca_bundle, fast_retry)
    result = sink.send(records)
    assert result.delivered and result.attempts == 3 and result.count == 3
    assert ingestion_rx.records == [r.to_json() for r in records]
    assert _unsent(caplog) == []


def test_timeouts_and_4xx_are_retried(
    ingestion_rx: IngestionReceiver, ca_bundle: str, make_record: MakeRecord
) -> None:
    retry = RetrySettings(attempts=3, backoff_s=0, timeout_s=0.3)
    ingestion_rx.timeout_next(1, delay=1.0)
    ingestion_rx.fail_next(1, status=429, retry_after="0")
    sink, _ = _sink(ingestion_rx, ca_bundle, retry)
    result = sink.send([make_record()])
    assert result.delivered and result.attempts == 3
    assert len(ingestion_rx.records) == 1


def test_unreachable_endpoint_and_bad_credential_do_not_raise(
    ca_bundle: str, fast_retry: RetrySettings, make_record: MakeRecord, caplog: pytest.LogCaptureFixture
) -> None:
    class Broken:
        def get_token(self, *scopes: str, **kwargs: object) -> object:
            raise RuntimeError("no identity")

    with IngestionReceiver() as rx:
        endpoint, rule = rx.endpoint, rx.dcr_immutable_id
    # the receiver is stopped: the port refuses connections
    dead = MonitorSink(
        endpoint, rule, credential=StaticTokenCredential(), connection_verify=ca_bundle, retry=fast_retry
    )
    with caplog.at_level(logging.INFO):
        assert not dead.send([make_record()]).delivered
        broken = MonitorSink(
            endpoint, rule, credential=Broken(), connection_verify=ca_bundle, retry=fast_retry
        )
        result = broken.send([make_record(rule="bypass-not-allowed")])
    assert not result.delivered and result.detail == "RuntimeError"
    assert [u["record"]["Rule"] for u in _unsent(caplog)] == ["default-action-deny", "bypass-not-allowed"]


def test_wrong_stream_is_a_visible_failure(
    ingestion_rx: IngestionReceiver,
    ca_bundle: str,
    fast_retry: RetrySettings,
    make_record: MakeRecord,
    caplog: pytest.LogCaptureFixture,
) -> None:
    sink, _ = _sink(ingestion_rx, ca_bundle, fast_retry, stream_name="Custom-Other_CL")
    result = sink.send([make_record()])
    assert not result.delivered and result.detail == "HTTP 400"
    assert ingestion_rx.violations and "not declared" in ingestion_rx.violations[0]
    assert len(_unsent(caplog)) == 1


def test_from_settings(ca_bundle: str) -> None:
    assert not any(isinstance(s, MonitorSink) for s in finding_sinks(load_settings({}).sinks))
    sink, *_ = finding_sinks(
        load_settings(
            {
                "MONITOR_DCE_ENDPOINT": "https://127.0.0.1:1",
                "MONITOR_DCR_IMMUTABLE_ID": "dcr-1",
                "GUARDRAIL_CA_BUNDLE": ca_bundle,
                "GUARDRAIL_SINK_ATTEMPTS": "5",
            }
        ).sinks
    )
    assert isinstance(sink, MonitorSink)
    assert sink.stream_name == "Custom-GuardrailFindings_CL" and sink.retry.attempts == 5


def test_nothing_to_send_makes_no_request(
    ingestion_rx: IngestionReceiver, ca_bundle: str, fast_retry: RetrySettings
) -> None:
    sink, _ = _sink(ingestion_rx, ca_bundle, fast_retry)
    assert sink.send([]).delivered
    assert ingestion_rx.requests == []


def test_big_batch_is_chunked_and_only_the_failed_chunk_is_retried(
    ingestion_rx: IngestionReceiver,
    ca_bundle: str,
    fast_retry: RetrySettings,
    make_record: MakeRecord,
    caplog: pytest.LogCaptureFixture,
) -> None:
    before = {"defaultAction": "Allow", "ipRules": [{"value": f"20.0.{i}.1"} for i in range(100)]}
    records = [
        make_record(rule=RULE_IDS[i % len(RULE_IDS)], value=f"v{i}", before=before) for i in range(400)
    ]  # about 1.2 MB of JSON
    ingestion_rx.fail_next(1, status=503)  # the first chunk fails once
    sink, _ = _sink(ingestion_rx, ca_bundle, fast_retry)
    result = sink.send(records)
    assert result.delivered and result.count == 400
    assert len(ingestion_rx.batches) >= 2 and all(ingestion_rx.batches)
    # one request per chunk, and one more: the failed chunk's retry, not the whole batch again
    assert result.attempts == len(ingestion_rx.requests) == len(ingestion_rx.batches) + 1
    received = sorted((r["Rule"], r["Value"]) for r in ingestion_rx.records)
    assert received == sorted((r.rule, r.value) for r in records)  # each once: no duplicates
    assert all(len(r.body) < 1024 * 1024 for r in ingestion_rx.requests)
    assert _unsent(caplog) == []
