"""Side by side with Cloud Custodian (c7n-azure) on the same ARM emulator, interleaved.

The peer runs in its own cached venv, `.venv-custodian` (requirements-custodian.txt: c7n, c7n-azure
pinned), created on first use; when it cannot be installed (no registry, a failed build) the
benchmark says so, writes `skipped` in its JSON and exits 0. It is a benchmark, not a test.

One emulator (HTTPS on 127.0.0.1, no write throttle, no state store) serves both sides: the same
process for both, its own (benchmarks/emulator_process.py, driven over its control API), or this
benchmark's process with `--emulator-in-process` (as before; both sides are child processes either
way, so it never shares a GIL with them, only the machine's cores). Three figures, each measured
A B A B ... so that a change in the machine's load hits both:

1. cold start to the first event handled: a fresh interpreter per run and side, handed the same
   Event Grid ResourceWriteSuccess event for a re-opened account. The guardrail (COLD_CHILD):
   `import function_app`, the app's functions indexed as the Functions worker does
   (`app.get_functions()`), the event decoded by azure-functions' own converter into a
   func.EventGridEvent and handled by `on_resource_write` (its first invocation: settings, policy,
   the app built, then GET, PATCH, verifying GET; the account must end closed). Custodian
   (`peer_custodian.py first-event`): its azure-event-grid function's imports, `Azure().initialize`,
   the policy loaded, then `policy.push(event)` (one GET, detect only; the account must be found).
   Each side's milliseconds run to the event handled: Custodian's from its child's first line, the
   guardrail's from just after azure.functions is imported (the Functions worker loads it before it
   indexes the app; Custodian's side never imports it); and the whole process's wall time.
   (bench_coldstart breaks the guardrail's imports down.)
2. one CLI check, a whole process each: `guardrail check ID` (read, evaluate, PATCH, verifying read:
   the account is re-opened before each run) against `custodian run` of a pull-mode policy that
   lists the subscription and filters the open account (detect only).
3. warm per event: one long-lived process per side handles one Event Grid ResourceWriteSuccess
   event for a re-opened account at a time. The guardrail: the function app's `on_resource_write`
   (func.EventGridEvent from the library's converter; enforce: GET, PATCH, verifying GET), no state
   store, write pacing off (GUARDRAIL_WRITES_PER_SECOND=1000); Custodian: `policy.push(event)` of
   an azure-event-grid policy with the same filter
   (one GET; detect only, no action).
4. the cost of one event, what Flex Consumption bills: CPU seconds (the worker process's, all its
   threads: `resource.getrusage`) and peak RSS per 1,000 handled events of a warm worker, with
   Azurite as the state store (the remediation journal, the event and alert claims). Compliant
   events (GET, journal read, nothing to do) and remediated ones (GET, PATCH, verifying GET,
   journal, records), one account per event, in blocks of each kind; beside Custodian's warm
   `push` of the very same events (detect only, one GET: it reads each open account before the
   guardrail closes it, and each compliant one as it is), event by event, A B A B.
Ratios are guardrail / Custodian, taken pair by pair; the figure is the median.
`--guardrail-root DIR` runs the guardrail (its warm workers and CLI) from another checkout (e.g.
`main`'s) with this benchmark, for A/B runs.

    .venv/bin/python benchmarks/bench_peer.py [--quick] [--rounds N] [--cost-events N]
        [--no-install] [--emulator-in-process] [--guardrail-root DIR]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from common import (
    ROOT,
    cold_start_env,
    emulator_nodelay,
    machine,
    median,
    percentile,
    quiet_logs,
    write_result,
)

VENV = ROOT / ".venv-custodian"
REQUIREMENTS = ROOT / "requirements-custodian.txt"
SHIM = Path(__file__).resolve().parent / "peer_custodian.py"
SUB = "0a0a0a0a-1111-4111-8111-00000000be02"
RG = "rg-peer"
WORKER_FLAG = "--guardrail-worker"

POLICY = """
version: 1
mode: enforce
network:
  require_default_deny: true
auth:
  require_local_auth_disabled: false
