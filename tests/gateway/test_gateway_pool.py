"""One pool of ARM connections per gateway, whatever the number of subscriptions (issue #27).

Every subscription's client goes to the same ARM host. When each client had its own transport, a
sweep worker kept a connection pool, and its idle TLS connections, for every subscription it had
seen: at 1,000 subscriptions its peak RSS grew from ~100 to ~250 MiB and the emulator held a
thread per connection. Counted here by the client side's established TCP connections to the
emulator (Linux's /proc/net/tcp), not by timing.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from guardrail.gateway import ArmGateway
from guardrail_workbench.emulator import Emulator, account_id
from guardrail_workbench.tenant import generate_tenant

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/net/tcp")

SUBSCRIPTIONS = 24


def _connections_to(port: int) -> int:
    """Established TCP connections whose remote end is 127.0.0.1:`port` (or ::1)."""
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        path = Path(table)
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            fields = line.split()
            remote, state = fields[2], fields[3]
            if state == "01" and int(remote.rsplit(":", 1)[1], 16) == port:
                count += 1
    return count


def _one_account_in_each_subscription(emulator: Emulator) -> list[str]:
    tenant = generate_tenant(SUBSCRIPTIONS, SUBSCRIPTIONS, seed=7, groups_per_subscription=1)
    emulator.seed(tenant)
    return [
        account_id(sub["subscriptionId"], group["name"], account["name"])
        for sub in tenant["subscriptions"]
        for group in sub["resourceGroups"]
        for account in group["accounts"]
    ]


def test_every_subscription_shares_one_pool_of_connections(
    emulator: Emulator, make_gateway: Callable[..., ArmGateway]
) -> None:
    ids = _one_account_in_each_subscription(emulator)
    subscriptions = {rid.split("/")[2] for rid in ids}
    assert len(subscriptions) == SUBSCRIPTIONS  # one account in each
    port = int(emulator.endpoint.rsplit(":", 1)[1].strip("/"))
    gateway = make_gateway()
    before = _connections_to(port)
    for rid in ids:  # one after another: one connection serves them all
        assert gateway.get(rid) is not None
    held = _connections_to(port) - before
    assert 1 <= held <= 2, f"{held} kept-alive connections for {SUBSCRIPTIONS} subscriptions"
    gateway.close()
    assert _connections_to(port) - before == 0


def test_a_gateway_keeps_a_bounded_number_of_clients(
    emulator: Emulator, make_gateway: Callable[..., ArmGateway], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker that has listed every subscription of a large tenant keeps at most CLIENTS_KEPT
    management clients; one dropped is rebuilt when its subscription comes again."""
    from guardrail import gateway as gateway_module

    monkeypatch.setattr(gateway_module, "CLIENTS_KEPT", 8)
    ids = _one_account_in_each_subscription(emulator)
    gateway = make_gateway()
    for rid in ids + ids[:3]:  # the first three again, after they were dropped
        assert gateway.get(rid) is not None
        assert len(gateway._clients) <= 8
