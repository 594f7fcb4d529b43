"""A whole local Azure for the guardrail: the ARM emulator, Azurite, and local receivers standing
in for Teams, email and Azure Monitor, with the function app's own handlers subscribed to the
emulator's events. Used by the end-to-end tests, the demo and the benchmarks.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

from guardrail_workbench.emulator import Emulator, make_token
from guardrail_workbench.emulator.identity import GUARDRAIL_CLAIMS

log = logging.getLogger("guardrail_workbench")

DEFAULT_RECIPIENTS = "secops@contoso.example"


def user_claims(upn: str, name: str | None = None) -> dict[str, Any]:
    """Token claims for a human caller (the emulator names them in the events it emits)."""
    return {"upn": upn, "name": name or upn.split("@")[0], "oid": f"user-{upn}"}


def pipeline_claims(appid: str, name: str) -> dict[str, Any]:
    return {"appid": appid, "name": name, "oid": f"sp-{appid}", "idtyp": "app"}


def function_handlers() -> dict[str, Callable[..., Any]]:
    """The user functions of `function_app.app`, found through azure-functions' own indexing."""
    return {str(f.get_function_name()): f.get_user_function() for f in indexed_functions()}


_INDEXED: list[Any] = []


def indexed_functions() -> list[Any]:
    """`function_app.app.get_functions()`, as the worker indexes them (once: the library refuses a
    second indexing of the same app)."""
    if not _INDEXED:
        _INDEXED.extend(load_function_app().app.get_functions())
    return list(_INDEXED)


