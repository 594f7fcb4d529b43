"""Issue #22: a worker that never hangs. Events go into the function app's handlers, the emulator
(HTTPS) and Azurite behind them; every scenario runs under a deadline in a thread of its own, so a
hang fails the test instead of hanging the test run."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from guardrail import functions
from guardrail.gateway import TransientArmError
from guardrail_workbench.stack import LocalStack
from tests.functions.test_loop import (
    Handlers,
    action,
    deliver,
    guardrail_writes,
    opened,
    patches,
    write_event,
)

DEADLINE = 90.0  # seconds; the scenarios below take a few seconds when nothing leaks


@pytest.fixture(scope="module")
def stack(quiet_stack: LocalStack) -> LocalStack:
    return quiet_stack


@pytest.fixture
def settings_env(stack: LocalStack, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., None]]:
    def apply(**env: str) -> None:
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        functions.reset()

    yield apply
    monkeypatch.undo()
    functions.reset()


def within(deadline: float, scenario: Callable[[], None]) -> None:
    """Run `scenario` in a daemon thread; fail if it has not ended by `deadline` seconds."""
    failure: list[BaseException] = []

    def run() -> None:
        try:
            scenario()
        except BaseException as error:  # handed to the test's thread
            failure.append(error)

    worker = threading.Thread(target=run, name="storm-scenario", daemon=True)
    worker.start()
    worker.join(deadline)
    if worker.is_alive():
        pytest.fail(f"the worker hung: the scenario had not ended after {deadline:g} s")
    if failure:
        raise failure[0]


@pytest.mark.parametrize(
    "fault",
    [{"status": 503, "retry_after": 0.01}, {"status": 429, "retry_after": 0.05}],
    ids=["503-storm", "429-short-retry-after"],
)
def test_a_storm_longer_than_the_pool_never_hangs_the_worker(
    stack: LocalStack, handlers: Handlers, settings_env: Callable[..., None], fault: dict[str, Any]
) -> None:
    # The smallest pool (10 connections per client) and 5 attempts per delivery: 6 failed
    # deliveries are 30 failed PATCHes, 24 of them retried, more than twice the pool.
    settings_env(ARM_CONNECTION_POOL_SIZE="2", ARM_RETRY_TOTAL="4")
    rid = opened(stack, "storm")
    event = write_event(rid)
    storm = stack.emulator.faults.add(resource_id=rid, method="PATCH", times=None, **fault)

    def scenario() -> None:
        try:
            for _ in range(6):  # Event Grid redelivers each failed delivery
                with pytest.raises(TransientArmError):
                    deliver(handlers, event)
        finally:
            storm.times = storm.fired  # ARM recovers
        deliver(handlers, event)

    within(DEADLINE, scenario)
    assert storm.fired >= 30
    assert action(stack, rid) == "Deny"  # repaired as soon as ARM recovered
    assert patches(stack, rid)[-1] == 200
    assert guardrail_writes(stack, rid) == 1
