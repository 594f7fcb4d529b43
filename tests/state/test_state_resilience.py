"""Running without memory: an unreachable, hung or misconfigured store must not stop the guardrail."""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from guardrail.state import (
    BreakerState,
    NullStateStore,
    ResilientStateStore,
    StateStore,
    TableStateStore,
    open_state_store,
)
from guardrail_workbench.azurite import AZURITE_ACCOUNT_NAME, Azurite

T0 = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
RID = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.CognitiveServices/accounts/a"
WRONG_KEY = "d3Jvbmcga2V5IHdyb25nIGtleSB3cm9uZyBrZXkgd3Jvbmcga2V5IHdyb25nIGtleSB3cm9uZyBrZXk="


def connection_string(port: int, key: str = WRONG_KEY) -> str:
    return (
        f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT_NAME};AccountKey={key};"
        f"TableEndpoint=http://127.0.0.1:{port}/{AZURITE_ACCOUNT_NAME};"
    )


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port  # nothing listens here any more: connections are refused


@pytest.fixture
def hung_port() -> Iterator[int]:
    """A port that completes TCP handshakes (listen backlog) but never answers a request."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        yield sock.getsockname()[1]


def warnings_from_state(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage() for r in caplog.records if r.name == "guardrail.state" and r.levelno >= logging.WARNING
    ]


def every_call(store: StateStore) -> list[Any]:
    """Each operation twice (repeats included, so a remembering store would answer differently)."""
    answers: list[Any] = []
    for _ in range(2):
        answers += [
            store.journal(RID),
            store.breaker_state(RID, T0),
            store.trip_breaker(RID, T0),
            store.claim_event("event-1", T0),
            store.claim_alert(RID, "fp", T0, timedelta(hours=1)),
            store.claim_alerts(RID, ["fp", "fp-2", "fp"], T0, timedelta(hours=1)),
            store.purge(T0),
        ]
        store.clear_unreadable(RID)  # must not raise either
    return answers


PERMISSIVE = [[], None, True, True, True, [True, True, True], 0] * 2


def run_bounded(fn: Callable[[], list[Any]], limit: float = 30.0) -> list[Any]:
    """Run fn on a thread; fail (instead of hanging the suite) if it has not finished in `limit`."""
    box: list[Any] = []
    errors: list[BaseException] = []

    def target() -> None:
        try:
            box.append(fn())
        except BaseException as error:
            errors.append(error)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(limit)
    assert not thread.is_alive(), f"calls against an unreachable store did not complete in {limit} s"
    if errors:
        raise errors[0]
    result: list[Any] = box[0]
    return result


def test_null_store_answers_permissively() -> None:
    assert every_call(NullStateStore()) == PERMISSIVE


def test_refused_connection_answers_permissively_with_one_warning(
    closed_port: int, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="guardrail.state")
    store = open_state_store(connection_string(closed_port))
    assert isinstance(store, ResilientStateStore)
    assert run_bounded(lambda: every_call(store)) == PERMISSIVE
    messages = warnings_from_state(caplog)
    assert len(messages) == 1, messages
    assert messages[0].startswith("running without memory: ")
    assert store.degraded


def test_hung_store_times_out_and_answers_permissively(
    hung_port: int, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="guardrail.state")
    store = open_state_store(
        connection_string(hung_port), connection_timeout=0.5, read_timeout=0.5, retry_total=0
    )
    assert run_bounded(lambda: every_call(store)) == PERMISSIVE
    messages = warnings_from_state(caplog)
    assert len(messages) == 1, messages
    assert messages[0].startswith("running without memory: ")


def test_wrong_account_key_answers_permissively(azurite: Azurite, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="guardrail.state")
    store = open_state_store(connection_string(azurite.port, key=WRONG_KEY), table_prefix="authfail")
    assert run_bounded(lambda: every_call(store)) == PERMISSIVE
    messages = warnings_from_state(caplog)
    assert len(messages) == 1, messages
    assert messages[0].startswith("running without memory: ")
    assert "authenticate" in messages[0]  # 403 from the service, mapped to an SDK HttpResponseError


@pytest.mark.parametrize(
    ("setting", "reason"),
    [(None, "no storage connection string"), ("", "no storage connection string"), ("garbage", "unusable")],
)
def test_missing_or_malformed_connection_string(
    setting: str | None, reason: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="guardrail.state")
    store = open_state_store(setting)
    assert every_call(store) == PERMISSIVE
    messages = warnings_from_state(caplog)
    assert len(messages) == 1, messages
    assert messages[0].startswith("running without memory: ")
    assert reason in messages[0]


def test_secrets_are_not_logged(closed_port: int, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    store = open_state_store(connection_string(closed_port))
    every_call(store)
    open_state_store(f"AccountName=x;AccountKey={WRONG_KEY}")
    assert WRONG_KEY not in caplog.text


def test_a_healthy_store_through_the_factory_remembers(
    azurite: Azurite, table_prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="guardrail.state")
    store = open_state_store(azurite.connection_string, table_prefix=table_prefix)
    assert isinstance(store, ResilientStateStore)
    tripped = BreakerState(RID.lower(), T0, T0 + timedelta(minutes=30))
    assert every_call(store) == [
        [], None, True, True, True, [False, True, False], 0,
        [], tripped, False, False, False, [False, False, False], 0,
    ]  # fmt: skip
    assert isinstance(store.inner, TableStateStore)
    assert not store.degraded
    assert warnings_from_state(caplog) == []


def test_identity_style_endpoint_and_credential(azurite: Azurite, table_prefix: str) -> None:
    from azure.core.credentials import AzureNamedKeyCredential

    from guardrail_workbench.azurite import AZURITE_ACCOUNT_KEY

    credential = AzureNamedKeyCredential(AZURITE_ACCOUNT_NAME, AZURITE_ACCOUNT_KEY)
    store = open_state_store(
        None, table_endpoint=azurite.table_endpoint, credential=credential, table_prefix=table_prefix
    )
    assert store.claim_event("e", T0) is True
    assert store.claim_event("e", T0) is False


def test_caller_errors_are_not_swallowed(closed_port: int) -> None:
    store = open_state_store(connection_string(closed_port))
    with pytest.raises(ValueError, match="timezone-aware"):
        store.claim_event("e", datetime(2026, 1, 1))
    with pytest.raises(ValueError):
        store.journal("")


# -- recovery, with a scripted inner store and clock ----------------------------------------------
class FlakyStore(NullStateStore):
    """Remembers event ids; raises the Azure SDK's connection error while `down` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.down = False
        self.calls = 0
        self.seen: set[str] = set()

    def claim_event(self, event_id: str, now: datetime) -> bool:
        from azure.core.exceptions import ServiceRequestError

        self.calls += 1
        if self.down:
            raise ServiceRequestError("Connection refused")
        if event_id in self.seen:
            return False
        self.seen.add(event_id)
        return True

    def breaker_state(self, resource_id: str, now: datetime) -> BreakerState | None:
        return BreakerState(resource_id, T0, T0 + self.window)


def test_degraded_store_retries_after_a_while_and_recovers(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="guardrail.state")
    inner = FlakyStore()
    clock = [1000.0]
    store = ResilientStateStore(inner, retry_after=timedelta(seconds=60), clock=lambda: clock[0])

    assert store.claim_event("a", T0) is True
    assert store.claim_event("a", T0) is False  # remembered

    inner.down = True
    assert store.claim_event("a", T0) is True  # permissive
    calls = inner.calls
    for _ in range(5):
        assert store.claim_event("a", T0) is True
    assert inner.calls == calls, "a degraded store must not be asked again before retry_after"

    clock[0] += 61
    inner.down = False
    assert store.claim_event("a", T0) is False  # asked again, remembers again
    assert not store.degraded
    assert any("memory is back" in r.getMessage() for r in caplog.records)

    inner.down = True
    store.claim_event("b", T0)
    messages = warnings_from_state(caplog)
    assert len(messages) == 2, messages  # one per outage, not one per call


def test_results_pass_through_unchanged() -> None:
    store = ResilientStateStore(FlakyStore())
    assert store.breaker_state(RID, T0) == BreakerState(RID, T0, T0 + timedelta(minutes=30))
    assert store.window == timedelta(minutes=30)
    assert store.max_remediations == 3
