"""The event storm: a Terraform apply or a policy remediation task that changes 1,000 accounts in
60 s, each change arriving twice (the ResourceWriteSuccess event and the Resource Notification),
delivered concurrently to N function app instances with Event Grid's retry semantics.

For each N (`--workers 1,4`), a fresh stack: the ARM emulator in its own process
(benchmarks/emulator_process.py) throttling writes to 10 per second per subscription and principal
(ARM scopes its limits to the principal and the subscription), Azurite as the state store, and N
worker processes, each an `EventHost` (guardrail_workbench/eventhost.py): the Functions host's
Event Grid webhook running `function_app`'s own `on_resource_write` / `on_resource_notification`
through azure-functions' indexing and converters, on the Python worker's thread pool. The emulator
delivers each kind of event through one event subscription whose endpoints are the N instances:
`--concurrency` deliveries at once, each attempt to the next instance in turn (a scaled-out app's
front end), a non-2xx answer or a 30 s timeout retried after `--retry-delays` (Event Grid's own
first steps: 10 s, 30 s, 1 min), then given up (Event Grid goes on hourly for 24 h: counted here as
lost). One event per delivery (Event Grid's default maxEventsPerBatch is 1); concurrent
delivery makes the order of arrival free, as Event Grid's is.

The tenant: `--subscriptions` subscriptions, one resource group each; `--hot-share` of the
accounts in one of them (a landing zone the apply targets: 500 changes in 60 s there needs 8.3 of
its 10 guardrail writes per second), the rest spread evenly over the others. A user (a real SDK
client with a user's token) creates the accounts open to every network, on a schedule spreading
them evenly over `--seconds`, in a shuffled order over the subscriptions, from 16 threads.

Reported per N, for the storm's accounts (a warm-up account per instance is left out):
- change -> verified: from the user's write event time (ARM's eventTime) to the guardrail's
  outcome finished (re-read and verified compliant, in the worker); p50, p99, max;
- guardrail writes per account: successful account writes by the guardrail's identity, counted
  from the emulator's events (must be exactly 1 for one change);
- accounts left open (judged by the policy on the emulator's final state: must be 0);
- `remediated` finding records per (account, rule), from the findings file the instances share
  (one change, one remediation: must be exactly 1);
- breaker trips (each account changed once: any trip is false, must be 0);
- 429s by method (the user's PUTs and the guardrail's PATCHes), deliveries, retries and
  deliveries given up, invocations that raised, per instance;
- the token bucket (`Guardrail.pacer`, each instance its own): writes taken, how many waited and
  for how long, per subscription;
- CPU and peak RSS per instance, the emulator's CPU, the load average.

    .venv/bin/python benchmarks/bench_storm.py [--quick] [--workers 1,4] [--accounts N]
        [--seconds S] [--subscriptions N] [--hot-share F] [--concurrency N] [--retry-delays 10,30,60]
"""

from __future__ import annotations

import argparse
import collections
import datetime as dt
import json
import logging
import os
import random
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from bench_latency import open_account
from bench_sweep import THROTTLE, _left_non_compliant
from common import (
    ROOT,
    WorkerProcesses,
    emulator_nodelay,
    machine,
    percentile,
    quiet_logs,
    write_result,
)
from emulator_process import EmulatorProcess

from guardrail import functions
from guardrail.policy import parse_policy_text
from guardrail.service import Outcome
from guardrail_workbench.emulator.identity import GUARDRAIL_CLAIMS
from guardrail_workbench.stack import LocalStack, pipeline_claims
from guardrail_workbench.tenant import policy_for, subscription_ids

WORKER_FLAG = "--storm-worker"
RG = "rg-storm"
USER_THREADS = 16
#: Who makes the changes, in turn: ARM throttles each principal on its own (10 writes/s per
#: subscription), so two deployers can change one subscription faster than the guardrail may write.
DEPLOYERS = (
    pipeline_claims("terraform-apply", "Terraform apply"),
    pipeline_claims("policy-remediation", "Azure Policy remediation task"),
)
WRITE_SUCCESS = "Microsoft.Resources.ResourceWriteSuccess"


