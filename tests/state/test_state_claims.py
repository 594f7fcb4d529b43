"""Event de-duplication (claim_event), alert cool-down (claim_alert) and purge."""

from __future__ import annotations

import hashlib
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from guardrail.state import JournalEntry, TableStateStore, normalize_resource_id
from guardrail_workbench.azurite import Azurite
from tests.state.conftest import T0, US, Race, StoreFactory, account

COOLDOWN = timedelta(hours=1)


# -- claim_event ---------------------------------------------------------------------------------
def test_an_event_is_claimed_once(store: TableStateStore) -> None:
    event_id = str(uuid.uuid4())
    assert store.claim_event(event_id, T0) is True
    assert [store.claim_event(event_id, T0 + timedelta(minutes=m)) for m in (0, 1, 60)] == [
        False,
        False,
        False,
    ]
    assert store.claim_event(str(uuid.uuid4()), T0) is True


def test_event_ids_with_key_unsafe_characters(store: TableStateStore) -> None:
    for event_id in ("a/b\\c#d?e", "x" * 2000, "événement-☃", "A", "a"):
        assert store.claim_event(event_id, T0) is True, event_id
        assert store.claim_event(event_id, T0) is False, event_id


def test_concurrent_deliveries_of_one_event_claim_it_once(make_store: StoreFactory, race: Race) -> None:
    stores = [make_store() for _ in range(12)]
    event_id = str(uuid.uuid4())
    results = race(12, lambda i: stores[i].claim_event(event_id, T0))
    assert results.count(True) == 1


def test_an_event_older_than_its_ttl_can_be_claimed_again(make_store: StoreFactory) -> None:
    store = make_store(event_ttl=timedelta(hours=24))
    event_id = str(uuid.uuid4())
    assert store.claim_event(event_id, T0)
    assert store.claim_event(event_id, T0 + timedelta(hours=24) - US) is False
    assert store.claim_event(event_id, T0 + timedelta(hours=24)) is True
    assert store.claim_event(event_id, T0 + timedelta(hours=25)) is False


def test_empty_event_id_is_a_caller_error(store: TableStateStore) -> None:
    with pytest.raises(ValueError):
        store.claim_event("", T0)


# -- claim_alert ---------------------------------------------------------------------------------
def test_an_alert_is_sent_once_per_cooldown(store: TableStateStore) -> None:
    rid = account()
    assert store.claim_alert(rid, "fp-1", T0, COOLDOWN) is True
    assert store.claim_alert(rid, "fp-1", T0 + timedelta(minutes=1), COOLDOWN) is False
    assert store.claim_alert(rid, "fp-1", T0 + COOLDOWN - US, COOLDOWN) is False
    # After the cool-down it alerts again, and that send starts a new cool-down.
    assert store.claim_alert(rid, "fp-1", T0 + COOLDOWN, COOLDOWN) is True
    assert store.claim_alert(rid, "fp-1", T0 + COOLDOWN + timedelta(minutes=59), COOLDOWN) is False
    assert store.claim_alert(rid, "fp-1", T0 + 2 * COOLDOWN, COOLDOWN) is True


def test_a_new_fingerprint_alerts_at_once(store: TableStateStore) -> None:
    rid = account()
    assert store.claim_alert(rid, "fp-1", T0, COOLDOWN)
    assert store.claim_alert(rid, "fp-2", T0 + timedelta(minutes=1), COOLDOWN) is True
    assert store.claim_alert(rid, "fp-2", T0 + timedelta(minutes=2), COOLDOWN) is False
    # The first fingerprint's cool-down is unaffected by the second.
    assert store.claim_alert(rid, "fp-1", T0 + timedelta(minutes=3), COOLDOWN) is False