def load_function_app() -> Any:
    """`function_app` as the Functions host loads it: the module at the root of the app."""
    import importlib.util
    import sys

    if "function_app" in sys.modules:
        return sys.modules["function_app"]
    path = Path(__file__).resolve().parents[1] / "function_app.py"
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: run from a checkout of the guardrail repository")
    spec = importlib.util.spec_from_file_location("function_app", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["function_app"] = module
    spec.loader.exec_module(module)
    return module


def as_function_event(event: Mapping[str, Any]) -> Any:
    """The object the Functions worker hands the trigger for this delivered JSON event: the
    library's own converter makes a `func.EventGridEvent`, or a `func.CloudEvent` when the body
    has `specversion`."""
    from azure.functions import meta
    from azure.functions.eventgrid import EventGridEventInConverter

    datum = meta.Datum(type="json", value=json.dumps(dict(event)))
    return EventGridEventInConverter.decode(datum, trigger_metadata={})


class LocalStack:
    """Start with `with LocalStack(...) as stack:`; `stack.env` holds the app settings that point the
    guardrail at the local parts; `stack.apply_env()` puts them into os.environ for the function app.
    `managed_identity=True` also starts the App Service-style token endpoint and points the guardrail's
    DefaultAzureCredential at it (IDENTITY_ENDPOINT / IDENTITY_HEADER) instead of a static token."""

    def __init__(
        self,
        *,
        out_dir: str | os.PathLike[str],
        policy_path: str | None = None,
        page_size: int = 100,
        write_rate: float | None = None,
        azurite: bool = True,
        blob: bool = False,
        receivers: bool = True,
        managed_identity: bool = False,
        extra_env: Mapping[str, str] | None = None,
    ) -> None:
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.policy_path = policy_path
        self.emulator = Emulator(page_size=page_size, write_rate=write_rate)
        self._want_azurite = azurite
        self._want_blob = blob
        self._want_receivers = receivers
        self._want_identity = managed_identity
        self.token_endpoint: Any = None
        self.extra_env = dict(extra_env or {})
        self.azurite: Any = None
        self.teams: Any = None
        self.email: Any = None
        self.ingestion: Any = None
        self.env: dict[str, str] = {}
        self.deliveries: list[tuple[str, str, float]] = []  # (event id, function, seconds)
        self.failed_deliveries: list[tuple[str, str]] = []
        self._saved_env: dict[str, str | None] = {}
        self._lock = threading.Lock()

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> LocalStack:
        self.emulator.start()
        if self._want_identity:
            from guardrail_workbench.token_endpoint import TokenEndpoint

            self.token_endpoint = TokenEndpoint(
                GUARDRAIL_CLAIMS, tenant_id=self.emulator.app.tenant_id
            ).start()
        if self._want_azurite:
            from guardrail_workbench.azurite import Azurite

            self.azurite = Azurite(blob=self._want_blob, queue=True).start()
        if self._want_receivers:
            from guardrail_workbench.receivers import EmailReceiver, IngestionReceiver, TeamsReceiver

            self.teams = TeamsReceiver().start()
            self.email = EmailReceiver().start()
            self.ingestion = IngestionReceiver().start()
        self.env = self._build_env()
        return self

    def stop(self) -> None:
        self.restore_env()
        for part in (self.teams, self.email, self.ingestion, self.azurite, self.token_endpoint):
            if part is not None:
                part.stop()
        self.emulator.stop()

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _build_env(self) -> dict[str, str]:
        ca = self.emulator.ca_bundle
        env = {
            "ARM_ENDPOINT": self.emulator.endpoint,
            "ARM_CA_BUNDLE": ca,
            "ARM_CREDENTIAL": "static",
            "ARM_STATIC_TOKEN": make_token(GUARDRAIL_CLAIMS),
            "ARM_RETRY_BACKOFF": "0.05",
            "ARM_RETRY_BACKOFF_MAX": "0.5",
            "ARM_CONFLICT_BACKOFF": "0.05",
            "ARM_POLL_INTERVAL": "0.05",
            "ARM_MAX_RETRY_AFTER": "5",
            "GUARDRAIL_IDENTITY": GUARDRAIL_CLAIMS["appid"],
            "GUARDRAIL_FINDINGS_FILE": str(self.out_dir / "findings.jsonl"),
            "GUARDRAIL_CA_BUNDLE": ca,
            "GUARDRAIL_SINK_BACKOFF_SECONDS": "0.05",
            "GUARDRAIL_SINK_MAX_BACKOFF_SECONDS": "0.2",
            "GUARDRAIL_SINK_TIMEOUT_SECONDS": "5",
            "ALERT_EMAIL_POLL_SECONDS": "0.05",
        }
        if self.token_endpoint is not None:  # DefaultAzureCredential, as in Azure, via the local endpoint
            env["ARM_CREDENTIAL"] = "default"
            env.pop("ARM_STATIC_TOKEN")
            env.update(self.token_endpoint.env)
        if self.policy_path:
            env["GUARDRAIL_POLICY_PATH"] = str(self.policy_path)
        if self.azurite is not None:
            env["AzureWebJobsStorage"] = self.azurite.connection_string
        if self.teams is not None:
            env["TEAMS_WEBHOOK_URL"] = self.teams.webhook_url
            env["ACS_CONNECTION_STRING"] = self.email.connection_string
            env["ALERT_EMAIL_SENDER"] = "DoNotReply@guardrail.example"
            env["ALERT_EMAIL_RECIPIENTS"] = DEFAULT_RECIPIENTS
            env["MONITOR_DCE_ENDPOINT"] = self.ingestion.endpoint
            env["MONITOR_DCR_IMMUTABLE_ID"] = self.ingestion.dcr_immutable_id
            env["MONITOR_STREAM_NAME"] = self.ingestion.stream_name
            env["GUARDRAIL_LOCAL_BEARER_TOKEN"] = make_token(GUARDRAIL_CLAIMS)
        env.update(self.extra_env)
        return env

    def apply_env(self) -> None:
        """Point the function app (via os.environ) at this stack and forget any earlier guardrail."""
        from guardrail import functions

        for key, value in self.env.items():
            self._saved_env.setdefault(key, os.environ.get(key))
            os.environ[key] = value
        functions.reset()

    def restore_env(self) -> None:
        from guardrail import functions

        for key, value in self._saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        self._saved_env.clear()
        functions.reset()

    # -- events → the function app ------------------------------------------------------------
    def connect_function_app(
        self,
        schema: Literal["eventgrid", "cloudevents"] = "eventgrid",
        retry_delays: tuple[float, ...] = (0.2, 0.5, 1.0),
    ) -> None:
        """Deliver the emulator's resource events to `on_resource_write` and its Resource
        Notifications to `on_resource_notification`, as Event Grid would: a raised exception
        means redelivery (after `retry_delays`), then dead-lettering (recorded)."""
        handlers = function_handlers()

        def deliver(function: str) -> Callable[[dict[str, Any]], None]:
            def callback(event: dict[str, Any]) -> None:
                for attempt, delay in enumerate((0.0, *retry_delays)):
                    if delay:
                        time.sleep(delay)
                    started = time.monotonic()
                    try:
                        handlers[function](as_function_event(event))
                    except Exception as error:
                        log.warning(
                            "delivery %d of event %s to %s failed: %s",
                            attempt + 1,
                            event.get("id"),
                            function,
                            error,
                        )
                        continue
                    with self._lock:
                        self.deliveries.append((str(event.get("id")), function, time.monotonic() - started))
                    return
                with self._lock:
                    self.failed_deliveries.append((str(event.get("id")), function))

            return callback

        self.emulator.subscribe(deliver("on_resource_write"), schema=schema, kinds={"resources"})
        self.emulator.subscribe(
            deliver("on_resource_notification"),
            schema=schema,
            kinds={"notifications"},
        )

    def wait_idle(self, timeout: float = 30.0) -> bool:
        """Wait until every emitted event has been handled (including the events the guardrail's
        own writes cause)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.emulator.wait_for_events(timeout=max(0.1, deadline - time.monotonic())):
                time.sleep(0.05)
                if self.emulator.wait_for_events(timeout=0.1):
                    return True
        return False

    # -- acting as people and pipelines --------------------------------------------------------
    def client_for(self, claims: Mapping[str, Any], subscription_id: str) -> Any:
        """A real CognitiveServicesManagementClient whose writes the emulator attributes to `claims`."""
        from azure.mgmt.cognitiveservices import CognitiveServicesManagementClient

        from guardrail.credentials import StaticTokenCredential

        return CognitiveServicesManagementClient(
            StaticTokenCredential(make_token(claims)),
            subscription_id,
            base_url=self.emulator.endpoint,
            connection_verify=self.emulator.ca_bundle,
            retry_total=3,
            retry_backoff_factor=0.05,
        )


@contextmanager
def running_stack(**options: Any) -> Iterator[LocalStack]:
    stack = LocalStack(**options)
    stack.start()
    try:
        stack.apply_env()
        yield stack
    finally:
        stack.stop()
