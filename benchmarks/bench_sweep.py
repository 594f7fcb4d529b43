"""The reconcile sweep against ARM's write throttle: 10,000 accounts in 10 subscriptions, with the
emulator refusing (429 + Retry-After) more than 10 writes per second per subscription.

The sweep runs exactly as the function app runs it (`guardrail.functions.get_guardrail().sweep()`),
through the real SDK over HTTPS to the emulator, with Azurite as the state store. The guardrail's own
pacing and concurrency are its defaults unless given (GUARDRAIL_WRITES_PER_SECOND=10,
GUARDRAIL_SWEEP_CONCURRENCY=16).

The throttle-limited optimum: subscriptions are throttled independently, so the sweep cannot finish
before the subscription with the most writes has had them all at 10 per second:
    optimum = max over subscriptions (writes needed there) / 10 s
The ratio sweep time / optimum is the figure; ~1 means the sweep keeps every subscription's write
budget busy, ~(number of subscriptions) means it writes to one subscription at a time.

    .venv/bin/python benchmarks/bench_sweep.py [--quick] [--accounts N] [--subscriptions N]
        [--concurrency N] [--writes-per-second X]

Fan-out mode (`--fanout 1,2,4`): the sweep as the function app runs it on the Functions engine. For
each N, a fresh stack (the same throttled emulator, Azurite with its Queue service, the same
tenant), N worker processes that each load `function_app` and run its queue-triggered
`sweep_slice` on the sweep queue as the Functions host would (guardrail_workbench.queuehost:
host.json's batchSize / newBatchThreshold / maxDequeueCount), and the timer function `reconcile_sweep`
called once in this process to enqueue one message per subscription (each page's nextLink becomes
the next message). The sweep's time runs from the timer to the last outcome in any worker. Reported
per N: the ratio to the optimum, writes, 429s, errors, failed and poison messages, accounts left
non-compliant, peak RSS and CPU per worker. Each worker paces writes on its own, so N workers may
offer a subscription up to N x GUARDRAIL_WRITES_PER_SECOND and draw 429s, as separate instances
would.

The emulator runs in its own process (benchmarks/emulator_process.py), as ARM is not on the
guardrail's CPU in Azure: the tenant, the latency fault, the 429 and write counts (`GET
/_emulator/stats`) and the "left non-compliant" check go through its HTTP control API, and its CPU
is reported apart. `--emulator-in-process` runs it in this process as before (its TLS and ARM logic
then share this process's GIL with the sweep), so both can be compared.
"""

from __future__ import annotations

import argparse
import collections
import datetime as dt
import logging
import os
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from common import WorkerProcesses, cpu_seconds, emulator_nodelay, machine, quiet_logs, write_result
from emulator_process import EmulatorProcess

from guardrail import functions
from guardrail.engine import Evaluation, evaluate
from guardrail.policy import parse_policy_text
from guardrail.service import Outcome
from guardrail_workbench.emulator import Request, Response
from guardrail_workbench.stack import LocalStack
from guardrail_workbench.tenant import generate_tenant, policy_for

THROTTLE = 10.0  # the emulator's writes per second per subscription (ARM's refill rate)


def _process_cpu_seconds(pid: int) -> float | None:
    """utime + stime of another process (Azurite), from /proc."""
    return cpu_seconds(f"/proc/{pid}/stat")


class _CpuByThread:
    """CPU seconds by kind of thread in this process: the sweep's workers (the guardrail, its SDK
    clients and state store client) and the in-process emulator's connection threads (TLS, HTTP and
    the ARM logic). Workers are sampled as they report outcomes; connection threads when they end
    and, for those still open, at `snapshot`."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.workers: dict[int, float] = {}
        self.closed_connections = 0.0

    def worker_sample(self) -> None:
        with self.lock:
            self.workers[threading.get_ident()] = time.thread_time()

    def instrument_emulator(self) -> None:
        from guardrail_workbench.emulator import server

        finish = server._Handler.finish
        meter = self

        def finish_and_count(handler: Any) -> None:
            try:
                finish(handler)
            finally:
                with meter.lock:
                    meter.closed_connections += time.thread_time()

        server._Handler.finish = finish_and_count  # type: ignore[method-assign,assignment]

    def snapshot(self) -> dict[str, float]:
        live = 0.0
        for thread in threading.enumerate():
            if "process_request_thread" in thread.name and thread.native_id is not None:
                live += cpu_seconds(f"/proc/self/task/{thread.native_id}/stat") or 0.0
        with self.lock:
            return {
                "sweep_workers": round(sum(self.workers.values()), 1),
                "emulator_connections": round(self.closed_connections + live, 1),
            }


class _PoolFull(logging.Filter):
    """Counts (and silences) urllib3's "Connection pool is full, discarding connection" warnings:
    more threads share one client than its pool keeps connections, so connections get re-opened."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0
        self.by_port: collections.Counter[int] = collections.Counter()

    def filter(self, record: logging.LogRecord) -> bool:
        if "Connection pool is full" not in record.getMessage():
            return True
        self.count += 1
        frame = sys._getframe()
        while frame is not None and frame.f_code.co_name != "_put_conn":
            frame = frame.f_back  # type: ignore[assignment]
        if frame is not None:
            self.by_port[int(getattr(frame.f_locals.get("self"), "port", 0) or 0)] += 1
        return False


