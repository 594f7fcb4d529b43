"""The README's first command: `guardrail demo --fast` runs the whole product on a local tenant.
Run as a user would (a subprocess), then check the summary and the artifacts it leaves."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO


def test_demo_fast_shows_the_whole_product_working(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    run = subprocess.run(
        [sys.executable, "-m", "guardrail", "demo", "--fast", "--out", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "Summary" in run.stdout
    assert "breaker tripped" in run.stdout

    summary = json.loads((out / "summary.json").read_text())
    assert summary["accounts"] == 50
    assert summary["remediated"] >= 30
    assert summary["failed"] == 0
    assert summary["breaker_trips"] == 1  # the pipeline that keeps re-opening its account
    assert summary["suspended"] >= 1
    assert summary["exempted_accounts"] == 1  # the sandbox
    assert summary["failed_deliveries"] == 0
    assert summary["monitor_violations"] == []
    assert 0 < summary["event_latency_p50_ms"] <= summary["event_latency_p99_ms"]
    assert summary["teams_cards"] == summary["emails"] >= 1
    assert set(summary["findings_by_rule"]) >= {
        "default-action-deny",
        "bypass-not-allowed",
        "ip-rule-not-public",
        "ip-rule-prefix-unsupported",
        "ip-rule-too-broad",
        "vnet-rule-not-allowed",
    }

    findings = (out / "findings.jsonl").read_text().splitlines()
    assert len(findings) == summary["finding_records"] == summary["monitor_records"]
    cards = json.loads((out / "teams-cards.json").read_text())
    assert len(cards) == summary["teams_cards"]
    assert any("critical" in json.dumps(card).lower() for card in cards)
    report = (out / "report.html").read_text()
    assert report.startswith("<!doctype html>") and "legacy-search" in report
