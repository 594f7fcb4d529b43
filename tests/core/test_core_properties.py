"""The engine's three guarantees, as hypothesis properties over generated accounts and policies.

The widening check uses an oracle written here (Python's `ipaddress`, explicit sets), not
`guardrail.engine.widening`, and applies the PATCH with its own merge, not `engine.apply_patch`.
"""

from __future__ import annotations

import copy
import ipaddress
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from hypothesis import example, given, note, settings
from hypothesis import strategies as st

from guardrail.actions import Snapshot
from guardrail.engine import Evaluation, InvalidAccount, action_widening, apply_patch, evaluate, widening
from guardrail.policy import Policy
from guardrail.rules import ACTION_TYPES

from ._factory import NOW, account
from .strategies import accounts, damaged_accounts, json_values, policies, preset_policies

# -- the oracle --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Surface:
    local_auth: bool
    network: str  # "all" | "private-only" | "rules"
    ipv4: tuple[tuple[int, int], ...] = ()
    other: frozenset[str] = frozenset()  # IPv6 networks, whatever ARM might make of them
    subnets: frozenset[str] = frozenset()
    services: bool = False
    endpoints: frozenset[str] = frozenset()  # approved-or-pending private endpoints
    outbound: frozenset[str] | None = None  # None: every destination


def _lower(value: Any) -> str | None:
    return value.lower() if isinstance(value, str) else None


def _endpoints(props: Mapping[str, Any]) -> frozenset[str]:
    found = set()
    for connection in props.get("privateEndpointConnections") or []:
        if not isinstance(connection, Mapping) or not isinstance(connection.get("properties"), Mapping):
            continue
        state = connection["properties"].get("privateLinkServiceConnectionState")
        if isinstance(state, Mapping) and _lower(state.get("status")) in ("approved", "pending"):
            endpoint = connection["properties"].get("privateEndpoint")
            found.add(json.dumps(endpoint.get("id") if isinstance(endpoint, Mapping) else None).lower())
    return frozenset(found)


def _outbound(props: Mapping[str, Any]) -> frozenset[str] | None:
    if props.get("restrictOutboundNetworkAccess") is not True:
        return None
    return frozenset(json.dumps(e).lower() for e in props.get("allowedFqdnList") or [])


def surface(body: Mapping[str, Any]) -> Surface:
    props = body.get("properties")
    props = props if isinstance(props, Mapping) else {}
    local_auth = props.get("disableLocalAuth") is not True
    doors = {"endpoints": _endpoints(props), "outbound": _outbound(props)}
    if _lower(props.get("publicNetworkAccess")) == "disabled":
        return Surface(local_auth, "private-only", **doors)
    acls = props.get("networkAcls")
    if not isinstance(acls, Mapping) or _lower(acls.get("defaultAction")) != "deny":
        return Surface(local_auth, "all", **doors)
    v4: list[tuple[int, int]] = []
    other: set[str] = set()
    for entry in acls.get("ipRules") or []:
        value = entry.get("value") if isinstance(entry, Mapping) else None
        if not isinstance(value, str):
            continue
        try:
            net = ipaddress.ip_network(value, strict=False)
        except ValueError:
            continue
        if net.version == 4:
            v4.append((int(net.network_address), int(net.broadcast_address)))
        else:
            other.add(str(net))
    subnets = frozenset(
        e["id"].lower()
        for e in acls.get("virtualNetworkRules") or []
        if isinstance(e, Mapping) and isinstance(e.get("id"), str)
    )
    services = _lower(acls.get("bypass")) != "none"  # unset or anything else: services may pass
    return Surface(local_auth, "rules", tuple(v4), frozenset(other), subnets, services, **doors)


def _inside_union(first: int, last: int, ranges: list[tuple[int, int]]) -> bool:
    position = first
    for lo, hi in sorted(ranges):
        if lo > position:
            return False
        position = max(position, hi + 1)
        if position > last:
            return True
    return position > last