class _Traffic:
    """Counts the emulator's answers by (method, status) and times each successful PATCH per
    subscription (wall clock): by wrapping the in-process emulator's app, or, for an emulator in
    its own process, from its `GET /_emulator/stats` after resetting it (`start`)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.statuses: collections.Counter[str] = collections.Counter()
        self.writes: dict[str, list[float]] = collections.defaultdict(list)
        self.windows: dict[str, tuple[float, float, int]] = {}  # sub -> (first, last, count), epoch
        self._remote: EmulatorProcess | None = None

    def start(self, emulator: Any) -> None:
        if isinstance(emulator, EmulatorProcess):
            self._remote = emulator
            emulator.reset_stats()
        else:
            self.wrap(emulator.app)

    def collect(self) -> None:
        if self._remote is not None:
            stats = self._remote.stats()
            self.statuses = collections.Counter(stats["statuses"])
            self.windows = {sub: (w["first"], w["last"], w["count"]) for sub, w in stats["writes"].items()}
        else:
            with self.lock:
                self.windows = {sub: (min(t), max(t), len(t)) for sub, t in self.writes.items() if t}

    def wrap(self, app: Any) -> None:
        handle = app.handle

        def counted(request: Request) -> Response:
            response: Response = handle(request)
            now = time.time()
            with self.lock:
                self.statuses[f"{request.method} {response.status}"] += 1
                if request.method == "PATCH" and response.status < 300:
                    self.writes[request.path.split("/")[2].lower()].append(now)
            return response

        app.handle = counted


def _stack(in_process: bool, **options: Any) -> LocalStack:
    """A LocalStack whose emulator is in this process or (the default) in its own."""
    stack = LocalStack(page_size=100, write_rate=THROTTLE, receivers=False, **options)
    if not in_process:
        stack.emulator = EmulatorProcess(page_size=100, write_rate=THROTTLE)  # type: ignore[assignment]
    return stack


def _emulator_memory(stack: LocalStack) -> dict[str, float]:
    emulator: Any = stack.emulator
    return emulator.memory_mib() if isinstance(emulator, EmulatorProcess) else {}


def _emulator_cpu(stack: LocalStack) -> float | None:
    emulator: Any = stack.emulator
    return emulator.cpu_seconds() if isinstance(emulator, EmulatorProcess) else None


def _guardrail_env(args: argparse.Namespace) -> dict[str, str]:
    """The guardrail's sweep settings the command line overrides (otherwise its defaults)."""
    env: dict[str, str] = {}
    if args.concurrency is not None:
        env["GUARDRAIL_SWEEP_CONCURRENCY"] = str(args.concurrency)
    if args.writes_per_second is not None:
        env["GUARDRAIL_WRITES_PER_SECOND"] = str(args.writes_per_second)
    return env


def _prepare(
    stack: LocalStack, tenant: dict[str, Any], arm_latency: float, generate: dict[str, Any] | None = None
) -> None:
    """Seed the tenant (or, with `generate`, have the emulator in its own process make
    `generate_tenant(**generate)` itself), optional ARM latency, point the function app at the stack."""
    if generate is not None:
        assert isinstance(stack.emulator, EmulatorProcess), "a generated tenant needs the emulator process"
        stack.emulator.generate(**generate)
    else:
        stack.emulator.seed(tenant)
    stack.emulator.app.keep_request_log = False
    if arm_latency > 0:
        stack.emulator.faults.add(action="latency", latency=arm_latency, times=None)
    stack.apply_env()


