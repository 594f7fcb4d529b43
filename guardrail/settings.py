"""App settings (environment variables): read and validated once, at start, into one model.

`load_settings` is the one place the guardrail reads its app settings: the policy and the loop's
knobs, how to reach ARM (`Settings.arm`, the gateway's `ArmSettings`), where findings and alerts
go (`Settings.sinks`), and the metrics exporter (`Settings.telemetry`). Every bad value is
collected, and one `SettingsError` names each by its setting, never echoing a secret's value; the
health endpoint and the `guardrail` CLI show that same error. The gateway, the sinks and the
exporter are built from the model, not from the environment (their constructors take explicit
values, as tests use them). `SETTING_NAMES` lists every setting read here; docs/settings.md
documents each (a test holds the two equal).

The storage settings (`AzureWebJobsStorage` and its identity-based form) are read as the Functions
host itself reads them (`Settings.storage`, `guardrail.storage.StorageSettings`), for the state and
health tables, the sweep queue and the dead-letter container. The worker has one Azure identity
(`Settings.identity_client_id`: `AZURE_CLIENT_ID`, else `AzureWebJobsStorage__clientId`, else the
`ClientId` of `APPLICATIONINSIGHTS_AUTHENTICATION_STRING`; two that name different identities are a
settings error). requests' own environment variables (a CA bundle, proxies) are read here too
(`Settings.http`), once, instead of by every transport.

Nothing else in the package reads the environment: `load_settings` is the one place.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TypeVar, get_args
from urllib.parse import urlsplit

from guardrail.gateway import ArmSettings
from guardrail.policy import GUID_RE, Policy, PolicyError, load_policy, parse_policy_text
from guardrail.sinks._common import RetrySettings
from guardrail.sinks.email import parse_recipients
from guardrail.sinks.monitor import DEFAULT_STREAM
from guardrail.storage import Service, StorageSettings
from guardrail.transport import CREDENTIAL_TIMEOUTS, STORAGE_TIMEOUTS, HttpEnvironment, Timeouts
from guardrail.vocabulary import Mode

DEFAULT_SWEEP_SCHEDULE = "0 0 */6 * * *"
_NCRONTAB_RE = re.compile(r"^\s*(\S+\s+){5}\S+\s*$")
_EMAIL_RE = re.compile(r"^[^@\s,;<>]+@[^@\s,;<>]+\.[^@\s,;<>]+$")
_STORAGE_ACCOUNT_RE = re.compile(r"^[a-z0-9]{3,24}$")
_KEY_VAULT_REFERENCE = "@Microsoft.KeyVault"
_N = TypeVar("_N", int, float)
_FLAG_VALUES = {"1": True, "true": True, "yes": True, "0": False, "false": False, "no": False}

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

#: The storage settings `guardrail.storage` reads (the host's own names).
STORAGE_SETTINGS = (
    "AzureWebJobsStorage",
    "AzureWebJobsStorage__accountName",
    "AzureWebJobsStorage__tableServiceUri",
    "AzureWebJobsStorage__queueServiceUri",
    "AzureWebJobsStorage__blobServiceUri",
    "AzureWebJobsStorage__clientId",
)

#: requests' CA-bundle variables, in the order it reads them (`Session.trust_env`).
_CA_BUNDLE_VARIABLES = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")


#: Every app setting the guardrail reads (docs/settings.md documents each one).
SETTING_NAMES: tuple[str, ...] = (
    "GUARDRAIL_POLICY_PATH",
    "GUARDRAIL_POLICY",
    "GUARDRAIL_MODE",
    "GUARDRAIL_SUBSCRIPTIONS",
    "GUARDRAIL_SWEEP_SCHEDULE",
    "GUARDRAIL_SWEEP_CONCURRENCY",
    "GUARDRAIL_WRITES_PER_SECOND",
    "GUARDRAIL_BREAKER_MAX_REMEDIATIONS",
    "GUARDRAIL_BREAKER_WINDOW_MINUTES",
    "GUARDRAIL_ALERT_COOLDOWN_MINUTES",
    "GUARDRAIL_RECHECK_MINUTES",
    "GUARDRAIL_FINDINGS_FILE",
    "GUARDRAIL_IDENTITY",
    "APPLICATIONINSIGHTS_CONNECTION_STRING",
    "APPLICATIONINSIGHTS_AUTHENTICATION_STRING",
    "GUARDRAIL_METRICS_LOG",
    "GUARDRAIL_METRICS_EXPORT_SECONDS",
    *STORAGE_SETTINGS,
    "GUARDRAIL_STORAGE_CONNECT_TIMEOUT",
    "GUARDRAIL_STORAGE_READ_TIMEOUT",
    "GUARDRAIL_TOKEN_CONNECT_TIMEOUT",
    "GUARDRAIL_TOKEN_READ_TIMEOUT",
    "ARM_ENDPOINT",
    "ARM_CREDENTIAL",
    "ARM_CA_BUNDLE",
    "ARM_STATIC_TOKEN",
    "AZURE_CLIENT_ID",
    "ARM_RETRY_TOTAL",
    "ARM_RETRY_BACKOFF",
    "ARM_RETRY_BACKOFF_MAX",
    "ARM_MAX_RETRY_AFTER",
    "ARM_CONFLICT_RETRIES",
    "ARM_CONFLICT_BACKOFF",
    "ARM_PRECONDITION_RETRIES",
    "ARM_POLL_INTERVAL",
    "ARM_CONNECT_TIMEOUT",
    "ARM_READ_TIMEOUT",
    "ARM_LIST_CONCURRENCY",
    "ARM_CONNECTION_POOL_SIZE",
    "MONITOR_DCE_ENDPOINT",
    "MONITOR_DCR_IMMUTABLE_ID",
    "MONITOR_STREAM_NAME",
    "TEAMS_WEBHOOK_URL",
    "ACS_ENDPOINT",
    "ACS_CONNECTION_STRING",
    "ALERT_EMAIL_SENDER",
    "ALERT_EMAIL_RECIPIENTS",
    "ALERT_EMAIL_POLL_SECONDS",
    "ALERT_EMAIL_MAX_WAIT_SECONDS",
    "GUARDRAIL_SINK_ATTEMPTS",
    "GUARDRAIL_SINK_BACKOFF_SECONDS",
    "GUARDRAIL_SINK_MAX_BACKOFF_SECONDS",
    "GUARDRAIL_SINK_TIMEOUT_SECONDS",
    "GUARDRAIL_CA_BUNDLE",
    "GUARDRAIL_LOCAL_BEARER_TOKEN",
    *_CA_BUNDLE_VARIABLES,
)


class SettingsError(ValueError):
    """One or more settings are invalid; the message lists each by name (one per line after
    "invalid settings:"), and `problems` holds those lines."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(dict.fromkeys(problems))
        super().__init__("invalid settings:\n  " + "\n  ".join(self.problems))