def test_alert_cooldown_is_per_account_and_case_insensitive(store: TableStateStore) -> None:
    rid = account("AlertMe")
    assert store.claim_alert(rid, "fp", T0, COOLDOWN)
    assert store.claim_alert(rid.upper(), "fp", T0, COOLDOWN) is False
    assert store.claim_alert(account("other"), "fp", T0, COOLDOWN) is True


def test_the_callers_cooldown_decides(store: TableStateStore) -> None:
    rid = account()
    assert store.claim_alert(rid, "fp", T0, timedelta(hours=4))
    # The setting was shortened since: the shorter cool-down applies at once.
    assert store.claim_alert(rid, "fp", T0 + timedelta(minutes=16), timedelta(minutes=15)) is True


def test_fingerprints_with_key_unsafe_characters(store: TableStateStore) -> None:
    rid = account()
    for fingerprint in ("a/b", "a\\b", "#?", "☃" * 600, ""):
        assert store.claim_alert(rid, fingerprint, T0, COOLDOWN) is True, fingerprint
        assert store.claim_alert(rid, fingerprint, T0, COOLDOWN) is False, fingerprint


def test_concurrent_alerts_claim_once(make_store: StoreFactory, race: Race) -> None:
    stores = [make_store() for _ in range(12)]
    rid = account()
    results = race(12, lambda i: stores[i].claim_alert(rid, "fp", T0, COOLDOWN))
    assert results.count(True) == 1
    # ... and again each time the cool-down is over (the etag-conditional re-claim); several
    # rounds, since a lost race is a matter of timing.
    for k in range(1, 6):
        later = T0 + k * COOLDOWN

        def claim(i: int, at: datetime = later) -> bool:
            return stores[i].claim_alert(rid, "fp", at, COOLDOWN)

        results = race(12, claim)
        assert results.count(True) == 1, f"round {k}: {results}"


def test_concurrent_alerts_through_one_shared_store(store: TableStateStore, race: Race) -> None:
    # The Functions worker runs invocations on threads that share one store.
    rid = account()
    results = race(12, lambda i: store.claim_alert(rid, "fp", T0, COOLDOWN))
    assert results.count(True) == 1


def test_a_zero_cooldown_sends_every_alert(store: TableStateStore) -> None:
    rid = account()
    assert [store.claim_alert(rid, "fp", T0, timedelta(0)) for _ in range(3)] == [True, True, True]


def test_a_negative_cooldown_is_a_caller_error(store: TableStateStore) -> None:
    with pytest.raises(ValueError, match="cooldown"):
        store.claim_alert(account(), "fp", T0, timedelta(seconds=-1))


def test_naive_datetimes_are_rejected(store: TableStateStore) -> None:
    naive = datetime(2026, 11, 26, 12, 0)
    with pytest.raises(ValueError, match="timezone-aware"):
        store.claim_event("e", naive)
    with pytest.raises(ValueError, match="timezone-aware"):
        store.mark_unreadable(account(), "AuthorizationFailed", naive)


def test_other_timezones_are_converted(store: TableStateStore) -> None:
    rid = account()
    plus_two = timezone(timedelta(hours=2))
    assert store.trip_breaker(rid, T0.astimezone(plus_two))
    state = store.breaker_state(rid, T0)
    assert state is not None
    assert state.tripped_at == T0
    assert state.tripped_at.utcoffset() == timedelta(0)


# -- purge and table lifecycle -------------------------------------------------------------------
def test_purge_deletes_only_expired_records_and_changes_no_answer(make_store: StoreFactory) -> None:
    store = make_store(event_ttl=timedelta(hours=24))
    rid = account()
    store.begin(JournalEntry(normalize_resource_id(rid), "k1", "intent", created_at=T0))  # T0 + 24 h
    store.trip_breaker(rid, T0)  # expires T0 + 30 min
    store.claim_alert(rid, "fp", T0, COOLDOWN)  # expires T0 + 1 h
    store.claim_event("e-1", T0)  # expires T0 + 24 h

    assert store.purge(T0) == 0
    assert store.purge(T0 + timedelta(hours=2)) == 2
    assert store.purge(T0 + timedelta(hours=2)) == 0
    # The event and the journal entry are still remembered; the rest had expired anyway.
    assert store.claim_event("e-1", T0 + timedelta(hours=2)) is False
    assert store.breaker_state(rid, T0 + timedelta(hours=2)) is None
    assert [e.key for e in store.journal(rid)] == ["k1"]
    assert store.purge(T0 + timedelta(days=2)) == 2  # the event and the journal entry
    assert store.journal(rid) == []


