"""Microsoft.Network/privateEndpoints: a private endpoint made the way a user makes one, and its
connection appearing on the Cognitive Services account it points at.

`PUT .../providers/Microsoft.Network/privateEndpoints/{name}` names the account in
`privateLinkServiceConnections` (automatic approval) or `manualPrivateLinkServiceConnections` (a
request the account's owner approves later). As the seed document says, a request from a user who
owns the account is approved at once; a manual request waits as `Pending`. The emulator has no role
assignments, so "owns" is decided by tenant: every caller whose token belongs to the emulator's
tenant (its `tid` claim is the emulator's tenant ID, or the token names no tenant) may write
everything in it and so owns its accounts; a caller from another tenant does not, and an automatic
request from it is refused as ARM refuses a write without the linked permission (403
LinkedAuthorizationFailed on `privateEndpointConnectionsApproval/action`); it must ask manually.

ARM answers the PUT 201 (200 for an existing endpoint) and the DELETE 202, both with an operation
polled at Microsoft.Network's URL shapes (recorded-arm, private endpoint recordings of 2022); in the
emulator's asynchronous mode the operation is in progress until polled, else it is already over.
A `GET` of the endpoint reports each connection's state as the account holds it now (approved,
rejected, or `Disconnected` once the account dropped it).
"""

from __future__ import annotations

import copy
import re
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from . import events as ev
from . import identity

if TYPE_CHECKING:
    from .arm import ArmApp, Request, Response

PE_TYPE = "Microsoft.Network/privateEndpoints"
PLS_TYPE = "Microsoft.Network/privateEndpoints/privateLinkServiceConnections"
APPROVAL_ACTION = "Microsoft.CognitiveServices/accounts/privateEndpointConnectionsApproval/action"

_RG = r"/subscriptions/(?P<sub>[^/]+)/resourcegroups/(?P<rg>[^/]+)"
_PES = r"/providers/microsoft\.network/privateendpoints"
ROUTES: list[tuple[str, re.Pattern[str]]] = [
    ("pe_list", re.compile(_RG + _PES)),
    ("pe", re.compile(_RG + _PES + r"/(?P<pe>[^/]+)")),
]
ROUTE_NAMES = frozenset(name for name, _ in ROUTES)
_KINDS = ("privateLinkServiceConnections", "manualPrivateLinkServiceConnections")


def _error(status: int, code: str, message: str) -> Exception:
    from .arm import ArmError

    return ArmError(status, code, message)