@dataclass(frozen=True)
class MonitorSettings:
    """Azure Monitor Logs Ingestion: the data collection endpoint, rule and stream."""

    endpoint: str
    rule_id: str
    stream_name: str = DEFAULT_STREAM


@dataclass(frozen=True)
class EmailSettings:
    """Azure Communication Services Email: the sender, the recipients and the service (its endpoint
    with the managed identity, or a connection string)."""

    sender: str
    recipients: tuple[str, ...]
    endpoint: str | None = None
    connection_string: str | None = field(default=None, repr=False)
    poll_interval_s: float = 1.0
    max_wait_s: float = 20.0


@dataclass(frozen=True)
class SinkSettings:
    """Where findings and alerts go; None: that sink is not configured."""

    monitor: MonitorSettings | None = None
    findings_file: str | None = None
    teams_webhook_url: str | None = field(default=None, repr=False)
    email: EmailSettings | None = None
    retry: RetrySettings = field(default_factory=RetrySettings)
    ca_bundle: str | None = None  # local only: the CA that signs the local receivers
    local_bearer_token: str | None = field(default=None, repr=False)  # local only
    credential_timeouts: Timeouts = CREDENTIAL_TIMEOUTS  # the credential's token requests (Monitor, email)
    http: HttpEnvironment = field(default_factory=HttpEnvironment)  # requests' variables (Teams)


