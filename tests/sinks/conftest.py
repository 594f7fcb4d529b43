"""Fixtures for the sink tests: the local HTTPS receivers, a fast retry policy, record factory."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from guardrail.findings import FindingRecord
from guardrail.rules import RULE_IDS
from guardrail.sinks import RetrySettings
from guardrail_workbench.receivers import EmailReceiver, IngestionReceiver, TeamsReceiver
from guardrail_workbench.tls import ca_bundle_path

RID = (
    "/subscriptions/00000000-1111-2222-3333-444444444444/resourceGroups/rg-Prod"
    "/providers/Microsoft.CognitiveServices/accounts/Acct1"
)


@pytest.fixture(scope="session")
def ca_bundle(tmp_path_factory: pytest.TempPathFactory) -> str:
    return ca_bundle_path(tmp_path_factory.mktemp("ca"))


@pytest.fixture
def fast_retry() -> RetrySettings:
    """Three attempts, no backoff, short timeouts: failure paths stay fast."""
    return RetrySettings(attempts=3, backoff_s=0.0, max_backoff_s=0.0, timeout_s=0.5)


@pytest.fixture
def ingestion_rx() -> Iterator[IngestionReceiver]:
    from guardrail.findings import COLUMNS

    with IngestionReceiver(columns=COLUMNS, expected_token="local-test-token") as rx:
        yield rx


@pytest.fixture
def teams_rx() -> Iterator[TeamsReceiver]:
    with TeamsReceiver() as rx:
        yield rx


@pytest.fixture
def email_rx() -> Iterator[EmailReceiver]:
    with EmailReceiver(pending_polls=1) as rx:
        yield rx


def record(**overrides: Any) -> FindingRecord:
    """A FindingRecord with realistic defaults; keyword arguments override any field."""
    fields: dict[str, Any] = {
        "resource_id": RID,
        "rule": "default-action-deny",
        "severity": "high",
        "status": "remediated",
        "message": "networkAcls.defaultAction is Allow",
        "value": "Allow",
        "correlation_id": "9a8b7c6d-5e4f-3a2b-1c0d-ffeeddccbbaa",
        "trigger": "event",
        "mode": "enforce",
        "kind": "OpenAI",
        "actor": "jane@contoso.example",
        "event_id": "5f0b7c1e-1d2c-4e59-9a11-3c1d2b3a4e5f",
        "before": {
            "defaultAction": "Allow",
            "bypass": "AzureServices",
            "ipRules": [],
            "virtualNetworkRules": [],
        },
        "after": {
            "defaultAction": "Deny",
            "bypass": "AzureServices",
            "ipRules": [],
            "virtualNetworkRules": [],
        },
        "time_generated": "2026-01-15T10:11:13Z",
    }
    fields.update(overrides)
    assert fields["rule"] in RULE_IDS, f"{fields['rule']} is not a rule of guardrail/rules.py"
    return FindingRecord.create(**fields)


@pytest.fixture
def make_record() -> Callable[..., FindingRecord]:
    return record
