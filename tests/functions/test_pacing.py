"""Write pacing: a token bucket per subscription, as ARM's own write limits are."""

from __future__ import annotations

import time

from guardrail.service import WritePacer


def test_a_burst_goes_at_once_then_writes_follow_the_refill_rate() -> None:
    pacer = WritePacer(per_second=20, burst=5)
    started = time.monotonic()
    assert [pacer.acquire("sub-a") for _ in range(5)] == [0.0] * 5  # one event never waits behind another
    assert time.monotonic() - started < 0.05
    waited = pacer.acquire("sub-a")  # the bucket is empty: one refill interval
    assert 0.03 <= waited <= 0.06
    assert pacer.acquire("SUB-B") == 0.0  # buckets are per subscription


def test_the_sweep_keeps_to_the_refill_rate_even_with_tokens_left() -> None:
    pacer = WritePacer(per_second=20, burst=10)
    started = time.monotonic()
    for _ in range(4):
        pacer.acquire("sub-a", steady=True)
    assert time.monotonic() - started >= 3 * 0.05 - 0.005  # spaced, though the bucket held 10
    assert pacer.acquire("sub-a") == 0.0  # events still find tokens in the bucket