@dataclass(frozen=True)
class TelemetrySettings:
    """The metrics exporter: Application Insights (with Entra ID auth when the authentication string
    says so), or the log, or off."""

    connection_string: str | None = field(default=None, repr=False)
    authentication: str = ""
    log: bool = False
    export_seconds: float = 60.0


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
    identity: str | None  # the guardrail's own principal/app id, to recognise its own writes
    recheck_delay: timedelta = timedelta(minutes=5)  # a write whose provisioning failed: look again
    storage_timeouts: Timeouts = STORAGE_TIMEOUTS  # tables, the sweep queue, the dead-letter container
    credential_timeouts: Timeouts = CREDENTIAL_TIMEOUTS  # the credential's token requests
    arm: ArmSettings = field(default_factory=ArmSettings)
    sinks: SinkSettings = field(default_factory=SinkSettings)
    telemetry: TelemetrySettings = field(default_factory=TelemetrySettings)
    storage: StorageSettings = field(default_factory=StorageSettings)
    identity_client_id: str | None = None  # the worker's one user-assigned identity (None: system)
    http: HttpEnvironment = field(default_factory=HttpEnvironment)
    secrets_configured: tuple[str, ...] = ()  # the names of the secret settings given (never values)


class _Reader:
    """Reads settings from one mapping, collecting a problem per bad value (secrets not echoed)."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env
        self.problems: list[str] = []

    def problem(self, name: str, text: str) -> None:
        self.problems.append(f"{name}: {text}")

    def _shown(self, name: str, raw: str) -> str:
        return "the value given" if name in SECRET_SETTINGS else repr(raw)

    def given(self, name: str) -> bool:
        """Whether `name` has a value (as given: a bad one is named apart)."""
        return bool((self.env.get(name) or "").strip())

    def text(self, name: str) -> str | None:
        raw = (self.env.get(name) or "").strip()
        if raw.startswith(_KEY_VAULT_REFERENCE):
            self.problem(
                name,
                "is an unresolved Key Vault reference: give the app's identity 'Key Vault Secrets User' "
                "on the vault and check the secret's name",
            )
            return None
        return raw or None

    def whole(self, name: str, default: int, low: int = 1) -> int:
        return self._count(name, default, int, "a whole number", lambda v: v >= low, f"at least {low}")

    def number(self, name: str, default: float, *, zero_ok: bool = False) -> float:
        if zero_ok:
            return self._count(name, default, float, "a number", lambda v: v >= 0, "at least 0")
        return self._count(name, default, float, "a number", lambda v: v > 0, "greater than 0")

    def _count(
        self,
        name: str,
        default: _N,
        parse: Callable[[str], _N],
        what: str,
        fits: Callable[[_N], bool],
        bound: str,
    ) -> _N:
        raw = self.text(name)
        if raw is None:
            return default
        try:
            value = parse(raw)
        except ValueError:
            self.problem(name, f"{self._shown(name, raw)} is not {what}")
            return default
        if not math.isfinite(value) or not fits(value):
            self.problem(name, f"must be {bound} (got {raw})")
            return default
        return value

    def https_url(self, name: str) -> str | None:
        raw = self.text(name)
        if raw is None:
            return None
        try:
            parts = urlsplit(raw)
            ok = parts.scheme == "https" and bool(parts.hostname) and (parts.port is None or parts.port > 0)
        except ValueError:
            ok = False
        if not ok:
            shown = "" if name in SECRET_SETTINGS else f" ({raw!r})"
            self.problem(name, f"must be an https URL{shown}")
            return None
        return raw

    def file(self, name: str, hint: str = "") -> str | None:
        raw = self.text(name)
        if raw is not None and not os.path.isfile(raw):
            self.problem(name, f"{raw} is not a file{hint}")
        return raw

    def guid(self, name: str) -> str | None:
        raw = self.text(name)
        if raw is not None and not GUID_RE.fullmatch(raw):
            self.problem(name, f"{raw!r} is not a GUID")
        return raw

    def choice(self, name: str, allowed: tuple[str, ...], default: str) -> str:
        raw = (self.text(name) or default).lower()
        if raw not in allowed:
            self.problem(name, f"{raw!r} is not {' or '.join(allowed)}")
            return default
        return raw

    def flag(self, name: str) -> bool:
        raw = self.text(name)
        if raw is None:
            return False
        value = _FLAG_VALUES.get(raw.lower())
        if value is None:
            self.problem(name, f"{raw!r} is not 1/0, true/false or yes/no")
            return False
        return value


def _policy(read: _Reader) -> tuple[Policy, str]:
    path, inline = read.text("GUARDRAIL_POLICY_PATH"), read.text("GUARDRAIL_POLICY")
    if path and inline:
        read.problems.append("GUARDRAIL_POLICY_PATH and GUARDRAIL_POLICY are both set: choose one")
    elif path:
        try:
            return load_policy(path), path
        except PolicyError as error:
            read.problem("GUARDRAIL_POLICY_PATH", str(error))
    elif inline:
        try:
            return parse_policy_text(inline, "GUARDRAIL_POLICY"), "GUARDRAIL_POLICY"
        except PolicyError as error:  # its message starts with GUARDRAIL_POLICY
            read.problems.append(str(error))
    return Policy.default(), "built-in default"


def _timeouts(read: _Reader, prefix: str, default: Timeouts) -> Timeouts:
    """`{prefix}_CONNECT_TIMEOUT` and `{prefix}_READ_TIMEOUT`, seconds, each more than 0."""
    return Timeouts(
        connect=read.number(f"{prefix}_CONNECT_TIMEOUT", default.connect),
        read=read.number(f"{prefix}_READ_TIMEOUT", default.read),
    )


def _arm(read: _Reader, http: HttpEnvironment, credential_timeouts: Timeouts) -> ArmSettings:
    d = ArmSettings()
    credential = read.choice("ARM_CREDENTIAL", ("default", "static"), "default")
    if credential == "static" and not read.given("ARM_STATIC_TOKEN"):
        read.problem(
            "ARM_STATIC_TOKEN",
            "is not set (ARM_CREDENTIAL=static sends it as the bearer token; the local emulator prints one)",
        )
    return ArmSettings(
        endpoint=read.https_url("ARM_ENDPOINT"),
        ca_bundle=read.file(
            "ARM_CA_BUNDLE", ": point it at the CA bundle (the emulator prints its path as ca_bundle)"
        ),
        credential="static" if credential == "static" else "default",
        static_token=read.text("ARM_STATIC_TOKEN"),
        managed_identity_client_id=read.guid("AZURE_CLIENT_ID"),
        retry_total=read.whole("ARM_RETRY_TOTAL", d.retry_total, 0),
        retry_backoff=read.number("ARM_RETRY_BACKOFF", d.retry_backoff, zero_ok=True),
        retry_backoff_max=read.number("ARM_RETRY_BACKOFF_MAX", d.retry_backoff_max, zero_ok=True),
        max_retry_after=read.number("ARM_MAX_RETRY_AFTER", d.max_retry_after, zero_ok=True),
        conflict_retries=read.whole("ARM_CONFLICT_RETRIES", d.conflict_retries, 0),
        conflict_backoff=read.number("ARM_CONFLICT_BACKOFF", d.conflict_backoff, zero_ok=True),
        precondition_retries=read.whole("ARM_PRECONDITION_RETRIES", d.precondition_retries, 0),
        poll_interval=read.number("ARM_POLL_INTERVAL", d.poll_interval),
        connect_timeout=read.number("ARM_CONNECT_TIMEOUT", d.connect_timeout),
        read_timeout=read.number("ARM_READ_TIMEOUT", d.read_timeout),
        list_concurrency=read.whole("ARM_LIST_CONCURRENCY", d.list_concurrency),
        connection_pool_size=read.whole("ARM_CONNECTION_POOL_SIZE", d.connection_pool_size),
        credential_timeouts=credential_timeouts,
        http=http,
    )


def _sinks(read: _Reader, http: HttpEnvironment, credential_timeouts: Timeouts) -> SinkSettings:
    d = RetrySettings()
    retry = RetrySettings(
        attempts=read.whole("GUARDRAIL_SINK_ATTEMPTS", d.attempts),
        backoff_s=read.number("GUARDRAIL_SINK_BACKOFF_SECONDS", d.backoff_s, zero_ok=True),
        max_backoff_s=read.number("GUARDRAIL_SINK_MAX_BACKOFF_SECONDS", d.max_backoff_s, zero_ok=True),
        timeout_s=read.number("GUARDRAIL_SINK_TIMEOUT_SECONDS", d.timeout_s),
    )
    dce, dcr = read.https_url("MONITOR_DCE_ENDPOINT"), read.text("MONITOR_DCR_IMMUTABLE_ID")
    stream = read.text("MONITOR_STREAM_NAME") or DEFAULT_STREAM
    monitor = None
    if read.given("MONITOR_DCE_ENDPOINT") != read.given("MONITOR_DCR_IMMUTABLE_ID"):
        missing, present = (
            ("MONITOR_DCR_IMMUTABLE_ID", "MONITOR_DCE_ENDPOINT")
            if read.given("MONITOR_DCE_ENDPOINT")
            else ("MONITOR_DCE_ENDPOINT", "MONITOR_DCR_IMMUTABLE_ID")
        )
        read.problem(missing, f"is not set, but {present} is (Azure Monitor needs both)")
    elif dce and dcr:
        monitor = MonitorSettings(dce, dcr, stream)
    return SinkSettings(
        monitor=monitor,
        findings_file=read.text("GUARDRAIL_FINDINGS_FILE"),
        teams_webhook_url=read.https_url("TEAMS_WEBHOOK_URL"),
        email=_email(read),
        retry=retry,
        ca_bundle=read.file("GUARDRAIL_CA_BUNDLE"),
        local_bearer_token=read.text("GUARDRAIL_LOCAL_BEARER_TOKEN"),
        credential_timeouts=credential_timeouts,
        http=http,
    )


def _email(read: _Reader) -> EmailSettings | None:
    recipients = tuple(parse_recipients(read.text("ALERT_EMAIL_RECIPIENTS") or ""))
    for address in recipients:
        if not _EMAIL_RE.fullmatch(address):
            read.problem("ALERT_EMAIL_RECIPIENTS", f"{address!r} is not an email address")
    sender = read.text("ALERT_EMAIL_SENDER")
    if sender is not None and not _EMAIL_RE.fullmatch(sender):
        read.problem("ALERT_EMAIL_SENDER", f"{sender!r} is not an email address")
    endpoint = read.https_url("ACS_ENDPOINT")
    connection = read.text("ACS_CONNECTION_STRING")
    if connection is not None:
        parts = dict(p.partition("=")[::2] for p in connection.split(";") if p.strip())
        parts = {k.strip().lower(): v.strip() for k, v in parts.items()}
        if not parts.get("endpoint", "").startswith("https://") or not parts.get("accesskey"):
            read.problem("ACS_CONNECTION_STRING", "must be endpoint=https://...;accesskey=...")
    poll = read.number("ALERT_EMAIL_POLL_SECONDS", 1.0)
    wait = read.number("ALERT_EMAIL_MAX_WAIT_SECONDS", 20.0, zero_ok=True)
    # The recipients switch email on (the infrastructure may set the sender and the service alone).
    if not recipients:
        return None
    if not read.given("ALERT_EMAIL_SENDER"):
        read.problem(
            "ALERT_EMAIL_SENDER", "is not set (email alerts to ALERT_EMAIL_RECIPIENTS need a sender)"
        )
    if not read.given("ACS_ENDPOINT") and not read.given("ACS_CONNECTION_STRING"):
        read.problem(
            "ACS_ENDPOINT or ACS_CONNECTION_STRING",
            "is not set (email alerts to ALERT_EMAIL_RECIPIENTS need Communication Services)",
        )
    if not (sender and (endpoint or connection)):
        return None
    return EmailSettings(
        sender=str(sender),
        recipients=recipients,
        endpoint=None if connection else endpoint,
        connection_string=connection,
        poll_interval_s=poll,
        max_wait_s=wait,
    )


def _telemetry(read: _Reader) -> TelemetrySettings:
    return TelemetrySettings(
        connection_string=read.text("APPLICATIONINSIGHTS_CONNECTION_STRING"),
        authentication=read.text("APPLICATIONINSIGHTS_AUTHENTICATION_STRING") or "",
        log=read.flag("GUARDRAIL_METRICS_LOG"),
        export_seconds=read.number("GUARDRAIL_METRICS_EXPORT_SECONDS", 60.0),
    )


def _storage(read: _Reader) -> StorageSettings:
    services: tuple[Service, ...] = ("table", "queue", "blob")
    uris = tuple(
        (service, uri)
        for service in services
        if (uri := read.https_url(f"AzureWebJobsStorage__{service}ServiceUri")) is not None
    )
    account = read.text("AzureWebJobsStorage__accountName")
    if account is not None and not _STORAGE_ACCOUNT_RE.fullmatch(account):
        read.problem("AzureWebJobsStorage__accountName", f"{account!r} is not a storage account name")
        account = None
    return StorageSettings(read.text("AzureWebJobsStorage"), account, uris)


def _identity_client_id(read: _Reader, arm: ArmSettings, telemetry: TelemetrySettings) -> str | None:
    """The worker's one identity: every Azure client (ARM, storage, the sinks, the exporter) uses it."""
    named = {
        "AZURE_CLIENT_ID": arm.managed_identity_client_id,
        "AzureWebJobsStorage__clientId": read.guid("AzureWebJobsStorage__clientId"),
        "APPLICATIONINSIGHTS_AUTHENTICATION_STRING": _authentication_client_id(telemetry.authentication),
    }
    given = {name: value for name, value in named.items() if value}
    chosen = next(iter(given.values()), None)
    for name, value in given.items():
        if value.lower() != str(chosen).lower():
            first = next(iter(given))
            read.problem(name, f"names another identity than {first}: the guardrail runs as one identity")
    return chosen


