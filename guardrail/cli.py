"""The `guardrail` command line. Sub-commands import what they need when they run."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from guardrail.engine import Evaluation
    from guardrail.policy import Policy

EXIT_OK, EXIT_NONCOMPLIANT, EXIT_BAD_INPUT = 0, 1, 2


class InputProblem(Exception):
    """Bad input: the message names the file and the problem (exit 2)."""


def _load_policy(path: str | None) -> Policy:
    from guardrail.policy import Policy, PolicyError, load_policy

    if path is None:
        return Policy.default()
    try:
        return load_policy(path)
    except PolicyError as error:
        raise InputProblem(str(error)) from None


def _parse_now(text: str | None) -> dt.datetime:
    if text is None:
        return dt.datetime.now(dt.UTC)
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        raise InputProblem(f"--now: {text!r} is not an ISO 8601 date or timestamp") from None
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def read_account_file(path: str) -> Any:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise InputProblem(f"{path}: cannot read the file: {error.strerror or error}") from None
    except UnicodeDecodeError as error:
        raise InputProblem(f"{path}: not JSON: not UTF-8 text (byte {error.start})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise InputProblem(f"{path}: not JSON: {error}") from None
    except RecursionError:
        raise InputProblem(f"{path}: not JSON: nested too deeply") from None


def _format_text(results: list[tuple[str, Evaluation]], out: TextIO) -> None:
    header = ("ACCOUNT", "KIND", "RULE", "SEVERITY", "ACTION", "DETAIL")
    rows: list[tuple[str, ...]] = []
    for _, evaluation in results:
        name = evaluation.resource_id.rsplit("/", 1)[-1]
        if not evaluation.findings:
            rows.append((name, evaluation.kind, "-", "-", "compliant", ""))
        for finding in evaluation.findings:
            action = "exempted" if finding.exempted else ("fix" if finding.fixed else "report")
            rows.append((name, evaluation.kind, finding.rule, finding.severity, action, finding.message))
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(5)]
    for row in [header, *rows]:
        cells = [cell.ljust(widths[i]) for i, cell in enumerate(row[:5])]
        out.write("  ".join([*cells, row[5]]).rstrip() + "\n")
    compliant = sum(1 for _, e in results if e.compliant)
    fixes = sum(1 for _, e in results if e.remediation is not None)
    out.write(
        f"\n{len(results)} accounts: {compliant} compliant, {len(results) - compliant} not compliant, "
        f"{fixes} with a remediation\n"
    )


def cmd_evaluate(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from guardrail.engine import InvalidAccount, evaluate

    policy = _load_policy(args.policy)
    now = _parse_now(args.now)
    results: list[tuple[str, Evaluation]] = []
    problems: list[str] = []
    for path in args.accounts:
        try:
            body = read_account_file(path)
        except InputProblem as problem:
            problems.append(str(problem))
            continue
        evaluation = evaluate(body, policy, now)
        if isinstance(evaluation, InvalidAccount):
            problems.append(f"{path}: {evaluation.message}")
            continue
        results.append((path, evaluation))
    if args.format == "json":
        for _, evaluation in results:
            out.write(json.dumps(evaluation.to_json(), separators=(",", ":")) + "\n")
    else:
        _format_text(results, out)
    for message in problems:
        err.write(f"guardrail: error: {message}\n")
    if problems:
        return EXIT_BAD_INPUT
    return EXIT_OK if all(e.compliant for _, e in results) else EXIT_NONCOMPLIANT


def cmd_policy_validate(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    policy = _load_policy(args.file)
    out.write(
        f"{args.file}: valid (mode {policy.mode}, {len(policy.exemptions)} exemption(s), "
        f"remediates: {', '.join(r for r in _fixable() if policy.remediates(r)) or 'nothing'})\n"
    )
    return EXIT_OK


def _fixable() -> Sequence[str]:
    from guardrail.rules import FIXABLE_RULES

    return FIXABLE_RULES


def build_parser() -> argparse.ArgumentParser:
    from guardrail import __version__

    parser = argparse.ArgumentParser(
        prog="guardrail",
        description="AI Services Network Guardrail: keeps Azure AI services accounts inside the policy.",
    )
    parser.add_argument("--version", action="version", version=f"guardrail {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    evaluate = sub.add_parser("evaluate", help="evaluate account JSON files (as ARM returns them)")
    evaluate.add_argument("--policy", metavar="FILE", help="policy YAML (default: the built-in default)")
    evaluate.add_argument("--format", choices=("text", "json"), default="text")
    evaluate.add_argument("--now", metavar="ISO", help="evaluate as of this time (exemption expiry)")
    evaluate.add_argument("accounts", nargs="+", metavar="ACCOUNT.json")
    evaluate.set_defaults(handler=cmd_evaluate)

    policy = sub.add_parser("policy", help="policy file tools")
    policy_sub = policy.add_subparsers(dest="policy_command", required=True, metavar="ACTION")
    validate = policy_sub.add_parser("validate", help="validate a policy file")
    validate.add_argument("file", metavar="FILE")
    validate.set_defaults(handler=cmd_policy_validate)

    check = sub.add_parser(
        "check",
        help="check accounts in ARM through the whole path (evaluate, remediate, verify, record, alert)",
        description="Settings come from the environment, as for the function app (ARM_ENDPOINT, ...).",
    )
    check.add_argument("resource_ids", nargs="+", metavar="ACCOUNT_ID")
    check.set_defaults(handler=cmd_check)

    sweep = sub.add_parser("sweep", help="run the reconcile sweep once (settings from the environment)")
    sweep.add_argument("--subscription", action="append", default=[], metavar="ID")
    sweep.set_defaults(handler=cmd_sweep)

    replay = sub.add_parser(
        "replay-deadletter",
        help="put events Event Grid dead-lettered back through the path (settings from the environment)",
        description="Reads the dead-letter blobs (AzureWebJobsStorage), hands each event to the handler "
        "the function uses and marks each blob it replayed (metadata guardrailreplayed), so a second "
        "run does nothing.",
    )
    replay.add_argument("--dry-run", action="store_true", help="list what would be replayed; change nothing")
    replay.add_argument("--since", metavar="WHEN", help="only blobs created since (ISO 8601, or 12h, 7d)")
    replay.add_argument("--container", default="eventgrid-deadletter", metavar="NAME")
    replay.set_defaults(handler=cmd_replay_deadletter)

    demo = sub.add_parser("demo", help="run the whole guardrail on a live local tenant (no Azure needed)")
    demo.add_argument("--fast", action="store_true", help="a short timeline (under 30 seconds)")
    demo.add_argument("--out", default="out/demo", help="folder for findings, cards and the HTML report")
    demo.add_argument("--accounts", type=int, default=50, help="accounts in the seeded tenant")
    demo.set_defaults(handler=cmd_demo)

    # Listed for --help; `main` hands `guardrail emulator ...` to the emulator's own parser.
    sub.add_parser("emulator", help="run the local ARM emulator (HTTPS on 127.0.0.1); see --help")
    return parser


WORKBENCH_HINT = (
    "the local workbench (emulator, Azurite launcher, local receivers, demo) is not installed: "
    "run ./scripts/setup, or pip install -e '.[dev]' in a checkout"
)


def _workbench(module: str) -> Any:
    """A module of the development-only `guardrail_workbench` package, or a one-line InputProblem."""
    import importlib

    try:
        return importlib.import_module(f"guardrail_workbench.{module}")
    except ModuleNotFoundError as error:
        if error.name and (error.name.startswith("guardrail_workbench") or error.name == "trustme"):
            raise InputProblem(WORKBENCH_HINT) from None
        raise


def cmd_demo(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    code: int = _workbench("demo").cmd_demo(args, out, err)
    return code


def _guardrail_from_env(err: TextIO) -> Any:
    import logging

    from guardrail.functions import get_guardrail
    from guardrail.settings import SettingsError

    logging.basicConfig(level=logging.INFO, stream=err, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("azure").setLevel(logging.WARNING)
    try:
        return get_guardrail()
    except SettingsError as error:
        raise InputProblem(str(error)) from None


def cmd_check(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    guardrail = _guardrail_from_env(err)
    worst = EXIT_OK
    for resource_id in args.resource_ids:
        outcome = guardrail.check_account(resource_id, trigger="cli")
        out.write(
            json.dumps(
                {
                    "resource_id": outcome.resource_id,
                    "action": outcome.action,
                    "detail": outcome.detail,
                    "findings": [record.to_json() for record in outcome.records],
                },
                separators=(",", ":"),
            )
            + "\n"
        )
        if outcome.action in ("failed", "suspended", "reported", "audit"):
            worst = EXIT_NONCOMPLIANT
    return worst


def cmd_sweep(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    report = _guardrail_from_env(err).sweep(args.subscription or None)
    summary = {
        "listed": report.listed,
        "compliant": report.compliant,
        "remediated": report.count("remediated"),
        "failed": report.count("failed"),
        "suspended": report.count("suspended"),
        "reported": report.count("reported"),
        "errors": report.errors,
        "seconds": round(report.seconds, 2),
    }
    out.write(json.dumps(summary) + "\n")
    return EXIT_OK if not report.errors and not summary["failed"] else EXIT_NONCOMPLIANT


def cmd_replay_deadletter(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    import os

    from guardrail import deadletter, telemetry

    try:
        since = deadletter.parse_since(args.since, dt.datetime.now(dt.UTC))
        container = deadletter.open_container(os.environ, args.container)
    except deadletter.DeadLetterError as error:
        raise InputProblem(str(error)) from None
    handler = (lambda event: None) if args.dry_run else _guardrail_from_env(err).handle_event
    report = deadletter.replay(container, handler, since=since, dry_run=args.dry_run)
    for row in report.events:
        out.write(json.dumps(row, separators=(",", ":")) + "\n")
    out.write(json.dumps(report.summary(), separators=(",", ":")) + "\n")
    telemetry.flush()
    return EXIT_OK if not report.errors else EXIT_NONCOMPLIANT


def main(argv: Sequence[str] | None = None, out: TextIO | None = None, err: TextIO | None = None) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list[:1] == ["emulator"]:  # its own parser owns every flag, --help included
        try:
            emulator = _workbench("emulator")
        except InputProblem as problem:
            err.write(f"guardrail: error: {problem}\n")
            return EXIT_BAD_INPUT
        return int(emulator.main(args_list[1:]) or 0)
    parser = build_parser()
    try:
        args = parser.parse_args(args_list)
    except SystemExit as exit_:
        return int(exit_.code) if isinstance(exit_.code, int) else EXIT_BAD_INPUT
    try:
        code: int = args.handler(args, out, err)
    except InputProblem as problem:
        err.write(f"guardrail: error: {problem}\n")
        return EXIT_BAD_INPUT
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
