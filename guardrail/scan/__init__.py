"""`guardrail scan`: the runtime's policy applied before deploy, to ARM templates (and Bicep, built
with the Bicep CLI), and to Terraform plans. Every account a deployment would create is judged by
`guardrail.engine.evaluate` with the same policy and rule registry as the function app (see
`guardrail.scan.judge`); output as text, JSON or SARIF 2.1.0 (`guardrail.scan.output`).

CLI-only: nothing here is imported on the function app's path."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from guardrail.scan import arm, terraform
from guardrail.scan.judge import Judged, judge
from guardrail.scan.located import Located, loads
from guardrail.scan.model import Deployed

if TYPE_CHECKING:
    from guardrail.policy import Policy

BICEP_TIMEOUT: Final = 300


class ScanInputProblem(ValueError):
    """An input the scan cannot read: the message names the file and what is wrong (exit 2)."""


@dataclass(slots=True)
class ScanReport:
    judged: list[Judged] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)  # the files read (the SARIF's artifacts)
    #: For a Bicep file: the compiled template's lines are not the source's; results point at the
    #: line of the resource's declaration when it can be found, else at line 1.
    sources: dict[str, str] = field(default_factory=dict)

    @property
    def compliant(self) -> bool:
        return all(j.compliant for j in self.judged)


def read_parameters(path: str) -> dict[str, Any]:
    """The values of an ARM parameters file (--parameters)."""
    document = _read_json(Path(path), path)
    try:
        return arm.parameter_values(document.value, path)
    except arm.TemplateProblem as problem:
        raise ScanInputProblem(str(problem)) from None


def _read_json(path: Path, label: str) -> Located:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as error:
        raise ScanInputProblem(f"{label}: cannot read the file: {error.strerror or error}") from None
    except UnicodeDecodeError as error:
        raise ScanInputProblem(f"{label}: not JSON: not UTF-8 text (byte {error.start})") from None
    if not text.strip():
        raise ScanInputProblem(f"{label}: the file is empty (expected an ARM template or a Terraform plan)")
    try:
        return loads(text)
    except json.JSONDecodeError as error:
        raise ScanInputProblem(f"{label}: not JSON: {error}") from None
    except RecursionError:
        raise ScanInputProblem(f"{label}: not JSON: nested too deeply") from None


def bicep_command(path: str) -> list[str]:
    """The command that builds a Bicep file to a template on stdout; ScanInputProblem when neither
    the Bicep CLI nor the Azure CLI is on PATH (the scanner never guesses at Bicep itself)."""
    bicep = shutil.which("bicep")
    if bicep:
        return [bicep, "build", "--stdout", path]
    az = shutil.which("az")
    if az:
        return [az, "bicep", "build", "--file", path, "--stdout"]
    raise ScanInputProblem(
        f"{path}: a Bicep file, and neither bicep nor az is on PATH: install the Bicep CLI, or build "
        f"it first (bicep build {path}) and scan the JSON"
    )


def _build_bicep(path: str) -> Located:
    command = bicep_command(path)
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=BICEP_TIMEOUT, check=False)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise ScanInputProblem(f"{path}: {Path(command[0]).name} did not run: {error}") from None
    if done.returncode != 0:
        first = next((line for line in done.stderr.splitlines() if line.strip()), "no message")
        raise ScanInputProblem(f"{path}: {Path(command[0]).name} could not build it: {first.strip()}")
    try:
        return loads(done.stdout)
    except json.JSONDecodeError as error:
        raise ScanInputProblem(f"{path}: the Bicep build printed no template: {error}") from None


def _bicep_line(source: str, deployed: Deployed) -> int:
    """The line declaring the resource in the Bicep source (a languageVersion 2.0 template keeps
    the symbolic name: resources.<name>), else 1."""
    parts = deployed.source.split(".")
    if len(parts) >= 2 and parts[-2] == "resources" and "[" not in parts[-1]:
        needle = f"resource {parts[-1]} "
        for number, line in enumerate(source.splitlines(), 1):
            if line.lstrip().startswith(needle):
                return number
    return 1


def _files(paths: Iterable[str]) -> Iterable[tuple[str, bool]]:
    """(file, named): each file given, and the .json and .bicep files under each folder given."""
    for given in paths:
        path = Path(given)
        if path.is_dir():
            for found in sorted(path.rglob("*")):
                if found.suffix.lower() in (".json", ".bicep") and found.is_file():
                    inside = found.relative_to(path).parts  # hidden folders and node_modules: skipped
                    if not any(part.startswith(".") or part == "node_modules" for part in inside):
                        yield str(found), False
        else:
            yield given, True


def scan(
    paths: Iterable[str],
    policy: Policy,
    now: dt.datetime,
    *,
    parameters: Mapping[str, Any] | None = None,
    subscription: str | None = None,
    resource_group: str | None = None,
    skip_other: bool = False,
) -> ScanReport:
    """Judge every account the templates and plans in `paths` would deploy. `skip_other`: a JSON
    file that is neither is skipped even when named (pre-commit names every changed file), as it is
    in a folder."""
    report = ScanReport()
    for path, named in _files(paths):
        named = named and not skip_other
        try:
            deployed = _deployed(path, named, parameters or {}, subscription, resource_group, report)
        except (ScanInputProblem, arm.TemplateProblem, terraform.PlanProblem) as problem:
            report.problems.append(str(problem))
            continue
        if deployed is None:
            continue
        report.files.append(path)
        for item in deployed:
            judged = judge(item, policy, now)
            if path in report.sources:
                item.line = _bicep_line(report.sources[path], item)
            report.judged.append(judged)
    report.notes += _notes(report, policy)
    return report


def _deployed(
    path: str,
    named: bool,
    parameters: Mapping[str, Any],
    subscription: str | None,
    resource_group: str | None,
    report: ScanReport,
) -> list[Deployed] | None:
    if path.lower().endswith(".bicep"):
        located = _build_bicep(path)
        try:
            report.sources[path] = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            report.sources[path] = ""
        return arm.accounts_in(located, path, parameters, subscription, resource_group)
    located = _read_json(Path(path), path)
    document = located.value
    if terraform.is_plan(document):
        return terraform.accounts_in(located, path, subscription)
    if arm.is_template(document):
        return arm.accounts_in(located, path, parameters, subscription, resource_group)
    if not named:
        return None  # a folder's other JSON files (package.json, parameters files, ...)
    schema = str(document.get("$schema", "")) if isinstance(document, Mapping) else ""
    if "deploymentparameters" in schema.lower():
        raise ScanInputProblem(f"{path}: an ARM parameters file: give it with --parameters {path}")
    raise ScanInputProblem(
        f"{path}: neither an ARM template ($schema and resources) nor a Terraform plan (terraform show -json)"
    )


def _notes(report: ScanReport, policy: Policy) -> list[str]:
    notes: list[str] = []
    unscoped = [j for j in report.judged if not (j.deployed.subscription and j.deployed.resource_group)]
    scoped_policy = bool(policy.exemptions or policy.network.bypass_allowed_accounts)
    if unscoped and scoped_policy:
        notes.append(
            f"{len(unscoped)} account(s) deploy to a scope not known before deploy: exemptions and "
            "bypass_allowed_accounts that name a subscription, a resource group or an account there are not "
            "applied (give --subscription and --resource-group)"
        )
    if policy.diagnostics is not None and report.judged:
        notes.append(
            "diagnostics-missing is not judged before deploy: diagnostic settings are separate resources; "
            "the runtime judges it"
        )
    return notes


__all__ = ["ScanInputProblem", "ScanReport", "bicep_command", "read_parameters", "scan"]
