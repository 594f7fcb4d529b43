"""The settings model (guardrail/settings.py): every app setting validated once, every bad one named
in one SettingsError, no secret echoed; the health check and the CLI show that same error and do
nothing else; docs/settings.md documents exactly the settings the model reads."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from guardrail import functions
from guardrail.cli import one_line
from guardrail.gateway import ArmSettings
from guardrail.settings import SECRET_SETTINGS, SETTING_NAMES, SettingsError, load_settings
from guardrail.sinks import RetrySettings
from guardrail.transport import Timeouts
from guardrail_workbench.emulator import Emulator
from tests.conftest import REPO

from .test_core_cli_errors import ID, assert_one_line_error, clean_env, guardrail

KV = "@Microsoft.KeyVault(SecretUri=https://vault.example/secrets/TOPSECRET)"
MISSING = REPO / "tests" / "no-such-folder"  # inside the checkout: no test looks outside it
MISSING_FILE = str(MISSING / "ca.pem")
EMAIL = {
    "ALERT_EMAIL_RECIPIENTS": "secops@contoso.example",
    "ALERT_EMAIL_SENDER": "DoNotReply@contoso.example",
    "ACS_ENDPOINT": "https://acs.example.communication.azure.com",
}
ARM_WHOLE = (
    "ARM_RETRY_TOTAL",
    "ARM_CONFLICT_RETRIES",
    "ARM_PRECONDITION_RETRIES",
    "ARM_LIST_CONCURRENCY",
    "ARM_CONNECTION_POOL_SIZE",
)
ARM_NUMBER = (
    "ARM_RETRY_BACKOFF",
    "ARM_RETRY_BACKOFF_MAX",
    "ARM_MAX_RETRY_AFTER",
    "ARM_CONFLICT_BACKOFF",
    "ARM_POLL_INTERVAL",
    "ARM_CONNECT_TIMEOUT",
    "ARM_READ_TIMEOUT",
)

#: (setting, bad value, other settings it needs beside it). Secret values carry TOPSECRET.
BAD: list[tuple[str, str, dict[str, str]]] = [
    ("GUARDRAIL_POLICY_PATH", str(MISSING / "policy.yaml"), {}),
    ("GUARDRAIL_POLICY", "version: 2", {}),
    ("GUARDRAIL_MODE", "bogus", {}),
    ("GUARDRAIL_SUBSCRIPTIONS", "not-a-subscription", {}),
    ("GUARDRAIL_SWEEP_SCHEDULE", "*/5 * * * *", {}),
    ("GUARDRAIL_SWEEP_CONCURRENCY", "many", {}),
    ("GUARDRAIL_SWEEP_CONCURRENCY", "0", {}),
    ("GUARDRAIL_WRITES_PER_SECOND", "0", {}),
    ("GUARDRAIL_WRITES_PER_SECOND", "nan", {}),
    ("GUARDRAIL_BREAKER_MAX_REMEDIATIONS", "1.5", {}),
    ("GUARDRAIL_BREAKER_WINDOW_MINUTES", "0", {}),
    ("GUARDRAIL_ALERT_COOLDOWN_MINUTES", "-1", {}),
    ("GUARDRAIL_RECHECK_MINUTES", "-1", {}),
    ("GUARDRAIL_FINDINGS_FILE", KV, {}),
    ("GUARDRAIL_IDENTITY", "the-guardrail", {}),
    ("APPLICATIONINSIGHTS_CONNECTION_STRING", KV, {}),
    ("APPLICATIONINSIGHTS_AUTHENTICATION_STRING", KV, {}),
    ("GUARDRAIL_METRICS_LOG", "maybe", {}),
    ("GUARDRAIL_METRICS_EXPORT_SECONDS", "0", {}),
    ("AzureWebJobsStorage", KV, {}),
    ("AzureWebJobsStorage__accountName", "Not_An_Account", {}),
    ("AzureWebJobsStorage__tableServiceUri", "http://st.table.core.windows.net", {}),
    ("AzureWebJobsStorage__queueServiceUri", "st.queue.core.windows.net", {}),
    ("AzureWebJobsStorage__blobServiceUri", "ftp://st.blob.core.windows.net", {}),
    ("AzureWebJobsStorage__clientId", "not-a-guid", {}),
    ("GUARDRAIL_STORAGE_CONNECT_TIMEOUT", "0", {}),
    ("GUARDRAIL_STORAGE_READ_TIMEOUT", "forever", {}),
    ("GUARDRAIL_TOKEN_CONNECT_TIMEOUT", "-1", {}),
    ("GUARDRAIL_TOKEN_READ_TIMEOUT", "inf", {}),
    ("ARM_ENDPOINT", "http://management.azure.com", {}),
    ("ARM_CREDENTIAL", "password", {}),
    ("ARM_CA_BUNDLE", MISSING_FILE, {}),
    ("ARM_STATIC_TOKEN", KV, {}),
    ("ARM_STATIC_TOKEN", "", {"ARM_CREDENTIAL": "static"}),
    ("AZURE_CLIENT_ID", "not-a-guid", {}),
    ("REQUESTS_CA_BUNDLE", MISSING_FILE, {}),
    ("CURL_CA_BUNDLE", MISSING_FILE, {}),
    *[(name, "x", {}) for name in ARM_WHOLE],
    *[(name, "-1", {}) for name in ARM_WHOLE],
    *[(name, "soon", {}) for name in ARM_NUMBER],
    *[(name, "-1", {}) for name in ARM_NUMBER],
    ("MONITOR_DCE_ENDPOINT", "http://dce.example", {"MONITOR_DCR_IMMUTABLE_ID": "dcr-1"}),
    ("MONITOR_DCE_ENDPOINT", "", {"MONITOR_DCR_IMMUTABLE_ID": "dcr-1"}),
    ("MONITOR_DCR_IMMUTABLE_ID", "", {"MONITOR_DCE_ENDPOINT": "https://dce.example"}),
    ("MONITOR_STREAM_NAME", KV, {}),
    ("TEAMS_WEBHOOK_URL", "http://prod.logic.example/workflows/x?sig=TOPSECRET", {}),
    ("TEAMS_WEBHOOK_URL", "TOPSECRET", {}),
    ("TEAMS_WEBHOOK_URL", KV, {}),
    ("ACS_ENDPOINT", "http://acs.example", {**EMAIL}),
    ("ACS_ENDPOINT", "", {k: v for k, v in EMAIL.items() if k != "ACS_ENDPOINT"}),
    ("ACS_CONNECTION_STRING", "accesskey=TOPSECRET", {**EMAIL}),
    ("ACS_CONNECTION_STRING", "endpoint=http://acs.example;accesskey=TOPSECRET", {**EMAIL}),
    ("ALERT_EMAIL_SENDER", "nobody", {**EMAIL}),
    ("ALERT_EMAIL_SENDER", "", {**EMAIL}),
    ("ALERT_EMAIL_RECIPIENTS", "secops, soc@contoso.example", {**EMAIL}),
    ("ALERT_EMAIL_POLL_SECONDS", "0", {}),
    ("ALERT_EMAIL_MAX_WAIT_SECONDS", "-1", {}),
    ("GUARDRAIL_SINK_ATTEMPTS", "0", {}),
    ("GUARDRAIL_SINK_ATTEMPTS", "three", {}),
    ("GUARDRAIL_SINK_BACKOFF_SECONDS", "-0.5", {}),
    ("GUARDRAIL_SINK_MAX_BACKOFF_SECONDS", "later", {}),
    ("GUARDRAIL_SINK_TIMEOUT_SECONDS", "0", {}),
    ("GUARDRAIL_CA_BUNDLE", MISSING_FILE, {}),
    ("GUARDRAIL_LOCAL_BEARER_TOKEN", KV, {}),
]


def _problems(error: SettingsError) -> list[str]:
    lines = str(error).splitlines()
    assert lines[0] == "invalid settings:"
    return [line.strip() for line in lines[1:]]


def test_every_setting_has_a_bad_value_in_the_table() -> None:
    assert {name for name, _, _ in BAD} == set(SETTING_NAMES)


@pytest.mark.parametrize(("name", "value", "beside"), BAD, ids=[f"{n}={v[:24]}" for n, v, _ in BAD])
def test_a_bad_value_is_named_and_no_secret_is_echoed(name: str, value: str, beside: dict[str, str]) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings({**beside, name: value})
    problems = _problems(caught.value)
    assert len(problems) == 1, problems
    if name == "ACS_ENDPOINT" and not value:
        name = "ACS_ENDPOINT or ACS_CONNECTION_STRING"
    assert problems[0].startswith(f"{name}:"), problems
    assert "TOPSECRET" not in str(caught.value)


def test_every_bad_setting_is_named_in_one_error() -> None:
    env: dict[str, str] = {}
    for name, value, _ in BAD:
        if value and name not in env and name != "GUARDRAIL_POLICY":  # policy: path or inline
            env[name] = value
    env.update(ALERT_EMAIL_RECIPIENTS="secops, soc@contoso.example", MONITOR_DCR_IMMUTABLE_ID="")
    with pytest.raises(SettingsError) as caught:
        load_settings(env)
    named = {problem.split(":", 1)[0] for problem in _problems(caught.value)}
    assert named == set(env)
    assert "TOPSECRET" not in str(caught.value)


def test_good_values_reach_the_model() -> None:
    settings = load_settings(
        {
            **EMAIL,
            "GUARDRAIL_MODE": "audit",
            "ARM_RETRY_TOTAL": "0",
            "ARM_POLL_INTERVAL": "0.25",
            "GUARDRAIL_SINK_ATTEMPTS": "5",
            "GUARDRAIL_SINK_BACKOFF_SECONDS": "0",
            "ALERT_EMAIL_MAX_WAIT_SECONDS": "0",
            "MONITOR_DCE_ENDPOINT": "https://dce.example",
            "MONITOR_DCR_IMMUTABLE_ID": "dcr-1",
            "TEAMS_WEBHOOK_URL": "https://prod.logic.example/workflows/x?sig=TOPSECRET",
            "GUARDRAIL_METRICS_LOG": "yes",
            "GUARDRAIL_STORAGE_READ_TIMEOUT": "7.5",
            "GUARDRAIL_TOKEN_CONNECT_TIMEOUT": "1",
        }
    )
    assert settings.storage_timeouts == Timeouts(connect=2.0, read=7.5)
    assert settings.credential_timeouts == Timeouts(connect=1.0, read=10.0)
    assert (
        settings.sinks.credential_timeouts == settings.credential_timeouts == settings.arm.credential_timeouts
    )
    assert settings.mode == "audit"
    assert settings.arm == ArmSettings(
        retry_total=0,
        poll_interval=0.25,
        credential_timeouts=Timeouts(1.0, 10.0),
    )
    assert settings.sinks.retry == RetrySettings(attempts=5, backoff_s=0)
    assert settings.sinks.email is not None and settings.sinks.email.max_wait_s == 0
    assert settings.sinks.email.recipients == ("secops@contoso.example",)
    assert settings.sinks.monitor is not None and settings.sinks.monitor.rule_id == "dcr-1"
    assert settings.telemetry.log is True
    assert "TOPSECRET" not in repr(settings)


def test_the_model_reads_exactly_its_settings() -> None:
    class Recording(dict[str, str]):
        seen: set[str]

        def get(self, key: str, default: Any = None) -> Any:
            self.seen.add(key)
            return super().get(key, default)

    env = Recording()
    env.seen = set()
    load_settings(env)
    assert env.seen == set(SETTING_NAMES)
    assert set(SETTING_NAMES) >= SECRET_SETTINGS


def _documented() -> set[str]:
    names: set[str] = set()
    for line in (REPO / "docs" / "settings.md").read_text(encoding="utf-8").splitlines():
        if line.startswith("| `"):
            first_cell = line.split("|")[1]
            names |= set(re.findall(r"`([A-Za-z_][A-Za-z0-9_]*)`", first_cell))
    return names


def test_docs_document_exactly_the_settings() -> None:
    assert _documented() == set(SETTING_NAMES)


# ---------------------------------------------------------------------------- health and CLI

#: Bad values across the policy, ARM, the sinks and telemetry, the Teams webhook (a secret) among them.
SEVERAL_BAD = {
    "GUARDRAIL_MODE": "bogus",
    "ARM_RETRY_TOTAL": "x",
    "GUARDRAIL_SINK_ATTEMPTS": "0",
    "TEAMS_WEBHOOK_URL": "http://prod.logic.example/workflows/x?sig=TOPSECRET",
    "ALERT_EMAIL_RECIPIENTS": "secops",
    "GUARDRAIL_METRICS_EXPORT_SECONDS": "soon",
}


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    with Emulator(port=0) as running:
        running.seed_file(REPO / "samples" / "tenant.json")
        yield running


def test_health_and_cli_show_the_same_one_error_and_do_nothing(emulator: Emulator, tmp_path: Path) -> None:
    findings = tmp_path / "findings.jsonl"
    env = clean_env(
        ARM_ENDPOINT=emulator.endpoint,
        ARM_CA_BUNDLE=emulator.ca_bundle,
        GUARDRAIL_FINDINGS_FILE=str(findings),
        **SEVERAL_BAD,
    )
    with pytest.raises(SettingsError) as caught:
        load_settings(env)
    problems = _problems(caught.value)
    assert {p.split(":", 1)[0] for p in problems} == set(SEVERAL_BAD) | {"ALERT_EMAIL_SENDER"} | {
        "ACS_ENDPOINT or ACS_CONNECTION_STRING"
    }

    status, body = functions.health_report(env)
    assert status == 503 and "TOPSECRET" not in body
    report = json.loads(body)
    assert report["status"] == "misconfigured" and report["problems"] == problems

    before = len(emulator.app.requests)
    for argv in (("check", ID), ("sweep",)):
        run = guardrail(*argv, env=env)
        line = assert_one_line_error(run, *SEVERAL_BAD)
        assert line == f"guardrail: error: {one_line(str(caught.value))}"
        assert "TOPSECRET" not in run.stderr + run.stdout
    assert len(emulator.app.requests) == before  # no ARM call
    assert not findings.exists()  # no finding written
