"""Fight detection: remediation counting in a sliding window and the circuit breaker."""

from __future__ import annotations

from datetime import datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from guardrail.state import BreakerState, TableStateStore
from tests.state.conftest import T0, US, Race, StoreFactory, account

WINDOW = timedelta(minutes=30)


def trips(store: TableStateStore, count: int) -> bool:
    # The documented rule: more than N remediations of one account inside the window trips.
    return count > store.max_remediations


def test_n_remediations_inside_the_window_do_not_trip_the_n_plus_first_does(store: TableStateStore) -> None:
    rid = account()
    counts = [store.record_remediation(rid, T0 + timedelta(minutes=m)) for m in (0, 5, 10, 29)]
    assert counts == [1, 2, 3, 4]
    assert [trips(store, c) for c in counts] == [False, False, False, True]


def test_remediations_outside_the_window_do_not_count(store: TableStateStore) -> None:
    rid = account()
    assert store.record_remediation(rid, T0) == 1
    assert store.record_remediation(rid, T0 + timedelta(minutes=10)) == 2
    # The window is (at - 30 min, at]: T0 is exactly 30 minutes old here, so it is out.
    assert store.record_remediation(rid, T0 + WINDOW) == 2
    # T0 + 10 min is still 1 µs inside.
    assert store.record_remediation(rid, T0 + timedelta(minutes=10) + WINDOW - US) == 3
    # Hours later only the new one counts.
    assert store.record_remediation(rid, T0 + timedelta(hours=5)) == 1


def test_many_remediations_spread_out_never_trip(store: TableStateStore) -> None:
    rid = account()
    # One every 11 minutes: never more than 3 inside any 30-minute window.
    counts = [store.record_remediation(rid, T0 + timedelta(minutes=11 * i)) for i in range(8)]
    assert max(counts) == 3
    assert not any(trips(store, c) for c in counts)


def test_window_and_limit_are_configurable(make_store: StoreFactory) -> None:
    store = make_store(window=timedelta(minutes=5), max_remediations=1)
    rid = account()
    assert store.record_remediation(rid, T0) == 1
    assert store.record_remediation(rid, T0 + timedelta(minutes=4)) == 2
    assert trips(store, 2)
    assert store.record_remediation(rid, T0 + timedelta(minutes=9, seconds=1)) == 1


def test_accounts_are_counted_separately_and_ids_case_insensitively(store: TableStateStore) -> None:
    rid = account("MixedCaseAccount")
    other = account("another")
    assert store.record_remediation(rid, T0) == 1
    assert store.record_remediation(rid.upper(), T0 + timedelta(minutes=1)) == 2
    assert store.record_remediation(rid.lower() + "/", T0 + timedelta(minutes=2)) == 3
    assert store.record_remediation(other, T0 + timedelta(minutes=3)) == 1


def test_concurrent_remediations_are_all_counted(make_store: StoreFactory, race: Race) -> None:
    stores = [make_store() for _ in range(8)]
    rid = account()
    counts = race(8, lambda i: stores[i].record_remediation(rid, T0 + timedelta(seconds=i)))
    assert all(1 <= c <= 8 for c in counts)
    assert stores[0].record_remediation(rid, T0 + timedelta(minutes=1)) == 9


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(offsets=st.lists(st.integers(min_value=0, max_value=4 * 3600), min_size=1, max_size=7))
def test_count_is_the_number_of_recorded_remediations_inside_the_window(
    store: TableStateStore, offsets: list[int]
) -> None:
    """Recorded in any order, each answer counts the remediations recorded so far (this one
    included) that fall inside (at - window, at]."""
    rid = account()  # fresh account per example
    seen: list[datetime] = []
    for offset in offsets:
        at = T0 + timedelta(seconds=offset)
        seen.append(at)
        expected = sum(1 for t in seen if at - WINDOW < t <= at)
        assert store.record_remediation(rid, at) == expected


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
