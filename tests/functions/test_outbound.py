"""#14's outbound rules end to end through the function app's handlers, the emulator and Azurite: an
exfiltration FQDN in allowedFqdnList is stripped (an exact name and a `*.suffix` match stay) and
verified by reading the account again; `outbound-not-restricted` is report-only by default (no
write) and fixed when the policy's `remediate` turns it on."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from guardrail_workbench.stack import LocalStack, as_function_event
from tests.functions.conftest import POLICY, account_id, cards_for, records_for, unique
from tests.functions.test_loop import stack, write_event  # noqa: F401 - the stack fixture
from tests.functions.test_private_endpoints import _compliant

Handlers = dict[str, Callable[..., Any]]
ALLOWED = ["api.contoso.example", "*.blob.core.windows.net"]
EXFIL = "exfil.evil.example"


def _policy(settings_env: Callable[..., None], extra: str = "", remediate: str = "") -> None:
    network = f"network:\n  allowed_fqdns: [{', '.join(repr(p) for p in ALLOWED)}]\n{extra}"
    policy = POLICY.replace("network:\n", network)
    if remediate:
        policy += f"remediate:\n  {remediate}\n"
    settings_env(GUARDRAIL_POLICY_PATH="", GUARDRAIL_POLICY=policy)


def _outbound(stack: LocalStack, prefix: str, restrict: bool, fqdns: list[str]) -> str:  # noqa: F811
    name = unique(prefix)
    rid = account_id(name)
    body = _compliant(name)
    body["properties"].update(restrictOutboundNetworkAccess=restrict, allowedFqdnList=fqdns)
    stack.emulator.put_account(body, rid)
    return rid


def _props(stack: LocalStack, rid: str) -> dict[str, Any]:  # noqa: F811
    account = stack.emulator.account(rid)
    assert account is not None
    return dict(account["properties"])


def _patches(stack: LocalStack, rid: str) -> int:  # noqa: F811
    return sum(1 for m, p, s in stack.emulator.app.requests if m == "PATCH" and p.lower() == rid.lower())


def test_an_exfiltration_fqdn_is_stripped_and_verified(
    stack: LocalStack,  # noqa: F811
    handlers: Handlers,
    settings_env: Callable[..., None],
) -> None:
    _policy(settings_env)
    listed = ["API.contoso.example", "ml.blob.core.windows.net", EXFIL, "blob.core.windows.net"]
    rid = _outbound(stack, "fqdn", True, listed)

    handlers["on_resource_write"](as_function_event(write_event(rid)))

    props = _props(stack, rid)
    assert props["allowedFqdnList"] == ["API.contoso.example", "ml.blob.core.windows.net"]
    assert props["restrictOutboundNetworkAccess"] is True
    rows = [r for r in records_for(stack, rid) if r["Rule"] == "outbound-fqdn-not-allowed"]
    assert sorted((r["Value"], r["Status"]) for r in rows) == [
        ("blob.core.windows.net", "remediated"),  # the apex does not match *.blob.core.windows.net
        (EXFIL, "remediated"),
    ]
    assert rows[0]["Before"] == {"allowedFqdnList": listed}
    assert rows[0]["After"] == {"allowedFqdnList": props["allowedFqdnList"]}  # as re-read
    (card,) = cards_for(stack, rid)
    assert f"removed allowedFqdnList {EXFIL}, blob.core.windows.net" in str(card).replace("\\\\", "")
    assert _patches(stack, rid) == 1

    handlers["on_resource_write"](as_function_event(write_event(rid)))  # its own write's event: a no-op
    assert _patches(stack, rid) == 1 and len(cards_for(stack, rid)) == 1


def test_unrestricted_outbound_is_report_only_by_default(
    stack: LocalStack,  # noqa: F811
    handlers: Handlers,
    settings_env: Callable[..., None],
) -> None:
    _policy(settings_env, extra="  require_outbound_restricted: true\n")
    rid = _outbound(stack, "unrestricted", False, ["api.contoso.example"])

    handlers["on_resource_write"](as_function_event(write_event(rid)))

    assert _props(stack, rid)["restrictOutboundNetworkAccess"] is False
    assert _patches(stack, rid) == 0
    rows = [r for r in records_for(stack, rid) if r["Rule"] == "outbound-not-restricted"]
    assert [(r["Status"], r["After"]) for r in rows] == [("violation", None)]


def test_unrestricted_outbound_is_fixed_when_the_policy_says_so_keeping_the_allowed_fqdns(
    stack: LocalStack,  # noqa: F811
    handlers: Handlers,
    settings_env: Callable[..., None],
) -> None:
    _policy(
        settings_env,
        extra="  require_outbound_restricted: true\n",
        remediate="outbound-not-restricted: true",
    )
    rid = _outbound(stack, "restrict", False, ["api.contoso.example", EXFIL])

    handlers["on_resource_write"](as_function_event(write_event(rid)))

    props = _props(stack, rid)
    assert props["restrictOutboundNetworkAccess"] is True
    assert props["allowedFqdnList"] == ["api.contoso.example"]  # kept, less what the other rule strips
    assert _patches(stack, rid) == 1
    rows = {r["Rule"]: r for r in records_for(stack, rid)}
    assert rows["outbound-not-restricted"]["Status"] == "remediated"
    assert rows["outbound-not-restricted"]["Before"] == {"restrictOutboundNetworkAccess": False}
    assert rows["outbound-not-restricted"]["After"] == {"restrictOutboundNetworkAccess": True}
    assert rows["outbound-fqdn-not-allowed"]["Status"] == "remediated"
