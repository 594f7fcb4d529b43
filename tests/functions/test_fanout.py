"""The sweep fanned out on the Functions engine, end to end: the timer enqueues one message per
governed subscription on Azurite's queue, the queue-triggered function (found through
azure-functions' own indexing, handed `func.QueueMessage`s made by the library's converter) sweeps
each page and enqueues the next page's `nextLink`, every account ends compliant, and a slice that
fails every delivery lands on the poison queue and is reported."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from azure.functions.timer import TimerRequest

from guardrail import fanout
from guardrail.engine import Evaluation, evaluate
from guardrail.policy import parse_policy_text
from guardrail.settings import load_settings
from guardrail_workbench.queuehost import QueueHost, as_queue_message, host_queue_settings
from guardrail_workbench.stack import LocalStack, function_handlers, load_function_app
from tests.functions.conftest import POLICY, RG, SUB_A, SUB_B, SUB_C, account_id, open_account, unique

PAGE = 4
Handlers = dict[str, Callable[..., Any]]


@pytest.fixture(scope="module")
def fan_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    out = tmp_path_factory.mktemp("fanout")
    policy = Path(out) / "policy.yaml"
    policy.write_text(POLICY, encoding="utf-8")
    stack = LocalStack(
        out_dir=out,
        policy_path=str(policy),
        page_size=PAGE,
        receivers=False,
        extra_env={
            "GUARDRAIL_WRITES_PER_SECOND": "200",
            "GUARDRAIL_SUBSCRIPTIONS": f"{SUB_A},{SUB_B},{SUB_C}",
        },
    )
    stack.start()
    stack.emulator.seed(
        {
            "subscriptions": [
                {"subscriptionId": sub, "resourceGroups": [{"name": RG}]} for sub in (SUB_A, SUB_B, SUB_C)
            ]
        }
    )
    stack.apply_env()
    try:
        yield stack
    finally:
        stack.stop()


@pytest.fixture(scope="module")
def handlers(fan_stack: LocalStack) -> Handlers:
    return function_handlers()


def _host(stack: LocalStack, queue: str, function: Callable[[Any], None]) -> QueueHost:
    return QueueHost(stack.env["AzureWebJobsStorage"], queue, function, retry_delay=0)


def test_queue_functions_are_indexed_on_the_sweep_queue_and_its_poison_queue() -> None:
    from guardrail_workbench.stack import indexed_functions

    functions = {f.get_function_name(): f for f in indexed_functions()}
    for name, queue in (("sweep_slice", fanout.SWEEP_QUEUE), ("sweep_poison", fanout.POISON_QUEUE)):
        (binding,) = json.loads(functions[name].get_function_json())["bindings"]
        assert binding["type"] == "queueTrigger" and binding["direction"] == "IN"
        assert binding["queueName"] == queue and binding["connection"] == "AzureWebJobsStorage"
    module = load_function_app()
    assert (module.SWEEP_QUEUE, module.POISON_QUEUE) == (fanout.SWEEP_QUEUE, fanout.POISON_QUEUE)
    assert fanout.POISON_QUEUE == fanout.SWEEP_QUEUE + "-poison"  # the host's naming
    assert host_queue_settings()["maxDequeueCount"] >= 2


def test_timer_fans_out_by_subscription_and_page_and_every_account_ends_compliant(
    fan_stack: LocalStack, handlers: Handlers
) -> None:
    counts = {SUB_A: 9, SUB_B: 5, SUB_C: 2}  # pages of 4: 3 + 2 + 1 slices
    ids = []
    for sub, n in counts.items():
        for _ in range(n):
            name = unique("fan")
            fan_stack.emulator.put_account({"name": name, **open_account(name)}, account_id(name, sub))
            ids.append(account_id(name, sub))
    sent: list[str] = []
    queue = fanout.open_sweep_queue(load_settings(fan_stack.env).storage, None)
    queue.clear_messages()

    handlers["reconcile_sweep"](TimerRequest(past_due=False))
    peeked = [json.loads(m.content) for m in queue.peek_messages(max_messages=32)]
    assert sorted(m["subscription"] for m in peeked) == sorted(counts)  # one per governed subscription
    assert all(m["nextLink"] is None and m["v"] == 1 for m in peeked)
    assert all(
        fan_stack.emulator.account(rid)["properties"]["networkAcls"]["defaultAction"] == "Allow"
        for rid in ids
    )

    def slice_function(message: Any) -> None:
        sent.append(message.get_body().decode())
        handlers["sweep_slice"](message)

    host = _host(fan_stack, fanout.SWEEP_QUEUE, slice_function)
    assert host.drain(timeout=120)

    pages = sum(-(-n // PAGE) for n in counts.values())
    assert host.done == pages and host.failed == 0
    links = [json.loads(text)["nextLink"] for text in sent]
    assert sum(1 for link in links if link) == pages - len(counts)  # later pages came by nextLink
    policy = parse_policy_text(POLICY)
    for rid in ids:
        judged = evaluate(fan_stack.emulator.account(rid), policy, _now())
        assert isinstance(judged, Evaluation) and judged.remediation is None, rid
    findings = Path(fan_stack.env["GUARDRAIL_FINDINGS_FILE"]).read_text().splitlines()
    swept = {json.loads(line)["ResourceId"].lower() for line in findings if '"sweep"' in line}
    assert {rid.lower() for rid in ids} <= swept


def test_a_slice_that_fails_every_delivery_goes_to_the_poison_queue_and_is_reported(
    fan_stack: LocalStack, handlers: Handlers, caplog: pytest.LogCaptureFixture
) -> None:
    listing = f"/subscriptions/{SUB_C}/providers/Microsoft.CognitiveServices/accounts"
    fault = fan_stack.emulator.faults.add(resource_id=listing, method="GET", status=403, times=None)
    queue = fanout.open_sweep_queue(load_settings(fan_stack.env).storage, None)
    queue.clear_messages()
    queue.send_message(fanout.SweepSlice(SUB_C).to_message())
    host = _host(fan_stack, fanout.SWEEP_QUEUE, handlers["sweep_slice"])
    try:
        assert host.drain(timeout=60)
    finally:
        fault.times = fault.fired
    assert host.failed == host.max_dequeue and host.poisoned == 1 and host.done == 0

    poison = _host(fan_stack, fanout.POISON_QUEUE, handlers["sweep_poison"])
    with caplog.at_level(logging.ERROR, logger="guardrail"):
        assert poison.drain(timeout=30)
    assert poison.done == 1
    reports = [r.getMessage() for r in caplog.records if fanout.POISON_QUEUE in r.getMessage()]
    assert len(reports) == 1 and SUB_C in reports[0] and "first page" in reports[0]


def test_bad_slices_are_dropped_with_a_clear_error_and_nothing_is_read(
    fan_stack: LocalStack, handlers: Handlers, caplog: pytest.LogCaptureFixture
) -> None:
    stranger = "0d0d0d0d-4444-4444-8444-000000000004"
    foreign = "https://attacker.example/subscriptions/x"
    before = fan_stack.emulator.app.request_count
    cases = {
        "not json": "not JSON",
        json.dumps({"v": 1, "subscription": "nope"}): "not a subscription ID",
        json.dumps({"v": 2, "subscription": SUB_A}): "version",
        json.dumps({"v": 1, "subscription": stranger, "nextLink": None}): "not governed",
    }
    for body, expected in cases.items():
        caplog.clear()
        with caplog.at_level(logging.ERROR, logger="guardrail"):
            handlers["sweep_slice"](_message(body))
        assert any(expected in r.getMessage() for r in caplog.records), (body, caplog.text)
    # A nextLink that is not this subscription's listing on ARM is refused before any token is sent.
    with pytest.raises(ValueError, match="nextLink"):
        handlers["sweep_slice"](_message(json.dumps({"v": 1, "subscription": SUB_A, "nextLink": foreign})))
    assert fan_stack.emulator.app.request_count == before


def _message(body: str) -> Any:
    class _Sent:
        id = unique("msg")
        content = body
        dequeue_count = 1
        pop_receipt = "receipt"
        inserted_on = expires_on = next_visible_on = None

    return as_queue_message(_Sent())


def _now() -> Any:
    import datetime as dt

    return dt.datetime.now(dt.UTC)


def test_the_timer_sends_its_slice_messages_at_once(fan_stack: LocalStack) -> None:
    """Issue #27: one after another, the timer of a 1,000-subscription tenant spent ~30 s of queue
    round trips before the last slice was on the queue. Each send here waits until all three are
    in flight (a barrier), so sends made one after another break it."""
    import threading

    from guardrail import functions

    barrier = threading.Barrier(3, timeout=10)
    sent: list[str] = []

    class Queue:
        def send_message(self, content: str) -> None:
            barrier.wait()
            sent.append(json.loads(content)["subscription"])

    assert fanout.enqueue_sweep(functions.get_guardrail(), Queue()) == 3
    assert sorted(sent) == sorted([SUB_A, SUB_B, SUB_C])
