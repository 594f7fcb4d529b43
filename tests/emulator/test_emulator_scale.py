"""The emulator at tenant scale (issue #27): its accounts indexed by subscription, so a listing
reads one subscription's keys, not the tenant's; the generated tenant's open fraction."""

from __future__ import annotations

import collections
import datetime as dt

import pytest

from guardrail.engine import Evaluation, evaluate
from guardrail.policy import parse_policy_text
from guardrail_workbench.emulator.arm import AccountStore, ArmApp, Request, request_kind
from guardrail_workbench.tenant import (
    CLOSED_PROFILES,
    PROFILES,
    generate_tenant,
    policy_for,
    subscription_ids,
)

API = "2024-10-01"


def _list(app: ArmApp, sub: str, skip: int = 0) -> dict[str, object]:
    query = {"api-version": API, **({"$skiptoken": str(skip)} if skip else {})}
    path = f"/subscriptions/{sub}/providers/Microsoft.CognitiveServices/accounts"
    keys = app.accounts.in_subscription(sub)
    return app.paged(keys, lambda k: app.accounts[k], Request("GET", path, query, {}), path, API)


def test_the_account_index_follows_adds_and_removes_and_keeps_its_sorted_keys_between_pages() -> None:
    store = AccountStore()
    a = "/subscriptions/aaa/resourcegroups/rg/providers/microsoft.cognitiveservices/accounts/"
    b = "/subscriptions/bbb/resourcegroups/rg/providers/microsoft.cognitiveservices/accounts/"
    for name in ("z", "m", "a"):
        store[a + name] = {"name": name}
    store[b + "x"] = {"name": "x"}
    keys = store.in_subscription("AAA")
    assert keys == [a + "a", a + "m", a + "z"]
    store[a + "m"] = {"name": "m", "changed": True}  # a write to an account: the same keys, not re-sorted
    assert store.in_subscription("aaa") is keys
    assert store.pop(a + "z")["name"] == "z" and store.pop(a + "z", None) is None
    del store[a + "a"]
    assert store.in_subscription("aaa") == [a + "m"]
    assert store.in_subscription("bbb") == [b + "x"] and store.in_subscription("ccc") == []
    store.clear()
    assert store.in_subscription("aaa") == [] and not store


def test_a_page_of_a_large_generated_tenant_holds_one_subscriptions_accounts_in_order() -> None:
    app = ArmApp(page_size=100)
    app.replace_tenant(generate_tenant(3000, 10, seed=3, open_fraction=0.1))
    sub = subscription_ids(10, 3)[4]
    first = _list(app, sub)
    second = _list(app, sub, skip=100)
    third = _list(app, sub, skip=200)
    ids = [str(a["id"]).lower() for page in (first, second, third) for a in page["value"]]  # type: ignore[attr-defined]
    assert len(ids) == 300 and ids == sorted(set(ids))
    assert all(rid.startswith(f"/subscriptions/{sub}/") for rid in ids)
    assert "$skipToken=100" in str(first["nextLink"]) and "nextLink" not in third
    assert len(app.dump()["subscriptions"]) == 10


def test_the_open_fraction_draws_that_share_of_open_accounts_in_assorted_ways() -> None:
    tenant = generate_tenant(4000, 4, seed=11, open_fraction=0.1)
    app = ArmApp()
    app.replace_tenant(tenant)
    policy = parse_policy_text(policy_for(tenant))
    now = dt.datetime.now(dt.UTC)
    judged = [evaluate(a, policy, now) for a in app.iter_accounts()]
    open_count = sum(1 for j in judged if not isinstance(j, Evaluation) or j.remediation is not None)
    assert 320 <= open_count <= 480  # 10 % of 4,000, give or take
    rules = collections.Counter(f.rule for j in judged if isinstance(j, Evaluation) for f in j.findings)
    assert len(rules) >= 4  # open in assorted ways, not one
    assert {name for _, name in PROFILES} > CLOSED_PROFILES


def test_without_an_open_fraction_the_tenant_is_the_one_it_always_was() -> None:
    assert generate_tenant(50, 2, seed=4) == generate_tenant(50, 2, seed=4, open_fraction=None)
    with pytest.raises(ValueError, match="open_fraction"):
        generate_tenant(1, 1, open_fraction=1.5)


@pytest.mark.parametrize(
    ("method", "path", "kind"),
    [
        ("GET", "/subscriptions/s/providers/Microsoft.CognitiveServices/accounts", "GET accounts list"),
        (
            "GET",
            "/subscriptions/s/resourceGroups/r/providers/Microsoft.CognitiveServices/accounts",
            "GET accounts list",
        ),
        (
            "PATCH",
            "/subscriptions/s/resourceGroups/r/providers/Microsoft.CognitiveServices/accounts/a",
            "PATCH account",
        ),
        (
            "POST",
            "/subscriptions/s/resourceGroups/r/providers/Microsoft.CognitiveServices/accounts/a/listKeys",
            "POST account child",
        ),
        (
            "GET",
            "/subscriptions/s/providers/Microsoft.CognitiveServices/locations/l/operationResults/x",
            "GET operation",
        ),
        ("GET", "/subscriptions/s/resourcegroups", "GET other"),
    ],
)
def test_request_kinds(method: str, path: str, kind: str) -> None:
    assert request_kind(method, path) == kind
