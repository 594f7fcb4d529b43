"""A local stand-in for Azure Resource Manager (Microsoft.CognitiveServices/accounts), over HTTPS.

Use `Emulator` from tests and demos; `main(argv)` is the `guardrail emulator` command.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from collections.abc import Sequence
from typing import Any

from .arm import ArmApp, ArmError, Request, Response, account_id, parse_account_id
from .events import Subscriber, to_cloudevent
from .faults import Fault, FaultPlan
from .identity import make_token
from .server import Emulator, load_tenant

__all__ = [
    "ArmApp",
    "ArmError",
    "Emulator",
    "Fault",
    "FaultPlan",
    "Request",
    "Response",
    "Subscriber",
    "account_id",
    "load_tenant",
    "main",
    "make_token",
    "parse_account_id",
    "to_cloudevent",
]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="guardrail emulator", description="Run the local ARM emulator (HTTPS on 127.0.0.1)."
    )
    parser.add_argument("--port", type=int, default=8443, help="port on 127.0.0.1 (0 = any free port)")
    parser.add_argument("--seed", help="tenant document to load (JSON or YAML)")
    parser.add_argument("--page-size", type=int, default=100, help="accounts per list page (nextLink paging)")
    parser.add_argument(
        "--async-writes", action="store_true", help="answer PATCH with 202 + azure-AsyncOperation"
    )
    parser.add_argument(
        "--accepted-writes", action="store_true", help="answer PATCH with 200 and provisioningState Accepted"
    )
    parser.add_argument("--write-rate", type=float, default=None, help="writes per second per subscription")
    parser.add_argument(
        "--ip-refusal",
        choices=["private", "non-public"],
        default="private",
        help="which IP rules to refuse: ARM's documented private ranges, or every non-public block",
    )
    parser.add_argument(
        "--deliver",
        action="append",
        default=[],
        metavar="URL",
        help="POST events to this loopback URL (repeatable), e.g. "
        "http://localhost:7071/runtime/webhooks/EventGrid?functionName=on_resource_write",
    )
    parser.add_argument("--schema", choices=["eventgrid", "cloudevents"], default="eventgrid")
    parser.add_argument("--dump-on-exit", help="write the tenant to this JSON file when stopped")
    parser.add_argument("--verbose", "-v", action="store_true", help="log every request and its status")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """`guardrail emulator [--port N] [--seed FILE] [--page-size N] [--async-writes] ...` (until Ctrl-C)."""
    args = _parser().parse_args(list(argv) if argv is not None else None)
    if args.verbose:
        logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(message)s", stream=sys.stderr)
        logging.getLogger("guardrail_workbench.emulator").setLevel(logging.INFO)
    emulator = Emulator(
        port=args.port,
        page_size=args.page_size,
        async_writes=args.async_writes,
        accepted_writes=args.accepted_writes,
        write_rate=args.write_rate,
        ip_refusal=args.ip_refusal,
    )
    if args.seed:
        emulator.seed_file(args.seed)
    for url in args.deliver:
        emulator.subscribe_http(url, schema=args.schema)
    stop = threading.Event()

    def _stop(*_: Any) -> None:
        stop.set()

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    with emulator:
        info = {
            "endpoint": emulator.endpoint,
            "ca_bundle": emulator.ca_bundle,
            "subscriptions": [s["subscriptionId"] for s in emulator.dump()["subscriptions"]],
            "accounts": len(emulator.accounts()),
            "env": {
                "ARM_ENDPOINT": emulator.endpoint,
                "ARM_CA_BUNDLE": emulator.ca_bundle,
                "ARM_CREDENTIAL": "static",
            },
        }
        print(json.dumps(info, indent=2), flush=True)
        while not stop.wait(0.5):
            pass
        emulator.wait_for_events(timeout=5)
        if args.dump_on_exit:
            with open(args.dump_on_exit, "w", encoding="utf-8") as handle:
                json.dump(emulator.dump(), handle, indent=2)
    print("emulator stopped", file=sys.stderr)
    return 0