class PrivateEndpoints:
    """The private endpoints of the emulator's tenant (callers hold the app's lock)."""

    def __init__(self, app: ArmApp) -> None:
        self.app = app
        self.endpoints: dict[str, dict[str, Any]] = {}  # lower endpoint id -> ARM body
        #: lower endpoint id -> [(kind, index, account id, connection name on the account)]
        self.links: dict[str, list[tuple[str, int, str, str]]] = {}

    def owns(self, caller: Mapping[str, Any]) -> bool:
        """Whether the caller owns the tenant's accounts: a caller of the emulator's own tenant."""
        tenant = caller.get("tid") or caller.get(identity.TID)
        return tenant is None or str(tenant).lower() == self.app.tenant_id.lower()

    def handle(
        self,
        request: Request,
        route: str,
        path: str,
        groups: Mapping[str, str],
        context: ev.WriteContext | None,
        caller: Mapping[str, Any],
    ) -> Response:
        from .arm import Response

        app = self.app
        sub, rg = groups["sub"], groups["rg"]
        parts = path.split("/")
        with app.lock:
            app._check_group(sub, rg)
            if route == "pe_list":
                if request.method != "GET":
                    raise _error(
                        405, "MethodNotAllowed", f"The requested method '{request.method}' is not allowed."
                    )
                prefix = "/".join(parts[:5]).lower() + "/"
                value = [self._body(k) for k in sorted(self.endpoints) if k.startswith(prefix)]
                return app._ok_read(None, {"value": value}, sub)
            rid = f"/subscriptions/{sub}/resourceGroups/{rg}/providers/{PE_TYPE}/{parts[8]}"  # ARM's casing
            key = rid.lower()
            if request.method == "GET":
                if key not in self.endpoints:
                    raise _error(
                        404, "ResourceNotFound", f"The Resource '{PE_TYPE}/{parts[8]}' was not found."
                    )
                return app._ok_read(None, self._body(key), sub)
            if request.method == "DELETE":
                if key not in self.endpoints:
                    return Response(204, None, {})
                assert context is not None
                headers = app._write_gate(sub)
                location = str(self.endpoints[key].get("location", "westus"))
                self._disconnect(self.links.pop(key, []), context)
                del self.endpoints[key]
                operation = app._new_operation(rid, sub, location, provider="Microsoft.Network")
                headers.update(app._operation_headers(operation))
                return Response(202, None, headers)
            if request.method == "PUT":
                assert context is not None
                return self._put(rid, app._parse_body(request), context, caller)
        raise _error(405, "MethodNotAllowed", f"The requested method '{request.method}' is not allowed.")

    # ------------------------------------------------------------------ writes

    def _put(
        self, rid: str, body: Mapping[str, Any], context: ev.WriteContext, caller: Mapping[str, Any]
    ) -> Response:
        from .arm import Response, parse_account_id

        app = self.app
        key = rid.lower()
        existing = self.endpoints.get(key)
        properties = body.get("properties") if isinstance(body.get("properties"), Mapping) else {}
        assert isinstance(properties, Mapping)
        subnet_id = str((properties.get("subnet") or {}).get("id") or "")
        subnet = app.network.subnet_by_id(subnet_id)
        if subnet is None:
            raise _error(
                400,
                "InvalidResourceReference",
                f"Resource {subnet_id or '(no subnet)'} referenced by resource {rid} was not found. "
                "Please make sure that the referenced resource exists, and that both resources are in "
                "the same region.",
            )
        requested: list[tuple[str, int, Mapping[str, Any], str]] = []  # kind, index, connection, account
        for kind in _KINDS:
            for index, connection in enumerate(properties.get(kind) or []):
                target = str(((connection or {}).get("properties") or {}).get("privateLinkServiceId") or "")
                try:
                    parse_account_id(target)
                except ValueError:
                    target = ""
                if not target or target.lower() not in app.accounts:
                    raise _error(
                        400,
                        "LinkedInvalidPropertyId",
                        f"Property id '{target}' at path 'properties.{kind}[{index}].properties."
                        "privateLinkServiceId' is invalid: no Cognitive Services account has this ID.",
                    )
                if kind == "privateLinkServiceConnections" and not self.owns(caller):
                    raise _error(
                        403,
                        "LinkedAuthorizationFailed",
                        "The client has permission to perform action "
                        f"'Microsoft.Network/privateEndpoints/write' on scope '{rid}', however it does "
                        "not have permission to perform action(s) "
                        f"'{APPROVAL_ACTION}' on the linked scope(s) '{target}' (respectively) or the linked "
                        "scope(s) are invalid. Ask for a manual connection instead.",
                    )
                requested.append((kind, index, connection, target))
        sub = rid.split("/")[2]
        headers = app._write_gate(sub)
        location = str(body.get("location") or (existing or {}).get("location") or "westus")
        old_links_list = self.links.get(key, [])
        old_links = {(k, i): (a, n) for k, i, a, n in old_links_list}
        endpoint: dict[str, Any] = {
            "id": (existing or {}).get("id", rid),
            "name": (existing or {}).get("name", rid.rsplit("/", 1)[-1]),
            "type": PE_TYPE,
            "location": location,
            "tags": copy.deepcopy(dict(body.get("tags") or {})),
            "properties": {
                "provisioningState": "Updating" if app.async_writes else "Succeeded",
                "privateLinkServiceConnections": [],
                "manualPrivateLinkServiceConnections": [],
                "subnet": {"id": str(subnet["id"])},
                "networkInterfaces": [],
                "customDnsConfigs": [],
            },
        }
        links: list[tuple[str, int, str, str]] = []
        for kind, index, connection, target in requested:
            conn_props = (connection or {}).get("properties") or {}
            name = str((connection or {}).get("name") or endpoint["name"])
            linked = old_links.get((kind, index))
            if linked is None or linked[0].lower() != target.lower():
                manual = kind == "manualPrivateLinkServiceConnections"
                made = app.connect_private_endpoint(
                    target,
                    str(endpoint["id"]),
                    status="Pending" if manual else "Approved",
                    description=str(conn_props.get("requestMessage") or "") if manual else "Auto Approved",
                    claims=caller,
                )
                linked = (target, str(made["name"]))
            links.append((kind, index, *linked))
            endpoint["properties"][kind].append(
                {
                    "name": name,
                    "id": f"{endpoint['id']}/{kind}/{name}",
                    "type": PLS_TYPE,
                    "properties": {
                        "provisioningState": "Succeeded",
                        "privateLinkServiceId": app.accounts[target.lower()]["id"],
                        "groupIds": list(conn_props.get("groupIds") or ["account"]),
                        **(
                            {"requestMessage": conn_props["requestMessage"]}
                            if conn_props.get("requestMessage")
                            else {}
                        ),
                    },
                }
            )
        kept = {(account.lower(), name.lower()) for _k, _i, account, name in links}
        dropped = [link for link in old_links_list if (link[2].lower(), link[3].lower()) not in kept]
        self._disconnect(dropped, context)  # an update that no longer names an account leaves it
        self.endpoints[key] = endpoint
        self.links[key] = links
        answer = self._body(key)

        def done() -> None:
            if key in self.endpoints:
                self.endpoints[key]["properties"]["provisioningState"] = "Succeeded"

        operation = app._new_operation(rid, sub, location, provider="Microsoft.Network", on_finish=done)
        headers["azure-AsyncOperation"] = app._operation_headers(operation)["azure-AsyncOperation"]
        headers["Retry-After"] = "0"
        return Response(200 if existing is not None else 201, answer, headers)

    def _disconnect(self, links: list[tuple[str, int, str, str]], context: ev.WriteContext) -> None:
        """These connections of an endpoint leave the accounts they were made on."""
        app = self.app
        for _kind, _index, account_rid, name in links:
            account = app.accounts.get(account_rid.lower())
            if account is None:
                continue
            connections = account["properties"].get("privateEndpointConnections") or []
            kept = [c for c in connections if str(c.get("name", "")).lower() != name.lower()]
            if len(kept) != len(connections):
                account["properties"]["privateEndpointConnections"] = kept
                account["etag"] = f'"{uuid.uuid4()}"'
                child = f"{account['id']}/privateEndpointConnections/{name}"
                app.emit_child_write(child, copy.deepcopy(account), context, delete=True)

    # ------------------------------------------------------------------ reads

    def _body(self, key: str) -> dict[str, Any]:
        """The endpoint with each connection's state as its account holds it now."""
        body = copy.deepcopy(self.endpoints[key])
        for kind, index, account_rid, name in self.links.get(key, []):
            state = {"status": "Disconnected", "description": "", "actionsRequired": "None"}
            account = self.app.accounts.get(account_rid.lower())
            for connection in (account or {}).get("properties", {}).get("privateEndpointConnections") or []:
                if str(connection.get("name", "")).lower() == name.lower():
                    state = dict(connection["properties"].get("privateLinkServiceConnectionState") or state)
            body["properties"][kind][index]["properties"]["privateLinkServiceConnectionState"] = state
        return body

    # ------------------------------------------------------------------ seed / dump

    def dump(self) -> list[dict[str, Any]]:
        return [self._body(k) for k in sorted(self.endpoints)]
