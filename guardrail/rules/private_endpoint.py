"""private-endpoint-not-allowed: a private endpoint connection that is Approved or Pending from a
private endpoint outside the policy's subscriptions is a private network path into the account,
invisible to networkAcls and to publicNetworkAccess. The fix is a call of its own per connection,
action `reject-private-endpoint` (a PUT setting its status to Rejected), not part of the account
PATCH body. Widening part: the set of approved-or-pending private endpoints."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, Final

from guardrail.actions import Action, ActionType, Snapshot
from guardrail.rules._base import Context, Rule, RuleUnit, SurfacePart, text

PRIVATE_ENDPOINT_ID_RE: Final = re.compile(
    r"/subscriptions/(?P<sub>[^/]+)/resourceGroups/[^/]+/providers/Microsoft\.Network/privateEndpoints/[^/]+",
    re.IGNORECASE,
)
_CONNECTED: Final = frozenset({"approved", "pending"})
CONNECTIONS: Final = "privateEndpointConnections"
#: What a rejected private endpoint connection's state says (the owner sees it in the portal).
REJECTION_DESCRIPTION: Final = (
    "Rejected by the AI Services Network Guardrail: the private endpoint is not in a subscription the "
    "policy allows (network.allowed_private_endpoint_subscriptions)"
)
REJECTION_BODY: Final = {
    "properties": {
        "privateLinkServiceConnectionState": {
            "status": "Rejected",
            "description": REJECTION_DESCRIPTION,
            "actionsRequired": "None",
        }
    }
}


def _where(endpoint: object) -> str:
    """Where a private endpoint lives, in words: its subscription, or why there is none."""
    match = PRIVATE_ENDPOINT_ID_RE.fullmatch(endpoint) if isinstance(endpoint, str) else None
    return f"subscription {match.group('sub')}" if match else "not a private endpoint resource ID"


def _rejected(endpoints: Sequence[str]) -> str:
    """The alert's phrase: each private endpoint whose connection was rejected, and where it lives."""
    named = "; ".join(f"{endpoint} ({_where(endpoint)})" for endpoint in endpoints)
    return f"private endpoint connections rejected (status Rejected): {named}"


PRIVATE_ENDPOINT_NOT_ALLOWED = Rule(
    "private-endpoint-not-allowed",
    "high",
    "reject the connection (its status set to Rejected)",
    True,
    "a private endpoint connection is Approved or Pending and its private endpoint is not in one of "
    "allowed_private_endpoint_subscriptions (an unparsable ID is not allowed)",
    switch="network.allowed_private_endpoint_subscriptions set",
    on=lambda policy: bool(policy.network.allowed_private_endpoint_subscriptions),
    alert=_rejected,
    action="reject-private-endpoint",
)


def _status(connection: Mapping[str, Any]) -> str | None:
    props = connection.get("properties")
    state = props.get("privateLinkServiceConnectionState") if isinstance(props, Mapping) else None
    status = state.get("status") if isinstance(state, Mapping) else None
    return status if isinstance(status, str) else None


def _endpoint(connection: Mapping[str, Any]) -> object:
    props = connection.get("properties")
    endpoint = props.get("privateEndpoint") if isinstance(props, Mapping) else None
    return endpoint.get("id") if isinstance(endpoint, Mapping) else None


def connection_id(account_id: str, connection: Mapping[str, Any]) -> str | None:
    """The connection's resource ID, only when it is a child of this account (a body naming another
    resource must not lead to a write there): its `id`, else built from its `name`."""
    prefix = f"{account_id}/privateEndpointConnections/"
    given = connection.get("id")
    if isinstance(given, str) and given.lower().startswith(prefix.lower()):
        child = given[len(prefix) :]
        return given if child and "/" not in child else None
    name = connection.get("name")
    if given is None and isinstance(name, str) and name and "/" not in name:
        return prefix + name
    return None


def check(ctx: Context) -> None:
    policy = ctx.policy
    if not policy.network.allowed_private_endpoint_subscriptions:
        return
    connections = ctx.properties.get(CONNECTIONS)
    if not connections:
        return
    for connection in connections:
        if not isinstance(connection, Mapping):
            continue
        status = _status(connection)
        if status is None or status.lower() not in _CONNECTED:
            continue
        endpoint = _endpoint(connection)
        match = PRIVATE_ENDPOINT_ID_RE.fullmatch(endpoint) if isinstance(endpoint, str) else None
        if match is not None and policy.private_endpoint_allowed(match.group("sub")):
            continue
        target = connection_id(ctx.resource_id, connection)
        shown = text(endpoint)
        message = (
            f"private endpoint {shown} ({_where(endpoint)}) is connected ({status}) from outside "
            "allowed_private_endpoint_subscriptions"
        )
        if target is None:
            message += "; the connection has no ID of this account, so it cannot be rejected"
        if ctx.report(PRIVATE_ENDPOINT_NOT_ALLOWED.id, message, shown, can_fix=target is not None):
            assert target is not None
            ctx.act(  # a connection listed twice: one call
                Action(
                    REJECT.kind,
                    REJECT.method,
                    target,
                    _rejection_body(),
                    (PRIVATE_ENDPOINT_NOT_ALLOWED.id,),
                    (shown,),
                )
            )


def _rejection_body() -> dict[str, Any]:
    state = dict(REJECTION_BODY["properties"]["privateLinkServiceConnectionState"])
    return {"properties": {"privateLinkServiceConnectionState": state}}


def _rejection_widens(before: Snapshot, action: Action) -> list[str]:
    """A rejection only ever sets a connection of this account to Rejected."""
    prefix = f"{before.resource_id}/{CONNECTIONS}/".lower()
    if not action.target.lower().startswith(prefix) or "/" in action.target[len(prefix) :]:
        return [f"{action.target} is not a private endpoint connection of {before.resource_id}"]
    if action.body != _rejection_body():
        return ["a private endpoint connection body other than a rejection"]
    return []


REJECT: Final = ActionType(
    "reject-private-endpoint",
    "PUT",
    "PUT the private endpoint connection's state to Rejected",
    _rejection_widens,
)


def _endpoints(props: Mapping[str, Any], acls: Mapping[str, Any] | None) -> frozenset[str]:
    found = set()
    connections = props.get(CONNECTIONS)
    for connection in connections if isinstance(connections, list) else []:
        if not isinstance(connection, Mapping):
            continue
        status = _status(connection)
        if status is not None and status.lower() in _CONNECTED:
            endpoint = _endpoint(connection)
            found.add(endpoint.lower() if isinstance(endpoint, str) else text(endpoint))
    return frozenset(found)


def _endpoints_widened(before: frozenset[str], after: frozenset[str]) -> list[str]:
    return [f"private endpoint {endpoint} connected" for endpoint in sorted(after - before)]


UNIT = RuleUnit(
    order=80,
    rules=(PRIVATE_ENDPOINT_NOT_ALLOWED,),
    check=check,
    surface=(SurfacePart("private_endpoints", "account", _endpoints, _endpoints_widened),),
    properties=((CONNECTIONS, list),),
    actions=(REJECT,),
)
