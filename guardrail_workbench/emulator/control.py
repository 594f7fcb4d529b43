"""The emulator's HTTP control API under `/_emulator/` (like LocalStack's chaos API): any process,
in any language, can script faults, read the request log and seed or dump the tenant.

    POST   /_emulator/faults       {"method", "resourceId", "action", "status", "retryAfter",
                                    "latency", "times", "code", "message"}  -> 201 {"id", ...}
    GET    /_emulator/faults       -> {"faults": [{"id", ..., "fired"}]}
    DELETE /_emulator/faults       -> 204 (all cleared)
    GET    /_emulator/requests?since=SEQ -> {"requests": [{"seq", "method", "path", "status"}], "next"}
    GET    /_emulator/stats        -> {"since", "requests", "statuses": {"PATCH 429": n, ...},
                                    "kinds": {"GET accounts list": n, "PATCH account": n, ...},
                                    "writes": {subscription: {"count", "first", "last"}}} (epoch seconds)
    DELETE /_emulator/stats        -> 204 (the counters start again)
    PUT    /_emulator/tenant       a seed document: replaces the tenant -> 200 {"accounts": N}
    GET    /_emulator/tenant       -> the dump (a seed document)
    POST   /_emulator/tenant/generate {"accounts", "subscriptions", "seed"?, "openFraction"?,
                                    "groupsPerSubscription"?} -> 200 {"accounts": N}: replaces the
                                    tenant with guardrail_workbench.tenant.generate_tenant's (the
                                    same document a PUT of it would seed, made here: a tenant of
                                    100,000 accounts without sending 100,000 bodies)
    GET    /_emulator/settings     -> {"pageSize", "asyncWrites", "acceptedWrites", "asyncPolls",
                                    "writeRate", "ipRefusal", "networkAclsPatch", "denyVnetJoin",
                                    "requestLog"}
    PATCH  /_emulator/settings     any of those -> 200 the settings
    POST   /_emulator/busy         {"resourceId", "calls", "state"?} -> 204 (409 RequestConflict meanwhile)
    GET    /_emulator/events?since=SEQ -> {"events": [Event Grid schema], "next", "pending"}
                                   (pending: events queued or being delivered, retries included)
    POST   /_emulator/subscriptions {"url", "urls"?, "schema"?, "kinds"?, "concurrency"?,
                                    "retryDelays"?, "timeout"?} -> 201 {"id", ...} (loopback URLs
                                   only; `urls`: more endpoints, each attempt to the next in turn;
                                   `concurrency`: deliveries at once; `retryDelays`: seconds before
                                   each retry of a non-2xx or timed-out attempt, default [0.5, 2])
    GET    /_emulator/subscriptions -> {"subscriptions": [{"id", "urls", "kinds", "deliveries",
                                    "attempts", "failed", ...}]}
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
        elif path == "/_emulator/stats":
            if method == "GET":
                with self.app.lock:
                    return Response(200, self.app.stats.to_json())
            if method == "DELETE":
                from .arm import RequestStats

                with self.app.lock:
                    self.app.stats = RequestStats()
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
        elif path == "/_emulator/tenant/generate" and method == "POST":
            self.app.replace_tenant(self._generated(self._body(request)))
            return Response(200, {"accounts": len(self.app.accounts)})
        elif path == "/_emulator/settings":
            if method == "PATCH":
                self._settings(self._body(request))
            if method in ("GET", "PATCH"):
                return Response(200, self._current_settings())
        elif path == "/_emulator/busy" and method == "POST":
            body = self._body(request)
            if not isinstance(body, dict) or not isinstance(body.get("resourceId"), str):
                raise ControlError(400, "resourceId is required")
            calls = _number(body, "calls", int, 1)
            try:
                self.app.set_busy(body["resourceId"], calls, str(body.get("state", "Accepted")))
            except KeyError as exc:
                raise ControlError(404, f"no account {exc}") from exc
            return Response(204)
        elif path == "/_emulator/events" and method == "GET":
            try:
                since = int(request.query.get("since", "0"))
            except ValueError as exc:
                raise ControlError(400, "since must be a sequence number") from exc
            events, newest = self.app.dispatcher.since(since)
            return Response(200, {"events": events, "next": newest, "pending": self.app.dispatcher.pending})
        elif path == "/_emulator/subscriptions" and method == "POST":
            return Response(201, self._subscribe(self._body(request)))
        elif path == "/_emulator/subscriptions" and method == "GET":
            return Response(200, {"subscriptions": [s.summary() for s in self.app.dispatcher.subscribers()]})
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

    def _generated(self, body: Any) -> dict[str, Any]:
        """The tenant document `POST /_emulator/tenant/generate` asks for."""
        from ..tenant import generate_tenant

        if not isinstance(body, dict):
            raise ControlError(400, "a generate request must be a JSON object")
        unknown = set(body) - {"accounts", "subscriptions", "seed", "openFraction", "groupsPerSubscription"}
        if unknown:
            raise ControlError(400, f"unknown generate fields: {sorted(unknown)}")
        accounts = _number(body, "accounts", int, None)
        subscriptions = _number(body, "subscriptions", int, None)
        if accounts is None or subscriptions is None or accounts < 0 or subscriptions < 1:
            raise ControlError(400, "accounts (0 or more) and subscriptions (1 or more) are required")
        groups = _number(body, "groupsPerSubscription", int, 3)
        if groups < 1:
            raise ControlError(400, "groupsPerSubscription must be at least 1")
        fraction = _number(body, "openFraction", float, None)
        if fraction is not None and not 0.0 <= fraction <= 1.0:
            raise ControlError(400, "openFraction must be between 0 and 1")
        return generate_tenant(
            accounts,
            subscriptions,
            seed=_number(body, "seed", int, 42),
            groups_per_subscription=groups,
            open_fraction=fraction,
        )

    def _current_settings(self) -> dict[str, Any]:
        app = self.app
        with app.lock:
            return {
                "pageSize": app.page_size,
                "asyncWrites": app.async_writes,
                "acceptedWrites": app.accepted_writes,
                "asyncPolls": app.async_polls,
                "writeRate": app.write_rate,
                "ipRefusal": app.ip_refusal,
                "networkAclsPatch": app.network_acls_patch,
                "denyVnetJoin": sorted(app.vnet_join_denied),
                "requestLog": app.keep_request_log,
            }

    def _settings(self, body: Any) -> None:
        """`PATCH /_emulator/settings`: the behaviour switches of the Python API, by name."""
        if not isinstance(body, dict):
            raise ControlError(400, "settings must be a JSON object")
        unknown = set(body) - set(self._current_settings())
        if unknown:
            raise ControlError(400, f"unknown settings: {sorted(unknown)}")
        app = self.app
        checks: dict[str, tuple[Any, ...]] = {
            "ipRefusal": ("private", "non-public"),
            "networkAclsPatch": ("replace", "merge"),
        }
        for key, allowed in checks.items():
            if key in body and body[key] not in allowed:
                raise ControlError(400, f"{key} must be one of {', '.join(allowed)}")
        for key in ("asyncWrites", "acceptedWrites", "requestLog"):
            if key in body and not isinstance(body[key], bool):
                raise ControlError(400, f"{key} must be true or false")
        page_size = _number(body, "pageSize", int, None)
        polls = _number(body, "asyncPolls", int, None)
        rate = _number(body, "writeRate", float, None)
        deny = body.get("denyVnetJoin")
        if deny is not None and (not isinstance(deny, list) or not all(isinstance(d, str) for d in deny)):
            raise ControlError(400, 'denyVnetJoin must be a list of account IDs (or "*")')
        if page_size is not None and page_size < 1:
            raise ControlError(400, "pageSize must be at least 1")
        with app.lock:
            if page_size is not None:
                app.page_size = page_size
            if polls is not None:
                app.async_polls = polls
            if "writeRate" in body:
                app.write_rate = rate
            if "asyncWrites" in body:
                app.async_writes = body["asyncWrites"]
            if "acceptedWrites" in body:
                app.accepted_writes = body["acceptedWrites"]
            if "ipRefusal" in body:
                app.ip_refusal = body["ipRefusal"]
            if "networkAclsPatch" in body:
                app.network_acls_patch = body["networkAclsPatch"]
            if "requestLog" in body:
                app.keep_request_log = body["requestLog"]
            if deny is not None:
                app.vnet_join_denied = {d.lower() for d in deny}

    def _subscribe(self, body: Any) -> dict[str, Any]:
        """`POST /_emulator/subscriptions {"url", "urls"?, "schema"?, "kinds"?, "concurrency"?,
        "retryDelays"?, "timeout"?}`: deliver events to loopback URLs."""
        from .events import ALL_KINDS, Subscriber

        if not isinstance(body, dict) or not isinstance(body.get("url"), str):
            raise ControlError(400, "url is required")
        urls = body.get("urls") or []
        delays = body.get("retryDelays", [0.5, 2.0])
        if not isinstance(urls, list) or not all(isinstance(u, str) for u in urls):
            raise ControlError(400, "urls must be a list of URLs")
        if not isinstance(delays, list) or not all(
            isinstance(d, (int, float)) and not isinstance(d, bool) and d >= 0 for d in delays
        ):
            raise ControlError(400, "retryDelays must be a list of seconds")
        concurrency = _number(body, "concurrency", int, 1)
        timeout = _number(body, "timeout", float, 30.0)
        schema = body.get("schema", "eventgrid")
        if schema not in ("eventgrid", "cloudevents"):
            raise ControlError(400, "schema must be eventgrid or cloudevents")
        kinds = frozenset(body.get("kinds") or ALL_KINDS)
        if not kinds <= ALL_KINDS:
            raise ControlError(400, f"kinds must be among {sorted(ALL_KINDS)}")
        try:
            subscriber = self.app.dispatcher.subscribe(
                Subscriber(
                    schema=schema,
                    kinds=kinds,
                    url=body["url"],
                    urls=tuple(urls),
                    concurrency=concurrency,
                    retry_delays=tuple(float(d) for d in delays),
                    timeout=timeout,
                )
            )
        except ValueError as exc:
            raise ControlError(400, str(exc)) from exc
        return {"id": subscriber.id, "url": subscriber.url, "schema": schema, "kinds": sorted(kinds)}

    def _requests(self, since_text: str) -> dict[str, Any]:
        try:
            since = int(since_text)
        except ValueError as exc:
            raise ControlError(400, f"since must be a sequence number, not {since_text!r}") from exc
        with self.app.lock:
            entries = [dict(e) for e in self.app.request_log if e["seq"] > since]
        return {"requests": entries, "next": entries[-1]["seq"] if entries else since}
