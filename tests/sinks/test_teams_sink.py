"""TeamsSink against the local Workflows receiver over HTTPS."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

import pytest

from guardrail.alerts import Alert, compose_alert, to_adaptive_card
from guardrail.findings import FindingRecord
from guardrail.settings import load_settings
from guardrail.sinks import RetrySettings, alert_sinks
from guardrail.sinks.teams import TeamsSink
from guardrail_workbench.receivers import TeamsReceiver

from .cardcheck import validate_teams_message

MakeRecord = Callable[..., FindingRecord]


def _alert(make_record: MakeRecord) -> Alert:
    alert = compose_alert([make_record(), make_record(rule="bypass-not-allowed", value="AzureServices")])
    assert alert is not None
    return alert


def _assert_secret_not_logged(rx: TeamsReceiver, caplog: pytest.LogCaptureFixture) -> None:
    text = "\n".join(f"{r.getMessage()} {r.args!r} {r.exc_text or ''}" for r in caplog.records)
    assert caplog.records, "expected some log lines to inspect"
    assert rx.signature not in text
    assert rx.workflow_id not in text
    assert rx.webhook_url not in text


def test_card_is_delivered(
    teams_rx: TeamsReceiver,
    ca_bundle: str,
    fast_retry: RetrySettings,
    make_record: MakeRecord,
    caplog: pytest.LogCaptureFixture,
) -> None:
    alert = _alert(make_record)
    sink = TeamsSink(teams_rx.webhook_url, ca_bundle=ca_bundle, retry=fast_retry)
    with caplog.at_level(logging.DEBUG):
        result = sink.send_alert(alert)
    assert result.delivered and result.detail == "HTTP 202" and result.attempts == 1
    assert teams_rx.violations == []
    assert teams_rx.messages == [to_adaptive_card(alert)]
    assert validate_teams_message(teams_rx.messages[0]) == []
    assert teams_rx.requests[0].headers["content-type"] == "application/json"
    _assert_secret_not_logged(teams_rx, caplog)
    assert teams_rx.signature not in repr(sink) and teams_rx.signature not in repr(result)


@pytest.mark.parametrize("mode", ["status", "timeout"])
def test_failures_are_retried_then_reported_without_raising(
    teams_rx: TeamsReceiver,
    ca_bundle: str,
    make_record: MakeRecord,
    caplog: pytest.LogCaptureFixture,
    mode: str,
) -> None:
    retry = RetrySettings(attempts=3, backoff_s=0, timeout_s=0.3)
    if mode == "status":
        teams_rx.fail_next(3, status=500)
    else:
        teams_rx.timeout_next(3, delay=1.0)
    sink = TeamsSink(teams_rx.webhook_url, ca_bundle=ca_bundle, retry=retry)
    with caplog.at_level(logging.DEBUG):
        result = sink.send_alert(_alert(make_record))
    assert not result.delivered and result.attempts == 3
    assert result.detail == "HTTP 500" if mode == "status" else result.detail.startswith("timeout")
    assert len(teams_rx.requests) == 3 and teams_rx.messages == []
    _assert_secret_not_logged(teams_rx, caplog)
    assert any(
        r.levelno == logging.ERROR and "teams webhook (127.0.0.1)" in r.getMessage() for r in caplog.records
    )
    (lost,) = [json.loads(r.getMessage()) for r in caplog.records if r.name == "guardrail.alerts"]
    assert lost["undelivered"] == "teams" and lost["resourceId"].endswith("/accounts/Acct1")


def test_transient_failure_then_success(
    teams_rx: TeamsReceiver, ca_bundle: str, fast_retry: RetrySettings, make_record: MakeRecord
) -> None:
    teams_rx.fail_next(1, status=429, retry_after="0")
    teams_rx.fail_next(1, status=502)
    result = TeamsSink(teams_rx.webhook_url, ca_bundle=ca_bundle, retry=fast_retry).send_alert(
        _alert(make_record)
    )
    assert result.delivered and result.attempts == 3
    assert len(teams_rx.messages) == 1


def test_tls_is_verified(teams_rx: TeamsReceiver, fast_retry: RetrySettings, make_record: MakeRecord) -> None:
    # without the local CA the certificate must be refused: no silent verify=False
    result = TeamsSink(teams_rx.webhook_url, retry=fast_retry).send_alert(_alert(make_record))
    assert not result.delivered and teams_rx.messages == []


def test_bad_url_is_refused_without_echoing_it() -> None:
    with pytest.raises(ValueError) as err:
        TeamsSink("http://example.invalid/workflows/x?sig=topsecret")
    assert "topsecret" not in str(err.value)
    assert alert_sinks(load_settings({}).sinks) == []
