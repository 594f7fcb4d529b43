"""Checkov passes on infra/ with no failed check, and really evaluates the Bicep.

Checkov runs from its own venv (.venv-checkov, built from requirements-checkov.txt) because its
dependency tree would fight the app's pins. Every accepted finding is an in-line
`// checkov:skip=CKV_...: reason` comment next to the resource; this test also refuses a skip
without a reason.

Checkov parses Bicep with its own (older) pycep-parser: a file it cannot parse is silently not
checked, so parsing errors fail this test too.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
VENV = ROOT / ".venv-checkov"
CHECKOV = VENV / "bin" / "checkov"

pytestmark = pytest.mark.skipif(
    not VENV.is_dir(),
    reason=(
        "checkov is not installed: create it with `python3 -m venv .venv-checkov && "
        ".venv-checkov/bin/pip install -r requirements-checkov.txt` (CI does)"
    ),
)


@pytest.fixture(scope="module")
def report() -> dict[str, Any]:
    # The venv exists but checkov does not: a failed install must fail, not skip.
    assert CHECKOV.exists(), f"{VENV} exists but has no checkov: reinstall from requirements-checkov.txt"
    env = {**os.environ, "BC_SKIP_MAPPING": "TRUE", "CHECKOV_RUN_SCA_PACKAGE_SCAN_V2": "false"}
    proc = subprocess.run(
        [
            str(CHECKOV),
            "-d",
            str(ROOT / "infra"),
            "--framework",
            "bicep",
            "--compact",
            "--quiet",
            "--skip-download",
            "-o",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=240,
        env=env,
        cwd=ROOT,
    )
    # checkov exits 1 when a check fails; anything else (2, crash) is a broken run.
    assert proc.returncode in (0, 1), f"checkov exited {proc.returncode}: {proc.stderr[-2000:]}"
    data = json.loads(proc.stdout)
    reports = data if isinstance(data, list) else [data]
    (bicep,) = [r for r in reports if r.get("check_type") == "bicep"]
    bicep["_returncode"] = proc.returncode
    return bicep  # type: ignore[no-any-return]


def test_checkov_evaluated_the_bicep_resources(report: dict[str, Any]) -> None:
    summary = report["summary"]
    assert summary["parsing_errors"] == 0, "checkov could not parse a Bicep file, so it did not check it"
    assert summary["resource_count"] >= 40, summary
    assert summary["passed"] >= 20, f"checkov passed too few checks to mean anything: {summary}"


def test_checkov_has_no_failed_check(report: dict[str, Any]) -> None:
    failed = [
        f"{c['check_id']} {c['resource']} ({c['file_path']}): {c['check_name']}"
        for c in report["results"].get("failed_checks", [])
    ]
    assert not failed, "checkov failures:\n" + "\n".join(failed)
    assert report["_returncode"] == 0


def test_every_skip_is_in_line_with_a_reason(report: dict[str, Any]) -> None:
    for check in report["results"].get("skipped_checks", []):
        comment = (check.get("check_result") or {}).get("suppress_comment", "")
        where = f"{check['check_id']} on {check['resource']}"
        assert len(comment.strip()) >= 20, f"{where} skipped without a reason"
    for path in (ROOT / "infra").rglob("*.bicep"):
        for line in path.read_text().splitlines():
            if "checkov:skip=" in line:
                reasoned = re.search(r"//\s*checkov:skip=CKV2?_[A-Z]+_\d+:\s*\S.{15,}", line)
                assert reasoned, f"{path}: {line.strip()}"
