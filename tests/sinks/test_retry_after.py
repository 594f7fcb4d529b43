"""One Retry-After parser (seconds and HTTP dates) and the sinks' azure-core retry policy."""

from __future__ import annotations

import datetime as dt
import email.utils
import time
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from guardrail.alerts import Alert, compose_alert
from guardrail.findings import FindingRecord
from guardrail.retry_after import parse_retry_after, retry_after_from_headers
from guardrail.sinks import RetrySettings
from guardrail.sinks.email import EmailSink
from guardrail.sinks.monitor import MonitorSink
from guardrail.sinks.teams import TeamsSink
from guardrail_workbench.receivers import EmailReceiver, IngestionReceiver, TeamsReceiver

MakeRecord = Callable[..., FindingRecord]
NOW = dt.datetime(2026, 10, 21, 7, 27, 0, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("120", 120.0),
        (" 7 ", 7.0),
        ("0", 0.0),
        ("1.5", 1.5),
        ("Wed, 21 Oct 2026 07:28:00 GMT", 60.0),  # IMF-fixdate
        ("Wednesday, 21-Oct-26 07:28:00 GMT", 60.0),  # obsolete RFC 850
        ("Wed Oct 21 07:28:00 2026", 60.0),  # obsolete asctime
        ("Wed, 21 Oct 2026 07:26:00 GMT", 0.0),  # in the past: retry now
        ("-5", None),
        ("nan", None),
        ("inf", None),
        ("", None),
        ("soon", None),
        (None, None),
    ],
)
def test_parse_retry_after_takes_seconds_and_http_dates(value: str | None, seconds: float | None) -> None:
    assert parse_retry_after(value, now=NOW) == seconds


@given(st.integers(min_value=0, max_value=10**9))
def test_delta_seconds_read_as_themselves(n: int) -> None:
    assert parse_retry_after(str(n)) == n


@given(st.datetimes(min_value=dt.datetime(1990, 1, 1), max_value=dt.datetime(2100, 1, 1)))
def test_an_http_date_is_the_time_until_it(naive: dt.datetime) -> None:
    when = naive.replace(microsecond=0, tzinfo=dt.UTC)
    header = email.utils.format_datetime(when, usegmt=True)
    assert parse_retry_after(header, now=NOW) == max(0.0, (when - NOW).total_seconds())


def test_headers_in_any_case_and_the_millisecond_headers_first() -> None:
    assert retry_after_from_headers({"retry-after": "3"}) == 3.0
    assert retry_after_from_headers({"Retry-After": "3", "x-ms-retry-after-ms": "250"}) == 0.25
    assert retry_after_from_headers({"Retry-After-Ms": "1500"}) == 1.5
    assert retry_after_from_headers({"retry-after-ms": "soon", "Retry-After": "2"}) == 2.0
    assert retry_after_from_headers({}) is None and retry_after_from_headers(None) is None


# -- the sinks --------------------------------------------------------------------------------


def _alert(make_record: MakeRecord) -> Alert:
    alert = compose_alert([make_record()])
    assert alert is not None
    return alert


def _http_date_in(seconds: float) -> str:
    return email.utils.format_datetime(dt.datetime.now(dt.UTC) + dt.timedelta(seconds=seconds), usegmt=True)


def test_teams_waits_for_a_retry_after_given_as_an_http_date(
    teams_rx: TeamsReceiver, ca_bundle: str, make_record: MakeRecord
) -> None:
    retry = RetrySettings(attempts=2, backoff_s=0, max_backoff_s=5, timeout_s=2)
    teams_rx.fail_next(1, status=429, retry_after=_http_date_in(2.5))
    started = time.monotonic()
    result = TeamsSink(teams_rx.webhook_url, ca_bundle=ca_bundle, retry=retry).send_alert(_alert(make_record))
    waited = time.monotonic() - started
    assert result.delivered and result.attempts == 2
    assert 1.0 <= waited < 5  # the date said "in about 2 s" (HTTP dates have whole seconds)


def test_a_huge_retry_after_does_not_hold_up_the_remediation(
    teams_rx: TeamsReceiver, ca_bundle: str, make_record: MakeRecord
) -> None:
    retry = RetrySettings(attempts=3, backoff_s=0, max_backoff_s=0.2, timeout_s=2)
    teams_rx.fail_next(3, status=503, retry_after=_http_date_in(3600))
    started = time.monotonic()
    result = TeamsSink(teams_rx.webhook_url, ca_bundle=ca_bundle, retry=retry).send_alert(_alert(make_record))
    assert not result.delivered and result.attempts == 3 and result.detail == "HTTP 503"
    assert time.monotonic() - started < 3  # at most max_backoff_s per wait, not an hour


def test_monitor_and_email_retry_after_an_http_date(
    ingestion_rx: IngestionReceiver, email_rx: EmailReceiver, ca_bundle: str, make_record: MakeRecord
) -> None:
    from guardrail.sinks import StaticTokenCredential

    retry = RetrySettings(attempts=2, backoff_s=0, max_backoff_s=5, timeout_s=2)
    ingestion_rx.fail_next(1, status=429, retry_after=_http_date_in(2.5))
    monitor = MonitorSink(
        ingestion_rx.endpoint,
        ingestion_rx.dcr_immutable_id,
        credential=StaticTokenCredential("local-test-token"),
        connection_verify=ca_bundle,
        retry=retry,
    )
    started = time.monotonic()
    assert monitor.send([make_record()]).attempts == 2
    assert time.monotonic() - started >= 1.0
    assert len(ingestion_rx.records) == 1

    email_rx.fail_next(1, status=429, retry_after=_http_date_in(2.5))
    sink = EmailSink(
        sender="DoNotReply@guardrail.contoso.example",
        recipients=["secops@contoso.example"],
        connection_string=email_rx.connection_string,
        connection_verify=ca_bundle,
        retry=retry,
        poll_interval_s=0.05,
    )
    started = time.monotonic()
    result = sink.send_alert(_alert(make_record))
    assert result.delivered and result.attempts == 2
    assert time.monotonic() - started >= 1.0
    assert len(email_rx.messages) == 1


def test_teams_posts_through_the_pooled_azure_core_transport(
    teams_rx: TeamsReceiver,
    ca_bundle: str,
    fast_retry: RetrySettings,
    make_record: MakeRecord,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import guardrail.transport

    built: list[dict[str, Any]] = []
    original = guardrail.transport.pooled_transport

    def spy(**kwargs: Any) -> Any:
        built.append(kwargs)
        return original(**kwargs)

    monkeypatch.setattr(guardrail.transport, "pooled_transport", spy)
    sink = TeamsSink(teams_rx.webhook_url, ca_bundle=ca_bundle, retry=fast_retry)
    assert sink.send_alert(_alert(make_record)).delivered
    assert sink.send_alert(_alert(make_record)).delivered
    assert built == [
        {
            "pool_size": 4,
            "connection_timeout": 0.5,
            "read_timeout": 0.5,
            "connection_verify": ca_bundle,
            "environment": None,
        }
    ]  # built once, on first use
    assert len(teams_rx.messages) == 2
