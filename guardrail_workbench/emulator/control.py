"""The emulator's HTTP control API under `/_emulator/` (like LocalStack's chaos API): any process,
in any language, can script faults, read the request log and seed or dump the tenant.

    POST   /_emulator/faults       {"method", "resourceId", "action", "status", "retryAfter",
                                    "latency", "times", "code", "message"}  -> 201 {"id", ...}
    GET    /_emulator/faults       -> {"faults": [{"id", ..., "fired"}]}
    DELETE /_emulator/faults       -> 204 (all cleared)
    GET    /_emulator/requests?since=SEQ -> {"requests": [{"seq", "method", "path", "status"}], "next"}
    PUT    /_emulator/tenant       a seed document: replaces the tenant -> 200 {"accounts": N}
    GET    /_emulator/tenant       -> the dump (a seed document)
    POST   /_emulator/privateEndpointConnections
                                   {"accountId", "privateEndpointId", "name"?, "status"?, "description"?}
                                   -> 201 the connection (a private endpoint made elsewhere, auto-approved
                                      unless "status" says otherwise)

No authentication: the emulator only listens on loopback.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, cast

from .faults import ACTIONS, Action

if TYPE_CHECKING:
    from .arm import ArmApp, Request, Response

PREFIX = "/_emulator/"

_FAULT_FIELDS = {
    "method",
    "resourceId",
    "action",
    "status",
    "retryAfter",
    "latency",
    "times",
    "code",
    "message",
}


class ControlError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _number(body: dict[str, Any], key: str, kind: type, default: Any) -> Any:
    value = body.get(key, default)
    if value is None or value is default:
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ControlError(400, f"{key} must be a number, not {value!r}")
    if kind is int and not float(value).is_integer():
        raise ControlError(400, f"{key} must be a whole number, not {value!r}")
    return kind(value)


class ControlApi:
    def __init__(self, app: ArmApp) -> None:
        self.app = app

    def handle(self, request: Request) -> Response:
        from .arm import Response

        try:
            return self._handle(request)
        except ControlError as exc:
            return Response(exc.status, {"error": {"code": "BadControlRequest", "message": exc.message}})

    def _body(self, request: Request) -> Any:
        try:
            return json.loads(request.body or b"null")
        except ValueError as exc:
            raise ControlError(400, f"the body is not JSON: {exc}") from exc

    def _handle(self, request: Request) -> Response:
        from .arm import Response

        path = request.path.rstrip("/")
        method = request.method
        if path == "/_emulator/faults":
            if method == "POST":
                return Response(201, self._add_fault(self._body(request)))
            if method == "GET":
                return Response(200, {"faults": [f.to_json() for f in self.app.faults.all()]})
            if method == "DELETE":
                self.app.faults.clear()
                return Response(204)
        elif path == "/_emulator/requests" and method == "GET":
            return Response(200, self._requests(request.query.get("since", "0")))
        elif path == "/_emulator/tenant":
            if method == "GET":
                return Response(200, self.app.dump())
            if method == "PUT":
                body = self._body(request)
                if not isinstance(body, dict):
                    raise ControlError(400, "a tenant document must be a JSON object")
                try:
                    self.app.replace_tenant(body)
                except (KeyError, TypeError, ValueError) as exc:
                    raise ControlError(400, f"not a tenant document: {exc!r}") from exc
                return Response(200, {"accounts": len(self.app.accounts)})
        elif path == "/_emulator/privateEndpointConnections" and method == "POST":
            body = self._body(request)
            if not isinstance(body, dict) or not body.get("accountId") or not body.get("privateEndpointId"):
                raise ControlError(400, "accountId and privateEndpointId are required")
            try:
                connection = self.app.connect_private_endpoint(
                    str(body["accountId"]),
                    str(body["privateEndpointId"]),
                    name=body.get("name"),
                    status=str(body.get("status", "Approved")),
                    description=body.get("description"),
                )
            except KeyError as exc:
                raise ControlError(404, f"no account {exc}") from exc
            return Response(201, connection)
        else:
            raise ControlError(404, f"no control endpoint {method} {path}")
        raise ControlError(405, f"{method} is not allowed on {path}")

    def _add_fault(self, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise ControlError(400, "a fault must be a JSON object")
        unknown = set(body) - _FAULT_FIELDS
        if unknown:
            raise ControlError(400, f"unknown fault fields: {sorted(unknown)}")
        action = body.get("action", "status")
        action = "respond" if action == "status" else action
        if action not in ACTIONS:
            raise ControlError(400, f"unknown action {action!r}: one of status, {', '.join(sorted(ACTIONS))}")
        for key in ("method", "resourceId", "code", "message"):
            if body.get(key) is not None and not isinstance(body[key], str):
                raise ControlError(400, f"{key} must be a string")
        times = _number(body, "times", int, 1)
        if times is not None and times < 1:
            raise ControlError(400, "times must be at least 1 (or null: forever)")
        status = _number(body, "status", int, 500)
        if not 100 <= status <= 599:
            raise ControlError(400, f"status {status} is not an HTTP status")
        fault = self.app.faults.add(
            action=cast(Action, action),
            method=body.get("method"),
            resource_id=body.get("resourceId"),
            status=status,
            times=times,
            retry_after=_number(body, "retryAfter", float, None),
            latency=_number(body, "latency", float, 0.0) or 0.0,
            code=body.get("code"),
            message=body.get("message"),
        )
        return fault.to_json()

    def _requests(self, since_text: str) -> dict[str, Any]:
        try:
            since = int(since_text)
        except ValueError as exc:
            raise ControlError(400, f"since must be a sequence number, not {since_text!r}") from exc
        with self.app.lock:
            entries = [dict(e) for e in self.app.request_log if e["seq"] > since]
        return {"requests": entries, "next": entries[-1]["seq"] if entries else since}
