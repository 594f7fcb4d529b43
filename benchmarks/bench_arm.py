"""ARM round trips through the real SDK: GET + PATCH pairs per second against the local emulator.

The real `CognitiveServicesManagementClient` talks HTTPS (TLS with the emulator's local CA) to the
emulator on 127.0.0.1, in its own process (benchmarks/emulator_process.py: as in Azure, ARM's
work is not on the client's CPU), or in this process with `--emulator-in-process` (its TLS and ARM
logic then share this process's GIL with the client, as before). One round trip = `accounts.get`
then `accounts.begin_update` (a tags-only PATCH with If-Match, waited to completion), the two calls
the guardrail's gateway makes for every write. Measured sequentially (one client) and with a few
threads (one client each, each on its own account), no write throttle. Median of several runs.

    .venv/bin/python benchmarks/bench_arm.py [--quick] [--threads 4] [--runs 3] [--emulator-in-process]

The "as shipped, with Nagle" figure switches Nagle's algorithm back on in the server class, so it is
always measured with the emulator in this process.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from typing import Any

from common import emulator_nodelay, machine, median, quiet_logs, write_result
from emulator_process import EmulatorProcess

from guardrail.credentials import StaticTokenCredential
from guardrail_workbench.emulator import Emulator, make_token
from guardrail_workbench.stack import GUARDRAIL_CLAIMS

SUB = "0a0a0a0a-1111-4111-8111-00000000be01"
RG = "rg-bench"


def _raw(pipeline_response: Any, _deserialized: Any, _headers: Any) -> Any:
    return pipeline_response.http_response.json()


def _client(emulator: Emulator | EmulatorProcess) -> Any:
    from azure.mgmt.cognitiveservices import CognitiveServicesManagementClient

    return CognitiveServicesManagementClient(
        StaticTokenCredential(make_token(GUARDRAIL_CLAIMS)),
        SUB,
        base_url=emulator.endpoint,
        connection_verify=emulator.ca_bundle,
        polling_interval=0.05,
    )


def _round_trips(client: Any, name: str, count: int) -> None:
    for i in range(count):
        account = client.accounts.get(RG, name, cls=_raw)
        body = json.dumps({"tags": {"bench": str(i)}}).encode()
        client.accounts.begin_update(
            RG,
            name,
            body,
            content_type="application/json",
            headers={"If-Match": account["etag"]},
            polling_interval=0.05,
            cls=_raw,
        ).result()


def _run(clients: list[Any], per_thread: int) -> float:
    """Round trips per second with one thread per client, each on its own account."""
    errors: list[BaseException] = []

    def work(index: int) -> None:
        try:
            _round_trips(clients[index], f"bench-{index}", per_thread)
        except BaseException as error:  # surfaced below
            errors.append(error)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(clients))]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    if errors:
        raise errors[0]
    return len(clients) * per_thread / elapsed


def measure(
    threads: int, count: int, runs: int, parallel_too: bool = True, in_process: bool = True
) -> tuple[list[float], list[float], int]:
    """(sequential runs, threaded runs, HTTP requests served), each run in round trips per second."""
    accounts = [
        {
            "name": f"bench-{i}",
            "kind": "AIServices",
            "location": "eastus",
            "sku": {"name": "S0"},
            "properties": {"customSubDomainName": f"bench-{i}", "publicNetworkAccess": "Enabled"},
        }
        for i in range(threads)
    ]
    tenant = {
        "subscriptions": [
            {
                "subscriptionId": SUB,
                "resourceGroups": [{"name": RG, "location": "eastus", "accounts": accounts}],
            }
        ]
    }
    with Emulator() if in_process else EmulatorProcess() as emulator:
        emulator.seed(tenant)
        emulator.app.keep_request_log = False
        clients = [_client(emulator) for _ in range(threads)]
        try:
            _run(clients[:1], 5)  # warm-up: connections, TLS sessions, imports
            _run(clients, 5)
            sequential = [_run(clients[:1], count) for _ in range(runs)]
            parallel = [_run(clients, max(1, count // threads)) for _ in range(runs)] if parallel_too else []
        finally:
            for client in clients:
                client.close()
        return sequential, parallel, emulator.app.request_count


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer round trips per run")
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--emulator-in-process",
        action="store_true",
        help="run the ARM emulator in this process (it shares the GIL with the client) instead of its own",
    )
    args = parser.parse_args()
    quiet_logs()
    count = 100 if args.quick else 300
    threads = max(1, args.threads)
    load_before = machine()["load_average"]
    # As shipped: Nagle's algorithm on the emulator's sockets (about 40 ms idle per request).
    emulator_nodelay(False)
    as_shipped, _, _ = measure(1, 50, args.runs, parallel_too=False)
    # The figures: TCP_NODELAY on, so the numbers show the SDK, TLS and the emulator, not delayed ACKs.
    emulator_nodelay(True)
    sequential, parallel, requests = measure(threads, count, args.runs, in_process=args.emulator_in_process)
    seq, par = median(sequential), median(parallel)
    where = "in-process emulator" if args.emulator_in_process else "emulator in its own process"
    line = (
        f"bench_arm{' --emulator-in-process' if args.emulator_in_process else ''}: {seq:.0f} GET+PATCH "
        f"round trips/s sequential, {par:.0f}/s with {threads} threads "
        f"(real SDK over HTTPS to the {where}, TCP_NODELAY, median of {args.runs} runs of "
        f"{count}; in-process emulator as shipped, with Nagle: "
        f"{min(as_shipped):.0f}-{max(as_shipped):.0f}/s sequential; load {load_before[0]:.2f})"
    )
    write_result(
        "bench_arm" + ("_in_process" if args.emulator_in_process else ""),
        {
            "quick": args.quick,
            "emulator_in_process": args.emulator_in_process,
            "round_trips_per_run": count,
            "threads": threads,
            "runs": args.runs,
            "emulator_tcp_nodelay": True,
            "sequential_round_trips_per_second": round(seq, 1),
            "threaded_round_trips_per_second": round(par, 1),
            "sequential_runs": [round(x, 1) for x in sequential],
            "threaded_runs": [round(x, 1) for x in parallel],
            "as_shipped_nagle_sequential_runs": [round(x, 1) for x in as_shipped],
            "http_requests_served": requests,
            "load_average_before": load_before,
        },
        line,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
