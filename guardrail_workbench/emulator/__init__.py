"""A local stand-in for Azure Resource Manager (Microsoft.CognitiveServices/accounts), over HTTPS.

Use `Emulator` from tests and demos; `main(argv)` is the `guardrail emulator` command.
"""

from __future__ import annotations

import argparse
import json
import logging
import shlex
import signal
import sys
import threading
from collections.abc import Mapping, Sequence
from typing import Any

from .arm import ArmApp, ArmError, Request, Response, account_id, parse_account_id
from .events import Subscriber, to_cloudevent
from .faults import Fault, FaultPlan
from .identity import GUARDRAIL_CLAIMS, make_token
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
    "local_env",
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
        "--async-writes",
        action="store_true",
        help="run writes as ARM operations: PATCH 202 + azure-AsyncOperation, a create 201 Creating",
    )
    parser.add_argument(
        "--accepted-writes", action="store_true", help="answer PATCH with 200 and provisioningState Accepted"
    )
    parser.add_argument(
        "--write-rate", type=float, default=None, help="writes per second per subscription and caller"
    )
    parser.add_argument(
        "--ip-refusal",
        choices=["private", "non-public"],
        default="private",
        help="which IP rules to refuse: ARM's documented private ranges, or every non-public block",
    )
    parser.add_argument(
        "--network-acls-patch",
        choices=["replace", "merge"],
        default="replace",
        help="a PATCH with a partial networkAcls replaces the object (default) or merges its keys: "
        "ARM does not document which",
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
    parser.add_argument(
        "--env",
        action="store_true",
        help="the whole local tenant: also a managed-identity token endpoint and Azurite; prints "
        "`export` lines for guardrail check/sweep, az and DefaultAzureCredential",
    )
    parser.add_argument("--no-azurite", action="store_true", help="with --env: do not start Azurite")
    parser.add_argument(
        "--caller",
        metavar="JSON",
        help="with --env: the token endpoint's caller claims (default: the guardrail's identity)",
    )
    return parser


TENANT_KEYS = ("tenantId", "subscriptions", "accounts", "diagnosticSettings")


def _seed_problem(path: str) -> tuple[str | None, dict[str, Any] | None]:
    """(one-line problem, None) when `path` is not a readable tenant document, else (None, tenant)."""
    try:
        tenant = load_tenant(path)
    except FileNotFoundError:
        return f"--seed {path}: no such file (samples/tenant.json is an example tenant)", None
    except (OSError, UnicodeDecodeError) as error:
        return f"--seed {path}: cannot read the file: {getattr(error, 'strerror', None) or error}", None
    except ValueError as error:  # json.JSONDecodeError, yaml.YAMLError is not one: below
        return f"--seed {path}: not a tenant document: {str(error).splitlines()[0]}", None
    except Exception as error:
        if type(error).__module__.startswith("yaml"):
            return f"--seed {path}: not YAML: {str(error).splitlines()[0]}", None
        raise
    if not tenant.get("subscriptions") and not tenant.get("accounts"):
        keys = ", ".join(list(tenant)[:6]) or "nothing"
        return (
            f"--seed {path}: not a tenant document: expected a 'subscriptions' (or 'accounts') list, "
            f"found {keys} (see samples/tenant.json)"
        ), None
    if not all(isinstance(tenant.get(k, []), list) for k in TENANT_KEYS[1:]):
        return f"--seed {path}: 'subscriptions', 'accounts' and 'diagnosticSettings' must be lists", None
    return None, tenant


def local_env(emulator: Emulator, token_env: Mapping[str, str], storage: str | None = None) -> dict[str, str]:
    """The environment that points the guardrail, az and azure-identity at the local tenant."""
    env = {
        "ARM_ENDPOINT": emulator.endpoint,
        "ARM_CA_BUNDLE": emulator.ca_bundle,
        "ARM_CREDENTIAL": "default",
        "GUARDRAIL_CA_BUNDLE": emulator.ca_bundle,
        "REQUESTS_CA_BUNDLE": emulator.ca_bundle,  # az (requests) trusts the emulator's CA
        **token_env,
    }
    if storage:
        env["AzureWebJobsStorage"] = storage
    return env


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
        network_acls_patch=args.network_acls_patch,
    )
    if args.seed:
        problem, tenant = _seed_problem(args.seed)
        if tenant is not None:
            try:
                emulator.seed(tenant)
            except (KeyError, TypeError, AttributeError, ValueError) as error:
                problem = f"--seed {args.seed}: not a valid tenant document: {type(error).__name__}: {error}"
        if problem:
            print(f"guardrail emulator: error: {problem}", file=sys.stderr)
            return 2
    for url in args.deliver:
        emulator.subscribe_http(url, schema=args.schema)
    stop = threading.Event()

    def _stop(*_: Any) -> None:
        stop.set()

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    if args.env:
        return _serve_env(args, emulator, stop)
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
                "ARM_STATIC_TOKEN": make_token(GUARDRAIL_CLAIMS),
                "GUARDRAIL_IDENTITY": GUARDRAIL_CLAIMS["appid"],
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


def _serve_env(args: argparse.Namespace, emulator: Emulator, stop: threading.Event) -> int:
    from guardrail_workbench.token_endpoint import TokenEndpoint

    caller = json.loads(args.caller) if args.caller else None
    azurite: Any = None
    with emulator, TokenEndpoint(caller, tenant_id=emulator.app.tenant_id) as token:
        try:
            if not args.no_azurite:
                from guardrail_workbench.azurite import Azurite

                azurite = Azurite().start()
            env = local_env(emulator, token.env, azurite.connection_string if azurite else None)
            for key, value in env.items():
                print(f"export {key}={shlex.quote(value)}", flush=True)
            print(
                "# az: az cloud register -n Emulator --endpoint-resource-manager "
                f"{emulator.endpoint}/ && az cloud set -n Emulator && az login --identity",
                flush=True,
            )
            while not stop.wait(0.5):
                pass
        finally:
            if azurite is not None:
                azurite.stop()
    print("local tenant stopped", file=sys.stderr)
    return 0
