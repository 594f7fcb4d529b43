"""The README's first command: `guardrail demo --fast` runs the whole product on a local tenant.
Run as a user would (a subprocess), then check the summary, the console and the artifacts it
leaves, and render the HTML report in headless Chromium (Debian's `chromium`)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

ARTIFACTS = [
    "policy.yaml",
    "findings.jsonl",
    "teams-cards.json",
    "emails.json",
    "summary.json",
    "report.html",
]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess[str]]:
    out = tmp_path_factory.mktemp("demo") / "demo"
    run = subprocess.run(
        [sys.executable, "-m", "guardrail", "demo", "--fast", "--out", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    return out, run


def test_demo_fast_shows_the_whole_product_working(
    demo: tuple[Path, subprocess.CompletedProcess[str]],
) -> None:
    out, run = demo
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
        "private-endpoint-not-allowed",
        "outbound-fqdn-not-allowed",
    }
    # The guardrail's own heartbeat rows are health, not findings about an account.
    assert "guardrail-heartbeat" not in summary["findings_by_rule"]

    findings = (out / "findings.jsonl").read_text().splitlines()
    assert len(findings) == summary["finding_records"] == summary["monitor_records"]
    cards = json.loads((out / "teams-cards.json").read_text())
    assert len(cards) == summary["teams_cards"]
    assert any("critical" in json.dumps(card).lower() for card in cards)
    report = (out / "report.html").read_text()
    assert report.startswith("<!doctype html>") and "legacy-search" in report


def test_closing_line_lists_every_file_written(demo: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    out, run = demo
    written = sorted(p.name for p in out.iterdir())
    assert written == sorted(ARTIFACTS)
    closing = run.stdout.strip().splitlines()[-1]
    assert closing == f"Files in {out}: {', '.join(ARTIFACTS)}"


def test_console_names_each_delivery_and_keeps_order(
    demo: tuple[Path, subprocess.CompletedProcess[str]],
) -> None:
    _, run = demo
    lines = run.stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("2. "))
    timeline = lines[start + 2 : next(i for i, line in enumerate(lines) if line.startswith("3. ")) - 1]
    deliveries = [line for line in timeline if line.startswith("  [")]
    assert deliveries and all(re.match(r"  \[(write event|notification)\] ", line) for line in deliveries)
    assert not any(line.startswith("  [event]") for line in lines)
    # Every detection line comes after the change it answers and before the next change.
    current = None
    for line in timeline:
        if not line.startswith("  ["):
            current = re.search(r"\(([\w-]+)\)$", line)
            assert current, line
        else:
            assert current is not None and f" {current.group(1)} " in line, (current, line)
    # The sandbox and the breaker-tripped account: two lines each, one per delivery, in words.
    sandbox = [line for line in deliveries if " sandbox-lab " in line]
    assert {line.split("]")[0] for line in sandbox} == {"  [write event", "  [notification"}


def test_report_tells_the_story_first(demo: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    out, _ = demo
    report = (out / "report.html").read_text()
    assert "event_latency_p50_ms" not in report  # human labels, not JSON keys
    assert report.index('id="story"') < report.index('id="alerts"') < report.index('id="sweep"')
    assert "Alice Martin" in report and "legacy-deploy-pipeline" in report
    assert re.search(
        r"legacy-search</b>: still open to all networks; remediation suspended until \d\d:\d\d:\d\d UTC; "
        r"owner alerted",
        report,
    )
    assert "https://portal.azure.com/#resource/subscriptions/" in report
    assert report.count("<svg") == 2 and "http://" not in report.replace(
        'xmlns="http://www.w3.org/2000/svg"', ""
    )
    assert "<script" not in report and "<link" not in report  # self-contained: opens offline
    assert "<s>Allow</s> → <b>Deny</b>" in report  # before → after


PARTNER = "0badf00d-0000-4000-8000-00000000beef"
ENDPOINT = (
    f"/subscriptions/{PARTNER}/resourceGroups/rg-partner/providers/Microsoft.Network/"
    "privateEndpoints/pe-kb-private"
)
KEPT = ["api.contoso.example", "models.blob.core.windows.net"]
AGENT_SUBNET = (
    "/subscriptions/ffffffff-0000-4000-8000-00000000f0f0/resourceGroups/rg-contractor/providers/"
    "Microsoft.Network/virtualNetworks/vnet-contractor/subnets/agents"
)


def test_demo_plays_both_network_doors(demo: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    """#14: an owner-auto-approved private endpoint from a subscription outside the policy is rejected;
    an exfiltration FQDN added to allowedFqdnList is stripped while an exact name and a *.suffix match
    stay. Checked in the emulator's state at the end, the records, the cards, the console and the report."""
    from guardrail.findings import FindingRecord
    from guardrail_workbench.report import card_parts

    out, run = demo
    policy = (out / "policy.yaml").read_text()
    assert "allowed_private_endpoint_subscriptions:" in policy and PARTNER not in policy
    assert 'allowed_fqdns: ["api.contoso.example", "*.blob.core.windows.net"]' in policy

    # the emulator's state at the end (the demo reads it back from ARM into summary.json)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["private_endpoints_rejected"] == 1 and summary["fqdns_stripped"] == 1
    (endpoint,) = summary["network_doors"]["private_endpoints"]
    assert (endpoint["value"], endpoint["now"]) == (ENDPOINT, "Rejected")
    # the agent story (issue #24): the managed network closed, the exfiltration rule deleted, the
    # contractor's agent subnet reported
    assert {(d["rule"], d["value"]) for d in summary["network_doors"]["agents"]} == {
        ("managed-network-internet-outbound", "AllowInternetOutbound"),
        ("managed-network-outbound-rule-not-allowed", "paste"),
        ("agent-subnet-not-allowed", AGENT_SUBNET),
    }
    (stripped,) = summary["network_doors"]["outbound"]
    assert (stripped["value"], stripped["now"], stripped["allowedFqdnList"]) == (
        "exfil.evil.example",
        "not listed",
        KEPT,
    )

    records = [
        FindingRecord.from_json(json.loads(line))
        for line in (out / "findings.jsonl").read_text().splitlines()
    ]
    (rejected,) = [r for r in records if r.rule == "private-endpoint-not-allowed"]
    assert rejected.status == "remediated" and rejected.value == ENDPOINT
    assert f"subscription {PARTNER}" in rejected.message and rejected.actor == "dave@contoso.example"
    (fqdn,) = [r for r in records if r.rule == "outbound-fqdn-not-allowed"]
    assert (fqdn.status, fqdn.value, fqdn.actor) == (
        "remediated",
        "exfil.evil.example",
        "bob@contoso.example",
    )
    assert fqdn.before == {"allowedFqdnList": [*KEPT, "exfil.evil.example"]}
    assert fqdn.after == {"allowedFqdnList": KEPT}

    lines = [
        line for m in json.loads((out / "teams-cards.json").read_text()) for line in card_parts(m)["lines"]
    ]
    assert (
        f"- private endpoint connections rejected (status Rejected): {ENDPOINT} (subscription {PARTNER})"
        in lines
    )
    assert "- removed allowedFqdnList exfil.evil.example" in lines

    console = run.stdout.splitlines()
    doors = console[
        console.index(
            "3. The doors networkAcls does not govern: private endpoints, outbound access and the "
            "agents' network:"
        ) :
    ]
    assert re.match(
        rf"  kb-private: private endpoint 0badf00d…/pe-kb-private \(subscription {PARTNER}\) rejected and "
        r"verified \d+ ms after it was approved; now Rejected$",
        doors[1],
    )
    assert doors[2].startswith("  kb-private: exfil.evil.example stripped from allowedFqdnList and verified ")
    assert doors[2].endswith("still allowed: api.contoso.example, models.blob.core.windows.net")
    assert any(
        line.startswith("  agents-lab: the agents' managed network switched back to approved outbound")
        for line in doors
    )
    assert any(line.startswith("  agents-lab: the agents' outbound rule paste deleted") for line in doors)

    report = (out / "report.html").read_text()
    assert re.search(
        r"was <b>rejected \d+ ms after it was approved</b>; "
        r"read back from ARM, the connection is <b>Rejected</b>",
        report,
    )
    assert re.search(r"<code>exfil\.evil\.example</code> was <b>stripped from allowedFqdnList \d+ ms", report)
    assert "0badf00d…/pe-kb-private: <s>Approved</s>" not in report  # the story's before → after:
    assert "<s>0badf00d…/pe-kb-private: Approved</s> → <b>0badf00d…/pe-kb-private: Rejected</b>" in report


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


