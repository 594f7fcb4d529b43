"""Fixtures for the gateway suite: the real SDK (through `ArmGateway`) against the ARM emulator.

- `emulator`: a started `Emulator` (page size 2) seeded with `TENANT`: two subscriptions; `OPEN` accounts
  need a fix under the default policy, `CLOSED` ones are compliant.
- `settings`: `ArmSettings` pointing at the emulator with fast retry timings (tests stay quick).
- `gateway`: an `ArmGateway` built from `settings`; closed after the test.
- `decide`: the pure policy engine (default policy): the PATCH body an account needs, or None.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import pytest

from guardrail.gateway import ArmGateway, ArmSettings
from guardrail_workbench.emulator import Emulator, account_id, make_token

SUB1 = "00000000-1111-2222-3333-444444444444"
SUB2 = "99999999-8888-7777-6666-555555555555"
RG = "rg1"
OPEN = account_id(SUB1, RG, "open1")
CLOSED = account_id(SUB1, RG, "closed1")
GUARDRAIL_CLAIMS = {"appid": "guardrail-test-app", "oid": "guardrail-test-oid", "idtyp": "app"}


def account(name: str, **properties: Any) -> dict[str, Any]:
    return {
        "name": name,
        "kind": "AIServices",
        "sku": {"name": "S0"},
        "location": "westus",
        "properties": {"customSubDomainName": name, "publicNetworkAccess": "Enabled", **properties},
    }


DENY = {
    "defaultAction": "Deny",
    "bypass": "None",
    "ipRules": [{"value": "20.1.2.0/24"}],
    "virtualNetworkRules": [],
}
ALLOW = {"defaultAction": "Allow", "bypass": "None", "ipRules": [], "virtualNetworkRules": []}

TENANT: dict[str, Any] = {
    "subscriptions": [
        {
            "subscriptionId": SUB1,
            "displayName": "One",
            "resourceGroups": [
                {
                    "name": RG,
                    "accounts": [
                        account("open1", networkAcls=ALLOW),
                        account("open2"),
                        account("closed1", networkAcls=DENY),
                        account("closed2", networkAcls=DENY),
                        account("closed3", networkAcls=DENY),
                    ],
                }
            ],
        },
        {
            "subscriptionId": SUB2,
            "displayName": "Two",
            "resourceGroups": [
                {"name": "rg-b", "accounts": [account(f"b{i}", networkAcls=DENY) for i in range(5)]}
            ],
        },
    ]
}


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    with Emulator(port=0, page_size=2) as arm:
        arm.seed(TENANT)
        yield arm


@pytest.fixture
def settings(emulator: Emulator) -> ArmSettings:
    return ArmSettings(
        endpoint=emulator.endpoint,
        ca_bundle=emulator.ca_bundle,
        credential="static",
        static_token=make_token(GUARDRAIL_CLAIMS),
        retry_total=3,
        retry_backoff=0.01,
        retry_backoff_max=0.05,
        max_retry_after=2.0,
        conflict_retries=3,
        conflict_backoff=0.01,
        precondition_retries=2,
        poll_interval=0.01,
        connect_timeout=2.0,
        read_timeout=5.0,
    )


@pytest.fixture
def make_gateway(settings: ArmSettings) -> Iterator[Callable[..., ArmGateway]]:
    made: list[ArmGateway] = []

    def make(**overrides: Any) -> ArmGateway:
        made.append(ArmGateway(replace(settings, **overrides)))
        return made[-1]

    yield make
    for gateway in made:
        gateway.close()


@pytest.fixture
def gateway(make_gateway: Callable[..., ArmGateway]) -> ArmGateway:
    return make_gateway()


@pytest.fixture
def decide() -> Callable[[dict[str, Any]], dict[str, Any] | None]:
    from guardrail.engine import Evaluation, evaluate
    from guardrail.policy import Policy

    policy = Policy.default()

    def run(account: dict[str, Any]) -> dict[str, Any] | None:
        result = evaluate(account, policy, dt.datetime.now(dt.UTC))
        return result.remediation if isinstance(result, Evaluation) else None

    return run
