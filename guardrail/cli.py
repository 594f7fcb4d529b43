"""The `guardrail` command line. Sub-commands import what they need when they run.

A user's mistake (a bad argument, an unreadable file, an unreachable ARM, an untrusted certificate,
missing local tooling) is one line on stderr naming what is wrong and what to do, and exit code 2;
anything else is a bug and keeps its traceback."""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import logging
import os
import sys
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from guardrail.engine import Evaluation
    from guardrail.policy import Policy
    from guardrail.service import Outcome

EXIT_OK, EXIT_NONCOMPLIANT, EXIT_BAD_INPUT = 0, 1, 2
ACCOUNT_ID_FORM = "/subscriptions/SUB/resourceGroups/RG/providers/Microsoft.CognitiveServices/accounts/NAME"
#: The command that gives a local state store (printed with "running without memory").
LOCAL_STATE_HINT = (
    "for a local state store run `python -m guardrail_workbench.azurite` and set AzureWebJobsStorage "
    "to the connection string it prints"
)


class InputProblem(Exception):
    """Bad input: the message names the file and the problem (exit 2)."""


def one_line(text: str) -> str:
    """A multi-line message (e.g. every bad setting) as one line."""
    parts = [part.strip() for part in str(text).splitlines() if part.strip()]
    if len(parts) > 1 and parts[0].endswith(":"):
        return f"{parts[0]} {'; '.join(parts[1:])}"
    return "; ".join(parts)


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


def _read_text(path: str, stdin: TextIO | None = None) -> str:
    if path == "-":
        return (stdin or sys.stdin).read()
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise InputProblem(f"{path}: cannot read the file: {error.strerror or error}") from None
    except UnicodeDecodeError as error:
        raise InputProblem(f"{path}: not JSON: not UTF-8 text (byte {error.start})") from None


def read_account_file(path: str, stdin: TextIO | None = None) -> Any:
    """The JSON in `path` (`-`: standard input); InputProblem names the file and the problem."""
    text = _read_text(path, stdin)
    if not text.strip():
        raise InputProblem(f"{_label(path)}: the file is empty (expected an account body as JSON)")
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise InputProblem(f"{_label(path)}: not JSON: {error}") from None
    except RecursionError:
        raise InputProblem(f"{_label(path)}: not JSON: nested too deeply") from None


def _label(path: str) -> str:
    return "<stdin>" if path == "-" else path


def account_bodies(path: str, document: Any) -> list[tuple[str, Any]]:
    """The account bodies in one document, each with a label naming where it came from: a single
    body, a JSON array of bodies (`az cognitiveservices account list`), or an ARM list body
    (`{"value": [...]}`)."""
    label = _label(path)
    if isinstance(document, dict) and "value" in document and "properties" not in document:
        items = document["value"]
        if not isinstance(items, list):
            raise InputProblem(f'{label}: "value" is not a list of account bodies')
        return [(f"{label} value[{i}]", item) for i, item in enumerate(items)]
    if isinstance(document, list):
        return [(f"{label}[{i}]", item) for i, item in enumerate(document)]
    return [(label, document)]


def snapshot_of(body: Any) -> Any:
    """A snapshot object (`{"account": <body>, "managedNetwork": ..., "capabilityHosts": [...],
    "networkSecurityPerimeterConfigurations": [...]}`, each as ARM's GET returns it; a missing key
    means none) as a `Snapshot`; anything else is an account body and stays as it is (the rules
    that read child resources then judge nothing)."""
    from guardrail.actions import Snapshot
    from guardrail.rules import CHILD_READS

    if not (isinstance(body, dict) and "account" in body and "properties" not in body):
        return body
    children: dict[str, Any] = {read.key: [] if read.many else None for read in CHILD_READS}
    unknown = sorted(set(body) - set(children) - {"account"})
    if unknown:
        raise InputProblem(
            f"a snapshot object has unknown keys {unknown}: expected account, {', '.join(children)}"
        )
    children.update({key: value for key, value in body.items() if key != "account"})
    return Snapshot(body["account"], children)


