"""ARM round trips through the real SDK: GET + PATCH pairs per second against the local emulator.

The real `CognitiveServicesManagementClient` talks HTTPS (TLS with the emulator's local CA) to the
emulator on 127.0.0.1, in this process. One round trip = `accounts.get` then `accounts.begin_update`
(a tags-only PATCH with If-Match, waited to completion), the two calls the guardrail's gateway makes
for every write. Measured sequentially (one client) and with a few threads (one client each, each on
its own account), no write throttle. Median of several runs.

    .venv/bin/python benchmarks/bench_arm.py [--quick] [--threads 4] [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from typing import Any

from common import emulator_nodelay, machine, median, quiet_logs, write_result

from guardrail.credentials import StaticTokenCredential
from guardrail_workbench.emulator import Emulator, make_token
from guardrail_workbench.stack import GUARDRAIL_CLAIMS

SUB = "0a0a0a0a-1111-4111-8111-00000000be01"
RG = "rg-bench"


def _raw(pipeline_response: Any, _deserialized: Any, _headers: Any) -> Any:
    return pipeline_response.http_response.json()


def _client(emulator: Emulator) -> Any:
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
    threads: int, count: int, runs: int, parallel_too: bool = True
) -> tuple[list[float], list[float], int]:
    """(sequential runs, threaded runs, HTTP requests served), each run in round trips per second."""
    with Emulator() as emulator:
        emulator.app.keep_request_log = False
        for i in range(threads):
            emulator.put_account(
                {
                    "kind": "AIServices",
                    "location": "eastus",
                    "sku": {"name": "S0"},
                    "properties": {"customSubDomainName": f"bench-{i}", "publicNetworkAccess": "Enabled"},
                },
                f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.CognitiveServices/accounts/bench-{i}",
            )
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
    sequential, parallel, requests = measure(threads, count, args.runs)
    seq, par = median(sequential), median(parallel)
    line = (
        f"bench_arm: {seq:.0f} GET+PATCH round trips/s sequential, {par:.0f}/s with {threads} threads "
        f"(real SDK over HTTPS to the in-process emulator, TCP_NODELAY, median of {args.runs} runs of "
        f"{count}; emulator as shipped, with Nagle: "
        f"{min(as_shipped):.0f}-{max(as_shipped):.0f}/s sequential; load {load_before[0]:.2f})"
    )
    write_result(
        "bench_arm",
        {
            "quick": args.quick,
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