def _writes_needed(stack: LocalStack, policy: Any, now: dt.datetime) -> collections.Counter[str]:
    """Accounts needing a write, by subscription (lower case)."""
    needed: collections.Counter[str] = collections.Counter()
    for body in stack.emulator.accounts():
        judged = evaluate(body, policy, now)
        if isinstance(judged, Evaluation) and judged.remediation is not None:
            needed[str(body["id"]).split("/")[2].lower()] += 1
    return needed


def _left_non_compliant(stack: LocalStack, policy: Any, now: dt.datetime) -> int:
    left = 0
    for body in stack.emulator.accounts():
        judged = evaluate(body, policy, now)
        if not isinstance(judged, Evaluation) or judged.remediation is not None:
            left += 1
    return left


# ---------------------------------------------------------------------------------------------------
# Fan-out mode: N worker processes running the queue-triggered function
# ---------------------------------------------------------------------------------------------------
WORKER_FLAG = "--fanout-worker"


def _count_storage_requests(connection_string: str) -> collections.Counter[str]:
    """Count this process's requests to Azurite ("table GET", "queue POST", ...), told apart by the
    port of each service in the connection string, from under every azure-core client's transport
    (requests' HTTPAdapter.send, which the guardrail's pooled adapter and the Storage SDKs' default
    one both end in). Counted as sent (a retried request counts each time)."""
    from urllib.parse import urlsplit

    import requests.adapters

    ports: dict[int, str] = {}
    for part in connection_string.split(";"):
        key, _, value = part.partition("=")
        if key.endswith("Endpoint") and value.startswith("http"):
            ports[urlsplit(value).port or 0] = key.removesuffix("Endpoint").lower()
    counts: collections.Counter[str] = collections.Counter()
    lock = threading.Lock()
    send = requests.adapters.HTTPAdapter.send

    def counted(adapter: Any, request: Any, *args: Any, **kwargs: Any) -> Any:
        service = ports.get(urlsplit(request.url).port or 0)
        if service is not None:
            with lock:
                counts[f"{service} {request.method}"] += 1
        return send(adapter, request, *args, **kwargs)

    requests.adapters.HTTPAdapter.send = counted  # type: ignore[method-assign]
    return counts


class _MemorySampler:
    """The emulator process's resident memory, sampled every `interval` seconds while running."""

    def __init__(self, emulator: Any, interval: float = 0.5) -> None:
        self.emulator = emulator
        self.interval = interval
        self.peak = 0.0
        self.threads = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            memory = self.emulator.memory_mib()
            self.peak = max(self.peak, memory.get("rss", 0.0))
            self.threads = max(self.threads, int(memory.get("threads", 0)))
            self._stop.wait(self.interval)

    def __enter__(self) -> _MemorySampler:
        if isinstance(self.emulator, EmulatorProcess):
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()


def _own_peak_rss_mib() -> float:
    """This process's peak resident memory (VmHWM), MiB."""
    for line in Path("/proc/self/status").read_text(encoding="utf-8").splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


