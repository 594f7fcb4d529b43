"""What the Functions entry points call: build the guardrail once per worker, hand it events.

Kept apart from `function_app.py` so that module stays thin and cheap to import.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Mapping
from typing import Any

from guardrail import __version__
from guardrail.service import Guardrail
from guardrail.settings import SECRET_SETTINGS, Settings, SettingsError, load_settings

log = logging.getLogger("guardrail")
_lock = threading.Lock()
_instance: Guardrail | None = None


def build_guardrail(settings: Settings) -> Guardrail:
    """Wire the adapters named by the settings around the one path."""
    from guardrail.gateway import ArmGateway, ArmSettings
    from guardrail.sinks import alert_sinks_from_env, finding_sinks_from_env
    from guardrail.state import open_state_store

    env = settings.env
    gateway = ArmGateway(ArmSettings.from_env(env))
    state = open_state_store(
        settings.storage_connection,
        **_identity_storage(env),
        window=settings.breaker_window,
        max_remediations=settings.breaker_max_remediations,
    )
    finding_sinks = finding_sinks_from_env(env)
    alert_sinks = alert_sinks_from_env(env)
    return Guardrail(settings, gateway, state, finding_sinks, alert_sinks)


def _identity_storage(env: Mapping[str, str]) -> dict[str, Any]:
    """Identity-based AzureWebJobsStorage (`AzureWebJobsStorage__accountName`, no shared key)."""
    if env.get("AzureWebJobsStorage"):
        return {}
    endpoint = env.get("AzureWebJobsStorage__tableServiceUri")
    account = env.get("AzureWebJobsStorage__accountName")
    if not endpoint and account:
        endpoint = f"https://{account}.table.core.windows.net"
    if not endpoint:
        return {}
    from azure.identity import DefaultAzureCredential

    return {"table_endpoint": endpoint, "credential": DefaultAzureCredential()}


def get_guardrail() -> Guardrail:
    """The worker's guardrail, built on first use. Invalid settings raise SettingsError (logged
    with every problem named), so events are redelivered once the settings are fixed."""
    global _instance
    with _lock:
        if _instance is None:
            try:
                settings = load_settings()
            except SettingsError as error:
                log.critical("%s", error)
                raise
            _instance = build_guardrail(settings)
            log.info(
                "guardrail %s ready: mode %s, policy %s", __version__, settings.mode, settings.policy_source
            )
        return _instance


def reset() -> None:
    """Forget the built guardrail (tests, or after settings change)."""
    global _instance
    with _lock:
        _instance = None


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
        return
    get_guardrail().handle_event(payload)


def run_sweep() -> None:
    get_guardrail().sweep()


def health_report(env: Mapping[str, str] | None = None) -> tuple[int, str]:
    """(HTTP status, JSON body): version, mode and configuration problems, never secret values."""
    body: dict[str, Any] = {"service": "ai-services-network-guardrail", "version": __version__}
    try:
        settings = load_settings(env)
    except SettingsError as error:
        body.update(status="misconfigured", problems=str(error).splitlines()[1:])
        return 503, json.dumps(body)
    problems: list[str] = []
    if not settings.storage_connection and not _has_identity_storage(settings.env):
        problems.append("AzureWebJobsStorage is not set: the guardrail runs without memory")
    alerting = {
        "teams": bool(settings.env.get("TEAMS_WEBHOOK_URL")),
        "email": bool(settings.env.get("ALERT_EMAIL_RECIPIENTS")),
        "monitor": bool(settings.env.get("MONITOR_DCE_ENDPOINT")),
    }
    if not any(alerting.values()):
        problems.append("no alert or Monitor sink is configured: findings go to the function log only")
    body.update(
        status="ok" if not problems else "degraded",
        mode=settings.mode,
        policy=settings.policy_source,
        subscriptions=list(settings.subscriptions) or "all visible",
        sweep_schedule=settings.sweep_schedule,
        sinks=alerting,
        secrets_configured=sorted(name for name in SECRET_SETTINGS if settings.env.get(name)),
        problems=problems,
    )
    return 200, json.dumps(body)


def _has_identity_storage(env: Mapping[str, str]) -> bool:
    return bool(
        env.get("AzureWebJobsStorage__accountName") or env.get("AzureWebJobsStorage__tableServiceUri")
    )
