"""Issue #22: a worker that never hangs. Events go into the function app's handlers, the emulator
(HTTPS) and Azurite behind them; every scenario runs under a deadline in a thread of its own, so a
hang fails the test instead of hanging the test run."""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from guardrail import fanout
from guardrail.gateway import TransientArmError
from guardrail.settings import load_settings
from guardrail_workbench.queuehost import QueueHost
from guardrail_workbench.stack import LocalStack
from tests.conftest import REPO
from tests.functions.conftest import POLICY, SUB_A, account_id, open_account, unique
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


# -- #22.3 two accounts, one key: IDs key the way ARM compares them ----------------------------------
KELVIN = "\u212a"  # KELVIN SIGN: str.lower() gives "k", ARM's ordinal ignore-case keeps it apart


def test_an_id_that_lower_cases_onto_another_shares_none_of_its_state(
    stack: LocalStack, handlers: Handlers
) -> None:
    name = unique("kelvin")
    group = unique("rg-kv")
    victim = account_id(name, rg=group)
    attacker = account_id(name, rg=group.replace("k", KELVIN, 1))
    assert victim.lower() == attacker.lower() and victim != attacker
    for rid in (attacker, victim):
        body = open_account(name, customSubDomainName=unique("sd"))
        stack.emulator.put_account({"name": name, **body}, rid)
    assert stack.emulator.account(victim) != stack.emulator.account(attacker)  # two accounts in ARM

    # The attacker fights the guardrail on its own account until its breaker trips.
    deliver(handlers, write_event(attacker))
    for _ in range(3):
        stack.emulator.put_account(
            {"name": name, **open_account(name, customSubDomainName=unique("sd"))}, attacker
        )
        deliver(handlers, write_event(attacker))
    attacker_rows = [r for r in stack.ingestion.records if r["ResourceId"] == attacker]
    assert any(r["Status"] == "remediation-suspended" for r in attacker_rows)

    # The victim's first change is repaired: its journal and breaker are its own.
    deliver(handlers, write_event(victim))
    assert action(stack, victim) == "Deny"
    victim_rows = [r for r in stack.ingestion.records if r["ResourceId"] == victim]
    assert ("default-action-deny", "remediated") in {(r["Rule"], r["Status"]) for r in victim_rows}
    assert not any(r["Status"] == "remediation-suspended" for r in victim_rows)


# -- #22.4 a child's name from an ARM body is checked before a URL is built from it ------------------
FOREIGN = "0badf00d-0000-4000-8000-00000000beef"


@pytest.mark.parametrize("name", ["..", ".", "pe?x=1", "pe#frag", "pe%2F..", "pe\\..", "pe\u202eexe"])
def test_a_private_endpoint_connection_with_a_hostile_name_is_refused_and_nothing_is_written(
    stack: LocalStack, handlers: Handlers, settings_env: Callable[..., None], name: str
) -> None:
    policy = POLICY.replace("network:\n", f"network:\n  allowed_private_endpoint_subscriptions: [{SUB_A}]\n")
    settings_env(GUARDRAIL_POLICY_PATH="", GUARDRAIL_POLICY=policy)
    rid = opened(stack, "pe-name", publicNetworkAccess="Disabled")
    stack.emulator.put_account({**stack.emulator.account(rid), "properties": {**closed(stack, rid)}}, rid)
    endpoint = f"/subscriptions/{FOREIGN}/resourceGroups/rg-pe/providers/Microsoft.Network/privateEndpoints/x"
    stack.emulator.connect_private_endpoint(rid, endpoint, name=name)
    before = stack.emulator.account(rid)
    seen = len(stack.emulator.app.requests)

    deliver(handlers, write_event(rid))

    writes = [(m, p) for m, p, _ in stack.emulator.app.requests[seen:] if m != "GET"]
    assert writes == []  # neither the connection nor, through a dot segment, the account
    after = stack.emulator.account(rid)
    assert after is not None and before is not None
    assert after["properties"]["networkAcls"] == before["properties"]["networkAcls"]
    rows = [r for r in stack.ingestion.records if r["ResourceId"] == rid]
    pe_rows = [r for r in rows if r["Rule"] == "private-endpoint-not-allowed"]
    assert pe_rows and all(r["Status"] != "remediated" for r in pe_rows)
    assert all("cannot be rejected" in r["Message"] and "\n" not in r["Message"] for r in pe_rows)


