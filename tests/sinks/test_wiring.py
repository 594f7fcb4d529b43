"""Settings wiring, lazy imports, and agreement with the contracts and the infrastructure."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from guardrail.alerts import compose_alert
from guardrail.findings import COLUMNS, FindingRecord
from guardrail.settings import SettingsError, load_settings
from guardrail.sinks import (
    DeliveryResult,
    alert_sinks,
    deliver_alert,
    deliver_findings,
    finding_sinks,
)
from guardrail.sinks.email import EmailSink, build_message
from guardrail.sinks.jsonl import JsonlSink, LogSink
from guardrail.sinks.monitor import MonitorSink
from guardrail.sinks.teams import TeamsSink
from guardrail_workbench.receivers import EmailReceiver

DATA = Path(__file__).parent / "data"
REPO = Path(__file__).resolve().parents[2]
MakeRecord = Callable[..., FindingRecord]


def test_importing_the_sinks_does_not_import_azure_sdks() -> None:
    code = (
        "import sys, guardrail.findings, guardrail.alerts, guardrail.sinks, guardrail.sinks.monitor, "
        "guardrail.sinks.teams, guardrail.sinks.email, guardrail.sinks.jsonl\n"
        "print(sorted(m for m in sys.modules if m.startswith('azure')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    assert out.stdout.strip() == "[]"


def test_sinks_from_settings(tmp_path: Path) -> None:
    none = load_settings({}).sinks
    assert [type(s) for s in finding_sinks(none)] == [LogSink]
    assert alert_sinks(none) == []
    env = {
        "MONITOR_DCE_ENDPOINT": "https://dce.example",
        "MONITOR_DCR_IMMUTABLE_ID": "dcr-1",
        "GUARDRAIL_FINDINGS_FILE": str(tmp_path / "f.jsonl"),
        "TEAMS_WEBHOOK_URL": "https://prod-1.westus.logic.azure.com/workflows/x/triggers/manual/paths/invoke?sig=s",
        "ALERT_EMAIL_RECIPIENTS": "secops@contoso.example",
        "ALERT_EMAIL_SENDER": "DoNotReply@contoso.example",
        "ACS_ENDPOINT": "https://acs.example.communication.azure.com",
    }
    configured = load_settings(env).sinks
    assert [type(s) for s in finding_sinks(configured)] == [MonitorSink, JsonlSink]
    assert [type(s) for s in alert_sinks(configured)] == [TeamsSink, EmailSink]
    assert alert_sinks(load_settings({"TEAMS_WEBHOOK_URL": ""}).sinks) == []
    # An unresolved Key Vault reference is a setting to fix, named with the others (it used to turn
    # Teams off with only a log line).
    unresolved = {"TEAMS_WEBHOOK_URL": "@Microsoft.KeyVault(SecretUri=https://kv.example/secrets/teams)"}
    with pytest.raises(SettingsError, match="TEAMS_WEBHOOK_URL: is an unresolved Key Vault") as error:
        load_settings(unresolved)
    assert "kv.example" not in str(error.value)


def test_deliver_helpers_contain_a_raising_sink(make_record: MakeRecord) -> None:
    class Raising:
        name = "raising"

        def send(self, records: object) -> DeliveryResult:
            raise RuntimeError("bug")

        def send_alert(self, alert: object) -> DeliveryResult:
            raise RuntimeError("bug")

    records = [make_record()]
    results = deliver_findings(records, [Raising(), LogSink()])
    assert [(r.sink, r.delivered) for r in results] == [("raising", False), ("log", True)]
    alert = compose_alert(records)
    assert alert is not None
    assert [r.delivered for r in deliver_alert(alert, [Raising()])] == [False]


def test_email_message_has_the_contract_shape() -> None:
    sample = json.loads((DATA / "acs_email_message.json").read_text(encoding="utf-8"))
    ours = build_message("DoNotReply@x.example", ["a@x.example"], "s", "p", "<p>h</p>")
    assert set(ours) == set(sample)
    assert set(ours["content"]) == set(sample["content"])
    assert set(ours["recipients"]) == set(sample["recipients"])
    assert set(ours["recipients"]["to"][0]) <= set(sample["recipients"]["to"][0])


def test_receiver_accepts_the_contract_email_sample(ca_bundle: str) -> None:
    sample = json.loads((DATA / "acs_email_message.json").read_text(encoding="utf-8"))
    sample["senderAddress"] = "DoNotReply@guardrail.contoso.example"
    with EmailReceiver() as rx:
        sink = EmailSink(
            sender=sample["senderAddress"],
            recipients=[r["address"] for r in sample["recipients"]["to"]],
            connection_string=rx.connection_string,
            connection_verify=ca_bundle,
            poll_interval_s=0.05,
        )
        content = sample["content"]
        assert sink.send_email(content["subject"], content["plainText"], content["html"]).delivered
    assert rx.violations == []


def _bicep_columns(text: str) -> dict[str, str]:
    block = text.split("var findingsColumns = [", 1)[1].split("\n]", 1)[0]
    return dict(re.findall(r"name:\s*'([^']+)'\s*\n\s*type:\s*'([^']+)'", block))


def test_findings_schema_matches_the_dcr_and_table_in_infra() -> None:
    bicep = REPO / "infra" / "modules" / "host.bicep"
    if not bicep.exists():
        pytest.skip("infra/modules/host.bicep not present")
    columns = _bicep_columns(bicep.read_text(encoding="utf-8"))
    assert tuple(columns) == COLUMNS
    assert columns["TimeGenerated"] == "datetime"
    assert columns["Before"] == columns["After"] == "dynamic"
    assert {k for k, v in columns.items() if v == "string"} == set(COLUMNS) - {
        "TimeGenerated",
        "Before",
        "After",
    }