def fanout_worker() -> int:
    """One worker process: the function app's own `sweep_slice` on the sweep queue until it is
    empty. Environment: the stack's app settings (set by the parent). Prints one JSON line."""
    import json
    import resource

    from guardrail.fanout import SWEEP_QUEUE
    from guardrail_workbench.queuehost import QueueHost
    from guardrail_workbench.stack import function_handlers

    quiet_logs()
    connection = os.environ.get("AzureWebJobsStorage", "")  # noqa: SIM112 (the Functions host's name)
    storage_requests = _count_storage_requests(connection)
    handlers = function_handlers()  # function_app indexed through azure-functions, as the worker does
    guardrail = functions.get_guardrail()
    outcomes: collections.Counter[str] = collections.Counter()
    errors: list[str] = []
    last = [0.0]
    lock = threading.Lock()

    def observe(outcome: Outcome) -> None:
        with lock:
            outcomes[outcome.action] += 1
            last[0] = max(last[0], time.time())

    guardrail.observers.append(observe)
    sweep_accounts = guardrail.sweep_accounts

    def counted(listed: Any, report: Any = None) -> Any:  # the real per-slice path, its errors counted
        result = sweep_accounts(listed, report)
        with lock:
            errors.extend(result.errors)
            last[0] = max(last[0], time.time())
        return result

    guardrail.sweep_accounts = counted  # type: ignore[method-assign]
    host = QueueHost(str(guardrail.settings.storage.connection_string), SWEEP_QUEUE, handlers["sweep_slice"])
    host.pending()  # the queue client is connected before the clock starts
    print("ready", flush=True)
    sys.stdin.readline()  # "go"
    cpu0 = time.process_time()
    tracing = bool(os.environ.get("BENCH_TRACEMALLOC"))  # diagnosis: what a worker's memory holds
    if tracing:
        import tracemalloc

        tracemalloc.start(8)
    # The queue may stay empty for a while after "go" (the timer lists the subscriptions first, slow
    # on a loaded machine): a drain that ends before the parent says the timer has enqueued
    # everything ("enqueued") is followed by another.
    enqueued = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.readline(), enqueued.set()), daemon=True).start()
    deadline = time.monotonic() + float(os.environ.get("BENCH_FANOUT_TIMEOUT", "1800"))
    while True:
        timer_done = enqueued.is_set()
        drained = host.drain(timeout=max(0.0, deadline - time.monotonic()), idle=2.0)
        if timer_done or not drained:
            break
    if tracing:
        for stat in tracemalloc.take_snapshot().statistics("traceback")[:8]:
            print(f"{stat.size / 2**20:.1f} MiB in {stat.count} blocks:", file=sys.stderr)
            print("\n".join(stat.traceback.format()[-16:]), file=sys.stderr)
    print(
        json.dumps(
            {
                "drained": drained,
                "messages_done": host.done,
                "messages_failed": host.failed,
                "messages_poisoned": host.poisoned,
                "outcomes": dict(outcomes),
                "errors": len(errors),
                "first_errors": errors[:3],
                "last_outcome_epoch": last[0],
                "cpu_seconds": round(time.process_time() - cpu0, 2),
                # VmHWM, this process's own peak: getrusage's ru_maxrss starts at the parent's RSS
                # when it forked this worker (Linux keeps it across exec), ~460 MiB for a parent
                # that holds a 100,000-account dump.
                "peak_rss_mib": _own_peak_rss_mib(),
                "ru_maxrss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
                "storage_requests": dict(storage_requests),
            }
        ),
        flush=True,
    )
    return 0