def test_a_deleted_table_is_created_again(azurite: Azurite, make_store: StoreFactory) -> None:
    from azure.data.tables import TableServiceClient

    store = make_store()
    rid = account()
    assert store.claim_alert(rid, "fp", T0, COOLDOWN)
    service = TableServiceClient.from_connection_string(azurite.connection_string)
    service.delete_table(store.tables.remediations)
    assert store.claim_alert(rid, "fp", T0, COOLDOWN) is True  # memory lost with the table, no crash
    assert store.claim_alert(rid, "fp", T0, COOLDOWN) is False


def test_table_names_use_the_prefix(make_store: StoreFactory, azurite: Azurite) -> None:
    from azure.data.tables import TableServiceClient

    store = make_store(table_prefix="guardrailx")
    store.claim_event(str(uuid.uuid4()), T0)
    store.mark_unreadable(account(), "AuthorizationFailed", T0)
    service = TableServiceClient.from_connection_string(azurite.connection_string)
    names = {t.name for t in service.list_tables()}
    assert {"guardrailxevents", "guardrailxremediations"} <= names
    assert store.tables.all() == ("guardrailxremediations", "guardrailxevents")


@pytest.mark.parametrize("prefix", ["", "1abc", "has-dash", "a" * 52])
def test_bad_table_prefixes_are_refused(make_store: StoreFactory, prefix: str) -> None:
    with pytest.raises(ValueError, match="prefix"):
        make_store(table_prefix=prefix)


def test_malformed_rows_are_taken_over_not_fatal(azurite: Azurite, store: TableStateStore) -> None:
    from azure.data.tables import TableServiceClient

    from guardrail.state import normalize_resource_id

    rid = account()
    # Make sure the tables exist, then plant rows that lack the expected columns.
    store.trip_breaker(account(), T0)
    store.claim_alert(account(), "x", T0, COOLDOWN)
    service = TableServiceClient.from_connection_string(azurite.connection_string)
    pk = hashlib.sha256(normalize_resource_id(rid).encode()).hexdigest()[:32]
    service.get_table_client(store.tables.remediations).create_entity(
        {"PartitionKey": pk, "RowKey": "breaker", "Until": "not a date"}
    )
    service.get_table_client(store.tables.remediations).create_entity(
        {"PartitionKey": pk, "RowKey": "alert-" + hashlib.sha256(b"fp").hexdigest()[:32]}
    )
    assert store.breaker_state(rid, T0) is None
    assert store.trip_breaker(rid, T0) is True
    assert store.breaker_state(rid, T0) is not None
    assert store.claim_alert(rid, "fp", T0, COOLDOWN) is True
    assert store.claim_alert(rid, "fp", T0, COOLDOWN) is False


def test_close_is_idempotent(make_store: StoreFactory) -> None:
    store = make_store()
    assert store.claim_event("e", T0)
    store.close()
    store.close()


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    steps=st.lists(
        st.tuples(st.sampled_from(["fp-a", "fp-b"]), st.integers(min_value=0, max_value=90)),
        min_size=1,
        max_size=8,
    )
)
def test_alert_claims_follow_the_cooldown_model(store: TableStateStore, steps: list[tuple[str, int]]) -> None:
    """With time moving forward by the given minutes, a claim is granted exactly when the last
    granted claim of that fingerprint is at least one cool-down old (or there is none)."""
    rid = account()  # fresh account per example
    cooldown = timedelta(minutes=60)
    now = T0
    last_sent: dict[str, datetime] = {}
    for fingerprint, minutes in steps:
        now += timedelta(minutes=minutes)
        expected = fingerprint not in last_sent or now - last_sent[fingerprint] >= cooldown
        assert store.claim_alert(rid, fingerprint, now, cooldown) is expected
        if expected:
            last_sent[fingerprint] = now


