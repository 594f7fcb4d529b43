"""The remediation journal: one entry per change (keyed by the etag read), moved forward with
etag-conditional updates; its written entries are the confirmed writes the breaker counts."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import uuid
from datetime import timedelta
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from guardrail.state import JournalEntry, TableStateStore, normalize_resource_id
from guardrail_workbench.azurite import Azurite
from tests.state.conftest import T0, Race, StoreFactory, account

WINDOW = timedelta(minutes=30)
REPO = Path(__file__).resolve().parents[2]


def intent(rid: str, etag: str, **fields: object) -> JournalEntry:
    entry = JournalEntry(
        resource_id=normalize_resource_id(rid),
        key=JournalEntry.key_for(etag),
        state="intent",
        before_etag=etag,
        correlation_id="c-1",
        event_id="e-1",
        actor="bob@contoso.example",
        actor_source="systemData",
        before={"networkAcls": {"defaultAction": "Allow"}},
        body={"properties": {"networkAcls": {"defaultAction": "Deny"}}},
        findings=({"rule": "default-action-deny", "severity": "high", "message": "m", "value": "Allow"},),
        created_at=T0,
    )
    return dataclasses.replace(entry, **fields)  # type: ignore[arg-type]


def test_an_intent_round_trips_whole(store: TableStateStore) -> None:
    rid = account("Journal")
    entry, created = store.begin(intent(rid, '"etag-1"'))
    assert created and entry.etag
    [stored] = store.journal(rid.upper())  # ids compare case-insensitively
    assert stored == entry
    assert stored.state == "intent" and stored.written_at is None


def test_the_same_change_gets_one_entry(store: TableStateStore, make_store: StoreFactory) -> None:
    # The write event and the Resource Notification of one change read the same etag.
    rid = account()
    first, created = store.begin(intent(rid, '"same"'))
    second, created_again = make_store().begin(intent(rid, '"same"', event_id="e-2"))
    assert (created, created_again) == (True, False)
    assert second == first  # the loser joins the winner's entry
    assert len(store.journal(rid)) == 1


def test_advance_is_conditional(store: TableStateStore, make_store: StoreFactory) -> None:
    rid = account()
    entry, _ = store.begin(intent(rid, '"e"'))
    written = store.advance(entry, "written", T0 + timedelta(seconds=1))
    assert written is not None and written.written_at == T0 + timedelta(seconds=1)
    assert make_store().advance(entry, "verified", T0) is None  # stale: someone moved it
    verified = store.advance(written, "verified", T0 + timedelta(seconds=2))
    assert verified is not None and verified.written_at == T0 + timedelta(seconds=1)
    [stored] = store.journal(rid)
    assert stored.state == "verified"


def test_racing_advances_have_one_winner(make_store: StoreFactory, race: Race) -> None:
    stores = [make_store() for _ in range(8)]
    rid = account()
    entry, _ = stores[0].begin(intent(rid, '"race"'))
    results = race(8, lambda i: stores[i].advance(entry, "verified", T0))
    assert sum(r is not None for r in results) == 1


def _confirmed(store: TableStateStore, rid: str, at: timedelta) -> int:
    return sum(1 for e in store.journal(rid) if e.confirmed_at(T0 + at, WINDOW))


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(offsets=st.lists(st.integers(min_value=0, max_value=4 * 3600), min_size=1, max_size=6))
def test_confirmed_writes_are_the_written_entries_inside_the_window(
    store: TableStateStore, offsets: list[int]
) -> None:
    rid = account()  # fresh account per example
    for i, offset in enumerate(offsets):
        entry, _ = store.begin(intent(rid, f'"w{i}"'))
        assert store.advance(entry, "written", T0 + timedelta(seconds=offset)) is not None
    store.begin(intent(rid, '"never-written"'))  # an attempt: never counted
    for probe in sorted(set(offsets)):
        at = timedelta(seconds=probe)
        expected = sum(1 for o in offsets if at - WINDOW < timedelta(seconds=o) <= at)
        assert _confirmed(store, rid, at) == expected


def test_unreadable_accounts_are_listed_for_the_sweep(store: TableStateStore) -> None:
    rid, other = account(), account()
    store.mark_unreadable(rid, "AuthorizationFailed: no role yet", T0)
    entry, _ = store.begin(intent(other, '"open"'))
    assert set(store.unfinished()) == {normalize_resource_id(rid), normalize_resource_id(other)}
    store.clear_unreadable(rid)
    store.advance(entry, "verified", T0)
    assert store.unfinished() == []


_WORKER = """
import json, sys
from datetime import datetime, timezone
from guardrail.state import JournalEntry, TableStateStore
conn, prefix, rid, etag, go = sys.argv[1:6]
store = TableStateStore.from_connection_string(conn, table_prefix=prefix)
import time
while time.time() < float(go):
    time.sleep(0.005)
now = datetime.now(timezone.utc)
key = JournalEntry.key_for(etag)
entry, created = store.begin(JournalEntry(rid, key, "intent", before_etag=etag, created_at=now))
moved = store.advance(entry, "written", now)
print(json.dumps({"created": created, "counted": moved is not None}))
"""


def test_two_processes_count_one_change_once(azurite: Azurite, table_prefix: str) -> None:
    import time

    rid = normalize_resource_id(account())
    TableStateStore.from_connection_string(azurite.connection_string, table_prefix=table_prefix).journal(rid)
    go = str(time.time() + 3.0)  # both start together, after their imports
    args = [azurite.connection_string, table_prefix, rid, f'"{uuid.uuid4()}"', go]
    workers = [
        subprocess.Popen([sys.executable, "-c", _WORKER, *args], cwd=REPO, stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    answers = [json.loads(worker.communicate(timeout=60)[0]) for worker in workers]
    assert sorted(a["created"] for a in answers) == [False, True]
    assert [a["counted"] for a in answers].count(True) == 1
    store = TableStateStore.from_connection_string(azurite.connection_string, table_prefix=table_prefix)
    assert sum(1 for e in store.journal(rid) if e.written_at is not None) == 1
