"""Shared helpers for the benchmark scripts: machine facts, percentiles, the JSON result files.

Each benchmark prints one result line starting with its name and writes
`out/benchmarks/<name>.json` (figures, conditions and the machine they ran on).
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
OUT_DIR = ROOT / "out" / "benchmarks"

#: What a new worker's first invocation imports beyond `import function_app` (bench_coldstart,
#: telemetry_child): the guardrail, yaml (the policy file), the ARM SDK, requests (azure-core's
#: transport, loaded when the first client is built) and the Tables SDK.
FIRST_INVOCATION = (
    "guardrail.functions",
    "guardrail.service",
    "guardrail.gateway",
    "guardrail.state",
    "guardrail.sinks",
    "yaml",
    "azure.mgmt.cognitiveservices",
    "requests",
    "azure.data.tables",
)
#: An Application Insights connection string whose ingestion endpoint is a closed loopback port.
TELEMETRY_CONNECTION = (
    "InstrumentationKey=00000000-0000-0000-0000-000000000000;IngestionEndpoint=https://127.0.0.1:9/"
)
#: The exporter otherwise contacts Microsoft's endpoints on its own: statsbeat, the SDK's
#: configuration service ("control plane", settings.sdk.monitor.azure.com) and SDK stats.
LOOPBACK_ONLY = (
    "APPLICATIONINSIGHTS_STATSBEAT_DISABLED_ALL",
    "APPLICATIONINSIGHTS_CONTROLPLANE_DISABLED",
    "APPLICATIONINSIGHTS_SDKSTATS_DISABLED",
)


def cold_start_env(env: dict[str, str] | None = None) -> dict[str, str]:
    """`env` (os.environ by default) for a timed fresh interpreter, without PYTHONDONTWRITEBYTECODE:
    with it set, the untimed warm-up run writes no .pyc, and in a checkout that has none every timed
    run compiles the guardrail from source (about +190 ms on the first event on this machine), a
    cost no deployed worker pays twice."""
    chosen = dict(os.environ if env is None else env)
    chosen.pop("PYTHONDONTWRITEBYTECODE", None)
    return chosen


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def load_average() -> tuple[float, float, float]:
    try:
        return os.getloadavg()
    except OSError:
        return (0.0, 0.0, 0.0)


def cpu_seconds(stat_path: str) -> float | None:
    """utime + stime from a /proc stat file (`/proc/PID/stat` for a process, or
    `/proc/self/task/TID/stat` for one thread); None when it cannot be read."""
    try:
        fields = Path(stat_path).read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def machine() -> dict[str, Any]:
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_average": [round(x, 2) for x in load_average()],
    }


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) by linear interpolation between closest ranks."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    position = (len(ordered) - 1) * q / 100.0
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def write_result(name: str, result: dict[str, Any], line: str) -> Path:
    """Print the one result line and write the JSON file (with the machine facts and the load)."""
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    document = {
        "benchmark": name,
        "summary": line,
        "finished_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "machine": machine(),
        **result,
    }
    path = OUT_DIR / f"{name}.json"
    path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    print(line, flush=True)
    return path


def quiet_logs() -> None:
    """The guardrail logs every outcome at INFO; a benchmark only wants warnings and worse."""
    import logging

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    for name in ("guardrail", "azure", "urllib3"):
        logging.getLogger(name).setLevel(logging.WARNING)


def emulator_nodelay(enabled: bool = True) -> None:
    """Turn Nagle's algorithm off (TCP_NODELAY) on the sockets of the local HTTPS servers (the ARM
    emulator and the Teams/email/Monitor receivers).

    As shipped, those servers (http.server) write the headers and the body of a response as two TLS
    records; with Nagle on, the second waits for the client's delayed ACK, about 40 ms on Linux
    loopback, so every request costs about 40 ms of idle time that real ARM does not have.
    `StreamRequestHandler.disable_nagle_algorithm` is the standard library's own switch for this.
    """
    from guardrail_workbench import receivers
    from guardrail_workbench.emulator import server

    server._Handler.disable_nagle_algorithm = enabled
    receivers._Handler.disable_nagle_algorithm = enabled


class WorkerProcesses:
    """`count` worker processes of a benchmark (`python SCRIPT FLAG`), spoken to by lines: each
    prints one line when it is ready (`hello`), reads words on stdin (`tell`) and prints its result
    as the last line of its output, a JSON object (`results`)."""

    def __init__(self, script: str | Path, flag: str, count: int, env: dict[str, str]) -> None:
        self.procs = [
            subprocess.Popen(
                [sys.executable, str(Path(script).resolve()), flag],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                env=env,
                text=True,
            )
            for _ in range(count)
        ]
        self.hello: list[str] = []
        for proc in self.procs:
            assert proc.stdout is not None
            self.hello.append(proc.stdout.readline().strip())

    def tell(self, word: str) -> None:
        for proc in self.procs:
            assert proc.stdin is not None
            proc.stdin.write(word + "\n")
            proc.stdin.flush()

    def results(self) -> list[dict[str, Any]]:
        """Each worker's last line, once it has ended."""
        results = []
        for proc in self.procs:
            assert proc.stdout is not None
            results.append(json.loads(proc.stdout.read().strip().splitlines()[-1]))
            proc.wait()
        return results

    def kill(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
