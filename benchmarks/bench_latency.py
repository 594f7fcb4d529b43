"""Event → verified remediation latency, through the emulator and the function app's own handlers.

A LocalStack (HTTPS ARM emulator, Azurite as the state store, local Teams/email/Monitor receivers)
delivers the emulator's events to `function_app`'s `on_resource_write` and
`on_resource_notification`, as Event Grid would. A user (a real SDK client with a user's token)
creates N accounts open to every network, one every `--interval` seconds, so the events do not queue
behind each other. For each account, latency = from the write's event time (the `eventTime` ARM
stamps on ResourceWriteSuccess) to the moment the guardrail's outcome is finished: re-read, written
(PATCH with If-Match), re-read and verified compliant. Recording the findings and alerting come after
that moment and are not counted.

    .venv/bin/python benchmarks/bench_latency.py [--quick] [--writes N] [--interval S]
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

from guardrail import functions
from guardrail.service import Outcome
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
        with LocalStack(
            out_dir=out,
            policy_path=str(policy_path),
            extra_env={"GUARDRAIL_ALERT_COOLDOWN_MINUTES": "60"},
        ) as stack:
            tenant = {"subscriptions": [{"subscriptionId": SUB, "resourceGroups": [{"name": RG}]}]}
            stack.emulator.seed(tenant)
            stack.apply_env()
            stack.connect_function_app()
            guardrail = functions.get_guardrail()  # the instance the handlers will use
            guardrail.observers.append(observe)
            client = stack.client_for(user_claims("jane@contoso.example", "Jane Doe"), SUB)
            try:
                # Warm-up: the first event pays imports and connections; not counted.
                client.accounts.begin_create(RG, "warm-up", open_account("warm-up")).result()
                stack.wait_idle(60)
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
                idle = stack.wait_idle(120)
                elapsed = time.monotonic() - started
            finally:
                client.close()
            compliant = 0
            for i in range(writes):
                account = stack.emulator.account(
                    f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.CognitiveServices/accounts/lat-{i:04d}"
                )
                acls = (account or {}).get("properties", {}).get("networkAcls") or {}
                compliant += acls.get("defaultAction") == "Deny" and acls.get("bypass") == "None"
            failed_deliveries = len(stack.failed_deliveries)
            alerts = len(stack.teams.cards) if stack.teams is not None else 0
    values = sorted(latencies.values())
    p50, p99 = percentile(values, 50), percentile(values, 99)
    line = (
        f"bench_latency: event -> verified remediation p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms "
        f"(n={len(values)} of {writes} writes, one every {args.interval:g} s, {compliant} left compliant; "
        f"function app handlers, emulator over HTTPS, Azurite; load {load_before[0]:.2f})"
    )
    write_result(
        "bench_latency",
        {
            "quick": args.quick,
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
