"""Event → verified remediation latency, through the emulator and the function app's own handlers.

A LocalStack (HTTPS ARM emulator, Azurite as the state store, local Teams/email/Monitor receivers)
delivers the emulator's events to `function_app`'s `on_resource_write` and
`on_resource_notification`, as Event Grid would. A user (a real SDK client with a user's token)
creates N accounts open to every network, one every `--interval` seconds, so the events do not queue
behind each other. For each account, latency = from the write's event time (the `eventTime` ARM
stamps on ResourceWriteSuccess) to the moment the guardrail's outcome is finished: re-read, written
(PATCH with If-Match), re-read and verified compliant. Recording the findings and alerting come after
that moment and are not counted.

The emulator runs in its own process (benchmarks/emulator_process.py) and pushes its events over
HTTP (`POST /_emulator/subscriptions`) to the Functions host's Event Grid webhook in this process
(guardrail_workbench.eventhost), which hands them to the handlers: a handler's exception answers
500 and the emulator redelivers (after 0.5 and 2 s), then the event counts as a failed delivery.
`--emulator-in-process` runs it in this process as before (its TLS and ARM logic then share this
process's GIL with the handlers; events reach them by a direct callback).

    .venv/bin/python benchmarks/bench_latency.py [--quick] [--writes N] [--interval S]
        [--emulator-in-process]
"""

from __future__ import annotations

import argparse
import collections
import datetime as dt
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from common import emulator_nodelay, machine, percentile, quiet_logs, write_result
from emulator_process import EmulatorProcess

from guardrail import functions
from guardrail.service import Outcome
from guardrail_workbench.eventhost import EventHost
from guardrail_workbench.stack import LocalStack, user_claims

SUB = "0a0a0a0a-1111-4111-8111-0000000001a1"
RG = "rg-apps"
POLICY = f"""
version: 1
mode: enforce
network:
  require_default_deny: true
  min_prefix_length: 16
  allowed_vnet_subscriptions: [{SUB}]
  bypass_allowed_kinds: []
"""


