"""The pure parts of the guardrail's health reporting: heartbeat counts, heartbeat records, the
dead-letter blob format and --since, the failure causes."""

from __future__ import annotations

import gzip
import http.server
import json
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

import pytest
from hypothesis import given
from hypothesis import strategies as st

from guardrail import deadletter, heartbeat, telemetry
from guardrail.findings import FindingRecord
from guardrail.service import Outcome, SweepReport
from guardrail.settings import load_settings
from tests.conftest import load_contract

REPO = Path(__file__).resolve().parents[2]
SUBS = ["0a0a0a0a-1111-4111-8111-000000000001", "0b0b0b0b-2222-4222-8222-000000000002"]
ACTIONS = ["compliant", "remediated", "failed", "suspended", "audit", "reported", "gone", "invalid"]
NOW = datetime(2026, 12, 1, 18, 0, tzinfo=UTC)


def rid(sub: str, n: int) -> str:
    return f"/subscriptions/{sub}/resourceGroups/rg/providers/Microsoft.CognitiveServices/accounts/a{n}"


@st.composite
def reports(draw: st.DrawFn) -> SweepReport:
    report = SweepReport()
    for sub in SUBS:
        for n in range(draw(st.integers(0, 6))):
            report.listed += 1
            report.note_listed({"id": rid(sub, n)})
            fate = draw(st.sampled_from(["listed-compliant", "raised", *ACTIONS]))
            if fate == "raised":
                report.errors.append(f"{rid(sub, n)}: TransientArmError: throttled")
            elif fate != "listed-compliant":
                report.outcomes.append(Outcome(rid(sub, n), fate))
    return report


@given(reports())
def test_heartbeat_counts_add_up(report: SweepReport) -> None:
    counts = heartbeat.sweep_counts(report, SUBS, report.listed_by_subscription)
    assert [c.subscription for c in counts] == sorted(SUBS)
    assert sum(c.listed for c in counts) == report.listed
    assert sum(c.fixed for c in counts) == report.count("remediated")
    assert sum(c.failed for c in counts) == report.count("failed") + report.count("invalid") + len(
        report.errors
    )
    for c in counts:
        assert 0 <= c.checked <= c.listed and c.fixed + c.failed <= c.listed and c.readable is True
    records = heartbeat.heartbeat_records(counts, mode="enforce", seconds=1.0, now=NOW)
    for record in records:  # valid rows of the public schema, round-tripping through JSON
        assert FindingRecord.from_json(json.loads(record.to_json_line())) == record
        assert json.loads(record.value or "")["listed"] == next(
            c.listed for c in counts if c.subscription == record.subscription_id
        )


def test_a_failed_listing_marks_the_subscription_it_names() -> None:
    report = SweepReport(
        listed=1, errors=[f"listing: ArmGatewayError: GET /subscriptions/{SUBS[1]}/providers/x: 403"]
    )
    report.note_listed({"id": rid(SUBS[0], 1)})
    first, second = heartbeat.sweep_counts(report, SUBS, report.listed_by_subscription)
    assert (first.readable, second.readable) == (True, False)
    assert second.error and "403" in second.error
    unnamed = SweepReport(errors=["listing: ServiceRequestError: connection refused"])
    (row,) = heartbeat.sweep_counts(unnamed, SUBS[:1], {})
    assert row.readable is None  # cannot tell whether this subscription was readable


def test_a_sweep_that_saw_no_subscription_still_leaves_a_heartbeat() -> None:
    (record,) = heartbeat.heartbeat_records([], mode="audit", seconds=0.1, now=NOW)
    assert (record.resource_id, record.subscription_id, record.rule) == ("/", "", "guardrail-heartbeat")
    assert json.loads(record.value or "")["readable"] is None


def test_dead_letter_blob_events_lose_only_the_dead_letter_properties() -> None:
    original = load_contract("events/derived_cogsvc_ResourceWriteSuccess.eventgrid.json")
    event = original[0] if isinstance(original, list) else original
    blob = [
        {
            **event,
            "deadLetterReason": "UndeliverableDueToHttpBadRequest",
            "deliveryAttempts": 1,
            "lastDeliveryOutcome": "BadRequest",
            "lastHttpStatusCode": 400,
            "publishTime": "2026-12-01T10:00:00.0000000Z",
            "lastDeliveryAttemptTime": "2026-12-01T10:00:05.0000000Z",
        }
    ]
    (parsed,) = deadletter.parse_blob("SUB/2026/12/1/10/x.json", json.dumps(blob).encode())
    assert parsed.event == event
    assert (parsed.reason, parsed.attempts, parsed.last_outcome) == (
        "UndeliverableDueToHttpBadRequest",
        1,
        "BadRequest",
    )


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (b"not json", "not JSON"),
        (b'"text"', "expected a JSON array"),
        (b'[{"eventType": "x"}]', "item 0 is not an event"),
        (b"[1]", "item 0 is not an event"),
    ],
)
def test_bad_dead_letter_blobs_are_named(data: bytes, problem: str) -> None:
    with pytest.raises(deadletter.DeadLetterError, match=problem) as error:
        deadletter.parse_blob("SUB/bad.json", data)
    assert "SUB/bad.json" in str(error.value)


