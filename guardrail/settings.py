"""App settings (environment variables), validated at start with clear errors (no secrets echoed)."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta

from guardrail.policy import GUID_RE, Policy, PolicyError, load_policy, parse_policy_text
from guardrail.vocabulary import Mode

DEFAULT_SWEEP_SCHEDULE = "0 0 */6 * * *"
_NCRONTAB_RE = re.compile(r"^\s*(\S+\s+){5}\S+\s*$")
# Settings whose values are secrets: never echoed in errors or the health check.
SECRET_SETTINGS = frozenset(
    {
        "TEAMS_WEBHOOK_URL",
        "ACS_CONNECTION_STRING",
        "AzureWebJobsStorage",
        "ARM_STATIC_TOKEN",
        "GUARDRAIL_LOCAL_BEARER_TOKEN",
        "APPLICATIONINSIGHTS_CONNECTION_STRING",
    }
)


class SettingsError(ValueError):
    """One or more settings are invalid; the message lists each by name."""


@dataclass(frozen=True)
class Settings:
    policy: Policy
    policy_source: str
    mode: Mode  # GUARDRAIL_MODE overrides the policy's mode
    subscriptions: tuple[str, ...]  # empty: every subscription the identity can see
    sweep_schedule: str
    sweep_concurrency: int
    writes_per_second: float  # per subscription, for the sweep (ARM refills about 10/s)
    breaker_max_remediations: int
    breaker_window: timedelta
    alert_cooldown: timedelta
    storage_connection: str | None
    findings_file: str | None
    identity: str | None  # the guardrail's own principal/app id, to recognise its own writes
    env: Mapping[str, str] = field(repr=False, default_factory=dict)


def _int(env: Mapping[str, str], name: str, default: int, problems: list[str], low: int = 1) -> int:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        problems.append(f"{name}: {raw!r} is not a whole number")
        return default
    if value < low:
        problems.append(f"{name}: must be at least {low} (got {value})")
    return value


def _float(env: Mapping[str, str], name: str, default: float, problems: list[str]) -> float:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        problems.append(f"{name}: {raw!r} is not a number")
        return default
    if value <= 0:
        problems.append(f"{name}: must be greater than 0 (got {value})")
    return value


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Read and validate settings; raises SettingsError naming every bad setting."""
    env = dict(os.environ if env is None else env)
    problems: list[str] = []
    policy = Policy.default()
    source = "built-in default"
    path, inline = env.get("GUARDRAIL_POLICY_PATH"), env.get("GUARDRAIL_POLICY")
    try:
        if path and inline:
            problems.append("GUARDRAIL_POLICY_PATH and GUARDRAIL_POLICY are both set: choose one")
        elif path:
            policy, source = load_policy(path), path
        elif inline:
            policy, source = parse_policy_text(inline, "GUARDRAIL_POLICY"), "GUARDRAIL_POLICY"
    except PolicyError as error:
        problems.append(str(error))
    mode = env.get("GUARDRAIL_MODE", "").strip() or policy.mode
    if mode not in ("enforce", "audit"):
        problems.append(f"GUARDRAIL_MODE: {mode!r} is not enforce or audit")
    subscriptions = tuple(s.strip() for s in env.get("GUARDRAIL_SUBSCRIPTIONS", "").split(",") if s.strip())
    for sub in subscriptions:
        if not GUID_RE.fullmatch(sub):
            problems.append(f"GUARDRAIL_SUBSCRIPTIONS: {sub!r} is not a subscription ID (a GUID)")
    schedule = env.get("GUARDRAIL_SWEEP_SCHEDULE", "").strip() or DEFAULT_SWEEP_SCHEDULE
    if not _NCRONTAB_RE.match(schedule):
        problems.append(f"GUARDRAIL_SWEEP_SCHEDULE: {schedule!r} is not a six-field NCRONTAB expression")
    settings = Settings(
        policy=policy,
        policy_source=source,
        mode="audit" if mode == "audit" else "enforce",
        subscriptions=subscriptions,
        sweep_schedule=schedule,
        sweep_concurrency=_int(env, "GUARDRAIL_SWEEP_CONCURRENCY", 16, problems),
        writes_per_second=_float(env, "GUARDRAIL_WRITES_PER_SECOND", 10.0, problems),
        breaker_max_remediations=_int(env, "GUARDRAIL_BREAKER_MAX_REMEDIATIONS", 3, problems),
        breaker_window=timedelta(minutes=_int(env, "GUARDRAIL_BREAKER_WINDOW_MINUTES", 30, problems)),
        alert_cooldown=timedelta(minutes=_int(env, "GUARDRAIL_ALERT_COOLDOWN_MINUTES", 60, problems, 0)),
        storage_connection=env.get("AzureWebJobsStorage") or None,
        findings_file=env.get("GUARDRAIL_FINDINGS_FILE") or None,
        identity=env.get("GUARDRAIL_IDENTITY") or env.get("AZURE_CLIENT_ID") or None,
        env=env,
    )
    if problems:
        raise SettingsError("invalid settings:\n  " + "\n  ".join(problems))
    return settings