def narrower_or_equal(after: Surface, before: Surface) -> list[str]:
    problems = []
    if after.local_auth and not before.local_auth:
        problems.append("local auth re-enabled")
    problems += [f"private endpoint {e}" for e in after.endpoints - before.endpoints]
    if before.outbound is not None:
        if after.outbound is None:
            problems.append("outbound opened")
        else:
            problems += [f"outbound {name}" for name in after.outbound - before.outbound]
    if after.network == "private-only" or before.network == "all":
        return problems
    if after.network == "all":
        return [*problems, "opened to every network"]
    if before.network == "private-only":
        return [*problems, "public access re-enabled"]
    problems += [f"v4 {r}" for r in after.ipv4 if not _inside_union(*r, list(before.ipv4))]
    problems += [f"other {n}" for n in after.other - before.other]
    problems += [f"subnet {s}" for s in after.subnets - before.subnets]
    if after.services and not before.services:
        problems.append("bypass")
    return problems


def patched(body: Mapping[str, Any], remediation: Mapping[str, Any]) -> dict[str, Any]:
    """ARM PATCH semantics, written independently: properties merged one level, values replaced."""
    result = copy.deepcopy(dict(body))
    props = result.get("properties")
    result["properties"] = {
        **(props if isinstance(props, Mapping) else {}),
        **copy.deepcopy(remediation["properties"]),
    }
    return result


def rejected(body: Mapping[str, Any], connection_ids: list[str]) -> dict[str, Any]:
    """What the rejections do, written independently: each named connection's status is Rejected."""
    result = copy.deepcopy(dict(body))
    targets = {c.lower() for c in connection_ids}
    for connection in result["properties"].get("privateEndpointConnections") or []:
        if not isinstance(connection, dict):
            continue
        cid = connection.get("id")
        if cid is None and isinstance(connection.get("name"), str):
            cid = f"{body['id']}/privateEndpointConnections/{connection['name']}"
        if isinstance(cid, str) and cid.lower() in targets:
            props = connection.setdefault("properties", {})
            props["privateLinkServiceConnectionState"] = {"status": "Rejected", "description": "guardrail"}
    return result


def _after(body: Mapping[str, Any], result: Evaluation) -> dict[str, Any]:
    after = patched(body, result.remediation) if result.remediation is not None else copy.deepcopy(dict(body))
    if result.private_endpoint_rejections:
        after = rejected(after, list(result.private_endpoint_rejections))
    return after


def test_the_oracle_sees_widening() -> None:
    closed = account(ip=["52.1.0.0/24"], bypass="None")
    assert narrower_or_equal(surface(closed), surface(closed)) == []
    wider = account(ip=["52.1.0.0/23"], bypass="None")
    assert narrower_or_equal(surface(wider), surface(closed)) == ["v4 (872480768, 872481279)"]
    split = account(ip=["52.1.0.0/25", "52.1.0.128/25"], bypass="None")
    assert narrower_or_equal(surface(closed), surface(split)) == []
    assert narrower_or_equal(surface(account(bypass="AzureServices")), surface(closed)) == ["bypass"]
    assert narrower_or_equal(surface(account(default_action="Allow")), surface(closed)) == [
        "opened to every network"
    ]
    assert narrower_or_equal(surface(closed), surface(account(public="Disabled"))) == [
        "public access re-enabled"
    ]
    assert narrower_or_equal(surface(account(local_auth_disabled=False)), surface(closed)) == [
        "local auth re-enabled"
    ]


# -- (1) never widens ------------------------------------------------------------------------


def _check_body_shape(before: Mapping[str, Any], remediation: dict[str, Any]) -> None:
    assert list(remediation) == ["properties"]
    props = remediation["properties"]
    assert props, "an empty PATCH is not a remediation"
    assert set(props) <= {
        "networkAcls",
        "publicNetworkAccess",
        "disableLocalAuth",
        "restrictOutboundNetworkAccess",
        "allowedFqdnList",
    }
    assert props.get("publicNetworkAccess", "Disabled") == "Disabled"
    assert props.get("disableLocalAuth", True) is True
    assert props.get("restrictOutboundNetworkAccess", True) is True
    before_props = before.get("properties") if isinstance(before.get("properties"), Mapping) else {}
    if "restrictOutboundNetworkAccess" in props and isinstance(before_props.get("allowedFqdnList"), list):
        assert "allowedFqdnList" in props  # the whole list goes with the switch
    if "allowedFqdnList" in props:
        assert all(entry in before_props["allowedFqdnList"] for entry in props["allowedFqdnList"])
    before_acls = before_props.get("networkAcls")
    if isinstance(before_acls, Mapping):
        # the whole object is sent, whatever else changes
        assert "networkAcls" in props
        assert set(before_acls) <= set(props["networkAcls"])
    json.dumps(remediation)