def test_since() -> None:
    assert deadletter.parse_since(None, NOW) is None
    assert deadletter.parse_since("12h", NOW) == NOW - timedelta(hours=12)
    assert deadletter.parse_since("7d", NOW) == NOW - timedelta(days=7)
    assert deadletter.parse_since("2026-11-30", NOW) == datetime(2026, 11, 30, tzinfo=UTC)
    assert deadletter.parse_since("2026-11-30T10:00:00Z", NOW) == datetime(2026, 11, 30, 10, tzinfo=UTC)
    with pytest.raises(deadletter.DeadLetterError, match="--since"):
        deadletter.parse_since("last tuesday", NOW)


@pytest.mark.parametrize(
    ("action", "detail", "cause"),
    [
        ("failed", "LinkedAuthorizationFailed: no join permission on subnet s", "LinkedAuthorizationFailed"),
        ("failed", "cannot read the account: 403 AuthorizationFailed", "read-denied"),
        ("failed", "cannot read the account: bad gateway body", "read-failed"),
        ("failed", "refused: the remediation would widen access (x)", "widening-refused"),
        ("failed", "the diagnostic setting did not verify on re-read", "not-verified"),
        ("failed", "the write did not succeed, oddly", "write-failed"),
        ("invalid", "properties is not an object", "invalid-account"),
    ],
)
def test_failure_causes_are_short_and_bounded(action: str, detail: str, cause: str) -> None:
    assert telemetry.failure_cause(Outcome("x", action, detail=detail)) == cause


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", (False, None)),
        ("Authorization=AAD", (True, None)),
        (
            "ClientId=11111111-2222-3333-4444-555555555555;Authorization=AAD",
            (True, "11111111-2222-3333-4444-555555555555"),
        ),
        ("clientid=abc; authorization=aad", (True, "abc")),
        ("ClientId=abc", (False, None)),
    ],
)
def test_entra_id_auth_follows_the_host_setting(text: str, expected: tuple[bool, str | None]) -> None:
    assert telemetry.entra_id_auth(text) == expected


class _Ingestion(http.server.BaseHTTPRequestHandler):
    """Application Insights' ingestion endpoint on loopback: keeps every telemetry item posted."""

    items: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        text = body.decode()
        parsed = (
            json.loads(text)
            if text.lstrip().startswith("[")
            else [json.loads(x) for x in text.splitlines() if x]
        )
        type(self).items.extend(parsed)
        reply = json.dumps(
            {"itemsReceived": len(parsed), "itemsAccepted": len(parsed), "errors": []}
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_with_a_connection_string_the_metrics_reach_application_insights(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in ("STATSBEAT_DISABLED_ALL", "CONTROLPLANE_DISABLED", "SDKSTATS_DISABLED"):
        # The exporter's own calls to Microsoft (statsbeat, its configuration service, SDK stats).
        monkeypatch.setenv(f"APPLICATIONINSIGHTS_{name}", "true")
    monkeypatch.setenv("TMPDIR", str(tmp_path))  # the exporter's offline storage
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Ingestion)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Ingestion.items = []
    metrics = telemetry.Telemetry()
    try:
        endpoint = f"http://127.0.0.1:{server.server_address[1]}/"
        env = {
            "APPLICATIONINSIGHTS_CONNECTION_STRING": (
                f"InstrumentationKey=00000000-0000-0000-0000-000000000000;IngestionEndpoint={endpoint}"
            ),
            "GUARDRAIL_METRICS_EXPORT_SECONDS": "3600",
        }
        metrics = telemetry.setup(load_settings(env).telemetry)
        assert metrics.kind == "azure-monitor"
        metrics.record_check(Outcome(rid(SUBS[0], 1), "remediated", trigger="event"))
        metrics.record_ignored("event-type")
        metrics.flush()
    finally:
        metrics.shutdown()
        server.shutdown()
    metrics = {
        m["name"]: m
        for item in _Ingestion.items
        if item.get("data", {}).get("baseType") == "MetricData"
        for m in item["data"]["baseData"]["metrics"]
    }
    assert {"guardrail.checks", "guardrail.remediations", "guardrail.events.ignored"} <= set(metrics)
    dims = [
        item["data"]["baseData"].get("properties", {})
        for item in _Ingestion.items
        if item["data"]["baseData"]["metrics"][0]["name"] == "guardrail.events.ignored"
    ]
    assert {"reason": "event-type"} in dims


def test_the_first_invocation_does_not_import_telemetry_or_blob_sdks_unasked() -> None:
    """Without a connection string the guardrail never imports OpenTelemetry, the exporter or the
    Blob SDK (the replay imports it when it runs)."""
    code = (
        "import sys, function_app, guardrail.functions, guardrail.service, guardrail.observe;"
        "from guardrail import telemetry, settings;"
        "assert telemetry.setup(settings.load_settings({}).telemetry).kind == 'off';"
        "heavy = sorted(m for m in sys.modules"
        " if m.startswith(('opentelemetry', 'azure.monitor.opentelemetry', 'azure.storage.blob')));"
        "print(heavy); assert not heavy"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