PROBE = """<script>
addEventListener('load', () => {
  const d = document.documentElement;
  const wide = [...document.querySelectorAll('main *')]
    .filter(e => e.getBoundingClientRect().right > d.clientWidth + 1);
  const out = document.createElement('pre'); out.id = 'probe';
  out.textContent = JSON.stringify({scrollWidth: d.scrollWidth, clientWidth: d.clientWidth, innerWidth,
    wide: wide.slice(0, 5).map(e => e.tagName + '.' + e.className),
    story: document.querySelectorAll('.story .step').length,
    cards: document.querySelectorAll('.card').length,
    charts: document.querySelectorAll('svg rect').length,
    breaker: document.querySelectorAll('.breaker').length,
    sweepRows: document.querySelectorAll('.sweep tr').length});
  document.body.appendChild(out);
});
</script>"""


@pytest.mark.skipif(
    chromium() is None, reason="Debian's chromium is not installed (scripts/test installs it)"
)
def test_report_renders_in_headless_chromium_without_overflow(
    demo: tuple[Path, subprocess.CompletedProcess[str]], tmp_path: Path
) -> None:
    out, _ = demo
    browser = chromium()
    assert browser is not None
    flags = [
        browser,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--hide-scrollbars",
        "--window-size=1400,1000",
    ]
    shots = REPO / "out"
    shots.mkdir(exist_ok=True)
    shot = shots / "demo-report.png"
    shot.unlink(missing_ok=True)
    subprocess.run(
        [*flags, f"--screenshot={shot}", (out / "report.html").as_uri()],
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert shot.exists() and shot.stat().st_size > 10_000
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    probed = tmp_path / "probed.html"
    probed.write_text(
        (out / "report.html").read_text().replace("</body>", PROBE + "</body>"), encoding="utf-8"
    )
    dom = subprocess.run(
        [*flags, "--virtual-time-budget=5000", "--dump-dom", probed.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    ).stdout
    found = re.search(r'<pre id="probe">(.*?)</pre>', dom, re.S)
    assert found, dom[-2000:]
    facts = json.loads(found.group(1).replace("&quot;", '"').replace("&amp;", "&"))
    assert facts["innerWidth"] == 1400
    assert facts["scrollWidth"] <= facts["clientWidth"], facts  # no horizontal scrollbar at 1400 px
    assert facts["wide"] == [], facts
    assert facts["story"] == 16 and facts["breaker"] == 1 and facts["cards"] >= 6
    assert facts["charts"] >= 7 and facts["sweepRows"] >= 31
