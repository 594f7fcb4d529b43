"""The circuit breaker (what trips it, the count of confirmed writes, is in test_state_journal)."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

import pytest

from guardrail.state import BreakerState, Journal, JournalEntry, TableStateStore
from tests.state.conftest import T0, US, Race, StoreFactory, account

WINDOW = timedelta(minutes=30)


def test_breaker_is_closed_until_tripped(store: TableStateStore) -> None:
    assert store.breaker_state(account(), T0) is None


def test_trip_opens_the_breaker_for_one_window(store: TableStateStore) -> None:
    rid = account()
    assert store.trip_breaker(rid, T0) is True
    expected = BreakerState(resource_id=rid.lower(), tripped_at=T0, until=T0 + WINDOW)
    assert store.breaker_state(rid, T0) == expected
    assert store.breaker_state(rid, T0 + WINDOW - US) == expected
    assert store.breaker_state(rid, T0 + WINDOW) is None  # closes by itself


def test_tripping_an_open_breaker_again_returns_false_and_keeps_it(store: TableStateStore) -> None:
    rid = account()
    assert store.trip_breaker(rid, T0) is True
    assert store.trip_breaker(rid, T0 + timedelta(minutes=5)) is False
    state = store.breaker_state(rid, T0 + timedelta(minutes=6))
    assert state is not None
    assert state.tripped_at == T0
    assert state.until == T0 + WINDOW


def test_after_the_window_a_new_trip_is_possible(store: TableStateStore) -> None:
    rid = account()
    assert store.trip_breaker(rid, T0)
    later = T0 + WINDOW + timedelta(minutes=1)
    assert store.trip_breaker(rid, later) is True
    assert store.breaker_state(rid, later) == BreakerState(rid.lower(), later, later + WINDOW)
    assert store.trip_breaker(rid, later + timedelta(minutes=1)) is False


def test_breaker_ids_are_case_insensitive(store: TableStateStore) -> None:
    rid = account("UPPERcase")
    assert store.trip_breaker(rid.upper(), T0)
    assert store.trip_breaker(rid.lower(), T0) is False
    state = store.breaker_state(rid, T0)
    assert state is not None
    assert state.resource_id == rid.lower()
    assert store.breaker_state(account("someone-else"), T0) is None


def test_concurrent_trips_exactly_one_wins(make_store: StoreFactory, race: Race) -> None:
    stores = [make_store() for _ in range(12)]
    rid = account()
    results = race(12, lambda i: stores[i].trip_breaker(rid, T0))
    assert results.count(True) == 1


def test_concurrent_re_trips_of_an_expired_breaker_exactly_one_wins(
    make_store: StoreFactory, race: Race
) -> None:
    stores = [make_store() for _ in range(12)]
    rid = account()
    assert stores[0].trip_breaker(rid, T0)
    for k in range(1, 6):  # several rounds: a lost race is a matter of timing
        later = T0 + k * WINDOW

        def trip(i: int, at: datetime = later) -> bool:
            return stores[i].trip_breaker(rid, at)

        results = race(12, trip)
        assert results.count(True) == 1, f"round {k}: {results}"
        assert stores[0].breaker_state(rid, later) == BreakerState(rid.lower(), later, later + WINDOW)


def test_the_breaker_is_read_with_the_journal_in_one_query(
    store: TableStateStore, caplog: pytest.LogCaptureFixture
) -> None:
    from azure.core.pipeline.transport import RequestsTransport

    rid = account()
    assert store.read_journal(rid, T0) == Journal([], None, [])
    entry, _ = store.begin(
        JournalEntry(rid.lower(), JournalEntry.key_for('"e1"'), "intent", '"e1"', created_at=T0)
    )
    assert store.trip_breaker(rid, T0)
    seen: list[str] = []
    send = RequestsTransport.send

    def counting(self: Any, request: Any, **kwargs: Any) -> Any:
        seen.append(str(request.method))
        return send(self, request, **kwargs)

    with caplog.at_level(logging.WARNING, logger="guardrail.state"), pytest.MonkeyPatch.context() as patch:
        patch.setattr(RequestsTransport, "send", counting)
        read = store.read_journal(rid, T0 + timedelta(minutes=1))
    journal, breaker = read.entries, read.breaker
    assert seen == ["GET"]
    assert [e.key for e in journal] == [entry.key]  # the breaker row is not a journal entry
    assert breaker == BreakerState(rid.lower(), T0, T0 + WINDOW)
    assert store.journal(rid) == journal
    assert store.read_journal(rid, T0 + WINDOW) == Journal(journal, None, [])  # closed by itself
    assert not caplog.records  # no "malformed journal row" for the breaker