def closed(stack: LocalStack, rid: str) -> dict[str, Any]:
    """The account's properties with every network rule closed (nothing else for the guardrail to fix)."""
    account = stack.emulator.account(rid)
    assert account is not None
    acls = {"defaultAction": "Deny", "bypass": "None", "ipRules": [], "virtualNetworkRules": []}
    return {**account["properties"], "networkAcls": acls, "publicNetworkAccess": "Disabled"}


# -- #22.6 input never writes a log line of its own ----------------------------------------------------
def test_a_poisoned_sweep_message_cannot_forge_a_log_line(
    stack: LocalStack, handlers: Handlers, caplog: pytest.LogCaptureFixture
) -> None:
    forged = "\n2026-12-07 ERROR guardrail: sweep finished: every account compliant"
    link = "https://management.azure.com/subscriptions/x/providers/p?$skipToken=1" + forged
    bodies = [
        fanout.SweepSlice(SUB_A, next_link=link).to_message(),  # passes the slice's validation
        json.dumps({"v": 1, "subscription": "nope" + forged}),  # does not
        "not json" + forged.replace("\n", "\u2028"),
    ]
    queue = fanout.open_sweep_queue(load_settings(stack.env).storage, None, fanout.POISON_QUEUE)
    queue.clear_messages()
    for body in bodies:
        queue.send_message(body)
    host = QueueHost(
        stack.env["AzureWebJobsStorage"], fanout.POISON_QUEUE, handlers["sweep_poison"], retry_delay=0
    )
    with caplog.at_level(logging.INFO, logger="guardrail"):
        assert host.drain(timeout=30)
    assert host.done == len(bodies)
    reports = [r.getMessage() for r in caplog.records if fanout.POISON_QUEUE in r.getMessage()]
    assert len(reports) == len(bodies)
    for line in reports:
        assert len(line.splitlines()) == 1 and "every account compliant" in line
    assert not any(
        line.startswith("2026-12-07") for r in caplog.records for line in r.getMessage().splitlines()
    )


# -- bounded I/O: the credential's token requests ---------------------------------------------------
@pytest.fixture
def silent_endpoint() -> Iterator[str]:
    """A loopback HTTP endpoint that accepts connections and never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    held: list[socket.socket] = []

    def hold() -> None:
        with contextlib.suppress(OSError):
            while True:
                held.append(server.accept()[0])

    threading.Thread(target=hold, name="silent-endpoint", daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}/msi/token"
    finally:
        server.close()
        for connection in held:
            connection.close()


def test_a_token_endpoint_that_never_answers_fails_the_delivery_instead_of_hanging_it(
    stack: LocalStack, handlers: Handlers, settings_env: Callable[..., None], silent_endpoint: str
) -> None:
    # The managed identity endpoint (App Service's, as a function app has it) accepts and never
    # answers: azure-core's default read timeout is 300 s per attempt; the guardrail's is bounded.
    settings_env(
        ARM_CREDENTIAL="default",
        IDENTITY_ENDPOINT=silent_endpoint,
        IDENTITY_HEADER="local",
        GUARDRAIL_TOKEN_CONNECT_TIMEOUT="1",
        GUARDRAIL_TOKEN_READ_TIMEOUT="0.5",
    )
    rid = opened(stack, "token")

    def scenario() -> None:
        with pytest.raises(TransientArmError):  # Event Grid redelivers
            deliver(handlers, write_event(rid))

    within(DEADLINE, scenario)
    assert action(stack, rid) == "Allow"  # nothing was written without a token


def test_host_json_ends_an_overrunning_invocation_within_what_every_plan_allows() -> None:
    # The host ends a longer invocation as failed (Event Grid then redelivers, a queue message comes
    # back): 10 minutes is the Consumption plan's maximum, and Flex Consumption has none.
    host = json.loads((REPO / "host.json").read_text(encoding="utf-8"))
    hours, minutes, seconds = (int(part) for part in host["functionTimeout"].split(":"))
    limit = hours * 3600 + minutes * 60 + seconds
    assert 30 < limit <= 600  # longer than Event Grid's 30 s wait for an answer, within every plan
