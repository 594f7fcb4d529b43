"""The composition root, and what the Functions entry points call.

`build_app` is the one place the guardrail is put together: from the one `Settings` (storage
included) it makes the one credential (the worker's identity) and every client, the ARM gateway,
the state store, the finding and alert sinks, the sweep queue, the health table and the metrics,
and hands them to the reconciler (`guardrail.service.Guardrail`) and its observer. Nothing else in
the package builds a client or reads a setting. A worker holds one `App`, built on first use
(`get_app`); `reset` forgets it (tests, or after the settings changed).

Kept apart from `function_app.py` so that module stays thin and cheap to import.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from guardrail import __version__, escaping
from guardrail.settings import Settings, SettingsError, load_settings

if TYPE_CHECKING:
    from guardrail.heartbeat import HealthStore
    from guardrail.service import Guardrail
    from guardrail.telemetry import Telemetry

log = escaping.logger("guardrail")  # every argument logged from input escaped


@dataclass
class App:
    """One worker's guardrail and what was built around it."""

    settings: Settings
    credential: Any  # the worker's identity (`guardrail.credentials.AzureIdentity`)
    guardrail: Guardrail
    sweep_queue: Any | None  # None without storage: the timer sweeps in its own invocation
    health: HealthStore
    telemetry: Telemetry

    def close(self) -> None:
        self.telemetry.shutdown()
        close = getattr(self.guardrail.gateway, "close", None)
        if close is not None:
            close()


def build_app(settings: Settings) -> App:
    """Wire the adapters the settings name around the one path (nothing touches the network
    until the first call)."""
    from guardrail import telemetry
    from guardrail.credentials import AzureIdentity
    from guardrail.gateway import ArmGateway, arm_credential
    from guardrail.heartbeat import open_health_store
    from guardrail.observe import Observer
    from guardrail.service import Guardrail
    from guardrail.sinks import alert_sinks, finding_sinks
    from guardrail.state import open_state_store

    storage = settings.storage
    credential = AzureIdentity(settings.identity_client_id, settings.credential_timeouts)
    state = open_state_store(
        storage.connection_string,
        table_endpoint=storage.endpoint("table"),
        credential=credential,
        window=settings.breaker_window,
        max_remediations=settings.breaker_max_remediations,
        connection_timeout=settings.storage_timeouts.connect,
        read_timeout=settings.storage_timeouts.read,
        http=settings.http,
    )
    sweep_queue = _sweep_queue(settings, credential)
    findings = finding_sinks(settings.sinks, credential)
    health = open_health_store(storage, credential, settings.storage_timeouts)
    metrics = telemetry.setup(settings.telemetry, credential)
    clock = _now
    guardrail = Guardrail(
        settings,
        ArmGateway(settings.arm, credential=arm_credential(settings.arm, credential)),
        state,
        findings,
        alert_sinks(settings.sinks, credential),
        clock=clock,
        precondition_retries=settings.arm.precondition_retries,
        recheck=_recheck(sweep_queue) if sweep_queue is not None else None,
        observe=Observer(
            mode=settings.mode,
            identity=settings.identity,
            telemetry=metrics,
            finding_sinks=findings,
            health=health,
            clock=clock,
        ),
    )
    return App(settings, credential, guardrail, sweep_queue, health, metrics)


def build_guardrail(settings: Settings) -> Guardrail:
    """The reconciler of a worker built from `settings` (`build_app`)."""
    return build_app(settings).guardrail


def _now() -> datetime:
    return datetime.now(UTC)


def _sweep_queue(settings: Settings, credential: Any) -> Any | None:
    """The sweep-queue client, or None without any storage setting."""
    if not settings.storage.reaches("queue"):
        return None
    from guardrail.fanout import SweepQueue

    return SweepQueue(settings.storage, credential, timeouts=settings.storage_timeouts)


def _recheck(queue: Any) -> Any:
    """The reconciler's way to ask for a later look at one account: a delayed sweep-queue message."""

    def recheck(resource_id: str, delay: timedelta) -> None:
        from guardrail.fanout import enqueue_recheck

        try:
            enqueue_recheck(queue, resource_id, int(delay.total_seconds()))
        except Exception as error:  # the sweep still looks again; never fail the check for it
            log.warning("cannot schedule a re-check of %s: %s: %s", resource_id, type(error).__name__, error)

    return recheck


class _Worker:
    """The worker's one `App` (the only state this module keeps), built on first use."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.app: App | None = None


_worker = _Worker()


def get_app(settings: Settings | None = None) -> App:
    """The worker's app, built on first use (from `settings` when given: the CLI has read them
    already). Invalid settings raise SettingsError (logged with every problem named), so events
    are redelivered once the settings are fixed."""
    with _worker.lock:
        if _worker.app is None:
            if settings is None:
                try:
                    settings = load_settings()
                except SettingsError as error:
                    log.critical("%s", error)
                    raise
            _worker.app = build_app(settings)
            log.info(
                "guardrail %s ready: mode %s, policy %s", __version__, settings.mode, settings.policy_source
            )
        return _worker.app


def get_guardrail(settings: Settings | None = None) -> Guardrail:
    """The worker's guardrail (`get_app`)."""
    return get_app(settings).guardrail


