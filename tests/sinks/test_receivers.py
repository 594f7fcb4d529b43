"""The receivers must reject what the real services reject, or the sink tests prove nothing."""

from __future__ import annotations

import gzip
import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from guardrail_workbench.receivers import EmailReceiver, IngestionReceiver, TeamsReceiver
from guardrail_workbench.tls import client_context


def _post(url: str, body: bytes, headers: dict[str, str], method: str = "POST") -> tuple[int, Any]:
    request = urllib.request.Request(
        url, data=body if method == "POST" else None, method=method, headers=headers
    )
    try:
        with urllib.request.urlopen(request, timeout=5, context=client_context()) as resp:
            raw = resp.read()
            return resp.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as err:
        raw = err.read()
        return err.code, json.loads(raw) if raw else None


GOOD_ROWS = [{"TimeGenerated": "2026-01-15T10:11:13Z", "Rule": "default-action-deny"}]


def _ingest_url(
    rx: IngestionReceiver, stream: str = "Custom-GuardrailFindings_CL", api: str = "2023-01-01"
) -> str:
    return f"{rx.endpoint}/dataCollectionRules/{rx.dcr_immutable_id}/streams/{stream}?api-version={api}"


GOOD_HEADERS = {"Authorization": "Bearer t", "Content-Encoding": "gzip", "Content-Type": "application/json"}


@pytest.mark.parametrize(
    ("url_args", "headers", "body", "problem"),
    [
        ({}, GOOD_HEADERS, None, None),
        ({"api": "2021-11-01-preview"}, GOOD_HEADERS, None, "api-version"),
        ({"stream": "GuardrailFindings"}, GOOD_HEADERS, None, "Custom-{Table}_CL"),
        ({}, {**GOOD_HEADERS, "Authorization": ""}, None, "Bearer"),
        ({}, {**GOOD_HEADERS, "Content-Encoding": "identity"}, json.dumps(GOOD_ROWS).encode(), "gzip"),
        ({}, GOOD_HEADERS, gzip.compress(b'{"TimeGenerated": "x"}'), "array of objects"),
        ({}, GOOD_HEADERS, gzip.compress(b'[{"Rule": "default-action-deny"}]'), "TimeGenerated"),
    ],
)
def test_ingestion_receiver_checks_the_contract(
    url_args: dict[str, str], headers: dict[str, str], body: bytes | None, problem: str | None
) -> None:
    with IngestionReceiver() as rx:
        payload = body if body is not None else gzip.compress(json.dumps(GOOD_ROWS).encode())
        status, answer = _post(_ingest_url(rx, **url_args), payload, headers)
    if problem is None:
        assert status == 204 and rx.violations == [] and rx.records == GOOD_ROWS
    else:
        assert status == 400 and rx.records == []
        assert len(rx.violations) == 1 and problem in rx.violations[0]
        assert problem in answer["error"]["message"]


def test_ingestion_receiver_flags_undeclared_columns() -> None:
    with IngestionReceiver(columns=("TimeGenerated",)) as rx:
        status, _ = _post(_ingest_url(rx), gzip.compress(json.dumps(GOOD_ROWS).encode()), GOOD_HEADERS)
    assert status == 204 and rx.violations and "Rule" in rx.violations[0]


def test_teams_receiver_needs_the_signature_and_an_adaptive_card() -> None:
    card: dict[str, Any] = {
        "type": "message",
        "attachments": [
            {
                "contentType": "application/vnd.microsoft.card.adaptive",
                "content": {"type": "AdaptiveCard", "version": "1.4", "body": []},
            }
        ],
    }
    with TeamsReceiver() as rx:
        headers = {"Content-Type": "application/json"}
        assert (
            _post(rx.webhook_url.replace(rx.signature, "forged"), json.dumps(card).encode(), headers)[0]
            == 401
        )
        assert _post(rx.webhook_url, b'{"text": "legacy connector payload"}', headers)[0] == 400
        assert _post(rx.webhook_url, json.dumps({**card, "pad": "x" * 30_000}).encode(), headers)[0] == 413
        assert _post(rx.webhook_url, json.dumps(card).encode(), headers)[0] == 202
    assert rx.cards == [card["attachments"][0]["content"]]
    assert len(rx.violations) == 3


def test_email_receiver_refuses_bad_auth_and_bad_messages() -> None:
    message = {
        "senderAddress": "a@x.example",
        "recipients": {"to": [{"address": "b@x.example"}]},
        "content": {"subject": "s", "plainText": "p"},
    }
    with EmailReceiver() as rx:
        url = f"{rx.endpoint}/emails:send?api-version=2025-09-01"
        json_headers = {"Content-Type": "application/json"}
        forged = {
            **json_headers,
            "Authorization": "HMAC-SHA256 SignedHeaders=x-ms-date;host;x-ms-content-sha256&Signature=AAAA",
            "x-ms-date": "Thu, 01 Jan 2026 00:00:00 GMT",
            "x-ms-content-sha256": "AAAA",
        }
        assert _post(url, json.dumps(message).encode(), json_headers)[0] == 401
        assert _post(url, json.dumps(message).encode(), forged)[0] == 401
        bearer = {**json_headers, "Authorization": "Bearer t"}
        assert _post(url, json.dumps({**message, "recipients": {"to": []}}).encode(), bearer)[0] == 400
        assert _post(url, json.dumps({**message, "content": {"plainText": "p"}}).encode(), bearer)[0] == 400
        assert (
            _post(url.replace("2025-09-01", "2021-10-01-preview"), json.dumps(message).encode(), bearer)[0]
            == 400
        )
        status, body = _post(url, json.dumps(message).encode(), bearer)
        assert status == 202 and body["status"] == "Running"
    assert len(rx.messages) == 1 and len(rx.violations) == 5


def test_ingestion_receiver_accepts_the_contract_sample() -> None:
    sample = (Path(__file__).parent / "data" / "logs_ingestion_body.json").read_bytes()
    with IngestionReceiver() as rx:
        status, _ = _post(_ingest_url(rx), gzip.compress(sample), GOOD_HEADERS)
    assert status == 204 and rx.violations == [] and rx.records == json.loads(sample)
