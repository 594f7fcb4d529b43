"""One fresh interpreter's first invocation with the telemetry set up one way, for an A/B of
interleaved whole-process pairs (see docs/benchmarks.md, "Telemetry on the cold-start path"):

    .venv/bin/python benchmarks/telemetry_child.py off|exporter|distro

off: the first invocation's imports (as bench_coldstart.py) and nothing else; exporter: plus
`guardrail.telemetry.setup` with a connection string (the OpenTelemetry SDK and the Azure Monitor
metric exporter, what the guardrail does); distro: plus `configure_azure_monitor()` (the
azure-monitor-opentelemetry distro, with its default instrumentations). The connection string
points at 127.0.0.1:9 and statsbeat, the SDK's configuration service, SDK stats and the Azure VM
resource detector are switched off, so nothing leaves loopback; the process ends with os._exit, so
no export is attempted.
"""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path

from common import FIRST_INVOCATION, LOOPBACK_ONLY, TELEMETRY_CONNECTION


def main() -> None:
    mode = sys.argv[1] if len(sys.argv) > 1 else "off"
    for name in LOOPBACK_ONLY:
        os.environ[name] = "true"
    os.environ["OTEL_EXPERIMENTAL_RESOURCE_DETECTORS"] = "otel"  # no IMDS call off loopback
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    importlib.import_module("function_app")
    for name in FIRST_INVOCATION:
        importlib.import_module(name)
    if mode == "exporter":
        from guardrail import telemetry
        from guardrail.settings import TelemetrySettings

        chosen = telemetry.setup(TelemetrySettings(connection_string=TELEMETRY_CONNECTION)).kind
        assert chosen == "azure-monitor", chosen
    elif mode == "distro":
        from azure.monitor.opentelemetry import configure_azure_monitor

        configure_azure_monitor(connection_string=TELEMETRY_CONNECTION, enable_live_metrics=False)
    elif mode != "off":
        raise SystemExit(f"unknown mode {mode!r}")
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
