"""Fixtures for the state-store tests: one Azurite Table service per test session.

The fixture fails (it does not skip) when Azurite is missing: run `npm install` in the repository
root; CI installs it from package.json.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from guardrail.state import TableStateStore
from guardrail_workbench.azurite import Azurite


@pytest.fixture(scope="session")
def azurite() -> Iterator[Azurite]:
    """A running Azurite Table service (in memory, 127.0.0.1, free port) for the whole session."""
    with Azurite() as instance:
        yield instance


StoreFactory = Callable[..., TableStateStore]


@pytest.fixture
def table_prefix() -> str:
    """A fresh table prefix per test, so tests sharing the session's Azurite never see each other."""
    return f"t{uuid.uuid4().hex[:12]}"


@pytest.fixture
def make_store(azurite: Azurite, table_prefix: str) -> Iterator[StoreFactory]:
    """Build TableStateStores on this test's tables (each call = a new client, as another instance
    of the Function App would have). Keyword arguments override the store's options."""
    made: list[TableStateStore] = []

    def factory(**options: Any) -> TableStateStore:
        options.setdefault("table_prefix", table_prefix)
        options.setdefault("window", timedelta(minutes=30))
        options.setdefault("max_remediations", 3)
        store = TableStateStore.from_connection_string(azurite.connection_string, **options)
        made.append(store)
        return store

    yield factory
    for store in made:
        store.close()


@pytest.fixture
def store(make_store: StoreFactory) -> TableStateStore:
    return make_store()


Race = Callable[[int, Callable[[int], Any]], list[Any]]


@pytest.fixture
def race() -> Race:
    """Run fn(0..n-1) on n threads released together by a barrier; return the results in order.
    Any exception in a thread fails the test."""
    import threading

    def run(n: int, fn: Callable[[int], Any]) -> list[Any]:
        barrier = threading.Barrier(n)
        results: list[Any] = [None] * n
        errors: list[BaseException] = []

        def worker(i: int) -> None:
            try:
                barrier.wait(timeout=10)
                results[i] = fn(i)
            except BaseException as error:  # reported below
                errors.append(error)

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        assert not any(thread.is_alive() for thread in threads), "a racing thread hung"
        if errors:
            raise errors[0]
        return results

    return run


T0 = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
US = timedelta(microseconds=1)


def account(name: str = "") -> str:
    """An account resource ID (a fresh name unless one is given)."""
    name = name or uuid.uuid4().hex[:10]
    return (
        "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg-ai"
        f"/providers/Microsoft.CognitiveServices/accounts/{name}"
    )