# -- claim_alerts: one account's alert keys at once ---------------------------------------------------
def _requests_to(store: TableStateStore, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The HTTP methods this store's Table clients send from now on (one per round trip)."""
    from azure.core.pipeline.transport import RequestsTransport

    seen: list[str] = []
    send = RequestsTransport.send

    def counting(self: object, request: object, **kwargs: object) -> object:
        seen.append(str(getattr(request, "method", "")))
        return send(self, request, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(RequestsTransport, "send", counting)
    return seen


def test_claim_alerts_answers_each_key_as_claim_alert_would(store: TableStateStore) -> None:
    rid = account()
    assert store.claim_alerts(rid, ["a", "b", "c"], T0, COOLDOWN) == [True, True, True]
    assert store.claim_alerts(rid, ["a", "b", "c"], T0 + COOLDOWN - US, COOLDOWN) == [False] * 3
    assert store.claim_alert(rid, "b", T0 + COOLDOWN - US, COOLDOWN) is False  # one store, both ways
    # b re-claimed alone at T0 + 1 h; then a mix of expired (a, c), held (b) and new (d) keys
    assert store.claim_alert(rid, "b", T0 + COOLDOWN, COOLDOWN) is True
    later = T0 + COOLDOWN + timedelta(minutes=1)
    assert store.claim_alerts(rid, ["a", "b", "c", "d"], later, COOLDOWN) == [True, False, True, True]
    assert store.claim_alerts(rid, ["d", "a"], later, COOLDOWN) == [False, False]
    assert store.claim_alerts(account(), ["a", "b"], later, COOLDOWN) == [True, True]  # per account


def test_claim_alerts_grants_a_repeated_key_once(store: TableStateStore) -> None:
    rid = account()
    assert store.claim_alerts(rid, ["a", "b", "a", "b"], T0, COOLDOWN) == [True, True, False, False]
    assert store.claim_alerts(rid, [], T0, COOLDOWN) == []
    assert store.claim_alerts(rid, ["x", "x"], T0, timedelta(0)) == [True, True]  # no cool-down


def test_claim_alerts_takes_over_malformed_rows(azurite: Azurite, store: TableStateStore) -> None:
    from azure.data.tables import TableServiceClient

    rid = account()
    store.claim_alert(account(), "x", T0, COOLDOWN)  # the table exists
    pk = hashlib.sha256(normalize_resource_id(rid).encode()).hexdigest()[:32]
    TableServiceClient.from_connection_string(azurite.connection_string).get_table_client(
        store.tables.remediations
    ).create_entity({"PartitionKey": pk, "RowKey": "alert-" + hashlib.sha256(b"fp").hexdigest()[:32]})
    keys = ["fp", "k1", "k2", "k3"]  # enough keys for one transaction
    assert store.claim_alerts(rid, keys, T0, COOLDOWN) == [True] * 4
    assert store.claim_alerts(rid, keys, T0, COOLDOWN) == [False] * 4


def test_claim_alerts_survives_a_deleted_table(azurite: Azurite, store: TableStateStore) -> None:
    from azure.data.tables import TableServiceClient

    rid = account()
    keys = ["a", "b", "c", "d"]
    assert store.claim_alerts(rid, keys, T0, COOLDOWN) == [True] * 4
    TableServiceClient.from_connection_string(azurite.connection_string).delete_table(
        store.tables.remediations
    )
    assert store.claim_alerts(rid, keys, T0, COOLDOWN) == [True] * 4  # memory lost, no crash
    assert store.claim_alerts(rid, keys, T0, COOLDOWN) == [False] * 4


def test_concurrent_claim_alerts_give_each_key_one_winner(make_store: StoreFactory, race: Race) -> None:
    # 12 instances claim overlapping sets of one account's keys at once: every key has exactly
    # one winner, whether it was new, and then (several rounds) once each cool-down is over.
    stores = [make_store() for _ in range(12)]
    rid = account()
    keys = ["a", "b", "c", "d", "e", "f", "g", "h"]  # 5-6 per caller: one transaction each

    def subset(i: int) -> list[str]:
        return [k for j, k in enumerate(keys) if (i + j) % 3 != 0] or keys

    for k in range(4):
        at = T0 + k * COOLDOWN

        def claim(i: int, at: datetime = at) -> list[tuple[str, bool]]:
            wanted = subset(i)
            return list(zip(wanted, stores[i].claim_alerts(rid, wanted, at, COOLDOWN), strict=True))

        results = [pair for answers in race(12, claim) for pair in answers]
        winners = {key: sum(1 for name, won in results if name == key and won) for key in keys}
        assert winners == dict.fromkeys(keys, 1), f"round {k}: {results}"


def test_concurrent_claim_alerts_through_one_shared_store(store: TableStateStore, race: Race) -> None:
    rid = account()
    results = race(12, lambda i: store.claim_alerts(rid, ["a", "b", "c", "d", "e"], T0, COOLDOWN))
    assert [sum(answers[n] for answers in results) for n in range(5)] == [1] * 5


def test_claim_alerts_round_trips(store: TableStateStore, monkeypatch: pytest.MonkeyPatch) -> None:
    rid = account()
    store.claim_alert(account(), "x", T0, COOLDOWN)  # the table exists (created once per process)
    seen = _requests_to(store, monkeypatch)
    many = [f"fp-{n}" for n in range(7)]
    assert store.claim_alerts(rid, many, T0, COOLDOWN) == [True] * 7
    assert seen == ["POST"], seen  # one transaction inserting all seven (single claims: 7)
    seen.clear()
    assert store.claim_alerts(rid, many, T0, COOLDOWN) == [False] * 7
    assert seen == ["POST", "GET"], seen  # the transaction fails, the partition's rows decide (14)
    seen.clear()
    later = T0 + COOLDOWN
    assert store.claim_alerts(rid, [*many, "new"], later, COOLDOWN) == [True] * 8
    assert seen == ["POST", "GET", "POST"], seen  # ... and one transaction re-claims them (24)
    seen.clear()
    assert store.claim_alerts(account(), ["a", "b"], T0, COOLDOWN) == [True, True]
    assert seen == ["POST", "POST"], seen  # up to three keys: one insert each (cheaper than a batch)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    steps=st.lists(
        st.tuples(
            st.lists(st.sampled_from([f"fp-{c}" for c in "abcdef"]), max_size=7),
            st.integers(min_value=0, max_value=90),
        ),
        min_size=1,
        max_size=6,
    )
)
def test_batched_alert_claims_follow_the_cooldown_model(
    store: TableStateStore, steps: list[tuple[list[str], int]]
) -> None:
    """The model of test_alert_claims_follow_the_cooldown_model, one batch per step (a key repeated
    within a batch is granted at most once)."""
    rid = account()
    cooldown = timedelta(minutes=60)
    now = T0
    last_sent: dict[str, datetime] = {}
    for fingerprints, minutes in steps:
        now += timedelta(minutes=minutes)
        expected = []
        for fingerprint in fingerprints:
            grant = fingerprint not in last_sent or now - last_sent[fingerprint] >= cooldown
            expected.append(grant)
            if grant:
                last_sent[fingerprint] = now
        assert store.claim_alerts(rid, fingerprints, now, cooldown) == expected