def _perimeter_lines(results: list[tuple[str, Evaluation, Any]]) -> list[str]:
    from guardrail.actions import Snapshot
    from guardrail.rules.perimeter import access_mode, configurations

    lines = []
    for _, evaluation, source in results:
        if isinstance(source, Snapshot):
            name = evaluation.resource_id.rsplit("/", 1)[-1]
            for props in configurations(source.children):
                perimeter = props.get("networkSecurityPerimeter")
                shown = perimeter.get("id") if isinstance(perimeter, dict) else None
                mode = access_mode(props) or "none"
                lines.append(f"{name}: network security perimeter {shown or '?'}: access mode {mode}")
    return lines


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
    rejections = sum(1 for _, e in results if e.private_endpoint_rejections)
    others = sum(
        1
        for _, e in results
        if any(a.kind not in ("patch-account", "reject-private-endpoint") for a in e.actions)
    )
    out.write(
        f"\n{len(results)} accounts: {compliant} compliant, {len(results) - compliant} not compliant, "
        f"{fixes} with a remediation"
        + (f", {rejections} with private endpoint connections to reject" if rejections else "")
        + (f", {others} with child resources to fix (--format json lists the actions)" if others else "")
        + "\n"
    )


def cmd_evaluate(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from guardrail.actions import Snapshot
    from guardrail.engine import InvalidAccount, evaluate, plan

    policy = _load_policy(args.policy)
    now = _parse_now(args.now)
    if args.accounts.count("-") > 1:
        raise InputProblem("evaluate: standard input (-) can be read only once")
    results: list[tuple[str, Evaluation]] = []
    sources: list[tuple[str, Evaluation, Any]] = []
    problems: list[str] = []
    for path in args.accounts:
        try:
            bodies = account_bodies(path, read_account_file(path))
        except InputProblem as problem:
            problems.append(str(problem))
            continue
        if not bodies:
            problems.append(f"{_label(path)}: the list is empty (no account bodies)")
        for label, body in bodies:
            try:
                source = snapshot_of(body)
            except InputProblem as problem:
                problems.append(f"{label}: {problem}")
                continue
            evaluation = (
                plan(source, policy, now) if isinstance(source, Snapshot) else evaluate(source, policy, now)
            )
            if isinstance(evaluation, InvalidAccount):
                problems.append(f"{label}: {evaluation.message}")
                continue
            results.append((label, evaluation))
            sources.append((label, evaluation, source))
    if args.format == "json":
        for _, evaluation in results:
            out.write(json.dumps(evaluation.to_json(), separators=(",", ":")) + "\n")
    elif results or not problems:
        _format_text(results, out)
        for line in _perimeter_lines(sources):
            out.write(line + "\n")
    for message in problems:
        err.write(f"guardrail: error: {message}\n")
    if problems:
        return EXIT_BAD_INPUT
    return EXIT_OK if all(e.compliant for _, e in results) else EXIT_NONCOMPLIANT


def cmd_scan(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from guardrail import __version__
    from guardrail.policy import GUID_RE
    from guardrail.scan import ScanInputProblem, read_parameters, scan
    from guardrail.scan.output import to_json, to_sarif, write_text

    if args.subscription is not None and not GUID_RE.fullmatch(args.subscription):
        raise InputProblem(f"--subscription: {args.subscription!r} is not a subscription ID (a GUID)")
    policy = _load_policy(args.policy)
    now = _parse_now(args.now)
    try:
        parameters = read_parameters(args.parameters) if args.parameters else None
    except ScanInputProblem as problem:
        raise InputProblem(str(problem)) from None
    report = scan(
        args.paths,
        policy,
        now,
        parameters=parameters,
        subscription=args.subscription,
        resource_group=args.resource_group,
        skip_other=args.skip_other_files,
    )
    if args.format == "json":
        out.write(json.dumps(to_json(report), separators=(",", ":")) + "\n")
    elif args.format == "sarif":
        out.write(json.dumps(to_sarif(report, __version__), indent=2) + "\n")
    elif report.judged or not report.problems:
        write_text(report, out)
    for message in report.problems:
        err.write(f"guardrail: error: {message}\n")
    if report.problems:
        return EXIT_BAD_INPUT
    return EXIT_OK if report.compliant else EXIT_NONCOMPLIANT


def cmd_policy_validate(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from guardrail.rules import RULES

    policy = _load_policy(args.file)
    fixed, report_only, off = [], [], []
    for rule in RULES:
        if not rule.on(policy):
            off.append(rule.id)
        elif policy.remediates(rule.id):
            fixed.append(rule.id)
        else:
            report_only.append(rule.id)
    out.write(f"{args.file}: valid (mode {policy.mode}, {len(policy.exemptions)} exemption(s))\n")
    for label, rules in (("fixed", fixed), ("report only", report_only), ("off", off)):
        out.write(f"  {label + ':':<13}{', '.join(rules) or 'none'}\n")
    if policy.mode == "audit" and fixed:
        out.write("  (mode audit: nothing is written; the fixed rules are reported as they would be fixed)\n")
    return EXIT_OK


def cmd_rules(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from guardrail.rules import table_markdown, table_text

    out.write(table_markdown() if args.format == "markdown" else table_text())
    return EXIT_OK


#: The product's own commands (an extra command cannot take one of these names).
_BUILT_IN = frozenset({"evaluate", "policy", "rules", "check", "sweep", "replay-deadletter"})


def build_parser() -> argparse.ArgumentParser:
    from guardrail import __version__

    parser = argparse.ArgumentParser(
        prog="guardrail",
        description="AI Services Network Guardrail: keeps Azure AI services accounts inside the policy.",
    )
    parser.add_argument("--version", action="version", version=f"guardrail {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    evaluate = sub.add_parser(
        "evaluate",
        help="evaluate account JSON files (as ARM returns them)",
        description="Each FILE holds one account body, a JSON array of bodies (as `az cognitiveservices "
        'account list` prints) or an ARM list body ({"value": [...]}); `-` reads standard input.',
    )
    evaluate.add_argument("--policy", metavar="FILE", help="policy YAML (default: the built-in default)")
    evaluate.add_argument("--format", choices=("text", "json"), default="text")
    evaluate.add_argument("--now", metavar="ISO", help="evaluate as of this time (exemption expiry)")
    evaluate.add_argument("accounts", nargs="+", metavar="FILE")
    evaluate.set_defaults(handler=cmd_evaluate)

    scan = sub.add_parser(
        "scan",
        help="judge the accounts ARM templates, Bicep files and Terraform plans would deploy",
        description="Each PATH is an ARM template (.json; what bicep build emits, or hand-written), a "
        ".bicep file (built with the Bicep CLI when it is on PATH), a Terraform plan as `terraform show "
        "-json PLAN` prints it, or a folder (its .json and .bicep files). The same engine and policy as "
        "the runtime; exit 0 compliant, 1 findings (an unresolved value included), 2 bad input.",
    )
    scan.add_argument("--policy", metavar="FILE", help="policy YAML (default: the built-in default)")
    scan.add_argument("--parameters", metavar="FILE", help="an ARM parameters file for the templates")
    scan.add_argument("--format", choices=("text", "json", "sarif"), default="text")
    scan.add_argument("--subscription", metavar="ID", help="the subscription the deployment targets")
    scan.add_argument("--resource-group", metavar="NAME", help="the resource group it targets")
    scan.add_argument("--now", metavar="ISO", help="judge as of this time (exemption expiry)")
    scan.add_argument(
        "--skip-other-files",
        action="store_true",
        help="skip a named JSON file that is neither a template nor a plan, as in a folder (pre-commit)",
    )
    scan.add_argument("paths", nargs="+", metavar="PATH")
    scan.set_defaults(handler=cmd_scan)

    policy = sub.add_parser("policy", help="policy file tools")
    policy_sub = policy.add_subparsers(dest="policy_command", required=True, metavar="ACTION")
    validate = policy_sub.add_parser("validate", help="validate a policy file")
    validate.add_argument("file", metavar="FILE")
    validate.set_defaults(handler=cmd_policy_validate)

    rules = sub.add_parser("rules", help="list the rules: ID, severity, switch, what violates it, the fix")
    rules.add_argument("--format", choices=("text", "markdown"), default="text")
    rules.set_defaults(handler=cmd_rules)

    check = sub.add_parser(
        "check",
        help="check accounts in ARM through the whole path (evaluate, remediate, verify, record, alert)",
        description="Settings come from the environment, as for the function app (ARM_ENDPOINT, ...). "
        f"ACCOUNT is a resource ID ({ACCOUNT_ID_FORM}), or a bare account name with --subscription "
        "and --resource-group.",
    )
    check.add_argument("resource_ids", nargs="+", metavar="ACCOUNT")
    check.add_argument("--subscription", metavar="ID", help="subscription of bare account names")
    check.add_argument("--resource-group", metavar="NAME", help="resource group of bare account names")
    check.set_defaults(handler=cmd_check)

    sweep = sub.add_parser(
        "sweep",
        help="run the reconcile sweep once (settings from the environment)",
        description="Shows progress (listed, checked, fixed, failed) on a terminal. --format json "
        "(the default when standard output is not a terminal) prints one line per checked account, "
        "then the summary line.",
    )
    sweep.add_argument("--subscription", action="append", default=[], metavar="ID")
    sweep.add_argument("--format", choices=("text", "json"), default=None)
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

    for name, command in _extra_commands().items():  # `main` hands their arguments to them whole
        summary = (getattr(command, "__doc__", None) or "").strip().splitlines()[:1]
        sub.add_parser(name, help=summary[0] if summary else name, add_help=False)
    return parser


COMMANDS_GROUP = "guardrail.commands"
EXTRA_COMMAND_HINT = (
    "the local tooling that provides it (emulator, Azurite launcher, local receivers, demo) is not "
    "installed: run ./scripts/setup, or pip install -e '.[dev]' in a checkout"
)


def _extra_command_entries() -> dict[str, Any]:
    """The `guardrail.commands` entry points installed beside the product (the dev extra's demo and
    emulator), by name; a product command of the same name wins."""
    from importlib.metadata import entry_points

    return {entry.name: entry for entry in entry_points(group=COMMANDS_GROUP) if entry.name not in _BUILT_IN}


def _extra_commands() -> dict[str, Any]:
    """The extra commands that load (a command whose code is not installed is left out)."""
    loaded: dict[str, Any] = {}
    for name, entry in _extra_command_entries().items():
        try:
            loaded[name] = entry.load()
        except ImportError:
            continue
    return loaded


def _run_extra(entry: Any, argv: Sequence[str], out: TextIO, err: TextIO) -> int:
    try:
        command = entry.load()
    except ImportError as error:
        raise InputProblem(f"{entry.name}: {EXTRA_COMMAND_HINT} ({error})") from None
    return int(command(list(argv), out, err) or 0)


# ---------------------------------------------------------------------------- ARM and settings


def arm_problem(error: BaseException | str, endpoint: str) -> str | None:
    """What to do about an ARM failure that is clearly the caller's set-up (connection refused,
    certificate not trusted, host unknown, no credential), from the exception and its causes
    (TransientArmError is raised `from` azure-core's error, which wraps requests' and ssl's), or from
    an error already turned into text (the sweep's report); None for anything else."""
    import socket
    import ssl

    chain: list[BaseException] = []
    seen: set[int] = set()
    todo: list[BaseException | None] = [RuntimeError(error) if isinstance(error, str) else error]
    while todo:
        item = todo.pop()
        if item is None or id(item) in seen:
            continue
        seen.add(id(item))
        chain.append(item)
        todo += [item.__cause__, item.__context__, getattr(item, "inner_exception", None)]
        todo += [arg for arg in getattr(item, "args", ()) if isinstance(arg, BaseException)]
    text = " ".join(f"{type(e).__name__}: {e}" for e in chain)
    if any(isinstance(e, ssl.SSLCertVerificationError) for e in chain) or "CERTIFICATE_VERIFY_FAILED" in text:
        return (
            f"ARM at {endpoint}: its TLS certificate is not trusted: set ARM_CA_BUNDLE to the CA bundle "
            "that signs it (the emulator prints its path as ca_bundle)"
        )
    if any(isinstance(e, ConnectionRefusedError) for e in chain) or "Connection refused" in text:
        return (
            f"ARM at {endpoint} refused the connection: start the emulator (guardrail emulator) or set "
            "ARM_ENDPOINT to a reachable ARM"
        )
    unknown_host = ("Failed to resolve", "Name or service not known", "nodename nor servname")
    if any(isinstance(e, socket.gaierror) for e in chain) or any(w in text for w in unknown_host):
        return f"ARM at {endpoint}: the host name does not resolve: check ARM_ENDPOINT"
    if any(name in text for name in ("ClientAuthenticationError", "CredentialUnavailableError")):
        return (
            "no Azure credential for ARM: sign in with `az login` (or run where a managed identity is "
            "available); for the local emulator set ARM_CREDENTIAL=static and the ARM_STATIC_TOKEN it prints"
        )
    return None


def probe_arm(settings: Any, credential: Any = None) -> None:
    """One request without retries (GET /subscriptions), so that a refused connection or an
    untrusted certificate is one line at once rather than a traceback after every retry's backoff.
    `credential` (the guardrail's own) saves a second token acquisition."""
    import dataclasses

    from guardrail.gateway import ArmGateway, ArmGatewayError

    endpoint = settings.endpoint or "https://management.azure.com"
    with ArmGateway(dataclasses.replace(settings, retry_total=0), credential=credential) as probe:
        try:
            probe.list_subscriptions()
        except ArmGatewayError as error:
            problem = arm_problem(error, endpoint)
            if problem:
                raise InputProblem(problem) from None
            # Anything else (throttling, 5xx, a refusal): the real path reports it in its own words.


class _MemoryHint(logging.Filter):
    """Adds the command for a local state store to "running without memory: no storage ..."."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if message.startswith("running without memory: no storage") and LOCAL_STATE_HINT not in message:
            record.msg, record.args = f"{message}; {LOCAL_STATE_HINT}", None
        return True


class _CliLogHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The command's log lines on its stderr, with the local state store hint."""


def _log_to(err: TextIO, level: int) -> None:
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _CliLogHandler)]:
        root.removeHandler(old)
    handler = _CliLogHandler(err)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    handler.addFilter(_MemoryHint())
    root.addHandler(handler)
    root.setLevel(level)
    logging.getLogger("azure").setLevel(logging.WARNING)
    logging.getLogger("azure.identity").setLevel(logging.ERROR)  # its chain of attempts: we say one line


def _app_from_env(err: TextIO, level: int = logging.INFO) -> Any:
    """The worker's app (`guardrail.functions.get_app`) from this process's settings."""
    from guardrail.functions import get_app
    from guardrail.settings import SettingsError, load_settings

    _log_to(err, level)
    try:
        settings = load_settings()  # every bad setting named in one line, before anything is built
    except SettingsError as error:
        raise InputProblem(one_line(str(error))) from None
    return get_app(settings)


def _guardrail_from_env(err: TextIO, level: int = logging.INFO) -> Any:
    guardrail = _app_from_env(err, level).guardrail
    probe_arm(guardrail.settings.arm, getattr(guardrail.gateway, "credential", None))
    return guardrail


def _resource_ids(args: argparse.Namespace) -> list[str]:
    from guardrail.resource_ids import parse_account_id

    ids: list[str] = []
    for given in args.resource_ids:
        text = given.strip()
        if not text.startswith("/"):
            if "/" in text or not text:
                raise InputProblem(
                    f"check: {given!r} is neither an account name nor a resource ID ({ACCOUNT_ID_FORM})"
                )
            if not (args.subscription and args.resource_group):
                raise InputProblem(
                    f"check: {given!r} is an account name: add --subscription SUB --resource-group RG, "
                    f"or give its resource ID ({ACCOUNT_ID_FORM})"
                )
            text = (
                f"/subscriptions/{args.subscription}/resourceGroups/{args.resource_group}"
                f"/providers/Microsoft.CognitiveServices/accounts/{text}"
            )
        try:
            parse_account_id(text)
        except ValueError:
            raise InputProblem(
                f"check: {given!r} is not an account resource ID: expected {ACCOUNT_ID_FORM}"
            ) from None
        ids.append(text)
    return ids


def _transient_problem(error: BaseException, guardrail: Any) -> InputProblem:
    endpoint = guardrail.settings.arm.endpoint or "https://management.azure.com"
    problem = arm_problem(error, endpoint)
    return InputProblem(
        problem or f"ARM kept failing after its retries: {one_line(str(error))}: try again later"
    )


def cmd_check(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from guardrail.gateway import TransientArmError

    resource_ids = _resource_ids(args)
    guardrail = _guardrail_from_env(err)
    worst = EXIT_OK
    for resource_id in resource_ids:
        try:
            outcome = guardrail.check_account(resource_id, trigger="cli")
        except TransientArmError as error:
            raise _transient_problem(error, guardrail) from None
        out.write(json.dumps(_outcome_json(outcome), separators=(",", ":")) + "\n")
        if outcome.action in ("failed", "suspended", "reported", "audit"):
            worst = EXIT_NONCOMPLIANT
    return worst


def _outcome_json(outcome: Outcome) -> dict[str, Any]:
    return {
        "resource_id": outcome.resource_id,
        "action": outcome.action,
        "detail": outcome.detail,
        "findings": [record.to_json() for record in outcome.records],
    }


class SweepProgress:
    """Counts a sweep as it goes: accounts listed (from the gateway), then each account's outcome
    (from `Guardrail.observers`). On a terminal, with tqdm installed (the `progress` extra), it
    keeps one status line on stderr; with `json_out` it prints each outcome as one JSON line."""

    FIXED, FAILED = ("remediated",), ("failed",)

    def __init__(self, err: TextIO, *, json_out: TextIO | None, text_out: TextIO | None) -> None:
        self.listed = self.checked = self.fixed = self.failed = self.other = 0
        self._json_out, self._text_out = json_out, text_out
        self._lock = threading.Lock()
        tqdm = _tqdm()
        self._bar: Any = (
            tqdm(
                file=err,
                disable=not _isatty(err),  # the status line is for a terminal only
                bar_format="{desc} [{elapsed}]",
                desc=self._desc(),
                mininterval=0.2,
                leave=False,  # the summary line follows
            )
            if tqdm is not None
            else _NoStatusLine()
        )

    def _desc(self) -> str:
        return (
            f"sweep: {self.listed} listed · {self.checked} checked · {self.fixed} fixed · "
            f"{self.failed} failed"
        )

    def _refresh(self) -> None:
        self._bar.set_description_str(self._desc(), refresh=False)
        self._bar.update(0)  # redraws at most every mininterval

    def listing(self, bodies: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        for body in bodies:
            with self._lock:
                self.listed += 1
                self._refresh()
            yield body

    def __call__(self, outcome: Outcome) -> None:
        with self._lock:
            self.checked += 1
            if outcome.action == "remediated":
                self.fixed += 1
            elif outcome.action == "failed":
                self.failed += 1
            if self._json_out is not None:
                try:
                    self._json_out.write(json.dumps(_outcome_json(outcome), separators=(",", ":")) + "\n")
                    self._json_out.flush()
                except BrokenPipeError:  # `guardrail sweep | head`: the sweep itself goes on
                    self._json_out = None
            elif self._text_out is not None and outcome.action != "compliant":
                rules = ", ".join(sorted({r.rule for r in outcome.records})) or outcome.detail
                line = f"{outcome.action:<10} {outcome.resource_id.rsplit('/', 1)[-1]:<24} {rules}"
                self._bar.write(line, file=self._text_out)
            self._refresh()

    def close(self) -> None:
        with self._lock:
            self._bar.set_description_str(self._desc(), refresh=True)
            self._bar.close()


def _tqdm() -> Any:
    """tqdm's status line, when the optional `progress` extra is installed (None: no status line)."""
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm


class _NoStatusLine:
    """Without tqdm: no status line; the per-account lines are still printed."""

    def set_description_str(self, desc: str, refresh: bool = True) -> None:
        return None

    def update(self, n: int = 1) -> None:
        return None

    def write(self, line: str, file: TextIO) -> None:
        file.write(line + "\n")

    def close(self) -> None:
        return None


def _status_line_logging() -> Any:
    """Log lines printed above the status line, not through it (a no-op without tqdm)."""
    if _tqdm() is None:
        return contextlib.nullcontext()
    from tqdm.contrib.logging import logging_redirect_tqdm

    return logging_redirect_tqdm()


def _isatty(stream: TextIO) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


class _ListingCounter:
    """The guardrail's gateway, with every listed account counted on its way to the sweep."""

    def __init__(self, inner: Any, progress: SweepProgress) -> None:
        self._inner, self._progress = inner, progress

    def list_accounts(self, subscriptions: list[str] | None) -> Iterator[dict[str, Any]]:
        return self._progress.listing(iter(self._inner.list_accounts(subscriptions)))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def cmd_sweep(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    for sub in args.subscription:
        from guardrail.policy import GUID_RE

        if not GUID_RE.fullmatch(sub):
            raise InputProblem(f"--subscription: {sub!r} is not a subscription ID (a GUID)")
    guardrail = _guardrail_from_env(err, logging.WARNING)  # the progress line says what happens
    fmt = args.format or ("text" if _isatty(out) else "json")
    progress = SweepProgress(
        err, json_out=out if fmt == "json" else None, text_out=out if fmt == "text" else None
    )
    gateway = guardrail.gateway
    guardrail.gateway = _ListingCounter(gateway, progress)
    guardrail.observers.append(progress)
    try:
        with _status_line_logging():
            report = guardrail.sweep(args.subscription or None)
    finally:
        guardrail.observers.remove(progress)
        guardrail.gateway = gateway
        progress.close()
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
    problems = [arm_problem(e, guardrail.gateway.settings.endpoint or "ARM") for e in report.errors]
    if fmt == "json":
        out.write(json.dumps(summary) + "\n")
    else:
        out.write(
            f"sweep: {report.listed} listed, {report.compliant} already compliant, "
            f"{summary['remediated']} remediated, {summary['failed']} failed, {summary['suspended']} "
            f"suspended, {summary['reported']} reported, {len(report.errors)} errors, "
            f"{report.seconds:.1f} s\n"
        )
    for problem in dict.fromkeys(p for p in problems if p):
        err.write(f"guardrail: error: {problem}\n")
    return EXIT_OK if not report.errors and not summary["failed"] else EXIT_NONCOMPLIANT


def _silence_stdout() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def cmd_replay_deadletter(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from guardrail import deadletter

    try:
        since = deadletter.parse_since(args.since, dt.datetime.now(dt.UTC))
    except deadletter.DeadLetterError as error:
        raise InputProblem(str(error)) from None
    app = _app_from_env(err)
    try:
        container = deadletter.open_container(
            app.settings.storage, app.credential, args.container, timeouts=app.settings.storage_timeouts
        )
    except deadletter.DeadLetterError as error:
        raise InputProblem(str(error)) from None
    handler = (lambda event: None) if args.dry_run else _guardrail_from_env(err).handle_event
    report = deadletter.replay(container, handler, since=since, dry_run=args.dry_run)
    for row in report.events:
        out.write(json.dumps(row, separators=(",", ":")) + "\n")
    out.write(json.dumps(report.summary(), separators=(",", ":")) + "\n")
    app.telemetry.flush()
    return EXIT_OK if not report.errors else EXIT_NONCOMPLIANT


def main(argv: Sequence[str] | None = None, out: TextIO | None = None, err: TextIO | None = None) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    args_list = list(sys.argv[1:] if argv is None else argv)
    extra = _extra_command_entries() if args_list[:1] and args_list[0] not in _BUILT_IN else {}
    if args_list[:1] and args_list[0] in extra:  # its own parser owns every flag, --help included
        try:
            return _run_extra(extra[args_list[0]], args_list[1:], out, err)
        except InputProblem as problem:
            err.write(f"guardrail: error: {problem}\n")
            return EXIT_BAD_INPUT
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
    except KeyboardInterrupt:
        err.write("guardrail: interrupted\n")
        return 130
    except BrokenPipeError:  # the reader went away (`| head`): stop quietly, as Unix tools do
        _silence_stdout()
        return EXIT_OK
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
