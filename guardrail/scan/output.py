"""The scan's three outputs: a text table, one JSON object, and SARIF 2.1.0 for code scanning."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, TextIO

from guardrail.rules import BY_ID, RULES
from guardrail.scan.judge import UNRESOLVED_HELP, UNRESOLVED_SEVERITY, UNRESOLVED_SUMMARY, UNRESOLVED_VALUE

if TYPE_CHECKING:
    from guardrail.scan import ScanReport
    from guardrail.scan.judge import Judged, ScanFinding

SARIF_SCHEMA: Final = "https://json.schemastore.org/sarif-2.1.0.json"
#: SARIF `level` and GitHub's `security-severity` (critical >= 9, high >= 7, medium >= 4, low > 0).
LEVELS: Final = {"critical": "error", "high": "error", "medium": "warning", "low": "note", "info": "note"}
SECURITY_SEVERITY: Final = {"critical": "9.5", "high": "8.0", "medium": "5.5", "low": "3.0", "info": "0.0"}


def _action(finding: ScanFinding) -> str:
    if finding.rule == UNRESOLVED_VALUE:
        return "not judged"
    return "exempted" if finding.exempted else ("fix" if finding.fixed else "report")


def _detail(finding: ScanFinding) -> str:
    rule = BY_ID.get(finding.rule)
    if finding.fixed and rule is not None and rule.fix:
        return f"{finding.message}; the runtime would {rule.fix}"
    return finding.message


def _name(judged: Judged) -> str:
    return judged.resource_id.rsplit("/", 1)[-1]


def write_text(report: ScanReport, out: TextIO) -> None:
    header = ("FILE", "ACCOUNT", "RULE", "SEVERITY", "ACTION", "DETAIL")
    rows: list[tuple[str, ...]] = []
    for judged in report.judged:
        where = f"{judged.deployed.file}:{judged.deployed.line}"
        if not judged.findings:
            rows.append((where, _name(judged), "-", "-", "compliant", ""))
        for finding in judged.findings:
            rows.append(
                (where, _name(judged), finding.rule, finding.severity, _action(finding), _detail(finding))
            )
    if rows:
        widths = [max(len(row[i]) for row in [header, *rows]) for i in range(5)]
        for row in [header, *rows]:
            cells = [cell.ljust(widths[i]) for i, cell in enumerate(row[:5])]
            out.write("  ".join([*cells, row[5]]).rstrip() + "\n")
        out.write("\n")
    compliant = sum(1 for j in report.judged if j.compliant)
    fixes = sum(1 for j in report.judged if j.actions)
    unresolved = sum(
        1 for j in report.judged if j.not_judged or any(f.rule == UNRESOLVED_VALUE for f in j.findings)
    )
    out.write(
        f"{len(report.judged)} accounts in {len(report.files)} files: {compliant} compliant, "
        f"{len(report.judged) - compliant} not compliant, {fixes} with a fix the runtime would make"
        + (f", {unresolved} with unresolved values" if unresolved else "")
        + "\n"
    )
    for note in report.notes:
        out.write(f"note: {note}\n")


def to_json(report: ScanReport) -> dict[str, Any]:
    return {
        "resources": [judged.to_json() for judged in report.judged],
        "compliant": report.compliant,
        "notes": report.notes,
    }


def _uri(path: str) -> str:
    """The artifact's URI: relative to the working directory (the repository root in CI) when it is
    inside it, else an absolute file URI."""
    resolved = Path(path).resolve()
    try:
        return resolved.relative_to(Path(os.getcwd()).resolve()).as_posix()
    except ValueError:
        return resolved.as_uri()


def _rule_entry(rule_id: str, severity: str, summary: str, fix: str | None, extra: str) -> dict[str, Any]:
    first = summary.split(": ", 1)[0] if len(summary) > 120 else summary
    return {
        "id": rule_id,
        "name": "".join(part.capitalize() for part in rule_id.split("-")),
        "shortDescription": {"text": first},
        "fullDescription": {"text": summary},
        "help": {
            "text": f"Violated when {summary}. Fix: {fix or 'report only'}.{extra}",
            "markdown": f"**Violated when** {summary}.\n\n**Fix:** {fix or 'report only'}.{extra}",
        },
        "defaultConfiguration": {"level": LEVELS[severity]},
        "properties": {
            "security-severity": SECURITY_SEVERITY[severity],
            "severity": severity,
            "tags": ["security", "azure", "network"],
            "precision": "very-high",
        },
    }


def sarif_rules() -> list[dict[str, Any]]:
    """One entry per registry rule, then the scan's own `unresolved-value`."""
    entries = []
    for rule in RULES:
        default = ""
        if rule.fix:
            default = " The guardrail fixes it " + (
                "by default." if rule.remediate_by_default else "when remediate says so."
            )
        switch = f" On when: {rule.switch}."
        entries.append(_rule_entry(rule.id, rule.severity, rule.summary, rule.fix, default + switch))
    entries.append(
        _rule_entry(UNRESOLVED_VALUE, UNRESOLVED_SEVERITY, UNRESOLVED_SUMMARY, UNRESOLVED_HELP, "")
    )
    return entries


def to_sarif(report: ScanReport, version: str) -> dict[str, Any]:
    rules = sarif_rules()
    index = {entry["id"]: i for i, entry in enumerate(rules)}
    artifacts = [{"location": {"uri": _uri(path)}} for path in report.files]
    artifact_index = {path: i for i, path in enumerate(report.files)}
    results = []
    for judged in report.judged:
        file = judged.deployed.file
        for finding in judged.findings:
            result: dict[str, Any] = {
                "ruleId": finding.rule,
                "ruleIndex": index[finding.rule],
                "level": LEVELS[finding.severity],
                "message": {"text": f"{_name(judged)}: {_detail(finding)}"},
                "locations": [
                    {
                        "physicalLocation": {
                            "artifactLocation": {"uri": _uri(file), "index": artifact_index[file]},
                            "region": {"startLine": judged.deployed.line},
                        },
                        "logicalLocations": [
                            {
                                "name": _name(judged),
                                "fullyQualifiedName": judged.resource_id,
                                "kind": "resource",
                            }
                        ],
                    }
                ],
                "partialFingerprints": {"guardrailFinding/v1": _fingerprint(judged, finding)},
                "properties": {
                    "resource": judged.resource_id,
                    "source": judged.deployed.source,
                    "value": finding.value,
                },
            }
            if finding.exempted:
                result["suppressions"] = [
                    {"kind": "external", "status": "accepted", "justification": "exempted by the policy"}
                ]
            results.append(result)
    notifications = [{"level": "note", "message": {"text": note}} for note in report.notes]
    notifications += [{"level": "error", "message": {"text": problem}} for problem in report.problems]
    return {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "guardrail",
                        "fullName": "AI Services Network Guardrail (guardrail scan)",
                        "version": version,
                        "semanticVersion": version,
                        "rules": rules,
                    }
                },
                "invocations": [
                    {"executionSuccessful": not report.problems, "toolExecutionNotifications": notifications}
                ],
                "artifacts": artifacts,
                "results": results,
            }
        ],
    }


def _fingerprint(judged: Judged, finding: ScanFinding) -> str:
    """Stable across runs while the finding stands (the line may move): file, resource, rule, value."""
    key = "\0".join((judged.deployed.file, judged.deployed.source, finding.rule, finding.value or ""))
    return hashlib.sha256(key.encode()).hexdigest()[:32]
