"""What the Functions entry points call: build the guardrail once per worker, hand it events.

Kept apart from `function_app.py` so that module stays thin and cheap to import.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from guardrail import __version__
from guardrail.service import Guardrail
from guardrail.settings import SECRET_SETTINGS, Settings, SettingsError, load_settings

log = logging.getLogger("guardrail")
_lock = threading.Lock()
_instance: Guardrail | None = None


def build_guardrail(settings: Settings) -> Guardrail:
    """Wire the adapters named by the settings around the one path."""
    from guardrail.gateway import ArmGateway
    from guardrail.sinks import alert_sinks, finding_sinks
    from guardrail.state import open_state_store

    state = open_state_store(
        settings.storage_connection,
        **_identity_storage(settings.env),
        window=settings.breaker_window,
        max_remediations=settings.breaker_max_remediations,
    )
    return Guardrail(
        settings,
        ArmGateway(settings.arm),
        state,
        finding_sinks(settings.sinks),
        alert_sinks(settings.sinks),
        precondition_retries=settings.arm.precondition_retries,
        recheck=_recheck(settings.env),
    )


def _recheck(env: Mapping[str, str]) -> Any:
    """The reconciler's way to ask for a later look at one account: a delayed sweep-queue message
    (None without storage: the next sweep looks again)."""

    def recheck(resource_id: str, delay: Any) -> None:
        from guardrail.fanout import enqueue_recheck

        queue = _sweep_queue(env)
        if queue is None:
            return
        try:
            enqueue_recheck(queue, resource_id, int(delay.total_seconds()))
        except Exception as error:  # the sweep still looks again; never fail the check for it
            log.warning("cannot schedule a re-check of %s: %s: %s", resource_id, type(error).__name__, error)

    return recheck


def _identity_storage(env: Mapping[str, str]) -> dict[str, Any]:
    """Identity-based AzureWebJobsStorage (`AzureWebJobsStorage__accountName`, no shared key)."""
    from guardrail import storage
    from guardrail.credentials import default_credential

    endpoint = storage.identity_endpoint(env, "table")
    if endpoint is None:
        return {}
    return {"table_endpoint": endpoint, "credential": default_credential(storage.client_id(env))}


def get_guardrail(settings: Settings | None = None) -> Guardrail:
    """The worker's guardrail, built on first use (from `settings` when given: the CLI has read
    them already). Invalid settings raise SettingsError (logged with every problem named), so
    events are redelivered once the settings are fixed."""
    global _instance
    with _lock:
        if _instance is None:
            if settings is None:
                try:
                    settings = load_settings()
                except SettingsError as error:
                    log.critical("%s", error)
                    raise
            _instance = build_guardrail(settings)
            from guardrail import telemetry

            telemetry.setup(settings.telemetry)
            log.info(
                "guardrail %s ready: mode %s, policy %s", __version__, settings.mode, settings.policy_source
            )
        return _instance


def reset() -> None:
    """Forget the built guardrail and queue clients (tests, or after settings change)."""
    global _instance
    with _lock:
        _instance = None
    with _queue_lock:
        _queues.clear()


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
        from guardrail import observe

        observe.event_ignored("malformed")
        return
    get_guardrail().handle_event(payload)


def run_sweep() -> None:
    """The timer: fan the sweep out on the sweep queue (one message per governed subscription),
    or, without storage, sweep in this invocation."""
    guardrail = get_guardrail()
    queue = _sweep_queue(guardrail.settings.env)
    if queue is None:
        log.warning("no AzureWebJobsStorage: the sweep runs in this one invocation, not fanned out")
        guardrail.sweep()
        return
    from guardrail.fanout import enqueue_sweep

    enqueue_sweep(guardrail, queue)


def run_sweep_slice(message: Any) -> None:
    """The sweep queue's trigger: one `func.QueueMessage` naming one page of one subscription."""
    from guardrail.fanout import run_slice

    guardrail = get_guardrail()
    queue = _sweep_queue(guardrail.settings.env)
    if queue is None:  # the host only triggers this with storage configured
        raise RuntimeError("the sweep queue is not configured (AzureWebJobsStorage)")
    run_slice(guardrail, queue, message.get_body())


def report_sweep_poison(message: Any) -> None:
    """The poison queue's trigger: a slice the host gave up on is logged at ERROR, not lost."""
    from guardrail.fanout import report_poison

    report_poison(message.get_body(), getattr(message, "id", None))


_queue_lock = threading.Lock()
_queues: dict[str, Any] = {}


def _sweep_queue(env: Mapping[str, str]) -> Any | None:
    """The worker's sweep-queue client (built once), or None without any storage setting."""
    if not env.get("AzureWebJobsStorage") and not (
        env.get("AzureWebJobsStorage__accountName") or env.get("AzureWebJobsStorage__queueServiceUri")
    ):
        return None
    from guardrail.fanout import open_sweep_queue

    key = env.get("AzureWebJobsStorage") or env.get("AzureWebJobsStorage__queueServiceUri") or ""
    key = key or str(env.get("AzureWebJobsStorage__accountName"))
    with _queue_lock:
        if key not in _queues:
            _queues[key] = open_sweep_queue(env)
        return _queues[key]


def health_report(env: Mapping[str, str] | None = None) -> tuple[int, str]:
    """(HTTP status, JSON body): version, mode and configuration problems, never secret values."""
    body: dict[str, Any] = {"service": "ai-services-network-guardrail", "version": __version__}
    try:
        settings = load_settings(env)
    except SettingsError as error:
        body.update(status="misconfigured", problems=error.problems)
        return 503, json.dumps(body)
    problems: list[str] = []
    if not settings.storage_connection and not _has_identity_storage(settings.env):
        problems.append("AzureWebJobsStorage is not set: the guardrail runs without memory")
    alerting = {
        "teams": settings.sinks.teams_webhook_url is not None,
        "email": settings.sinks.email is not None,
        "monitor": settings.sinks.monitor is not None,
    }
    if not any(alerting.values()):
        problems.append("no alert or Monitor sink is configured: findings go to the function log only")
    last_sweep, identity = _last_sweep(settings, problems)
    body.update(
        status="ok" if not problems else "degraded",
        mode=settings.mode,
        policy=settings.policy_source,
        subscriptions=list(settings.subscriptions) or "all visible",
        sweep_schedule=settings.sweep_schedule,
        sinks=alerting,
        secrets_configured=sorted(name for name in SECRET_SETTINGS if settings.env.get(name)),
        last_sweep=last_sweep,
        identity=identity,
        problems=problems,
    )
    return 200, json.dumps(body)


def _last_sweep(settings: Settings, problems: list[str]) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """The last completed sweep (from the health table) and what it says of the identity's access."""
    from guardrail.heartbeat import open_health_store

    identity: dict[str, Any] = {"can_read_subscriptions": None, "checked_at": None, "unreadable": []}
    try:
        last = open_health_store(settings).last_sweep()
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


def _has_identity_storage(env: Mapping[str, str]) -> bool:
    return bool(
        env.get("AzureWebJobsStorage__accountName") or env.get("AzureWebJobsStorage__tableServiceUri")
    )
