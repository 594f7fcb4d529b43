"""Cloud Custodian (c7n + c7n-azure, in .venv-custodian) against the local tenant: pull mode finds
exactly the open accounts, event mode processes one write event, a `tag` action lands (through
the tags API, `PATCH {id}/providers/Microsoft.Resources/tags/default`) and so does `lock` (a
management lock whose scope arrives percent-encoded)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from guardrail_workbench.emulator import Request, account_id

from .conftest import (
    ACCOUNT,
    CUSTODIAN_VENV,
    HERE,
    RG,
    SUB,
    SUB_OTHER,
    TENANT,
    LocalTenant,
    Result,
    require_venv,
)

pytestmark = pytest.mark.clients

OPEN_POLICY = """
policies:
  - name: open-ai-accounts
    resource: azure.cognitiveservice
    filters:
      - "properties.publicNetworkAccess": Enabled
      - or:
          - "properties.networkAcls": absent
          - "properties.networkAcls.defaultAction": Allow
    actions:
      - type: tag
        tag: network
        value: open
      - type: lock
        lock-type: CanNotDelete
        lock-name: keep-for-review
"""

EVENT_POLICY = """
policies:
  - name: open-account-written
    resource: azure.cognitiveservice
    mode:
      type: azure-event-grid
      events:
        - resourceProvider: Microsoft.CognitiveServices/accounts
          event: write
    filters:
      - "properties.networkAcls.defaultAction": Allow
    actions:
      - type: tag
        tag: seen-by
        value: custodian-event
"""


def _open_in_seed(subscription: str) -> set[str]:
    names = set()
    for sub in TENANT["subscriptions"]:
        if sub["subscriptionId"] != subscription:
            continue
        for group in sub["resourceGroups"]:
            for account in group["accounts"]:
                properties = account["properties"]
                acls = properties.get("networkAcls")
                if properties.get("publicNetworkAccess") == "Enabled" and (
                    not acls or acls["defaultAction"] == "Allow"
                ):
                    names.add(account["name"])
    return names


@pytest.fixture(scope="module")
def custodian(tenant: LocalTenant) -> Any:
    python = str(require_venv(CUSTODIAN_VENV, "custodian", "requirements-custodian.txt").with_name("python"))

    def run(*args: str, subscription: str = SUB, check: bool = True) -> Result:
        extra = {
            "CUSTODIAN_ARM_ENDPOINT": tenant.emulator.endpoint,
            "AZURE_SUBSCRIPTION_ID": subscription,
            "AZURE_USE_MSI": "1",  # ManagedIdentityCredential -> the local token endpoint
        }
        return tenant.run(
            [python, str(HERE / "custodian_local.py"), *args], tenant.az_token, extra_env=extra, check=check
        )

    return run


def _policy(tenant: LocalTenant, name: str, text: str) -> Path:
    path = tenant.home / name
    path.write_text(text, encoding="utf-8")
    return path


def test_pull_mode_finds_exactly_the_open_accounts_and_tags_them(tenant: LocalTenant, custodian: Any) -> None:
    tenant.control("PUT", "/_emulator/tenant", TENANT)  # a fresh tenant, whatever ran before
    out = tenant.home / "custodian-pull"
    result = custodian("run", "--output-dir", str(out), str(_policy(tenant, "open.yml", OPEN_POLICY)))
    found = json.loads((out / "open-ai-accounts" / "resources.json").read_text(encoding="utf-8"))
    assert {r["name"] for r in found} == _open_in_seed(SUB) == {"myaccount", "myopenai"}, result.describe()
    tag_writes = [
        r for r in result.requests if r["path"].endswith("/providers/Microsoft.Resources/tags/default")
    ]
    assert tag_writes and all(r["method"] == "PATCH" and r["status"] == 200 for r in tag_writes), (
        result.describe()
    )
    for name in ("myaccount", "myopenai"):
        account = tenant.emulator.account(account_id(SUB, RG, name))
        assert account is not None and account["tags"] == {"owner": "team-a", "network": "open"}
    # `lock` PUTs a management lock at the account's scope, the scope percent-encoded in the path
    lock_writes = [r for r in result.requests if "/providers/Microsoft.Authorization/locks/" in r["path"]]
    assert [r["status"] for r in lock_writes] == [201, 201], result.describe()
    assert set(tenant.emulator.app.locks) == {
        f"{account_id(SUB, RG, name)}/providers/microsoft.authorization/locks/keep-for-review".lower()
        for name in ("myaccount", "myopenai")
    }
    locked = tenant.emulator.account(account_id(SUB, RG, "locked"))
    assert locked is not None and "network" not in locked["tags"]
    other = tenant.emulator.account(account_id(SUB_OTHER, "rg-sandbox", "sandbox-open"))
    assert other is not None and "network" not in other["tags"]  # another subscription: not listed


def test_event_mode_processes_one_write_event(tenant: LocalTenant, custodian: Any) -> None:
    tenant.control("PUT", "/_emulator/tenant", TENANT)
    openai = ACCOUNT.replace("/myaccount", "/myopenai")
    # a real write makes the emulator emit the Event Grid event Custodian's function would receive
    seen = len(tenant.emulator.events)
    tenant.emulator.app.handle(
        Request(
            "PATCH",
            openai,
            {"api-version": "2025-09-01"},
            {"authorization": "Bearer local"},
            json.dumps({"properties": {"disableLocalAuth": True}}).encode(),
        )
    )
    assert tenant.emulator.wait_for_events()
    (event,) = [
        e
        for e in list(tenant.emulator.events)[seen:]
        if e["eventType"] == "Microsoft.Resources.ResourceWriteSuccess"
    ]
    event_file = tenant.home / "event.json"
    event_file.write_text(json.dumps([event]), encoding="utf-8")
    result = custodian("event", str(_policy(tenant, "event.yml", EVENT_POLICY)), str(event_file))
    assert json.loads(result.stdout.strip().splitlines()[-1]) == {
        "policy": "open-account-written",
        "resources": 1,
    }
    paths = [(r["method"], r["path"]) for r in result.requests]
    assert ("GET", f"/subscriptions/{SUB}/providers/Microsoft.CognitiveServices") in paths, result.describe()
    account = tenant.emulator.account(openai)
    assert account is not None and account["tags"].get("seen-by") == "custodian-event", result.describe()
    untouched = tenant.emulator.account(ACCOUNT)
    assert untouched is not None and "seen-by" not in untouched["tags"]  # only the event's account
