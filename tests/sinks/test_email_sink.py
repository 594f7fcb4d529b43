"""EmailSink with the real azure-communication-email EmailClient against the local ACS receiver."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable

import pytest

from guardrail.alerts import Alert, compose_alert, to_email
from guardrail.findings import FindingRecord
from guardrail.settings import SettingsError, load_settings
from guardrail.sinks import RetrySettings, StaticTokenCredential, alert_sinks
from guardrail.sinks.email import EmailSink
from guardrail_workbench.receivers import EmailReceiver

from .conftest import RID

MakeRecord = Callable[..., FindingRecord]
RECIPIENTS = ["secops@contoso.example", "oncall@contoso.example"]


def _alert(make_record: MakeRecord) -> Alert:
    alert = compose_alert(
        [
            make_record(),
            make_record(rule="ip-rule-too-broad", value="20.1.2.3", message="<img src=x onerror=alert(1)>"),
        ]
    )
    assert alert is not None
    return alert


def _sink(rx: EmailReceiver, ca: str, retry: RetrySettings, **kw: object) -> EmailSink:
    return EmailSink(
        sender="DoNotReply@guardrail.contoso.example",
        recipients=RECIPIENTS,
        connection_string=rx.connection_string,
        connection_verify=ca,
        retry=retry,
        poll_interval_s=0.05,
        **kw,  # type: ignore[arg-type]
    )


def test_email_request_matches_the_service_shape(
    email_rx: EmailReceiver,
    ca_bundle: str,
    fast_retry: RetrySettings,
    make_record: MakeRecord,
    caplog: pytest.LogCaptureFixture,
) -> None:
    alert = _alert(make_record)
    started = time.monotonic()
    with caplog.at_level(logging.DEBUG):
        result = _sink(email_rx, ca_bundle, fast_retry).send_alert(alert)
    assert time.monotonic() - started < 5  # polled quickly, not the SDK's 30 s default
    assert result.delivered and result.detail == "Succeeded"
    assert email_rx.violations == []
    assert email_rx.auth_schemes and set(email_rx.auth_schemes) == {"hmac"}
    assert [r.method for r in email_rx.requests] == ["POST", "GET", "GET"]  # send, Running, Succeeded
    assert email_rx.requests[0].path == "/emails:send"
    assert email_rx.requests[0].headers.get("operation-id")
    (message,) = email_rx.messages
    subject, plain, html = to_email(alert)
    assert message == {
        "senderAddress": "DoNotReply@guardrail.contoso.example",
        "recipients": {"to": [{"address": a} for a in RECIPIENTS]},
        "content": {"subject": subject, "plainText": plain, "html": html},
    }
    content = message["content"]
    for text in (content["plainText"], content["html"]):
        assert RID in text
        assert "ip-rule-too-broad" in text and "default-action-deny" in text
        assert "https://portal.azure.com/#resource" + RID in text
    assert "<img" not in content["html"] and "&lt;img src=x onerror=alert(1)&gt;" in content["html"]
    assert email_rx.access_key not in caplog.text


def test_bearer_auth_with_managed_identity_style_credential(
    email_rx: EmailReceiver, ca_bundle: str, fast_retry: RetrySettings, make_record: MakeRecord
) -> None:
    sink = EmailSink(
        sender="DoNotReply@guardrail.contoso.example",
        recipients=RECIPIENTS,
        endpoint=email_rx.endpoint,
        credential=StaticTokenCredential(),
        connection_verify=ca_bundle,
        retry=fast_retry,
        poll_interval_s=0.05,
    )
    assert sink.send_alert(_alert(make_record)).delivered
    assert email_rx.auth_schemes[0] == "bearer" and email_rx.violations == []


def test_outage_is_retried_then_reported_without_raising(
    email_rx: EmailReceiver,
    ca_bundle: str,
    fast_retry: RetrySettings,
    make_record: MakeRecord,
    caplog: pytest.LogCaptureFixture,
) -> None:
    email_rx.fail_next(10, status=503)
    with caplog.at_level(logging.INFO):
        result = _sink(email_rx, ca_bundle, fast_retry).send_alert(_alert(make_record))
    lost = [json.loads(r.getMessage()) for r in caplog.records if r.name == "guardrail.alerts"]
    assert [x["undelivered"] for x in lost] == ["email"]
    assert not result.delivered and result.attempts == 3 and result.detail == "HTTP 503"
    assert len(email_rx.requests) == 3 and email_rx.messages == []


def _fail_request(rx: EmailReceiver, number: int, status: int, *, handled: bool) -> None:
    """The receiver's `number`-th request (1-based) answers `status`; with `handled` the
    receiver has taken the request first (the answer is lost, not the request)."""
    from guardrail_workbench.receivers import Reply

    original = rx.handle
    calls = {"n": 0}

    def handle(rec, raw):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] != number:
            return original(rec, raw)
        if handled:
            original(rec, raw)
        return Reply(status, {"error": {"code": "Unavailable", "message": "boom"}})

    rx.handle = handle  # type: ignore[method-assign]


def test_retry_after_a_lost_answer_sends_one_email(
    email_rx: EmailReceiver, ca_bundle: str, make_record: MakeRecord
) -> None:
    # ACS takes the first send but its answer is lost (a 500 instead of the 202): the client's
    # RetryPolicy sends again with the same Operation-Id; one email results
    sink = _sink(email_rx, ca_bundle, RetrySettings(attempts=3, backoff_s=0, timeout_s=0.5))
    email_rx.pending_polls = 0
    _fail_request(email_rx, 1, 500, handled=True)
    result = sink.send_alert(_alert(make_record))
    assert result.delivered and result.attempts == 2
    posts = [r for r in email_rx.requests if r.method == "POST"]
    assert len(posts) == 2 and posts[0].headers["operation-id"] == posts[1].headers["operation-id"]
    assert len(email_rx.messages) == 1


def test_a_failed_poll_is_retried_by_the_pipeline_without_sending_again(
    email_rx: EmailReceiver, ca_bundle: str, make_record: MakeRecord
) -> None:
    sink = _sink(email_rx, ca_bundle, RetrySettings(attempts=3, backoff_s=0, timeout_s=0.5))
    email_rx.pending_polls = 0
    _fail_request(email_rx, 2, 503, handled=False)  # the first GET of the operation
    result = sink.send_alert(_alert(make_record))
    assert result.delivered and result.attempts == 1
    assert [r.method for r in email_rx.requests] == ["POST", "GET", "GET"]
    assert len(email_rx.messages) == 1


def test_slow_service_does_not_block(
    ca_bundle: str, fast_retry: RetrySettings, make_record: MakeRecord
) -> None:
    with EmailReceiver(pending_polls=1000, retry_after="30") as rx:
        sink = _sink(rx, ca_bundle, fast_retry, max_wait_s=0.5)
        started = time.monotonic()
        result = sink.send_alert(_alert(make_record))
        assert time.monotonic() - started < 3
    assert result.delivered and result.detail == "accepted"
    assert len(rx.messages) == 1


def test_failed_operation_is_reported(
    ca_bundle: str, fast_retry: RetrySettings, make_record: MakeRecord
) -> None:
    with EmailReceiver(final_status="Failed") as rx:
        result = _sink(rx, ca_bundle, fast_retry).send_alert(_alert(make_record))
    assert not result.delivered
    assert len(rx.messages) == 1  # same Operation-Id on every attempt: never a second email


def test_from_settings() -> None:
    with pytest.raises(SettingsError, match="ALERT_EMAIL_SENDER: is not set"):
        load_settings({"ALERT_EMAIL_RECIPIENTS": "a@x.example"})
    [sink] = alert_sinks(
        load_settings(
            {
                "ALERT_EMAIL_RECIPIENTS": " a@x.example, b@x.example ,",
                "ALERT_EMAIL_SENDER": "DoNotReply@x.example",
                "ACS_CONNECTION_STRING": "endpoint=https://127.0.0.1:1/;accesskey=c2VjcmV0",
            }
        ).sinks
    )
    assert isinstance(sink, EmailSink)
    assert sink.recipients == ["a@x.example", "b@x.example"]
    assert "c2VjcmV0" not in repr(sink)
