"""Cloud Custodian (c7n-azure) against the local ARM emulator, for benchmarks/bench_peer.py.

Runs in .venv-custodian (requirements-custodian.txt), never in the guardrail's .venv: it imports
neither the guardrail nor its workbench. c7n-azure knows only Azure's own clouds, so the public
cloud's Resource Manager endpoint (msrestazure's AZURE_PUBLIC_CLOUD) is pointed at the emulator
before Custodian is imported; everything else is Custodian unchanged, except that the one
providers lookup c7n-azure makes to pick an api-version for a resource GET (cached for the life of
the process, so a warm Custodian pays it once) is answered here: the emulator has no providers API.

    python peer_custodian.py imports                  # what a first event imports (no event)
    python peer_custodian.py first-event policy.yml event.json
                                                      # cold start: a fresh process initialises the
                                                      # azure-event-grid function and pushes one event
    python peer_custodian.py run -s OUT policy.yml    # `custodian run ...` (pull mode), the CLI check
    python peer_custodian.py serve policy.yml         # warm: one event file path per stdin line,
                                                      # prints the milliseconds `policy.push` took;
                                                      # a line `usage`: its CPU seconds and peak RSS
Environment: CUSTODIAN_ARM_ENDPOINT, AZURE_SUBSCRIPTION_ID, AZURE_ACCESS_TOKEN, REQUESTS_CA_BUNDLE.
"""

import time

STARTED = time.perf_counter()  # before any other import: the cold start is timed from here

import json  # noqa: E402
import os  # noqa: E402
import resource  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402

API_VERSION = "2025-09-01"  # the api-version the guardrail's SDK (azure-mgmt-cognitiveservices 14.1.0) uses


def _point_at_emulator() -> None:
    from msrestazure import azure_cloud

    endpoint = os.environ["CUSTODIAN_ARM_ENDPOINT"].rstrip("/") + "/"
    azure_cloud.AZURE_PUBLIC_CLOUD.endpoints.resource_manager = endpoint


def _event_imports() -> None:
    """What Custodian's azure-event-grid function imports before it handles its first event."""
    from c7n.config import Config  # noqa: F401
    from c7n.loader import PolicyLoader  # noqa: F401
    from c7n.resources import load_resources
    from c7n_azure.provider import Azure  # noqa: F401
    from c7n_azure.session import Session

    load_resources(("azure.cognitiveservice",))
    Session.resource_api_version = lambda self, resource_id: API_VERSION  # no providers API locally


def imports() -> int:
    started = time.perf_counter()
    _point_at_emulator()
    _event_imports()
    print(json.dumps({"imports_ms": (time.perf_counter() - started) * 1000}), flush=True)
    return 0


def _initialised(policy_file: str) -> list:
    """The azure-event-grid function initialised: the provider, the options, the loaded policies."""
    _point_at_emulator()
    _event_imports()
    from c7n.config import Config
    from c7n.loader import PolicyLoader
    from c7n_azure.provider import Azure

    options = Config.empty(output_dir=tempfile.mkdtemp(prefix="custodian-peer-"), regions=[])
    options = Azure().initialize(options)
    return list(PolicyLoader(options).load_file(policy_file))


def _read_event(event_file: str) -> dict:
    with open(event_file, encoding="utf-8") as handle:
        event = json.load(handle)
    if isinstance(event, list):  # Event Grid delivers arrays
        (event,) = event
    return event


def _push(policies: list, event: dict) -> int:
    """One Event Grid event through every policy: how many resources matched."""
    found = 0
    for policy in policies:
        found += len(policy.push(event, None) or [])
    return found


def first_event(policy_file: str, event_file: str) -> int:
    """Cold start to the first event handled, timed from the first line of main."""
    found = _push(_initialised(policy_file), _read_event(event_file))
    print(json.dumps({"ms": (time.perf_counter() - STARTED) * 1000, "resources": found}), flush=True)
    return 0


def serve(policy_file: str) -> int:
    policies = _initialised(policy_file)
    print("ready", flush=True)
    for line in sys.stdin:
        if line.strip() == "usage":  # this process's CPU seconds and peak RSS so far
            own = resource.getrusage(resource.RUSAGE_SELF)
            print(
                json.dumps({"cpu_s": own.ru_utime + own.ru_stime, "maxrss_mib": own.ru_maxrss / 1024}),
                flush=True,
            )
            continue
        event = _read_event(line.strip())
        started = time.perf_counter()
        found = _push(policies, event)
        elapsed = (time.perf_counter() - started) * 1000
        print(json.dumps({"ms": elapsed, "resources": found}), flush=True)
    return 0


def main() -> int:
    command = sys.argv[1]
    if command == "imports":
        return imports()
    if command == "serve":
        return serve(sys.argv[2])
    if command == "first-event":
        return first_event(sys.argv[2], sys.argv[3])
    _point_at_emulator()
    from c7n.cli import main as custodian

    sys.argv = ["custodian", *sys.argv[1:]]
    return int(custodian() or 0)


if __name__ == "__main__":
    sys.exit(main())