def open_account(name: str) -> dict[str, Any]:
    """What a user might create: every network allowed, trusted services let in, a /8 rule."""
    return {
        "location": "eastus",
        "kind": "AIServices",
        "sku": {"name": "S0"},
        "properties": {
            "customSubDomainName": name,
            "publicNetworkAccess": "Enabled",
            "networkAcls": {
                "defaultAction": "Allow",
                "bypass": "AzureServices",
                "ipRules": [{"value": "20.0.0.0/8"}, {"value": "20.30.40.0/24"}],
                "virtualNetworkRules": [],
            },
        },
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="40 writes instead of 150")
    parser.add_argument("--writes", type=int, default=None)
    parser.add_argument("--interval", type=float, default=0.5, help="seconds between the user's writes")
    parser.add_argument(
        "--emulator-as-is", action="store_true", help="keep Nagle's algorithm on the local servers' sockets"
    )
    parser.add_argument(
        "--emulator-in-process",
        action="store_true",
        help="run the ARM emulator in this process (it shares the GIL with the handlers) instead of its own",
    )
    args = parser.parse_args()
    quiet_logs()
    emulator_nodelay(not args.emulator_as_is)
    writes = args.writes or (40 if args.quick else 150)

    lock = threading.Lock()
    latencies: dict[str, float] = {}
    actions: collections.Counter[str] = collections.Counter()

    def observe(outcome: Outcome) -> None:
        # `finished` is monotonic; the event time is wall-clock UTC: convert at this moment.
        wall_now, mono_now = dt.datetime.now(dt.UTC), time.monotonic()
        finished_wall = wall_now - dt.timedelta(seconds=mono_now - outcome.finished)
        with lock:
            actions[f"{outcome.trigger}:{outcome.action}"] += 1
            if outcome.action == "remediated" and outcome.event_time is not None:
                key = outcome.resource_id.lower()
                if key not in latencies:
                    latencies[key] = (finished_wall - outcome.event_time).total_seconds()

    with tempfile.TemporaryDirectory(prefix="bench-latency-") as out:
        policy_path = Path(out) / "policy.yaml"
        policy_path.write_text(POLICY, encoding="utf-8")
        load_before = machine()["load_average"]
        stack = LocalStack(
            out_dir=out,
            policy_path=str(policy_path),
            extra_env={"GUARDRAIL_ALERT_COOLDOWN_MINUTES": "60"},
        )
        remote = None if args.emulator_in_process else EmulatorProcess(page_size=100)
        if remote is not None:
            stack.emulator = remote  # type: ignore[assignment]
        webhook: EventHost | None = None
        with stack:
            tenant = {"subscriptions": [{"subscriptionId": SUB, "resourceGroups": [{"name": RG}]}]}
            stack.emulator.seed(tenant)
            stack.apply_env()
            if remote is None:
                stack.connect_function_app()
                wait_idle = stack.wait_idle
            else:
                # The Functions host's Event Grid webhook in this process, running the app's
                # handlers; a handler's exception answers 500 and the emulator redelivers.
                webhook = EventHost().start()
                for function, kind in (
                    ("on_resource_write", "resources"),
                    ("on_resource_notification", "notifications"),
                ):
                    remote.subscribe([webhook.url(function)], [kind])
                wait_idle = remote.wait_idle
            emulator_cpu_before = remote.cpu_seconds() if remote is not None else None
            guardrail = functions.get_guardrail()  # the instance the handlers will use
            guardrail.observers.append(observe)
            client = stack.client_for(user_claims("jane@contoso.example", "Jane Doe"), SUB)
            try:
                # Warm-up: the first event pays imports and connections; not counted.
                client.accounts.begin_create(RG, "warm-up", open_account("warm-up")).result()
                wait_idle(60)
                with lock:
                    latencies.clear()
                    actions.clear()
                started = time.monotonic()
                for i in range(writes):
                    due = started + i * args.interval
                    pause = due - time.monotonic()
                    if pause > 0:
                        time.sleep(pause)
                    name = f"lat-{i:04d}"
                    client.accounts.begin_create(RG, name, open_account(name)).result()
                idle = wait_idle(120)
                elapsed = time.monotonic() - started
            finally:
                client.close()
                if webhook is not None:
                    webhook.stop()
            emulator_cpu = (
                round((remote.cpu_seconds() or 0.0) - emulator_cpu_before, 1)
                if remote is not None and emulator_cpu_before is not None
                else None
            )
            compliant = 0
            by_id = {str(a["id"]).lower(): a for a in stack.emulator.accounts()}
            for i in range(writes):
                account = by_id.get(
                    f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.CognitiveServices/accounts/lat-{i:04d}".lower()
                )
                acls = (account or {}).get("properties", {}).get("networkAcls") or {}
                compliant += acls.get("defaultAction") == "Deny" and acls.get("bypass") == "None"
            failed_deliveries = (
                sum(s["failed"] for s in remote.subscriptions())
                if remote is not None
                else len(stack.failed_deliveries)
            )
            alerts = len(stack.teams.cards) if stack.teams is not None else 0
    values = sorted(latencies.values())
    p50, p99 = percentile(values, 50), percentile(values, 99)
    where = "emulator in process" if args.emulator_in_process else "emulator in its own process"
    line = (
        f"bench_latency ({where}): event -> verified remediation p50 {p50 * 1000:.0f} ms, "
        f"p99 {p99 * 1000:.0f} ms (n={len(values)} of {writes} writes, one every {args.interval:g} s, "
        f"{compliant} left compliant; function app handlers, emulator over HTTPS, events "
        f"{'by callback' if args.emulator_in_process else 'pushed over HTTP'}, Azurite; "
        f"load {load_before[0]:.2f})"
    )
    write_result(
        "bench_latency" + ("_in_process" if args.emulator_in_process else ""),
        {
            "quick": args.quick,
            "emulator_in_process": args.emulator_in_process,
            "emulator_process_cpu_seconds": emulator_cpu,
            "writes": writes,
            "interval_seconds": args.interval,
            "count": len(values),
            "p50_ms": round(p50 * 1000, 1),
            "p90_ms": round(percentile(values, 90) * 1000, 1),
            "p99_ms": round(p99 * 1000, 1),
            "min_ms": round(values[0] * 1000, 1) if values else None,
            "max_ms": round(values[-1] * 1000, 1) if values else None,
            "accounts_compliant_after": compliant,
            "outcomes": dict(actions),
            "failed_deliveries": failed_deliveries,
            "teams_alerts": alerts,
            "all_events_handled": idle,
            "seconds": round(elapsed, 1),
            "emulator_tcp_nodelay": not args.emulator_as_is,
            "load_average_before": load_before,
        },
        line,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