def fanout_run(
    args: argparse.Namespace,
    workers: int,
    tenant: dict[str, Any],
    policy_text: str,
    generate: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One fanned-out sweep on a fresh stack. With `generate`, the emulator (in its own process)
    makes the tenant itself (`EmulatorProcess.generate`) and `tenant` only names its subscriptions."""

    from azure.functions.timer import TimerRequest

    from guardrail_workbench.stack import function_handlers

    policy = parse_policy_text(policy_text)
    now = dt.datetime.now(dt.UTC)
    extra_env = _guardrail_env(args)
    traffic = _Traffic()
    with tempfile.TemporaryDirectory(prefix="bench-fanout-") as out:
        policy_path = Path(out) / "policy.yaml"
        policy_path.write_text(policy_text, encoding="utf-8")
        with _stack(
            args.emulator_in_process, out_dir=out, policy_path=str(policy_path), extra_env=extra_env
        ) as stack:
            _prepare(stack, tenant, args.arm_latency, generate)
            emulator_memory_seeded = _emulator_memory(stack)
            needed = _writes_needed(stack, policy, now)  # (the emulator's dump: its RSS grows)
            emulator_memory_before = _emulator_memory(stack)
            accounts_total = int(generate["accounts"]) if generate is not None else None
            traffic.start(stack.emulator)
            azurite_pid = stack.azurite._process.pid if stack.azurite is not None else None
            azurite_cpu_before = _process_cpu_seconds(azurite_pid) if azurite_pid else None
            env = {**os.environ, **stack.env, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
            pool = WorkerProcesses(__file__, WORKER_FLAG, workers, env)
            try:
                assert pool.hello == ["ready"] * workers, pool.hello
                timer = function_handlers()["reconcile_sweep"]
                load_before = machine()["load_average"]
                emulator_cpu_before = _emulator_cpu(stack)
                started = time.time()
                pool.tell("go")
                with _MemorySampler(stack.emulator) as sampler:
                    timer(TimerRequest(past_due=False))  # enqueues one message per subscription
                    timer_seconds = time.time() - started
                    pool.tell("enqueued")
                    results = pool.results()
            finally:
                pool.kill()
            emulator_cpu_after = _emulator_cpu(stack)
            azurite_cpu_after = _process_cpu_seconds(azurite_pid) if azurite_pid else None
            load_after = machine()["load_average"]
            traffic.collect()
            stats = stack.emulator.stats() if isinstance(stack.emulator, EmulatorProcess) else {}
            left = _left_non_compliant(stack, policy, now)
            settings = functions.get_guardrail().settings
    finished = max((r["last_outcome_epoch"] for r in results), default=started)
    elapsed = max(0.0, finished - started)
    optimum = max(needed.values()) / THROTTLE if needed else 0.0
    throttled = sum(n for key, n in traffic.statuses.items() if key.endswith(" 429"))
    writes = sum(n for key, n in traffic.statuses.items() if key.startswith("PATCH 2"))
    storage = sum((collections.Counter(r["storage_requests"]) for r in results), collections.Counter())
    table = sum(n for key, n in storage.items() if key.startswith("table "))
    extra: dict[str, Any] = {}
    if generate is not None:
        extra = {
            "accounts": accounts_total,
            "arm_requests_by_kind": stats.get("kinds", {}),
            "emulator_memory_mib": {
                "after_seeding": emulator_memory_seeded,
                "before_sweep_after_the_harness_dump": emulator_memory_before,
                "rss_peak_during_sweep": sampler.peak,
            },
            "emulator_threads_peak_during_sweep": sampler.threads,
            "azurite_cpu_seconds": (
                round(azurite_cpu_after - azurite_cpu_before, 1)
                if azurite_cpu_after is not None and azurite_cpu_before is not None
                else None
            ),
            "timer_seconds": round(timer_seconds, 2),
            "load_average_after": load_after,
        }
    return {
        "workers": workers,
        **extra,
        "storage_requests": dict(storage),
        "table_requests": table,
        "table_requests_per_account": round(table / accounts_total, 3) if accounts_total else None,
        "table_requests_per_write": round(table / writes, 2) if writes else None,
        "sweep_seconds": round(elapsed, 2),
        "optimum_seconds": round(optimum, 2),
        "ratio": round(elapsed / optimum, 3) if optimum else None,
        "writes_needed": sum(needed.values()),
        "writes": writes,
        "throttled_429": throttled,
        "errors": sum(r["errors"] for r in results),
        "first_errors": [e for r in results for e in r["first_errors"]][:5],
        "messages_done": sum(r["messages_done"] for r in results),
        "messages_failed": sum(r["messages_failed"] for r in results),
        "messages_poisoned": sum(r["messages_poisoned"] for r in results),
        "outcomes": dict(sum((collections.Counter(r["outcomes"]) for r in results), collections.Counter())),
        "left_non_compliant": left,
        "peak_rss_mib_per_worker": [r["peak_rss_mib"] for r in results],
        "cpu_seconds_per_worker": [r["cpu_seconds"] for r in results],
        "all_drained": all(r["drained"] for r in results),
        "http_statuses": dict(traffic.statuses),
        "emulator_in_process": args.emulator_in_process,
        "emulator_process_cpu_seconds": (
            round(emulator_cpu_after - emulator_cpu_before, 1)
            if emulator_cpu_after is not None and emulator_cpu_before is not None
            else None
        ),
        "guardrail_sweep_concurrency": settings.sweep_concurrency,
        "guardrail_writes_per_second": settings.writes_per_second,
        "load_average_before": load_before,
    }


def fanout_main(args: argparse.Namespace) -> int:
    from guardrail_workbench.queuehost import host_queue_settings

    counts = [int(n) for n in args.fanout.split(",") if n.strip()]
    accounts = args.accounts or (1000 if args.quick else 10_000)
    tenant = generate_tenant(accounts, args.subscriptions, seed=args.seed)
    policy_text = policy_for(tenant)
    runs = [fanout_run(args, n, tenant, policy_text) for n in counts]
    parts = [
        f"N={r['workers']}: {r['sweep_seconds']:.1f} s, ratio {r['ratio']:.2f}, {r['writes']:,} writes, "
        f"{r['throttled_429']} x 429, {r['errors']} errors, {r['left_non_compliant']} left non-compliant, "
        f"peak RSS {max(r['peak_rss_mib_per_worker']):.0f} MiB/worker "
        f"(load {r['load_average_before'][0]:.2f})"
        for r in runs
    ]
    where = "emulator in process" if args.emulator_in_process else "emulator in its own process"
    line = (
        f"bench_sweep --fanout ({where}): {accounts:,} accounts in {args.subscriptions} subscriptions, "
        f"optimum {runs[0]['optimum_seconds']:.1f} s; " + "; ".join(parts)
    )
    write_result(
        "bench_sweep_fanout" + ("_in_process" if args.emulator_in_process else ""),
        {
            "quick": args.quick,
            "emulator_in_process": args.emulator_in_process,
            "accounts": accounts,
            "subscriptions": args.subscriptions,
            "seed": args.seed,
            "throttle_writes_per_second_per_subscription": THROTTLE,
            "arm_latency_seconds": args.arm_latency,
            "host_json_queues": host_queue_settings(),
            "runs": runs,
        },
        line,
    )
    return 0


# ---------------------------------------------------------------------------------------------------
# Tenant-scale mode: the fanned-out sweep over a generated tenant of 10,000 and 100,000 accounts
# ---------------------------------------------------------------------------------------------------
def tenant_scale_main(args: argparse.Namespace) -> int:
    """`--tenant-scale`: for each size (accounts/subscriptions), the emulator (in its own process)
    generates the tenant itself with `--open-fraction` of its accounts open, and one fanned-out sweep
    runs with `--workers` worker processes (fanout_run). The same N, seed and open fraction at each
    size, so what grows with the tenant shows: wall time, requests, RSS per worker, the emulator's."""
    from guardrail_workbench.queuehost import host_queue_settings

    if args.emulator_in_process:
        raise SystemExit("--tenant-scale runs the emulator in its own process (it generates the tenant)")
    sizes = [tuple(int(x) for x in size.split("/")) for size in args.sizes.split(",") if size.strip()]
    runs = []
    for accounts, subscriptions in sizes:
        names_only = generate_tenant(0, subscriptions, seed=args.seed)  # the subscriptions, for the policy
        generate = {
            "accounts": accounts,
            "subscriptions": subscriptions,
            "seed": args.seed,
            "open_fraction": args.open_fraction,
        }
        run = fanout_run(args, args.workers, names_only, policy_for(names_only), generate)
        run["subscriptions"] = subscriptions
        cpu = sum(run["cpu_seconds_per_worker"]) + (run["emulator_process_cpu_seconds"] or 0.0)
        cpu += run["azurite_cpu_seconds"] or 0.0
        run["cpu_seconds_all_processes"] = round(cpu, 1)
        cores = os.cpu_count() or 1
        run["cpu_share_of_machine"] = (
            round(cpu / (run["sweep_seconds"] * cores), 2) if run["sweep_seconds"] else None
        )
        run["accounts_per_second"] = (
            round(accounts / run["sweep_seconds"], 1) if run["sweep_seconds"] else None
        )
        runs.append(run)
        print(
            f"tenant-scale {accounts:,}/{subscriptions}: {run['sweep_seconds']:.1f} s",
            file=sys.stderr,
            flush=True,
        )
    parts = [
        f"{r['accounts']:,} accounts/{r['subscriptions']:,} subscriptions: {r['sweep_seconds']:.1f} s "
        f"(optimum {r['optimum_seconds']:.1f} s, {r['accounts_per_second']:,.0f} accounts/s, "
        f"CPU {r['cpu_share_of_machine']:.0%} of the machine), {r['writes']:,} writes, "
        f"{r['throttled_429']} x 429, {r['errors']} errors, {r['left_non_compliant']} left open, "
        f"{r['table_requests_per_account']} Table requests/account, peak RSS "
        f"{max(r['peak_rss_mib_per_worker']):.0f} MiB/worker, emulator RSS "
        f"{r['emulator_memory_mib']['after_seeding'].get('rss', 0):.0f} MiB seeded "
        f"(load {r['load_average_before'][0]:.2f})"
        for r in runs
    ]
    line = f"bench_sweep --tenant-scale (N={args.workers}, {args.open_fraction:.0%} open): " + "; ".join(
        parts
    )
    write_result(
        "bench_tenant_scale",
        {
            "workers": args.workers,
            "open_fraction": args.open_fraction,
            "seed": args.seed,
            "throttle_writes_per_second_per_subscription": THROTTLE,
            "arm_latency_seconds": args.arm_latency,
            "host_json_queues": host_queue_settings(),
            "runs": runs,
        },
        line,
    )
    return 0


def main() -> int:
    if WORKER_FLAG in sys.argv[1:]:
        return fanout_worker()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="1,000 accounts in 10 subscriptions")
    parser.add_argument("--accounts", type=int, default=None)
    parser.add_argument("--subscriptions", type=int, default=10)
    parser.add_argument("--concurrency", type=int, default=None, help="GUARDRAIL_SWEEP_CONCURRENCY")
    parser.add_argument("--writes-per-second", type=float, default=None, help="GUARDRAIL_WRITES_PER_SECOND")
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument(
        "--arm-latency",
        type=float,
        default=0.0,
        help="seconds the emulator waits before answering each request (closer to real ARM's latency)",
    )
    parser.add_argument("--no-azurite", action="store_true", help="no state store (diagnosis: its cost)")
    parser.add_argument(
        "--emulator-as-is", action="store_true", help="keep Nagle's algorithm on the emulator's sockets"
    )
    parser.add_argument(
        "--emulator-in-process",
        action="store_true",
        help="run the ARM emulator in this process (as before: it shares the GIL with the guardrail) "
        "instead of its own process",
    )
    parser.add_argument(
        "--fanout",
        default=None,
        metavar="N,N,...",
        help="fan-out mode: the queue-triggered function in N worker processes, for each N (e.g. 1,2,4)",
    )
    parser.add_argument(
        "--tenant-scale",
        action="store_true",
        help="tenant-scale mode: the fanned-out sweep over generated tenants of --sizes (minutes)",
    )
    parser.add_argument(
        "--sizes",
        default="10000/100,100000/1000",
        metavar="ACCOUNTS/SUBS,...",
        help="--tenant-scale: the tenant sizes, accounts/subscriptions (default 10000/100,100000/1000)",
    )
    parser.add_argument("--workers", type=int, default=2, help="--tenant-scale: worker processes (N)")
    parser.add_argument(
        "--open-fraction", type=float, default=0.1, help="--tenant-scale: the share of accounts open"
    )
    args = parser.parse_args()
    if args.tenant_scale:
        quiet_logs()
        emulator_nodelay(not args.emulator_as_is)
        return tenant_scale_main(args)
    if args.fanout:
        quiet_logs()
        emulator_nodelay(not args.emulator_as_is)
        return fanout_main(args)
    quiet_logs()
    pool_full = _PoolFull()
    logging.getLogger("urllib3.connectionpool").addFilter(pool_full)
    emulator_nodelay(not args.emulator_as_is)
    accounts = args.accounts or (1000 if args.quick else 10_000)
    tenant = generate_tenant(accounts, args.subscriptions, seed=args.seed)
    policy_text = policy_for(tenant)
    policy = parse_policy_text(policy_text)
    now = dt.datetime.now(dt.UTC)

    extra_env = _guardrail_env(args)

    traffic = _Traffic()
    first_check: list[float] = []

    meter = _CpuByThread()
    if args.emulator_in_process:
        meter.instrument_emulator()

    def observe(outcome: Outcome) -> None:
        meter.worker_sample()
        with traffic.lock:
            if not first_check or outcome.started < first_check[0]:
                first_check[:] = [outcome.started]

    with tempfile.TemporaryDirectory(prefix="bench-sweep-") as out:
        policy_path = Path(out) / "policy.yaml"
        policy_path.write_text(policy_text, encoding="utf-8")
        load_before = machine()["load_average"]
        with _stack(
            args.emulator_in_process,
            out_dir=out,
            policy_path=str(policy_path),
            azurite=not args.no_azurite,
            extra_env=extra_env,
        ) as stack:
            _prepare(stack, tenant, args.arm_latency)
            needed = _writes_needed(stack, policy, now)
            guardrail = functions.get_guardrail()
            settings = guardrail.settings
            guardrail.observers.append(observe)
            traffic.start(stack.emulator)
            azurite_pid = stack.azurite._process.pid if stack.azurite is not None else None
            azurite_port = stack.azurite.port if stack.azurite is not None else None
            emulator_port = stack.emulator.port
            azurite_cpu_before = _process_cpu_seconds(azurite_pid) if azurite_pid else None
            emulator_cpu_before = _emulator_cpu(stack)
            cpu_before = time.process_time()
            started_epoch = time.time()
            started = time.monotonic()
            report = guardrail.sweep()
            elapsed = time.monotonic() - started
            cpu = time.process_time() - cpu_before
            threads_cpu = meter.snapshot()
            azurite_cpu_after = _process_cpu_seconds(azurite_pid) if azurite_pid else None
            emulator_cpu_after = _emulator_cpu(stack)
            traffic.collect()
            left = _left_non_compliant(stack, policy, now)
    azurite_cpu = (
        azurite_cpu_after - azurite_cpu_before
        if azurite_cpu_after is not None and azurite_cpu_before is not None
        else None
    )
    optimum = max(needed.values()) / THROTTLE if needed else 0.0
    ratio = elapsed / optimum if optimum else float("nan")
    listing = (first_check[0] - started) if first_check else elapsed
    # How many subscriptions were being written at once: each subscription's write window.
    windows = {
        sub: (round(first - started_epoch, 2), round(last - started_epoch, 2), count)
        for sub, (first, last, count) in traffic.windows.items()
    }
    emulator_cpu = (
        emulator_cpu_after - emulator_cpu_before
        if emulator_cpu_after is not None and emulator_cpu_before is not None
        else None
    )
    if not args.emulator_in_process:
        threads_cpu.pop("emulator_connections", None)  # not in this process: see emulator_process_cpu_seconds
    busy_time = sum(end - start for start, end, _ in windows.values())
    write_span = (
        max(end for _, end, _ in windows.values()) - min(start for start, _, _ in windows.values())
        if windows
        else 0.0
    )
    overlap = busy_time / write_span if write_span else 0.0
    throttled = sum(n for key, n in traffic.statuses.items() if key.endswith(" 429"))
    remediated = report.count("remediated")
    where = "emulator in process" if args.emulator_in_process else "emulator in its own process"
    line = (
        f"bench_sweep ({where}): {accounts:,} accounts in {args.subscriptions} subscriptions, "
        f"{sum(needed.values()):,} writes: {elapsed:.1f} s against a throttle-limited optimum of "
        f"{optimum:.1f} s (ratio {ratio:.2f}; {remediated:,} remediated, {len(report.errors)} errors, "
        f"{throttled} x 429, {left} left non-compliant; concurrency {settings.sweep_concurrency}, "
        f"pacing {settings.writes_per_second:g}/s/subscription; load {load_before[0]:.2f})"
    )
    write_result(
        "bench_sweep" + ("_in_process" if args.emulator_in_process else ""),
        {
            "quick": args.quick,
            "emulator_in_process": args.emulator_in_process,
            "emulator_process_cpu_seconds": round(emulator_cpu, 1) if emulator_cpu is not None else None,
            "accounts": accounts,
            "subscriptions": args.subscriptions,
            "seed": args.seed,
            "throttle_writes_per_second_per_subscription": THROTTLE,
            "guardrail_writes_per_second": settings.writes_per_second,
            "guardrail_sweep_concurrency": settings.sweep_concurrency,
            "emulator_tcp_nodelay": not args.emulator_as_is,
            "azurite": not args.no_azurite,
            "arm_latency_seconds": args.arm_latency,
            "writes_needed_per_subscription": dict(needed),
            "writes_needed": sum(needed.values()),
            "optimum_seconds": round(optimum, 2),
            "sweep_seconds": round(elapsed, 2),
            "ratio": round(ratio, 3),
            "list_and_evaluate_seconds": round(listing, 2),
            "listed": report.listed,
            "compliant_at_listing": report.compliant,
            "outcomes": dict(collections.Counter(o.action for o in report.outcomes)),
            "errors": len(report.errors),
            "first_errors": report.errors[:5],
            "left_non_compliant": left,
            "http_statuses": dict(traffic.statuses),
            "throttled_429": throttled,
            "write_windows_seconds": windows,
            "subscriptions_written_at_once": round(overlap, 2),
            "process_cpu_seconds": round(cpu, 1),
            "process_cpu_share_of_one_core": round(cpu / elapsed, 2) if elapsed else None,
            "cpu_seconds_by_thread": threads_cpu,
            "urllib3_pool_full_discards": pool_full.count,
            "urllib3_pool_full_discards_by_server": {
                ("azurite" if port == azurite_port else "emulator" if port == emulator_port else str(port)): n
                for port, n in pool_full.by_port.items()
            },
            "azurite_cpu_seconds": round(azurite_cpu, 1) if azurite_cpu is not None else None,
            "load_average_before": load_before,
        },
        line,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
