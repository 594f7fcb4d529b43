from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

import guardrail
from guardrail.findings import COLUMNS, FindingRecord, format_time, parse_resource_id

from .conftest import RID


def test_to_json_has_exactly_the_columns_in_order(make_record: Callable[..., FindingRecord]) -> None:
    row = make_record().to_json()
    assert tuple(row) == COLUMNS
    assert row["SubscriptionId"] == "00000000-1111-2222-3333-444444444444"
    assert row["ResourceGroup"] == "rg-Prod"
    assert row["AccountName"] == "Acct1"
    assert row["GuardrailVersion"] == guardrail.__version__
    assert row["TimeGenerated"] == "2026-01-15T10:11:13.000Z"
    assert row["Before"] == {
        "defaultAction": "Allow",
        "bypass": "AzureServices",
        "ipRules": [],
        "virtualNetworkRules": [],
    }
    assert json.loads(json.dumps(row)) == row


def test_round_trip_through_json(make_record: Callable[..., FindingRecord]) -> None:
    rec = make_record(value=None, before=None, after=None, actor=None, event_id=None)
    assert FindingRecord.from_json(json.loads(rec.to_json_line())) == rec
    with pytest.raises(ValueError, match="unknown"):
        FindingRecord.from_json({**rec.to_json(), "Extra": 1})


def test_before_after_are_copied(make_record: Callable[..., FindingRecord]) -> None:
    acl: dict[str, Any] = {"defaultAction": "Allow", "ipRules": [{"value": "20.1.1.1"}]}
    rec = make_record(before=acl)
    acl["ipRules"].append({"value": "20.2.2.2"})
    rec.to_json()["Before"]["ipRules"].clear()
    assert rec.to_json()["Before"] == {"defaultAction": "Allow", "ipRules": [{"value": "20.1.1.1"}]}


@pytest.mark.parametrize(
    ("field", "bad"),
    [("severity", "High"), ("status", "fixed"), ("trigger", "timer"), ("mode", "dry-run")],
)
def test_enumerations_are_enforced(make_record: Callable[..., FindingRecord], field: str, bad: str) -> None:
    with pytest.raises(ValueError, match=bad):
        make_record(**{field: bad})


def test_time_is_normalised_to_utc_z() -> None:
    moment = datetime(2026, 1, 15, 12, 0, 0, tzinfo=timezone(timedelta(hours=2)))
    assert format_time(moment) == "2026-01-15T10:00:00.000Z"
    assert format_time("2026-01-15T10:11:13.123456+00:00") == "2026-01-15T10:11:13.123Z"
    assert format_time().endswith("Z")
    with pytest.raises(ValueError):
        format_time("yesterday")


def test_parse_resource_id_is_case_preserving_and_case_insensitive_on_keywords() -> None:
    parts = parse_resource_id(
        RID.replace("resourceGroups", "RESOURCEGROUPS").replace("Microsoft.", "microsoft.")
    )
    assert (parts.subscription_id, parts.resource_group, parts.account_name) == (
        "00000000-1111-2222-3333-444444444444",
        "rg-Prod",
        "Acct1",
    )
    child = parse_resource_id(RID + "/deployments/gpt-4o")
    assert child.account_name == "Acct1"


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "/subscriptions/x/resourceGroups/rg",
        "/subscriptions/x/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/s",
        "/subscriptions/x/resourceGroups/rg/providers/Microsoft.CognitiveServices/accounts",
    ],
)
def test_parse_resource_id_rejects_other_ids(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_resource_id(bad)
