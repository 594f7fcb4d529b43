"""The health table's summary at tenant scale (issue #27): one row per subscription passes Table
Storage's 64 KiB string property at ~250 subscriptions; the summary is split over `Summary`,
`Summary1`, ... and read back whole, against Azurite (which refuses a longer property as Azure does)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from guardrail.heartbeat import SUMMARY_CHUNK, TableHealthStore, summary_columns, summary_text
from guardrail_workbench.azurite import Azurite


@pytest.fixture
def table(azurite: Azurite) -> Iterator[Any]:
    from azure.data.tables import TableClient

    client = TableClient.from_connection_string(azurite.connection_string, f"h{uuid.uuid4().hex[:12]}")
    yield client
    client.delete_table()


def _summary(correlation: str, subscriptions: list[str], fixed: int = 1) -> dict[str, Any]:
    rows = [
        {
            "subscription": s,
            "listed": 100,
            "checked": 10,
            "fixed": fixed,
            "failed": 0,
            "readable": True,
            "error": None,
        }
        for s in subscriptions
    ]
    return {
        "completed": "2026-12-07T22:00:00Z",
        "seconds": 1.0,
        "correlation_id": correlation,
        "listed": 100 * len(rows),
        "checked": 10 * len(rows),
        "fixed": fixed * len(rows),
        "failed": 0,
        "errors": 0,
        "subscriptions": rows,
    }


def test_a_summary_of_a_thousand_subscriptions_is_saved_and_read_back_whole(table: Any) -> None:
    store = TableHealthStore(table)
    subs = sorted(str(uuid.uuid4()) for _ in range(1000))
    correlation = str(uuid.uuid4())
    store.save_sweep(_summary(correlation, subs[:500]))  # two slices of one fanned-out sweep
    store.save_sweep(_summary(correlation, subs[500:], fixed=2))
    last = store.last_sweep()
    assert last is not None and [row["subscription"] for row in last["subscriptions"]] == subs
    assert last["fixed"] == 500 + 1000 and last["listed"] == 100_000
    entity = table.get_entity("sweep", "last")
    assert "Summary3" in entity and all(
        len(v) <= SUMMARY_CHUNK for k, v in entity.items() if k.startswith("Summary")
    )
    store.save_sweep(_summary(str(uuid.uuid4()), subs[:3]))  # the next sweep: shorter, no stale columns
    assert "Summary1" not in table.get_entity("sweep", "last")
    assert [row["subscription"] for row in store.last_sweep()["subscriptions"]] == subs[:3]  # type: ignore[index]


def test_a_row_written_before_the_split_still_reads() -> None:
    text = json.dumps(_summary("c", ["s"]))
    assert summary_text({"Summary": text}) == text
    assert summary_text(summary_columns("x" * (2 * SUMMARY_CHUNK + 5))) == "x" * (2 * SUMMARY_CHUNK + 5)
    assert summary_columns("") == {"Summary": ""}
