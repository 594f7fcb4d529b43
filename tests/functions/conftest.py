"""A whole local Azure for the function app tests: the ARM emulator (HTTPS), Azurite, and local
receivers for Teams, email and Monitor, with the app's own handlers subscribed to the events."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from guardrail import functions
from guardrail_workbench.stack import GUARDRAIL_CLAIMS, LocalStack, function_handlers

SUB_A = "0a0a0a0a-1111-4111-8111-000000000001"
SUB_B = "0b0b0b0b-2222-4222-8222-000000000002"
SUB_C = "0c0c0c0c-3333-4333-8333-000000000003"
RG = "rg-apps"

POLICY = f"""
version: 1
mode: enforce
network:
  require_default_deny: true
  min_prefix_length: 16
  allowed_vnet_subscriptions: [{SUB_A}]
  bypass_allowed_kinds: [OpenAI]
auth:
  require_local_auth_disabled: true
exemptions:
  - scope: /subscriptions/{SUB_A}/resourceGroups/rg-sandbox
    rules: ["*"]
    expires: 2999-12-31
    reason: sandbox
"""


def account_id(name: str, sub: str = SUB_A, rg: str = RG) -> str:
    return f"/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.CognitiveServices/accounts/{name}"


def open_account(name: str, kind: str = "AIServices", **props: Any) -> dict[str, Any]:
    """A body a user might PUT: every network allowed, trusted services let in."""
    properties: dict[str, Any] = {
        "customSubDomainName": name,
        "publicNetworkAccess": "Enabled",
        "disableLocalAuth": True,
        "networkAcls": {
            "defaultAction": "Allow",
            "bypass": "AzureServices",
            "ipRules": [{"value": "20.30.40.0/24"}],
            "virtualNetworkRules": [],
        },
    }
    properties.update(props)
    return {"location": "eastus", "kind": kind, "sku": {"name": "S0"}, "properties": properties}


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _local_stack(
    tmp_path_factory: pytest.TempPathFactory, *, connect: bool, policy_text: str = POLICY
) -> Iterator[LocalStack]:
    """A local Azure for one test module: the policy `policy_text`, the three subscriptions seeded,
    the function app's handlers subscribed to the emulator's events when `connect`."""
    out = tmp_path_factory.mktemp("stack")
    policy = Path(out) / "policy.yaml"
    policy.write_text(policy_text, encoding="utf-8")
    instance = LocalStack(
        out_dir=out,
        policy_path=str(policy),
        extra_env={"GUARDRAIL_WRITES_PER_SECOND": "200", "GUARDRAIL_ALERT_COOLDOWN_MINUTES": "60"},
    )
    instance.start()
    instance.emulator.seed(
        {
            "subscriptions": [
                {"subscriptionId": sub, "resourceGroups": [{"name": RG}, {"name": "rg-sandbox"}]}
                for sub in (SUB_A, SUB_B, SUB_C)
            ]
        }
    )
    instance.apply_env()
    if connect:
        instance.connect_function_app()
    try:
        yield instance
    finally:
        instance.stop()


@pytest.fixture
def settings_env(stack: LocalStack, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., None]]:
    """Change app settings for one test (the function app is rebuilt with them)."""

    def apply(**env: str) -> None:
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        functions.reset()

    yield apply
    monkeypatch.undo()
    functions.reset()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    yield from _local_stack(tmp_path_factory, connect=True)


@pytest.fixture(scope="module")
def quiet_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    """The same local Azure with no event subscription: each test delivers every event itself
    (to the function app's handlers), so it decides which delivery sees which fault."""
    yield from _local_stack(tmp_path_factory, connect=False)


@pytest.fixture(scope="module")
def handlers(stack: LocalStack) -> dict[str, Callable[..., Any]]:
    return function_handlers()


def guardrail_writes(stack: LocalStack, resource_id: str) -> int:
    """How many successful writes to the account the guardrail itself made (from the events)."""
    return sum(
        1
        for event in stack.emulator.events
        if event.get("eventType") == "Microsoft.Resources.ResourceWriteSuccess"
        and str(event.get("subject", "")).lower() == resource_id.lower()
        and event["data"]["claims"].get("appid") == GUARDRAIL_CLAIMS["appid"]
    )


def cards_for(stack: LocalStack, resource_id: str) -> list[dict[str, Any]]:
    return [card for card in stack.teams.cards if resource_id.lower() in str(card).lower()]


def emails_for(stack: LocalStack, resource_id: str) -> list[dict[str, Any]]:
    return [message for message in stack.email.messages if resource_id.lower() in str(message).lower()]


def records_for(stack: LocalStack, resource_id: str) -> list[dict[str, Any]]:
    return [row for row in stack.ingestion.records if row["ResourceId"].lower() == resource_id.lower()]


def settle(stack: LocalStack, timeout: float = 30.0) -> None:
    assert stack.wait_idle(timeout), "events were still being delivered"
    time.sleep(0.1)
    assert stack.wait_idle(timeout)
