"""Builders for account bodies and policies used across the core tests."""

from __future__ import annotations

import datetime as dt
from typing import Any

from guardrail.engine import Evaluation, InvalidAccount, evaluate
from guardrail.policy import Policy, parse_policy

SUB = "00000000-1111-2222-3333-444444444444"
OTHER_SUB = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
NOW = dt.datetime(2026, 11, 26, 12, 0, tzinfo=dt.UTC)


def account_id(name: str = "acct", rg: str = "rg-app", sub: str = SUB) -> str:
    return f"/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.CognitiveServices/accounts/{name}"


def subnet_id(sub: str = SUB, rg: str = "rg-net", vnet: str = "vnet", subnet: str = "app") -> str:
    return (
        f"/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Network/"
        f"virtualNetworks/{vnet}/subnets/{subnet}"
    )


_ABSENT: Any = object()


def account(
    *,
    ip: list[str] | None = None,
    vnets: list[str] | None = None,
    default_action: str = "Deny",
    bypass: str = "None",
    public: str | None = "Enabled",
    local_auth_disabled: bool | None = True,
    subdomain: str | None = "acct",
    kind: str = "AIServices",
    rid: str | None = None,
    acls: Any = _ABSENT,
) -> dict[str, Any]:
    """A well-formed account; by default compliant with the default policy."""
    properties: dict[str, Any] = {"provisioningState": "Succeeded"}
    if public is not None:
        properties["publicNetworkAccess"] = public
    if local_auth_disabled is not None:
        properties["disableLocalAuth"] = local_auth_disabled
    if subdomain is not None:
        properties["customSubDomainName"] = subdomain
    if acls is _ABSENT:
        properties["networkAcls"] = {
            "defaultAction": default_action,
            "bypass": bypass,
            "ipRules": [{"value": value} for value in (ip or [])],
            "virtualNetworkRules": [
                {"id": v, "state": "Succeeded", "ignoreMissingVnetServiceEndpoint": False}
                for v in (vnets or [])
            ],
        }
    elif acls is not None:
        properties["networkAcls"] = acls
    return {
        "id": rid or account_id(),
        "name": (rid or account_id()).rsplit("/", 1)[-1],
        "type": "Microsoft.CognitiveServices/accounts",
        "kind": kind,
        "location": "eastus",
        "properties": properties,
    }


def policy(**data: Any) -> Policy:
    return parse_policy({"version": 1, **data}, "test-policy.yaml")


def judge(body: Any, pol: Policy | None = None, now: dt.datetime = NOW) -> Evaluation:
    result = evaluate(body, pol or Policy.default(), now)
    assert isinstance(result, Evaluation), result
    return result


def invalid(body: Any, pol: Policy | None = None) -> InvalidAccount:
    result = evaluate(body, pol or Policy.default(), NOW)
    assert isinstance(result, InvalidAccount), result
    return result


def rules_of(evaluation: Evaluation) -> list[str]:
    return [finding.rule for finding in evaluation.findings]


def ip_values(evaluation: Evaluation) -> list[Any]:
    assert evaluation.remediation is not None
    return [entry["value"] for entry in evaluation.remediation["properties"]["networkAcls"]["ipRules"]]
