"""Where users run `guardrail scan`: the pre-commit hook and the GitHub Actions workflow example run
the command that exists, with the options it has, and hand code scanning the file it writes."""

from __future__ import annotations

import io
import json
import re
import shlex
from pathlib import Path

import yaml

from guardrail.cli import build_parser, main
from tests.conftest import REPO

QUICKSTART = (
    Path(__file__).resolve().parent / "fixtures" / "quickstart-aifoundry-basic-project" / "azuredeploy.json"
)


def test_the_pre_commit_hook_runs_scan_on_the_files_pre_commit_names(tmp_path: Path) -> None:
    (hook,) = yaml.safe_load((REPO / ".pre-commit-hooks.yaml").read_text(encoding="utf-8"))
    assert hook["id"] == "guardrail-scan" and hook["language"] == "python"
    files = re.compile(hook["files"])
    assert files.search("infra/main.json") and files.search("infra/main.bicep")
    assert not files.search("infra/main.tf")
    program, *args = shlex.split(hook["entry"])
    assert program == "guardrail" and args[0] == "scan"
    other = tmp_path / "package.json"  # pre-commit names every changed .json: not a template, skipped
    other.write_text(json.dumps({"name": "x"}), encoding="utf-8")
    out, err = io.StringIO(), io.StringIO()
    code = main([*args, str(other), str(QUICKSTART)], out=out, err=err)
    assert (code, err.getvalue()) == (1, "")
    assert "default-action-deny" in out.getvalue()


def test_the_workflow_scans_uploads_the_sarif_it_wrote_and_fails_on_findings() -> None:
    workflow = yaml.safe_load((REPO / "docs" / "scan-workflow.yml").read_text(encoding="utf-8"))
    assert workflow["permissions"]["security-events"] == "write"
    steps = workflow["jobs"]["scan"]["steps"]
    uses = [step.get("uses", "") for step in steps]
    assert uses[0].startswith("actions/checkout@")
    scan = next(step for step in steps if "guardrail scan" in step.get("run", ""))
    command = " ".join(scan["run"].replace("\\\n", " ").split())
    match = re.search(r"guardrail (scan .*?) > (\S+)", command)
    assert match, command
    argv = shlex.split(
        match.group(1).replace('"${{ vars.AZURE_SUBSCRIPTION_ID }}"', "00000000-1111-2222-3333-444444444444")
    )
    parsed = build_parser().parse_args([*argv])  # the options exist
    assert parsed.format == "sarif" and parsed.resource_group and parsed.policy
    upload = next(
        step for step in steps if step.get("uses", "").startswith("github/codeql-action/upload-sarif@")
    )
    assert upload["with"]["sarif_file"] == match.group(2)
    assert upload["if"] == "always()"  # findings exit 1: the upload must still run
    assert steps.index(upload) > steps.index(scan)
    assert "steps.scan.outputs.exit" in steps[-1]["if"]
