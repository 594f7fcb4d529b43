"""The Azure CLI's two recordings of the Foundry managed network against real ARM
(../shared/contracts/recorded-arm/azure-cli/test_managed_network_crud.yaml, test_outbound_rule_fqdn.yaml),
replayed against the emulator interaction by interaction (tests/emulator/replay_managed.py)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from guardrail_workbench.emulator import Emulator

from .conftest import RawResponse
from .replay_managed import fields, load, replay

RECORDINGS = ("test_managed_network_crud.yaml", "test_outbound_rule_fqdn.yaml")
SCRUBBED = {
    "subscriptions": [
        {
            "subscriptionId": "00000000-0000-0000-0000-000000000000",
            "resourceGroups": [{"name": "clitest.rg000001", "location": "eastus"}],
        }
    ]
}


def _send(raw: Callable[..., RawResponse]) -> Callable[[str, str, Any], RawResponse]:
    return lambda method, url, body: raw(method, url, body)


@pytest.mark.parametrize("recording", RECORDINGS)
def test_the_recording_replays_against_the_emulator(
    emulator: Emulator, raw: Callable[..., RawResponse], contracts: Path, recording: str
) -> None:
    exchanges = load(contracts / "recorded-arm" / "azure-cli" / recording)
    emulator.seed(SCRUBBED)
    transcript: list[str] = []
    problems = replay(exchanges, _send(raw), emulator.endpoint, transcript)
    assert problems == [], "\n".join([*problems, "", *transcript])
    # Every write to the managed network was compared, its operation polled to its end.
    writes = [e for e in exchanges if e.method in ("PUT", "PATCH", "DELETE") and "managedNetworks" in e.uri]
    assert len(writes) == (2 if "crud" in recording else 3)
    assert sum("polls recorded" in line for line in transcript) == len(writes)


def test_a_differing_emulator_fails_the_replay(
    emulator: Emulator, raw: Callable[..., RawResponse], contracts: Path
) -> None:
    exchanges = load(contracts / "recorded-arm" / "azure-cli" / "test_managed_network_crud.yaml")
    emulator.seed(SCRUBBED)
    emulator.faults.add(method="PATCH", action="fail_provisioning")  # the isolation mode stays
    problems = replay(exchanges, _send(raw), emulator.endpoint)
    assert any("operation statuses" in p and "Failed" in p for p in problems), problems
    assert any(
        "isolationMode 'AllowInternetOutbound', recorded 'AllowOnlyApprovedOutbound'" in p for p in problems
    )


def test_fields_compares_what_the_guardrail_reads() -> None:
    network = {
        "properties": {
            "provisioningState": "Succeeded",
            "managedNetwork": {
                "isolationMode": "AllowInternetOutbound",
                "outboundRules": {},
                "networkId": "x",
            },
        }
    }
    assert fields(network) == {
        "isolationMode": "AllowInternetOutbound",
        "outboundRules": {},
        "provisioningState": "Succeeded",
    }
    assert fields({"properties": {"provisioningState": "Creating"}}) == {}  # not terminal: not compared
    assert fields({"error": {"code": "ResourceNotFound"}}) == {"error": "ResourceNotFound"}