@given(accounts, policies())
@example(account(acls=None, kind="OpenAI"), Policy.default())
def test_remediation_never_widens_access(body: dict[str, Any], policy: Policy) -> None:
    before = copy.deepcopy(body)
    result = evaluate(body, policy, NOW)
    assert body == before, "evaluate mutated its input"
    assert isinstance(result, Evaluation), result
    prefix = body["id"].lower() + "/privateendpointconnections/"
    for connection_id in result.private_endpoint_rejections:  # only this account's children are written
        assert connection_id.lower().startswith(prefix) and "/" not in connection_id[len(prefix) :]
    assert any(f.fixed for f in result.findings) == bool(result.actions)
    # every action is of a type the registry declares, and that type's guard approves it
    for action in result.actions:
        assert action.kind in ACTION_TYPES, action
        assert ACTION_TYPES[action.kind].method == action.method
        assert ACTION_TYPES[action.kind].widens(Snapshot(body), action) == [], action
        assert action_widening(Snapshot(body), action) == [], action
    if result.remediation is None and not result.private_endpoint_rejections:
        return
    note(f"remediation: {result.remediation}, rejections: {result.private_endpoint_rejections}")
    if result.remediation is not None:
        _check_body_shape(body, result.remediation)
    after = _after(body, result)
    assert narrower_or_equal(surface(after), surface(body)) == []
    assert widening(body, after) == []  # and the engine's own check agrees


# -- (2) fixpoint --------------------------------------------------------------------------------


@given(accounts, policies())
def test_remediation_is_a_fixpoint(body: dict[str, Any], policy: Policy) -> None:
    result = evaluate(body, policy, NOW)
    assert isinstance(result, Evaluation), result
    if result.remediation is None and not result.private_endpoint_rejections:
        return
    if result.remediation is not None:
        assert apply_patch(body, result.remediation) == patched(body, result.remediation)
    after = _after(body, result)
    again = evaluate(after, policy, NOW)
    assert isinstance(again, Evaluation), again
    note(f"after: {after}\nfindings again: {again.findings}")
    assert again.remediation is None
    assert again.private_endpoint_rejections == ()
    assert not any(f.fixed for f in again.findings)
    # nothing that was fixed comes back
    fixed_before = {(f.rule, f.value) for f in result.findings if f.fixed}
    # (the same rule and value may also have been reported unfixable before, e.g. two private endpoint
    # connections with the same endpoint, one of them not this account's: that one stays)
    fixed_before -= {(f.rule, f.value) for f in result.findings if not f.fixed}
    assert not fixed_before & {(f.rule, f.value) for f in again.findings}


# -- (3) never raises ------------------------------------------------------------------------


def _judged_without_crashing(body: Any, policy: Policy) -> Evaluation | InvalidAccount:
    result = evaluate(body, policy, NOW)
    assert isinstance(result, Evaluation | InvalidAccount)
    # the engine's own shape checks catch the malformation; the catch-all is not what saves it
    if isinstance(result, InvalidAccount):
        assert not result.message.startswith("cannot evaluate"), result.message
    json.dumps(result.to_json())
    return result


@given(json_values, preset_policies)
def test_random_json_never_raises(body: Any, policy: Policy) -> None:
    _judged_without_crashing(body, policy)


@given(damaged_accounts(), preset_policies)
def test_damaged_account_never_raises(body: Any, policy: Policy) -> None:
    before = copy.deepcopy(body)
    result = _judged_without_crashing(body, policy)
    if isinstance(result, Evaluation) and (
        result.remediation is not None or result.private_endpoint_rejections
    ):
        after = _after(body, result)
        assert narrower_or_equal(surface(after), surface(before)) == []
        again = evaluate(after, policy, NOW)
        assert isinstance(again, Evaluation) and again.remediation is None
        assert again.private_endpoint_rejections == ()


@settings(max_examples=60)
@given(st.sampled_from([None, [], {}, "x", 1, True]), preset_policies)
def test_missing_or_wrong_properties(value: Any, policy: Policy) -> None:
    body = account()
    body["properties"] = value
    result = _judged_without_crashing(body, policy)
    assert isinstance(result, Evaluation) == (value is None or isinstance(value, dict))