# ---------------------------------------------------------------------------------------------------
# One instance of the function app: a worker process
# ---------------------------------------------------------------------------------------------------
class _Degraded(logging.Filter):
    """Counts the state store's "running without memory" warnings (guardrail.state): each one
    starts a spell in which the instance checks accounts without its journal."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0
        self.reasons: list[str] = []

    def filter(self, record: logging.LogRecord) -> bool:
        if "running without memory" in record.getMessage():
            self.count += 1
            self.reasons.append(record.getMessage()[:200])
        return True


def storm_worker() -> int:
    """One function app instance: an `EventHost` serving the app's Event Grid triggers. Prints
    {"urls", "threads"}, then on "go" starts counting, on "stop" prints its figures as one JSON line.
    Environment: the stack's app settings (set by the parent)."""
    import resource

    from guardrail_workbench.eventhost import EventHost

    quiet_logs()
    guardrail = functions.get_guardrail()  # the instance the handlers will use
    lock = threading.Lock()
    outcomes: list[dict[str, Any]] = []
    pacing: dict[str, dict[str, float]] = {}

    def observe(outcome: Outcome) -> None:
        row = {
            "id": outcome.resource_id.lower(),
            "action": outcome.action,
            "trigger": outcome.trigger,
            "started_epoch": time.time() - (time.monotonic() - outcome.started),
            "finished_epoch": time.time() - (time.monotonic() - outcome.finished),
            "breaker_tripped": outcome.breaker_tripped,
            "detail": outcome.detail,
        }
        with lock:
            outcomes.append(row)

    guardrail.observers.append(observe)
    degraded = _Degraded()
    logging.getLogger("guardrail.state").addFilter(degraded)
    acquire = guardrail.pacer.acquire

    def counted(subscription: str, *, steady: bool = False) -> float:  # the real pacer, its waits counted
        waited = acquire(subscription, steady=steady)
        with lock:
            row = pacing.setdefault(
                subscription.lower(), {"taken": 0, "waited": 0, "wait_seconds": 0.0, "max_wait": 0.0}
            )
            row["taken"] += 1
            row["waited"] += waited > 0
            row["wait_seconds"] += waited
            row["max_wait"] = max(row["max_wait"], waited)
        return waited

    guardrail.pacer.acquire = counted  # type: ignore[method-assign]
    host = EventHost().start()
    urls = {name: host.url(name) for name in host.handlers}
    print(json.dumps({"urls": urls, "threads": host.pool._max_workers}), flush=True)
    cpu0 = 0.0
    for line in sys.stdin:
        if line.strip() == "go":  # the warm-up is over: count from here
            cpu0 = time.process_time()
            with lock:
                outcomes.clear()
                pacing.clear()
                degraded.count, degraded.reasons = 0, []
            with host.lock:
                host.invocations.clear()
                host.failures.clear()
                host.first_errors.clear()
                host.busy_seconds = 0.0
        elif line.strip() == "stop":
            break
    host.stop()
    with lock:
        print(
            json.dumps(
                {
                    **host.counts(),
                    "outcomes": outcomes,
                    "pacing": pacing,
                    "state_store_degraded": degraded.count,
                    "state_store_degraded_reasons": degraded.reasons[:3],
                    "cpu_seconds": round(time.process_time() - cpu0, 2),
                    "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
                }
            ),
            flush=True,
        )
    return 0


# ---------------------------------------------------------------------------------------------------
# The storm
# ---------------------------------------------------------------------------------------------------
def storm_tenant(
    accounts: int, subscriptions: int, hot_share: float, seed: int
) -> tuple[dict[str, Any], list[str]]:
    """The tenant (subscriptions with one empty resource group each) and, per account to create,
    its subscription: `hot_share` of them in the first subscription, the rest spread evenly."""
    subs = subscription_ids(subscriptions, seed)
    hot = round(accounts * hot_share) if subscriptions > 1 else accounts
    placement = [subs[0]] * hot + [subs[1 + i % (subscriptions - 1)] for i in range(accounts - hot)]
    tenant = {
        "subscriptions": [
            {"subscriptionId": sub, "displayName": f"contoso-ai-{n + 1}", "resourceGroups": [{"name": RG}]}
            for n, sub in enumerate(subs)
        ]
    }
    return tenant, placement


def _remediated_records(path: Path) -> collections.Counter[tuple[str, str]]:
    """`remediated` finding records per (account, rule) of the storm's accounts, from the findings
    file every instance appends to: one change, one remediation, so each must be exactly 1."""
    counts: collections.Counter[tuple[str, str]] = collections.Counter()
    if not path.exists():
        return counts
    for line in path.read_text(encoding="utf-8").splitlines():
        row = json.loads(line) if line.strip() else {}
        name = str(row.get("AccountName", ""))
        if row.get("Status") == "remediated" and name.startswith("storm-"):
            counts[(name, str(row.get("Rule")))] += 1
    return counts