def reset() -> None:
    """Forget the worker's app, its clients and its metrics (tests, or after settings change)."""
    with _worker.lock:
        app, _worker.app = _worker.app, None
    if app is not None:
        app.telemetry.shutdown()


def handle_function_event(event: Any) -> None:
    """One `func.EventGridEvent` / `func.CloudEvent`. Malformed events are logged with their id and
    dropped; transient ARM failures raise so Event Grid redelivers and finally dead-letters."""
    from guardrail.escaping import escape_control
    from guardrail.events import from_function_event

    try:
        payload = from_function_event(event)
    except Exception as error:
        shown = escape_control(str(getattr(event, "id", "?")))
        log.error("dropping malformed event %s: %s", shown, escape_control(str(error)))
        # Counted once the settings are valid; the event is dropped either way.
        with contextlib.suppress(SettingsError):
            get_guardrail().observe.event_ignored("malformed")
        return
    get_guardrail().handle_event(payload)


def run_sweep() -> None:
    """The timer: fan the sweep out on the sweep queue (one message per governed subscription),
    or, without storage, sweep in this invocation."""
    app = get_app()
    guardrail, queue = app.guardrail, app.sweep_queue
    if queue is None:
        log.warning("no AzureWebJobsStorage: the sweep runs in this one invocation, not fanned out")
        guardrail.sweep()
        return
    from guardrail.fanout import enqueue_sweep

    enqueue_sweep(guardrail, queue)


def run_sweep_slice(message: Any) -> None:
    """The sweep queue's trigger: one `func.QueueMessage` naming one page of one subscription."""
    from guardrail.fanout import run_slice

    app = get_app()
    guardrail, queue = app.guardrail, app.sweep_queue
    if queue is None:  # the host only triggers this with storage configured
        raise RuntimeError("the sweep queue is not configured (AzureWebJobsStorage)")
    run_slice(guardrail, queue, message.get_body())


def report_sweep_poison(message: Any) -> None:
    """The poison queue's trigger: a slice the host gave up on is logged at ERROR, not lost."""
    from guardrail.fanout import report_poison

    report_poison(message.get_body(), getattr(message, "id", None))


def health_report(env: Mapping[str, str] | None = None) -> tuple[int, str]:
    """(HTTP status, JSON body): version, mode and configuration problems, never secret values.
    The settings are read afresh (a bad one is named even after the worker was built); the last
    sweep comes from the worker's health table (`env`: of an app built from those settings)."""
    body: dict[str, Any] = {"service": "ai-services-network-guardrail", "version": __version__}
    try:
        settings = load_settings(env)
    except SettingsError as error:
        body.update(status="misconfigured", problems=error.problems)
        return 503, json.dumps(body)
    app = get_app(settings) if env is None else build_app(settings)
    problems: list[str] = []
    if not settings.storage.reaches("table"):
        problems.append("AzureWebJobsStorage is not set: the guardrail runs without memory")
    alerting = {
        "teams": settings.sinks.teams_webhook_url is not None,
        "email": settings.sinks.email is not None,
        "monitor": settings.sinks.monitor is not None,
    }
    if not any(alerting.values()):
        problems.append("no alert or Monitor sink is configured: findings go to the function log only")
    last_sweep, identity = _last_sweep(app.health, problems)
    body.update(
        status="ok" if not problems else "degraded",
        mode=settings.mode,
        policy=settings.policy_source,
        subscriptions=list(settings.subscriptions) or "all visible",
        sweep_schedule=settings.sweep_schedule,
        sinks=alerting,
        secrets_configured=list(settings.secrets_configured),
        last_sweep=last_sweep,
        identity=identity,
        problems=problems,
    )
    return 200, json.dumps(body)


def _last_sweep(health: HealthStore, problems: list[str]) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """The last completed sweep (from the health table) and what it says of the identity's access."""
    identity: dict[str, Any] = {"can_read_subscriptions": None, "checked_at": None, "unreadable": []}
    try:
        last = health.last_sweep()
    except Exception as error:  # the endpoint still answers with what it knows
        problems.append(f"cannot read the last sweep from the health table: {type(error).__name__}")
        log.warning("health: cannot read the health table: %s", error)
        return None, identity
    if last is None:
        return None, identity
    try:
        completed = datetime.fromisoformat(str(last.get("completed")).replace("Z", "+00:00"))
        last["age_seconds"] = max(0, round((datetime.now(UTC) - completed).total_seconds()))
    except ValueError:
        last["age_seconds"] = None
    subs = list(last.get("subscriptions") or [])
    unreadable = [
        {"subscription": row.get("subscription"), "error": row.get("error")}
        for row in subs
        if row.get("readable") is False
    ]
    unknown = [row.get("subscription") for row in subs if row.get("readable") is None]
    identity.update(
        checked_at=last.get("completed"),
        can_read_subscriptions=False if unreadable else (None if unknown or not subs else True),
        unreadable=unreadable,
    )
    for row in unreadable:
        problems.append(
            f"the identity could not list subscription {row['subscription']} on the last sweep: "
            f"{row['error']}"
        )
    if unknown:
        problems.append(f"the last sweep's listing failed; unknown access to: {', '.join(map(str, unknown))}")
    return last, identity
