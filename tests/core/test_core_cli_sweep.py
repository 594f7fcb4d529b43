"""`guardrail sweep` (issue 16): progress on a terminal (accounts listed, checked, fixed, failed as
it goes) and machine-readable output when piped (one JSON line per checked account, then the
summary line), through the emulator with the real SDK."""

from __future__ import annotations

import io
import json
import os
from collections.abc import Iterator
from typing import Any

import pytest

from guardrail import functions
from guardrail.cli import main
from guardrail_workbench.emulator import Emulator, make_token
from guardrail_workbench.emulator.identity import GUARDRAIL_CLAIMS
from tests.conftest import REPO


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def tenant_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[Emulator]:
    for key in list(os.environ):
        if key.startswith(("ARM_", "GUARDRAIL_", "AZURE_", "TEAMS_", "ACS_", "MONITOR_", "AzureWebJobs")):
            monkeypatch.delenv(key)
    with Emulator(port=0) as emulator:
        emulator.seed_file(REPO / "samples" / "tenant.json")
        monkeypatch.setenv("ARM_ENDPOINT", emulator.endpoint)
        monkeypatch.setenv("ARM_CA_BUNDLE", emulator.ca_bundle)
        monkeypatch.setenv("ARM_CREDENTIAL", "static")
        monkeypatch.setenv("ARM_STATIC_TOKEN", make_token(GUARDRAIL_CLAIMS))
        functions.reset()
        try:
            yield emulator
        finally:
            functions.reset()


def sweep(*argv: str, out: io.StringIO, err: io.StringIO) -> tuple[int, list[dict[str, Any]]]:
    code = main(["sweep", *argv], out=out, err=err)
    return code, [json.loads(line) for line in out.getvalue().splitlines()]


def test_piped_sweep_prints_one_json_line_per_account_then_the_summary(tenant_env: Emulator) -> None:
    out, err = io.StringIO(), io.StringIO()  # not a terminal: JSON by default, no status line
    code, lines = sweep(out=out, err=err)
    assert code == 0, err.getvalue()
    *accounts, summary = lines
    assert summary["listed"] == len(tenant_env.accounts()) == 6
    assert len(accounts) == summary["listed"] - summary["compliant"] >= 1
    assert {a["action"] for a in accounts} <= {"remediated", "reported", "failed", "suspended"}
    assert summary["remediated"] == sum(a["action"] == "remediated" for a in accounts)
    for line in accounts:
        assert list(line) == ["resource_id", "action", "detail", "findings"]
        assert line["findings"] and all(f["ResourceId"] == line["resource_id"] for f in line["findings"])
    assert "listed ·" not in err.getvalue()


def test_sweep_on_a_terminal_shows_listed_checked_fixed_failed(tenant_env: Emulator) -> None:
    out, err = Terminal(), Terminal()
    code = main(["sweep"], out=out, err=err)
    assert code == 0, err.getvalue()
    status = err.getvalue()
    # tqdm redraws one line with \r: the counts grow as the listing and the checks go on
    frames = [frame for frame in status.split("\r") if frame.startswith("sweep: ")]
    assert any(frame.startswith("sweep: 6 listed") for frame in frames), status
    assert any("fixed" in frame and "failed" in frame and "checked" in frame for frame in frames)
    text = out.getvalue()  # a terminal on stdout: words, not JSON
    assert "remediated" in text and text.splitlines()[-1].startswith("sweep: 6 listed, ")
    with pytest.raises(json.JSONDecodeError):
        json.loads(text.splitlines()[-1])


def test_format_json_on_a_terminal_too(tenant_env: Emulator) -> None:
    out, err = Terminal(), io.StringIO()
    code, lines = sweep("--format", "json", out=out, err=err)
    assert code == 0
    assert lines[-1]["listed"] == 6