def _authentication_client_id(text: str) -> str | None:
    """``ClientId=...`` of ``APPLICATIONINSIGHTS_AUTHENTICATION_STRING`` (``...;Authorization=AAD``)."""
    for item in text.split(";"):
        key, sep, value = item.partition("=")
        if sep and key.strip().lower() == "clientid" and value.strip():
            return value.strip()
    return None


def _http(read: _Reader) -> HttpEnvironment:
    """What requests would take from the environment on every request: a CA bundle (a file), and
    whether a proxy variable (any case, ``NO_PROXY`` included, as urllib reads them) is set."""
    bundles = [read.file(name) for name in _CA_BUNDLE_VARIABLES]
    ca_bundle = next((bundle for bundle in bundles if bundle), None)
    proxies = any(name.lower().endswith("_proxy") and value for name, value in read.env.items())
    return HttpEnvironment(ca_bundle=ca_bundle, proxies=proxies)


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Read and validate every setting; raises SettingsError naming every bad one."""
    given = os.environ if env is None else env
    read = _Reader(given)
    policy, source = _policy(read)
    mode = read.text("GUARDRAIL_MODE") or policy.mode
    if mode not in get_args(Mode):
        read.problem("GUARDRAIL_MODE", f"{mode!r} is not enforce or audit")
        mode = policy.mode
    listed = (read.text("GUARDRAIL_SUBSCRIPTIONS") or "").split(",")
    subscriptions = tuple(s.strip() for s in listed if s.strip())
    for sub in subscriptions:
        if not GUID_RE.fullmatch(sub):
            read.problem("GUARDRAIL_SUBSCRIPTIONS", f"{sub!r} is not a subscription ID (a GUID)")
    schedule = read.text("GUARDRAIL_SWEEP_SCHEDULE") or DEFAULT_SWEEP_SCHEDULE
    if not _NCRONTAB_RE.match(schedule):
        read.problem("GUARDRAIL_SWEEP_SCHEDULE", f"{schedule!r} is not a six-field NCRONTAB expression")
    credential_timeouts = _timeouts(read, "GUARDRAIL_TOKEN", CREDENTIAL_TIMEOUTS)
    http = _http(read)
    arm = _arm(read, http, credential_timeouts)
    telemetry = _telemetry(read)
    identity = read.guid("GUARDRAIL_IDENTITY") or arm.managed_identity_client_id
    settings = Settings(
        policy=policy,
        policy_source=source,
        mode="audit" if mode == "audit" else "enforce",
        subscriptions=subscriptions,
        sweep_schedule=schedule,
        sweep_concurrency=read.whole("GUARDRAIL_SWEEP_CONCURRENCY", 16),
        writes_per_second=read.number("GUARDRAIL_WRITES_PER_SECOND", 10.0),
        breaker_max_remediations=read.whole("GUARDRAIL_BREAKER_MAX_REMEDIATIONS", 3),
        breaker_window=timedelta(minutes=read.whole("GUARDRAIL_BREAKER_WINDOW_MINUTES", 30)),
        alert_cooldown=timedelta(minutes=read.whole("GUARDRAIL_ALERT_COOLDOWN_MINUTES", 60, 0)),
        identity=identity,
        recheck_delay=timedelta(minutes=read.whole("GUARDRAIL_RECHECK_MINUTES", 5, 0)),
        storage_timeouts=_timeouts(read, "GUARDRAIL_STORAGE", STORAGE_TIMEOUTS),
        credential_timeouts=credential_timeouts,
        arm=arm,
        sinks=_sinks(read, http, credential_timeouts),
        telemetry=telemetry,
        storage=_storage(read),
        identity_client_id=_identity_client_id(read, arm, telemetry),
        http=http,
        secrets_configured=tuple(sorted(name for name in SECRET_SETTINGS if given.get(name))),
    )
    if read.problems:
        raise SettingsError(read.problems)
    return settings