def _since_warm_up(now: list[dict[str, Any]], before: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The event subscriptions' delivery counts since the warm-up ended."""
    earlier = {s["id"]: s for s in before}
    counted = ("deliveries", "attempts", "failed", "errors")
    return [{**s, **{k: s[k] - earlier.get(s["id"], {}).get(k, 0) for k in counted}} for s in now]


def _is_account(resource_id: str) -> bool:
    parts = resource_id.strip("/").split("/")
    return len(parts) == 8 and parts[5].lower() == "microsoft.cognitiveservices"


def _event_epoch(text: str) -> float:
    return dt.datetime.fromisoformat(text[:26] + "+00:00").timestamp()


def storm_run(args: argparse.Namespace, workers: int) -> dict[str, Any]:
    tenant, placement = storm_tenant(args.accounts, args.subscriptions, args.hot_share, args.seed)
    policy_text = policy_for(tenant)
    policy = parse_policy_text(policy_text)
    with tempfile.TemporaryDirectory(prefix="bench-storm-") as out:
        policy_path = Path(out) / "policy.yaml"
        policy_path.write_text(policy_text, encoding="utf-8")
        stack = LocalStack(out_dir=out, policy_path=str(policy_path), receivers=False)
        emulator = EmulatorProcess(page_size=100, write_rate=THROTTLE)
        stack.emulator = emulator  # type: ignore[assignment]
        with stack:
            emulator.seed(tenant)
            emulator.app.keep_request_log = False
            stack.apply_env()
            env = {**os.environ, **stack.env, "PYTHONPATH": str(ROOT)}
            pool = WorkerProcesses(__file__, WORKER_FLAG, workers, env)
            hello = [json.loads(line) for line in pool.hello]
            try:
                for function, kind in (
                    ("on_resource_write", "resources"),
                    ("on_resource_notification", "notifications"),
                ):
                    emulator.subscribe(
                        [str(h["urls"][function]) for h in hello],
                        [kind],
                        concurrency=args.concurrency,
                        retryDelays=args.retry_delays,
                        timeout=30,
                    )
                subs = [s["subscriptionId"] for s in tenant["subscriptions"]]
                clients = [{sub: stack.client_for(claims, sub) for sub in subs} for claims in DEPLOYERS]
                # Warm-up: one account per instance (imports, connections); not counted.
                for i in range(workers):
                    name = f"warm-up-{i}"
                    clients[0][subs[0]].accounts.begin_create(RG, name, open_account(name)).result()
                emulator.wait_idle(120)
                pool.tell("go")
                emulator.reset_stats()
                warm_up = emulator.subscriptions()
                seq0 = int(emulator.call("GET", "/_emulator/events?since=1000000000")["next"])
                emulator_cpu0 = emulator.cpu_seconds() or 0.0
                load_before = machine()["load_average"]
                order = list(range(args.accounts))
                random.Random(args.seed).shuffle(order)
                user_errors: list[str] = []
                started = time.time()
                spacing = args.seconds / max(1, args.accounts)

                def change(slot: int, index: int) -> None:
                    pause = started + slot * spacing - time.time()
                    if pause > 0:
                        time.sleep(pause)
                    name = f"storm-{index:04d}"
                    try:
                        client = clients[index % len(clients)][placement[index]]
                        client.accounts.begin_create(RG, name, open_account(name)).result()
                    except Exception as error:  # counted, not fatal: the storm goes on
                        user_errors.append(f"{name}: {type(error).__name__}: {error}"[:300])

                with ThreadPoolExecutor(max_workers=USER_THREADS) as users:
                    list(users.map(change, range(args.accounts), order))
                changes_seconds = time.time() - started
                quiet = emulator.wait_idle(args.drain_timeout)
                drained_seconds = time.time() - started
                for by_sub in clients:
                    for client in by_sub.values():
                        client.close()
            finally:
                try:
                    pool.tell("stop")
                    results = pool.results()
                finally:
                    pool.kill()
            emulator_cpu = (emulator.cpu_seconds() or 0.0) - emulator_cpu0
            stats = emulator.stats()
            subscriptions = _since_warm_up(
                emulator.call("GET", "/_emulator/subscriptions")["subscriptions"], warm_up
            )
            events = emulator.call("GET", f"/_emulator/events?since={seq0}")["events"]
            records = _remediated_records(Path(out) / "findings.jsonl")
            left_open = _left_non_compliant(stack, policy, dt.datetime.now(dt.UTC))  # warm-up included
            present = sum(1 for a in emulator.accounts() if str(a["name"]).startswith("storm-"))
    return _figures(workers, placement, results, events, stats, subscriptions) | {
        "accounts_left_open": left_open,
        "remediated_records_per_finding": {
            str(k): v for k, v in sorted(collections.Counter(records.values()).items())
        },
        "findings_recorded_remediated_more_than_once": sorted(
            f"{name} {rule}" for (name, rule), n in records.items() if n > 1
        )[:10],
        "accounts_present": present,
        "worker_threads": [h["threads"] for h in hello],
        "changes_seconds": round(changes_seconds, 1),
        "drained_seconds": round(drained_seconds, 1),
        "all_events_handled": quiet,
        "user_errors": len(user_errors),
        "first_user_errors": user_errors[:3],
        "emulator_process_cpu_seconds": round(emulator_cpu, 1),
        "load_average_before": load_before,
        "load_average_after": machine()["load_average"],
    }


def _figures(
    workers: int,
    placement: list[str],
    results: list[dict[str, Any]],
    events: list[dict[str, Any]],
    stats: dict[str, Any],
    subscriptions: list[dict[str, Any]],
) -> dict[str, Any]:
    guardrail_app = str(GUARDRAIL_CLAIMS["appid"]).lower()
    changed: dict[str, float] = {}  # account id -> the user's write event time (epoch)
    guardrail_writes: collections.Counter[str] = collections.Counter()
    for event in events:
        subject = str(event.get("subject", "")).lower()
        if event.get("eventType") != WRITE_SUCCESS or not _is_account(subject):
            continue
        if "/accounts/storm-" not in subject:
            continue
        claims = event["data"].get("claims", {})
        if str(claims.get("appid", "")).lower() == guardrail_app:
            guardrail_writes[subject] += 1
        elif subject not in changed:
            changed[subject] = _event_epoch(str(event["eventTime"]))
    verified: dict[str, float] = {}
    started: dict[str, float] = {}  # the check that verified it began (picked up by an instance)
    actions: collections.Counter[str] = collections.Counter()
    tripped: set[str] = set()
    for result in results:
        for row in result["outcomes"]:
            if "/accounts/storm-" not in row["id"]:
                continue
            actions[f"{row['trigger']}:{row['action']}"] += 1
            if row["breaker_tripped"] or row["action"] == "suspended":
                tripped.add(row["id"])
            if row["action"] == "remediated" and row["finished_epoch"] < verified.get(
                row["id"], float("inf")
            ):
                verified[row["id"]] = row["finished_epoch"]
                started[row["id"]] = row["started_epoch"]
    latencies = sorted(verified[rid] - changed[rid] for rid in changed if rid in verified)
    waited = sorted(started[rid] - changed[rid] for rid in changed if rid in started)
    checks = sorted(verified[rid] - started[rid] for rid in changed if rid in started)
    writes_per_account = collections.Counter(guardrail_writes.get(rid, 0) for rid in changed)
    pacing: dict[str, dict[str, float]] = {}
    for result in results:
        for sub, row in result["pacing"].items():
            merged = pacing.setdefault(sub, {"taken": 0, "waited": 0, "wait_seconds": 0.0, "max_wait": 0.0})
            merged["taken"] += row["taken"]
            merged["waited"] += row["waited"]
            merged["wait_seconds"] = round(merged["wait_seconds"] + row["wait_seconds"], 2)
            merged["max_wait"] = round(max(merged["max_wait"], row["max_wait"]), 2)
    per_sub = collections.Counter(s.lower() for s in placement)
    statuses = collections.Counter(stats["statuses"])
    deliveries = sum(s["deliveries"] for s in subscriptions)
    attempts = sum(s["attempts"] for s in subscriptions)
    return {
        "workers": workers,
        "accounts": len(placement),
        "accounts_changed_seen": len(changed),
        "accounts_by_subscription": dict(per_sub),
        "accounts_verified": len(latencies),
        "change_to_verified_p50_ms": round(percentile(latencies, 50) * 1000, 1) if latencies else None,
        "change_to_verified_p90_ms": round(percentile(latencies, 90) * 1000, 1) if latencies else None,
        "change_to_verified_p99_ms": round(percentile(latencies, 99) * 1000, 1) if latencies else None,
        "change_to_verified_max_ms": round(latencies[-1] * 1000, 1) if latencies else None,
        "change_to_check_start_p50_ms": round(percentile(waited, 50) * 1000, 1) if waited else None,
        "change_to_check_start_p99_ms": round(percentile(waited, 99) * 1000, 1) if waited else None,
        "check_p50_ms": round(percentile(checks, 50) * 1000, 1) if checks else None,
        "check_p99_ms": round(percentile(checks, 99) * 1000, 1) if checks else None,
        "guardrail_writes": sum(guardrail_writes.values()),
        "accounts_by_guardrail_writes": {str(k): v for k, v in sorted(writes_per_account.items())},
        "accounts_written_more_than_once": sorted(
            rid.rsplit("/", 1)[-1] for rid in changed if guardrail_writes[rid] > 1
        ),
        "breaker_trips": len(tripped),
        "false_breaker_trips": len(tripped),  # one change per account: every trip is false
        "outcomes": dict(actions),
        "http_429": {key: n for key, n in statuses.items() if key.endswith(" 429")},
        "http_statuses": dict(statuses),
        "event_deliveries": deliveries,
        "event_redeliveries": attempts - deliveries,
        "event_deliveries_given_up": sum(s["failed"] for s in subscriptions),
        "invocations": sum(sum(r["invocations"].values()) for r in results),
        "invocations_raised": sum(sum(r["failures"].values()) for r in results),
        "first_errors": [e for r in results for e in r["first_errors"]][:5],
        "state_store_degraded_spells": sum(r["state_store_degraded"] for r in results),
        "state_store_degraded_reasons": [e for r in results for e in r["state_store_degraded_reasons"]][:3],
        "invocations_per_worker": [sum(r["invocations"].values()) for r in results],
        "token_bucket_by_subscription": pacing,
        "cpu_seconds_per_worker": [r["cpu_seconds"] for r in results],
        "peak_rss_mib_per_worker": [r["peak_rss_mib"] for r in results],
        "busy_seconds_per_worker": [r["busy_seconds"] for r in results],
    }


def main() -> int:
    if WORKER_FLAG in sys.argv:
        return storm_worker()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="150 accounts in 9 s, 1 and 2 instances")
    parser.add_argument("--workers", default=None, help="instances to run the storm on, e.g. 1,4")
    parser.add_argument("--accounts", type=int, default=None)
    parser.add_argument("--seconds", type=float, default=None, help="the changes are spread over this")
    parser.add_argument("--subscriptions", type=int, default=10)
    parser.add_argument(
        "--hot-share", type=float, default=0.8, help="share of the accounts in one subscription"
    )
    parser.add_argument(
        "--concurrency", type=int, default=32, help="deliveries at once per event subscription"
    )
    parser.add_argument("--retry-delays", default="10,30,60", help="seconds before each redelivery")
    parser.add_argument("--drain-timeout", type=float, default=150.0)
    parser.add_argument("--seed", type=int, default=27)
    args = parser.parse_args()
    quiet_logs()
    logging.getLogger("urllib3.connectionpool").setLevel(logging.ERROR)  # "pool is full": 16 user threads
    emulator_nodelay(True)
    args.accounts = args.accounts or (150 if args.quick else 1000)
    args.seconds = args.seconds or (9.0 if args.quick else 60.0)
    counts = [int(n) for n in (args.workers or ("1,2" if args.quick else "1,4")).split(",") if n.strip()]
    args.retry_delays = [float(d) for d in args.retry_delays.split(",") if d.strip()]
    runs = [storm_run(args, n) for n in counts]
    parts = [
        f"N={r['workers']}: change -> verified p50 {r['change_to_verified_p50_ms'] or 0:.0f} ms, "
        f"p99 {r['change_to_verified_p99_ms'] or 0:.0f} ms, max {r['change_to_verified_max_ms'] or 0:.0f} ms "
        f"({r['accounts_verified']} verified), "
        f"writes/account {r['accounts_by_guardrail_writes']}, {r['accounts_left_open']} left open, "
        f"{r['false_breaker_trips']} false trips, remediated records/finding "
        f"{r['remediated_records_per_finding']}, 429s {sum(r['http_429'].values())}, "
        f"{r['event_redeliveries']} redeliveries, {r['event_deliveries_given_up']} lost, "
        f"{r['state_store_degraded_spells']} spells without memory "
        f"(load {r['load_average_before'][0]:.2f})"
        for r in runs
    ]
    line = (
        f"bench_storm: {args.accounts:,} accounts changed in {args.seconds:g} s over {args.subscriptions} "
        f"subscriptions ({args.hot_share:.0%} in one), write event + notification each, to N instances; "
        + "; ".join(parts)
    )
    write_result(
        "bench_storm",
        {
            "quick": args.quick,
            "accounts": args.accounts,
            "seconds": args.seconds,
            "subscriptions": args.subscriptions,
            "hot_share": args.hot_share,
            "delivery_concurrency_per_event_subscription": args.concurrency,
            "retry_delays_seconds": args.retry_delays,
            "delivery_timeout_seconds": 30,
            "throttle_writes_per_second_per_subscription_and_principal": THROTTLE,
            "user_threads": USER_THREADS,
            "seed": args.seed,
            "runs": runs,
        },
        line,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
