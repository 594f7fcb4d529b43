"""Cold start: the import time and peak memory of the function app in a fresh interpreter.

Each run is a new `python` process (the .venv's, in the repository root, as the Functions host loads
the app) that times, with perf_counter:
  1. `import function_app`: what the host pays to index the app (azure.functions only; the
     guardrail is imported lazily on the first invocation);
  2. the first invocation's imports: `guardrail.functions`, `guardrail.service`, `guardrail.gateway`,
     `guardrail.state`, `guardrail.sinks`, `yaml`, `azure.mgmt.cognitiveservices`, `requests`,
     `azure.data.tables` (what `get_guardrail()` and the first ARM and Table calls load; common's
     FIRST_INVOCATION; bench_peer times the first event itself, end to end);
  3. with `--telemetry`: `guardrail.telemetry.setup` with an APPLICATIONINSIGHTS_CONNECTION_STRING
     (what `get_guardrail()` then does: the OpenTelemetry SDK and the Azure Monitor metric exporter;
     the connection string points at 127.0.0.1:9; statsbeat, the SDK's configuration service and SDK
     stats are off, so nothing leaves loopback);
and reads its peak RSS (resource.getrusage ru_maxrss) after each step. Medians over the runs. "Cold"
means a fresh interpreter; the OS page cache and the .pyc files are warm (one untimed run first).
One extra run under `-X importtime` names the heaviest top-level imports.

    .venv/bin/python benchmarks/bench_coldstart.py [--quick] [--runs N] [--telemetry]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from typing import Any

from common import (
    FIRST_INVOCATION,
    LOOPBACK_ONLY,
    ROOT,
    TELEMETRY_CONNECTION,
    cold_start_env,
    machine,
    median,
    write_result,
)

CHILD = f"""
import json, os, resource, sys, time, importlib
telemetry_on = sys.argv[1:] == ["telemetry"]
for name in {LOOPBACK_ONLY!r}:
    os.environ[name] = "true"  # the exporter's own calls to Microsoft
t0 = time.perf_counter()
rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
import function_app
t1 = time.perf_counter()
rss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
for name in {FIRST_INVOCATION!r}:
    importlib.import_module(name)
t2 = time.perf_counter()
rss2 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
if telemetry_on:
    from guardrail import telemetry
    from guardrail.settings import TelemetrySettings
    chosen = telemetry.setup(TelemetrySettings(connection_string={TELEMETRY_CONNECTION!r})).kind
    assert chosen == "azure-monitor", chosen
t3 = time.perf_counter()
rss3 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({{"app": t1 - t0, "first": t2 - t1, "telemetry": t3 - t2, "rss0": rss0, "rss1": rss1,
                  "rss2": rss2, "rss3": rss3}}), flush=True)
os._exit(0)  # no exit-time export attempt
"""


def _child(extra: list[str] | None = None, telemetry: bool = False) -> tuple[dict[str, Any], float, str]:
    """(the child's figures, the parent's wall clock for the whole process, the child's stderr)."""
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, *(extra or []), "-c", CHILD, *(["telemetry"] if telemetry else [])],
        cwd=ROOT,
        env=cold_start_env(),
        capture_output=True,
        text=True,
        check=True,
    )
    wall = time.perf_counter() - started
    return json.loads(done.stdout.strip().splitlines()[-1]), wall, done.stderr


def _baseline() -> tuple[float, int]:
    """A bare interpreter: (wall seconds for `python -c pass`-like start and exit, its peak RSS KiB)."""
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", "import resource; print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return time.perf_counter() - started, int(done.stdout.strip())


def _heaviest(importtime: str, top: int = 8) -> list[tuple[str, float]]:
    """Top-level imports by cumulative microseconds, from `-X importtime` output."""
    found: list[tuple[str, float]] = []
    for line in importtime.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        parts = line[len("import time:") :].split("|")
        if len(parts) != 3 or not parts[1].strip().isdigit():
            continue
        name = parts[2]
        if name.startswith("  "):  # nested: counted in its parent's cumulative time
            continue
        found.append((name.strip(), int(parts[1]) / 1000.0))
    return sorted(found, key=lambda item: item[1], reverse=True)[:top]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="3 runs instead of 9")
    parser.add_argument("--runs", type=int, default=None)
    parser.add_argument(
        "--telemetry",
        action="store_true",
        help="also time guardrail.telemetry.setup (Azure Monitor exporter)",
    )
    args = parser.parse_args()
    runs = args.runs or (3 if args.quick else 9)
    load_before = machine()["load_average"]
    _child(telemetry=args.telemetry)  # warm the page cache and the .pyc files
    samples = [_child(telemetry=args.telemetry) for _ in range(runs)]
    baselines = [_baseline() for _ in range(runs)]
    _, _, importtime = _child(["-X", "importtime"], telemetry=args.telemetry)
    app_ms = median([s["app"] * 1000 for s, _, _ in samples])
    first_ms = median([s["first"] * 1000 for s, _, _ in samples])
    process_ms = median([wall * 1000 for _, wall, _ in samples])
    bare_ms = median([wall * 1000 for wall, _ in baselines])
    rss_bare = median([float(rss) for _, rss in baselines]) / 1024
    rss_app = median([float(s["rss1"]) for s, _, _ in samples]) / 1024
    rss_first = median([float(s["rss2"]) for s, _, _ in samples]) / 1024
    telemetry_ms = median([s["telemetry"] * 1000 for s, _, _ in samples])
    rss_telemetry = median([float(s["rss3"]) for s, _, _ in samples]) / 1024
    heaviest = _heaviest(importtime)
    line = (
        f"bench_coldstart: import function_app {app_ms:.0f} ms, peak RSS {rss_app:.0f} MiB; "
        f"+ first invocation's imports {first_ms:.0f} ms, peak RSS {rss_first:.0f} MiB "
        + (
            f"+ telemetry setup {telemetry_ms:.0f} ms, peak RSS {rss_telemetry:.0f} MiB "
            if args.telemetry
            else ""
        )
        + f"(bare interpreter {bare_ms:.0f} ms, {rss_bare:.0f} MiB; median of {runs} fresh interpreters; "
        f"load {load_before[0]:.2f})"
    )
    write_result(
        "bench_coldstart_telemetry" if args.telemetry else "bench_coldstart",
        {
            "quick": args.quick,
            "telemetry": args.telemetry,
            "telemetry_setup_ms": round(telemetry_ms, 1) if args.telemetry else None,
            "peak_rss_mib_after_telemetry_setup": round(rss_telemetry, 1) if args.telemetry else None,
            "runs": runs,
            "import_function_app_ms": round(app_ms, 1),
            "first_invocation_imports_ms": round(first_ms, 1),
            "first_invocation_modules": list(FIRST_INVOCATION),
            "process_wall_ms": round(process_ms, 1),
            "bare_interpreter_wall_ms": round(bare_ms, 1),
            "peak_rss_mib_bare_interpreter": round(rss_bare, 1),
            "peak_rss_mib_after_function_app": round(rss_app, 1),
            "peak_rss_mib_after_first_invocation_imports": round(rss_first, 1),
            "runs_import_function_app_ms": [round(s["app"] * 1000, 1) for s, _, _ in samples],
            "runs_first_invocation_imports_ms": [round(s["first"] * 1000, 1) for s, _, _ in samples],
            "heaviest_top_level_imports_ms": {name: round(ms, 1) for name, ms in heaviest},
            "load_average_before": load_before,
        },
        line,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