"""


def _custodian_policy(mode: str) -> str:
    event_mode = (
        "    mode:\n      type: azure-event-grid\n      events:\n"
        "        - resourceProvider: Microsoft.CognitiveServices/accounts\n          event: write\n"
        if mode == "event"
        else ""
    )
    return (
        "policies:\n"
        "  - name: cognitive-services-network-open\n"
        "    resource: azure.cognitiveservice\n"
        f"{event_mode}"
        "    filters:\n"
        "      - type: value\n"
        "        key: properties.networkAcls.defaultAction\n"
        "        value: Allow\n"
    )


def ensure_custodian(install: bool) -> tuple[Path | None, str]:
    """(.venv-custodian's python, "") or (None, why not)."""
    python = VENV / "bin" / "python"
    check = [str(python), "-c", "import c7n, c7n_azure"]
    if python.exists() and subprocess.run(check, capture_output=True).returncode == 0:
        return python, ""
    if not install:
        return None, f"{VENV} has no Cloud Custodian and --no-install was given"
    if not REQUIREMENTS.exists():
        return None, f"{REQUIREMENTS} is missing"
    print(f"bench_peer: installing Cloud Custodian into {VENV} (once)", file=sys.stderr, flush=True)
    steps = [
        [sys.executable, "-m", "venv", str(VENV)],
        [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", "-r", str(REQUIREMENTS)],
    ]
    for step in steps:
        done = subprocess.run(step, capture_output=True, text=True)
        if done.returncode != 0:
            tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["(no output)"]
            return None, f"`{' '.join(step[-3:])}` failed: {tail[0]}"
    if subprocess.run(check, capture_output=True).returncode != 0:
        return None, "Cloud Custodian installed but does not import"
    return python, ""


# ---------------------------------------------------------------------------------------------------
# The guardrail's warm worker (this file, run with --guardrail-worker in the guardrail's .venv)
# ---------------------------------------------------------------------------------------------------
# The guardrail's cold start to its first event: what the Functions worker does with function_app
# (guardrail_workbench.stack's function_handlers and as_function_event, inlined: importing the
# workbench would load the emulator into the measured process). The Python worker has imported
# azure.functions before it indexes the app (azure_functions_worker.bindings.meta's
# load_binding_registry, on the host's worker-init request), as Custodian's side never imports it:
# so both sides start timing with it loaded. The whole-process figure still includes it.
COLD_CHILD = """
import json, sys, time
from azure.functions import meta
from azure.functions.eventgrid import EventGridEventInConverter
started = time.perf_counter()
import function_app
handlers = {str(f.get_function_name()): f.get_user_function() for f in function_app.app.get_functions()}
with open(sys.argv[1], encoding="utf-8") as handle:
    (event,) = json.load(handle)
datum = meta.Datum(type="json", value=json.dumps(event))
handlers["on_resource_write"](EventGridEventInConverter.decode(datum, trigger_metadata={}))
print(json.dumps({"ms": (time.perf_counter() - started) * 1000}), flush=True)
"""


def usage() -> dict[str, float]:
    """This process's CPU seconds (user + system, all threads) and peak RSS (MiB) so far."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    return {"cpu_s": own.ru_utime + own.ru_stime, "maxrss_mib": own.ru_maxrss / 1024}


def guardrail_worker(root: Path) -> int:
    quiet_logs()
    sys.path.insert(0, str(root))
    from guardrail import functions
    from guardrail_workbench.stack import as_function_event, function_handlers

    handle = function_handlers()["on_resource_write"]
    functions.get_guardrail()
    print("ready", flush=True)
    for line in sys.stdin:
        if line.strip() == "usage":
            print(json.dumps(usage()), flush=True)
            continue
        event = json.loads(Path(line.strip()).read_text(encoding="utf-8"))[0]
        started = time.perf_counter()
        handle(as_function_event(event))
        print(json.dumps({"ms": (time.perf_counter() - started) * 1000}), flush=True)
    return 0


class _Worker:
    def __init__(self, command: list[str], env: dict[str, str], cwd: Path = ROOT) -> None:
        self.process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, text=True, cwd=cwd
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline().strip()
        if line != "ready":
            raise RuntimeError(f"{command[1]} did not start: {line!r}")

    def run(self, event_path: Path) -> dict[str, float]:
        """One event: {"ms": ..., and for Custodian "resources": how many matched the filter}."""
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(f"{event_path}\n")
        self.process.stdin.flush()
        answer: dict[str, float] = json.loads(self.process.stdout.readline())
        return answer

    def usage(self) -> dict[str, float]:
        """The worker process's CPU seconds and peak RSS so far (`usage` above)."""
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write("usage\n")
        self.process.stdin.flush()
        answer: dict[str, float] = json.loads(self.process.stdout.readline())
        return answer

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        self.process.wait(timeout=30)


def _wall(command: list[str], env: dict[str, str], cwd: Path = ROOT) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True)
    wall = (time.perf_counter() - started) * 1000
    if done.returncode not in (0, 1):  # guardrail check exits 1 when an account was not compliant
        raise RuntimeError(f"{command[:3]} failed ({done.returncode}): {done.stderr.strip()[-500:]}")
    return wall, done.stdout


def _ratios(a: list[float], b: list[float]) -> dict[str, float]:
    pairs = [x / y for x, y in zip(a, b, strict=True) if y > 0]
    return {
        "guardrail_median_ms": round(median(a), 2),
        "custodian_median_ms": round(median(b), 2),
        "ratio_median": round(median(pairs), 3),
        "ratio_p10": round(percentile(pairs, 10), 3),
        "ratio_p90": round(percentile(pairs, 90), 3),
        "guardrail_p99_ms": round(percentile(a, 99), 2),
        "custodian_p99_ms": round(percentile(b, 99), 2),
        "pairs": len(pairs),
    }


def _account(name: str, compliant: bool) -> dict[str, Any]:
    acls: dict[str, Any] = {"defaultAction": "Deny" if compliant else "Allow", "ipRules": []}
    acls["virtualNetworkRules"] = []
    if compliant:
        acls["bypass"] = "None"
    return {
        "name": name,
        "kind": "AIServices",
        "location": "eastus",
        "sku": {"name": "S0"},
        "properties": {"customSubDomainName": name, "publicNetworkAccess": "Enabled", "networkAcls": acls},
    }


def _write_event(rid: str, event_id: str) -> list[dict[str, Any]]:
    """An Event Grid ResourceWriteSuccess for account `rid`, as Event Grid delivers it (an array)."""
    subscription = rid.split("/")[2]
    return [
        {
            "id": event_id,
            "topic": f"/subscriptions/{subscription}",
            "subject": rid,
            "eventType": "Microsoft.Resources.ResourceWriteSuccess",
            "eventTime": "2026-12-01T12:00:00Z",
            "dataVersion": "2",
            "metadataVersion": "1",
            "data": {
                "operationName": "Microsoft.CognitiveServices/accounts/write",
                "status": "Succeeded",
                "resourceUri": rid,
                "subscriptionId": subscription,
                "claims": {"name": "peer"},
                "authorization": {"scope": rid, "action": "Microsoft.CognitiveServices/accounts/write"},
            },
        }
    ]


def event_cost(
    emulator: Any,
    work: Path,
    guardrail: _Worker,
    custodian: _Worker,
    events: int,
    block: int = 100,
    warmup: int = 10,
) -> dict[str, Any]:
    """4. The cost of one event: CPU seconds and peak RSS per 1,000 events of each kind, both workers
    warm, Custodian's push of each event just before the guardrail's (module doc). `events` of each
    kind, in blocks of `block`, compliant and remediated blocks alternating."""
    group = "rg-cost"
    kinds = ("compliant", "remediated")
    per_kind = events + warmup
    accounts = {kind: [f"{kind[:4]}{i:05d}" for i in range(per_kind)] for kind in kinds}
    emulator.seed(
        {
            "subscriptions": [
                {
                    "subscriptionId": SUB,
                    "resourceGroups": [
                        {"name": RG},
                        {
                            "name": group,
                            "accounts": [
                                _account(name, kind == "compliant")
                                for kind in kinds
                                for name in accounts[kind]
                            ],
                        },
                    ],
                }
            ]
        }
    )
    base = f"/subscriptions/{SUB}/resourceGroups/{group}/providers/Microsoft.CognitiveServices/accounts"
    paths: dict[str, list[Path]] = {}
    for kind in kinds:
        paths[kind] = []
        for name in accounts[kind]:
            path = work / f"cost-{name}.json"
            path.write_text(json.dumps(_write_event(f"{base}/{name}", f"cost-{name}")), encoding="utf-8")
            paths[kind].append(path)
    spent = {side: dict.fromkeys(kinds, 0.0) for side in ("guardrail", "custodian")}
    matched = dict.fromkeys(kinds, 0)
    for kind in kinds:  # warm-up events, not counted
        for path in paths[kind][:warmup]:
            custodian.run(path)
            guardrail.run(path)
    for start in range(warmup, per_kind, block):
        for kind in kinds:
            before = {"guardrail": guardrail.usage()["cpu_s"], "custodian": custodian.usage()["cpu_s"]}
            for path in paths[kind][start : start + block]:
                matched[kind] += 1 if custodian.run(path).get("resources") else 0
                guardrail.run(path)
            spent["guardrail"][kind] += guardrail.usage()["cpu_s"] - before["guardrail"]
            spent["custodian"][kind] += custodian.usage()["cpu_s"] - before["custodian"]
    remediated = {name.lower() for name in accounts["remediated"]}
    left_open = sum(
        1
        for body in emulator.accounts()
        if str(body.get("name", "")).lower() in remediated
        and body["properties"]["networkAcls"]["defaultAction"] != "Deny"
    )
    result: dict[str, Any] = {"events_per_kind": events, "block": block, "warmup_per_kind": warmup}
    for side, worker in (("guardrail", guardrail), ("custodian", custodian)):
        result[side] = {
            **{f"{kind}_cpu_s_per_1000": round(spent[side][kind] / events * 1000, 2) for kind in kinds},
            "peak_rss_mib": round(worker.usage()["maxrss_mib"], 1),
        }
    result["ratio"] = {
        kind: round(spent["guardrail"][kind] / spent["custodian"][kind], 3)
        if spent["custodian"][kind]
        else None
        for kind in kinds
    }
    result["custodian_matched"] = matched  # Custodian's filter: every open account, no compliant one
    result["guardrail_left_open"] = left_open  # accounts the guardrail did not close: 0
    return result


def main() -> int:
    if WORKER_FLAG in sys.argv[1:]:
        return guardrail_worker(Path(sys.argv[sys.argv.index(WORKER_FLAG) + 1]))
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer runs of each")
    parser.add_argument(
        "--rounds", type=int, default=None, help="warm events per side (default 200; 60 quick)"
    )
    parser.add_argument(
        "--runs", type=int, default=None, help="cold starts and CLI checks per side (9; 5 quick)"
    )
    parser.add_argument(
        "--cost-events",
        type=int,
        default=None,
        help="events of each kind for the cost of one event (default 1000; 200 quick; 0: skip it)",
    )
    parser.add_argument(
        "--guardrail-root",
        type=Path,
        default=ROOT,
        help="the checkout whose guardrail runs (default: this one), for A/B runs against another",
    )
    parser.add_argument("--no-install", action="store_true", help="do not create .venv-custodian")
    parser.add_argument(
        "--emulator-in-process",
        action="store_true",
        help="run the ARM emulator in this process instead of its own",
    )
    args = parser.parse_args()
    quiet_logs()
    python, why = ensure_custodian(not args.no_install)
    if python is None:
        line = f"bench_peer: skipped: Cloud Custodian is not available ({why})"
        write_result("bench_peer", {"skipped": True, "reason": why}, line)
        return 0
    rounds = args.rounds or (60 if args.quick else 200)
    runs = args.runs or (5 if args.quick else 9)
    cost_events = args.cost_events if args.cost_events is not None else (200 if args.quick else 1000)
    guardrail_root = args.guardrail_root.resolve()
    versions = subprocess.run(
        [
            str(python),
            "-c",
            "import importlib.metadata as m; print(m.version('c7n'), m.version('c7n-azure'))",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()

    sys.path.insert(0, str(ROOT))
    from emulator_process import EmulatorProcess

    from guardrail_workbench.emulator import Emulator, make_token
    from guardrail_workbench.stack import GUARDRAIL_CLAIMS, user_claims

    emulator_nodelay(True)
    load_before = machine()["load_average"]
    arm: Any = Emulator() if args.emulator_in_process else EmulatorProcess()
    with tempfile.TemporaryDirectory(prefix="bench-peer-") as out, arm as emulator:
        work = Path(out)
        emulator.seed({"subscriptions": [{"subscriptionId": SUB, "resourceGroups": [{"name": RG}]}]})
        emulator.app.keep_request_log = False
        rid = f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.CognitiveServices/accounts/peer"
        opened = {
            "name": "peer",
            "kind": "AIServices",
            "location": "eastus",
            "sku": {"name": "S0"},
            "properties": {
                "customSubDomainName": "peer",
                "publicNetworkAccess": "Enabled",
                "networkAcls": {"defaultAction": "Allow", "ipRules": [], "virtualNetworkRules": []},
            },
        }

        def reopen() -> None:
            emulator.put_account(opened, rid)

        reopen()
        event = _write_event(rid, "peer-event")
        event_path = work / "event.json"
        event_path.write_text(json.dumps(event), encoding="utf-8")
        policy_path = work / "policy.yaml"
        policy_path.write_text(POLICY, encoding="utf-8")
        pull_policy = work / "custodian-pull.yml"
        pull_policy.write_text(_custodian_policy("pull"), encoding="utf-8")
        event_policy = work / "custodian-event.yml"
        event_policy.write_text(_custodian_policy("event"), encoding="utf-8")
        base = {
            k: v for k, v in cold_start_env().items() if not k.startswith(("ARM_", "GUARDRAIL_", "AZURE_"))
        }
        base.pop("AzureWebJobsStorage", None)
        guardrail_env = {
            **base,
            "ARM_ENDPOINT": emulator.endpoint,
            "ARM_CA_BUNDLE": emulator.ca_bundle,
            "ARM_CREDENTIAL": "static",
            "ARM_STATIC_TOKEN": make_token(GUARDRAIL_CLAIMS),
            "GUARDRAIL_POLICY_PATH": str(policy_path),
            "GUARDRAIL_SUBSCRIPTIONS": SUB,
            "GUARDRAIL_FINDINGS_FILE": str(work / "findings.jsonl"),
            # Write pacing off: the fixed 10/s-per-subscription slot (GUARDRAIL_WRITES_PER_SECOND)
            # would make back-to-back events wait up to 100 ms, which measures the pacing, not the path.
            "GUARDRAIL_WRITES_PER_SECOND": "1000",
            "PYTHONPATH": str(guardrail_root),
        }
        custodian_env = {
            **base,
            "CUSTODIAN_ARM_ENDPOINT": emulator.endpoint,
            "AZURE_SUBSCRIPTION_ID": SUB,
            "AZURE_ACCESS_TOKEN": make_token(user_claims("custodian@contoso.example")),
            "REQUESTS_CA_BUNDLE": emulator.ca_bundle,
        }
        guardrail_py = str(ROOT / ".venv" / "bin" / "python")

        # 1. cold start to the first event handled
        g_cold, c_cold, g_cold_wall, c_cold_wall = [], [], [], []
        guardrail_cold = [guardrail_py, "-c", COLD_CHILD, str(event_path)]
        custodian_cold = [str(python), str(SHIM), "first-event", str(event_policy), str(event_path)]
        for i in range(runs + 1):  # the first pair warms the .pyc files and the page cache
            reopen()
            g_wall, text = _wall(guardrail_cold, guardrail_env, guardrail_root)
            g_ms = json.loads(text.splitlines()[-1])["ms"]
            if emulator.account(rid)["properties"]["networkAcls"]["defaultAction"] != "Deny":
                raise RuntimeError("the guardrail's first event left the account open")
            reopen()
            c_wall, text = _wall(custodian_cold, custodian_env)
            answer = json.loads(text.splitlines()[-1])
            if not answer.get("resources"):
                raise RuntimeError("Custodian's first push did not find the open account")
            if i:
                g_cold.append(g_ms)
                g_cold_wall.append(g_wall)
                c_cold.append(answer["ms"])
                c_cold_wall.append(c_wall)

        # 2. one CLI check, a whole process each
        g_cli, c_cli = [], []
        guardrail_cli = [guardrail_py, "-m", "guardrail", "check", rid]
        custodian_cli = [str(python), str(SHIM), "run", "-s", str(work / "custodian-out"), str(pull_policy)]
        reopen()
        _wall(guardrail_cli, guardrail_env, guardrail_root)
        _wall(custodian_cli, custodian_env)
        for _ in range(runs):
            reopen()
            g_cli.append(_wall(guardrail_cli, guardrail_env, guardrail_root)[0])
            reopen()
            c_cli.append(_wall(custodian_cli, custodian_env)[0])
        found = json.loads(
            (work / "custodian-out" / "cognitive-services-network-open" / "resources.json").read_text()
        )

        # 3. warm per event
        worker = [guardrail_py, str(Path(__file__).resolve()), WORKER_FLAG, str(guardrail_root)]
        guardrail = _Worker(worker, guardrail_env, guardrail_root)
        custodian = _Worker([str(python), str(SHIM), "serve", str(event_policy)], custodian_env)
        g_event, c_event = [], []
        emulator_cpu_before = arm.cpu_seconds() if isinstance(arm, EmulatorProcess) else None
        writes_before = sum(1 for e in emulator.events if e.get("eventType", "").endswith("WriteSuccess"))
        try:
            for i in range(rounds + 5):  # the first 5 pairs warm both sides up (not counted)
                reopen()
                g = guardrail.run(event_path)["ms"]
                repaired = emulator.account(rid)["properties"]["networkAcls"]["defaultAction"] == "Deny"
                if not repaired:
                    raise RuntimeError("the guardrail's event left the account open")
                reopen()
                answer = custodian.run(event_path)
                c = answer["ms"]
                if not answer.get("resources"):
                    raise RuntimeError("Custodian's push did not find the open account")
                if i >= 5:
                    g_event.append(g)
                    c_event.append(c)
        finally:
            guardrail.close()
            custodian.close()
        writes = (
            sum(1 for e in emulator.events if e.get("eventType", "").endswith("WriteSuccess")) - writes_before
        )
        emulator_cpu_after = arm.cpu_seconds() if isinstance(arm, EmulatorProcess) else None

        # 4. the cost of one event: warm workers, the guardrail with Azurite as its state store
        cost: dict[str, Any] | None = None
        if cost_events > 0:
            from guardrail_workbench.azurite import Azurite

            with Azurite() as azurite:
                stored_env = {**guardrail_env, "AzureWebJobsStorage": azurite.connection_string}
                guardrail = _Worker(worker, stored_env, guardrail_root)
                custodian = _Worker([str(python), str(SHIM), "serve", str(event_policy)], custodian_env)
                try:
                    cost = event_cost(emulator, work, guardrail, custodian, cost_events)
                finally:
                    guardrail.close()
                    custodian.close()
    cold = _ratios(g_cold, c_cold)
    cold_wall = _ratios(g_cold_wall, c_cold_wall)
    cli = _ratios(g_cli, c_cli)
    warm = _ratios(g_event, c_event)
    emulator_cpu = (
        round(emulator_cpu_after - emulator_cpu_before, 1)
        if emulator_cpu_after is not None and emulator_cpu_before is not None
        else None
    )
    line = (
        f"bench_peer{' --emulator-in-process' if args.emulator_in_process else ''} "
        f"(c7n {versions[0]}, c7n-azure {versions[1]}): "
        f"cold start to the first event {cold['guardrail_median_ms']:.0f} "
        f"vs {cold['custodian_median_ms']:.0f} ms, ratio {cold['ratio_median']:.2f} (whole process "
        f"{cold_wall['ratio_median']:.2f}); one CLI check {cli['guardrail_median_ms']:.0f} vs "
        f"{cli['custodian_median_ms']:.0f} ms, ratio {cli['ratio_median']:.2f}; warm per event "
        f"(enforce: GET, PATCH, GET vs detect-only push: one GET) {warm['guardrail_median_ms']:.1f} vs "
        f"{warm['custodian_median_ms']:.1f} ms, ratio {warm['ratio_median']:.2f} (n = {warm['pairs']}); "
        f"load {load_before[0]:.2f}"
    )
    if cost is not None:
        g, c = cost["guardrail"], cost["custodian"]
        line += (
            f"; per 1,000 events, CPU s (guardrail with its state store vs Custodian's detect-only push): "
            f"compliant {g['compliant_cpu_s_per_1000']:.2f} vs {c['compliant_cpu_s_per_1000']:.2f} "
            f"(ratio {cost['ratio']['compliant']:.2f}), remediated {g['remediated_cpu_s_per_1000']:.2f} vs "
            f"{c['remediated_cpu_s_per_1000']:.2f} (ratio {cost['ratio']['remediated']:.2f}); peak RSS "
            f"{g['peak_rss_mib']:.0f} vs {c['peak_rss_mib']:.0f} MiB (n = {cost['events_per_kind']} of each)"
        )
    write_result(
        "bench_peer" + ("_in_process" if args.emulator_in_process else ""),
        {
            "quick": args.quick,
            "emulator_in_process": args.emulator_in_process,
            "emulator_process_cpu_seconds_warm_events": emulator_cpu,
            "custodian": {"c7n": versions[0], "c7n-azure": versions[1], "venv": str(VENV)},
            "cold_start_first_event": cold,
            "cold_start_whole_process": cold_wall,
            "cli_check_whole_process": cli,
            "warm_per_event": warm,
            "cost_per_1000_events": cost,
            "guardrail_root": str(guardrail_root),
            "custodian_cli_found": len(found),
            "guardrail_event_writes": writes,
            "runs": runs,
            "rounds": rounds,
            "load_average_before": load_before,
            "load_average_after": machine()["load_average"],
        },
        line,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
