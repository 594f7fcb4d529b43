"""The ARM emulator's request logic: a pure `Request -> Response` application over an in-memory tenant.

The HTTP server (`server.py`) only moves bytes; everything ARM-like lives here so it can be read
and tested on its own.
"""

from __future__ import annotations

import copy
import json
import logging
import math
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, TypeVar

from . import agents, control, endpoints, identity, surfaces
from . import events as ev
from .acls import AclError, check_network_acls
from .faults import DEFAULT_CODES, Fault, FaultPlan
from .names import fold
from .network import NetworkStore

_log = logging.getLogger("guardrail_workbench.emulator")
_T = TypeVar("_T")

ACCOUNT_TYPE = "Microsoft.CognitiveServices/accounts"
COGNITIVE_API = "2025-09-01"
#: The api-versions ARM puts in the operation links it announces (recorded-arm).
OPERATION_API = "2017-04-18"
NETWORK_API = "2021-08-01"
DIAG_TYPE = "Microsoft.Insights/diagnosticSettings"
TERMINAL_STATES = frozenset({"Succeeded", "Failed", "Canceled"})
#: Server-filled / read-only account properties: ignored when a client sends them.
READ_ONLY_PROPERTIES = frozenset(
    {
        "provisioningState",
        "endpoint",
        "endpoints",
        "internalId",
        "dateCreated",
        "privateEndpointConnections",
        "capabilities",
        "callRateLimit",
        "quotaLimit",
        "skuChangeInfo",
        "isMigrated",
        "deletionDate",
        "scheduledPurgeDate",
        "abusePenalty",
    }
)

_SUB = r"/subscriptions/(?P<sub>[^/]+)"
_RG = _SUB + r"/resourcegroups/(?P<rg>[^/]+)"
_ACCOUNTS = r"/providers/microsoft\.cognitiveservices/accounts"
_VNETS = r"/providers/microsoft\.network/virtualnetworks"
_ROUTES: list[tuple[str, re.Pattern[str]]] = [
    ("subscriptions", re.compile(r"/subscriptions")),
    ("subscription", re.compile(_SUB)),
    ("resource_group", re.compile(_RG)),
    ("list_sub", re.compile(_SUB + _ACCOUNTS)),
    ("list_rg", re.compile(_RG + _ACCOUNTS)),
    ("account", re.compile(_RG + _ACCOUNTS + r"/(?P<name>[^/]+)")),
    ("diag_list", re.compile(r"(?P<rid>/.+?)/providers/microsoft\.insights/diagnosticsettings")),
    ("diag", re.compile(r"(?P<rid>/.+?)/providers/microsoft\.insights/diagnosticsettings/(?P<dname>[^/]+)")),
    ("providers", re.compile(_SUB + r"/providers")),
    ("provider", re.compile(_SUB + r"/providers/(?P<ns>[^/]+)")),
    ("resource_groups", re.compile(_SUB + r"/resourcegroups")),
    ("deleted_list", re.compile(_SUB + r"/providers/microsoft\.cognitiveservices/deletedaccounts")),
    (
        "deleted",
        re.compile(
            _SUB + r"/providers/microsoft\.cognitiveservices/locations/(?P<loc>[^/]+)/resourcegroups/"
            r"(?P<rg>[^/]+)/deletedaccounts/(?P<name>[^/]+)"
        ),
    ),
    ("pec_list", re.compile(_RG + _ACCOUNTS + r"/(?P<name>[^/]+)/privateendpointconnections")),
    ("pec", re.compile(_RG + _ACCOUNTS + r"/(?P<name>[^/]+)/privateendpointconnections/(?P<pec>[^/]+)")),
    ("vnet_list", re.compile(_RG + _VNETS)),
    ("vnet_list_sub", re.compile(_SUB + _VNETS)),
    ("vnet", re.compile(_RG + _VNETS + r"/(?P<vnet>[^/]+)")),
    ("subnet_list", re.compile(_RG + _VNETS + r"/(?P<vnet>[^/]+)/subnets")),
    ("subnet", re.compile(_RG + _VNETS + r"/(?P<vnet>[^/]+)/subnets/(?P<subnet>[^/]+)")),
    ("tags", re.compile(r"(?P<rid>/.+?)/providers/microsoft\.resources/tags/default")),
    ("locks", re.compile(r"(?P<rid>/.*?)/providers/microsoft\.authorization/locks")),
    ("lock", re.compile(r"(?P<rid>/.*?)/providers/microsoft\.authorization/locks/(?P<lock>[^/]+)")),
    (
        "operation",
        re.compile(
            _SUB + r"/providers/microsoft\.cognitiveservices/locations/(?P<loc>[^/]+)/"
            r"(?P<kind>operationstatuses|operationresults)/(?P<op>[^/]+)"
        ),
    ),
    (
        "net_operation",
        re.compile(
            _SUB + r"/providers/microsoft\.network/locations/(?P<loc>[^/]+)/"
            r"(?P<kind>operations|operationresults)/(?P<op>[^/]+)"
        ),
    ),
    ("keys", re.compile(_RG + _ACCOUNTS + r"/(?P<name>[^/]+)/(?P<action>listkeys|regeneratekey)")),
    ("link_resources", re.compile(_RG + _ACCOUNTS + r"/(?P<name>[^/]+)/privatelinkresources")),
    *endpoints.ROUTES,
    # The agent-era children of an account (agents.py serves them): the Foundry managed network and
    # its outbound rules, capability hosts, network security perimeter configurations, and the
    # managed network's operations, polled at a Microsoft.MachineLearningServices URL as ARM does.
    *((name, re.compile(_RG + _ACCOUNTS + r"/(?P<name>[^/]+)" + tail)) for name, tail in agents.ROUTE_TAILS),
    (
        "mfe_operation",
        re.compile(
            _SUB + r"/providers/microsoft\.machinelearningservices/locations/(?P<loc>[^/]+)/"
            r"mfeoperationsstatus/(?P<op>[^/]+)"
        ),
    ),
]


@dataclass
class Request:
    method: str
    path: str  # without the query string
    query: dict[str, str]  # keys lower-cased
    headers: dict[str, str]  # keys lower-cased
    body: bytes = b""
    client_ip: str = "127.0.0.1"
    query_string: str = ""


@dataclass
class Response:
    status: int
    body: Any = None  # JSON-able, or None for no body
    headers: dict[str, str] = field(default_factory=dict)
    drop: bool = False  # close the connection without answering (a lost response)


class ArmError(Exception):
    def __init__(
        self, status: int, code: str, message: str, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})


@dataclass
class _Operation:
    id: str
    resource_id: str
    subscription: str
    location: str
    final_status: Literal["Succeeded", "Failed"]
    remaining_polls: int
    deadline: float
    started: str
    context: ev.WriteContext | None
    status: str = "InProgress"
    ended: str | None = None
    #: Whose URL shape the operation is polled at: Cognitive Services' `operationResults`, or
    #: Microsoft.Network's `operations` / `operationResults`.
    provider: str = "Microsoft.CognitiveServices"
    #: An account write finishing turns the account terminal and emits its events; any other
    #: operation (purge, delete, a Microsoft.Network write) runs `on_finish`, if any.
    account_write: bool = True
    created: bool = False
    on_finish: Callable[[], None] | None = None  # run with the lock held
    #: For an operation on an account's child (agents.py): what its end does, run without the lock
    #: (it takes it and publishes events), and the `id` its status body carries.
    after_finish: Callable[[_Operation], None] | None = None
    status_id: str | None = None


@dataclass
class _Busy:
    state: str
    calls: int
    final: str = "Succeeded"


class _TokenBucket:
    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.capacity = max(1.0, rate)
        self.tokens = self.capacity
        self.stamp = time.monotonic()

    def take(self) -> tuple[bool, float, int]:
        """(allowed, seconds until next token, tokens remaining)."""
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True, 0.0, int(self.tokens)
        return False, (1.0 - self.tokens) / self.rate, 0


def _principal(claims: Mapping[str, Any]) -> str:
    """Who a write throttle bucket belongs to: the caller's object ID (or app ID, or UPN)."""
    for key in ("oid", identity.OID, "appid", "upn", identity.UPN):
        value = claims.get(key)
        if value:
            return str(value).lower()
    return ""


def _stamp_system_data(
    account: dict[str, Any], existing: Mapping[str, Any] | None, context: ev.WriteContext
) -> None:
    """ARM's `systemData`: who created and who last modified the resource, and when."""
    claims = context.claims
    upn = claims.get(identity.UPN)
    who, kind = (upn, "User") if upn else (claims.get("appid", ""), "Application")
    now = datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
    previous = existing.get("systemData") if existing is not None else None
    created = dict(previous) if isinstance(previous, Mapping) else {}
    account["systemData"] = {
        "createdBy": created.get("createdBy", who),
        "createdByType": created.get("createdByType", kind),
        "createdAt": created.get("createdAt", now),
        "lastModifiedBy": who,
        "lastModifiedByType": kind,
        "lastModifiedAt": now,
    }


def _new_etag() -> str:
    return f'"{uuid.uuid4()}"'


def _now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z"


def account_id(subscription: str, resource_group: str, name: str) -> str:
    return (
        f"/subscriptions/{subscription}/resourceGroups/{resource_group}"
        f"/providers/Microsoft.CognitiveServices/accounts/{name}"
    )


def parse_account_id(resource_id: str) -> tuple[str, str, str]:
    match = _ROUTES[5][1].fullmatch(fold(resource_id.rstrip("/")))
    if match is None:
        raise ValueError(f"not a Cognitive Services account ID: {resource_id}")
    parts = resource_id.strip("/").split("/")
    return parts[1], parts[3], parts[7]


def request_kind(method: str, path: str) -> str:
    """What an ARM request is, for the stats: "METHOD what", what being `accounts list` (a page of
    a subscription's or resource group's accounts), `account` (one account), `account child`
    (anything under an account: keys, private endpoint connections, ...), `operation` (an
    asynchronous operation's status) or `other`."""
    parts = fold(path.rstrip("/")).split("/")
    if "operationresults" in parts or "operationstatuses" in parts or "operations" in parts:
        what = "operation"
    elif parts[-1] == "accounts":
        what = "accounts list"
    elif len(parts) >= 9 and parts[7] == "accounts" and parts[6] == "microsoft.cognitiveservices":
        what = "account" if len(parts) == 9 else "account child"
    else:
        what = "other"
    return f"{method} {what}"


class RequestStats:
    """Counters over the ARM requests (control requests excluded), for `GET /_emulator/stats`: the
    answers by "METHOD status" and by kind ("METHOD what", `request_kind`), and per subscription the
    successful writes (PATCH/PUT/DELETE < 300) with the wall-clock times (epoch seconds) of the first
    and the last. Cheap enough to be always on, so a benchmark in another process can count 429s and
    time write windows without the request log. Callers hold the app's lock."""

    def __init__(self) -> None:
        self.since = time.time()
        self.requests = 0
        self.statuses: dict[str, int] = {}
        self.kinds: dict[str, int] = {}
        self.writes: dict[str, dict[str, Any]] = {}

    def count(self, method: str, path: str, status: int) -> None:
        self.requests += 1
        key = f"{method} {status}"
        self.statuses[key] = self.statuses.get(key, 0) + 1
        kind = request_kind(method, path)
        self.kinds[kind] = self.kinds.get(kind, 0) + 1
        parts = path.split("/")
        if (
            method in ("PATCH", "PUT", "DELETE")
            and status < 300
            and len(parts) > 2
            and parts[1] == "subscriptions"
        ):
            now = time.time()
            window = self.writes.setdefault(fold(parts[2]), {"count": 0, "first": now, "last": now})
            window["count"] += 1
            window["last"] = now

    def to_json(self) -> dict[str, Any]:
        return {
            "since": self.since,
            "requests": self.requests,
            "statuses": dict(self.statuses),
            "kinds": dict(self.kinds),
            "writes": {sub: dict(window) for sub, window in self.writes.items()},
        }


class AccountStore(dict[str, dict[str, Any]]):
    """The accounts by lower-case ID, indexed by subscription: a listing reads its subscription's
    keys (sorted once, kept until an account is added to or removed from that subscription), not
    every account in the tenant, so a page costs the same in a tenant of 100 accounts or 100,000."""

    def __init__(self) -> None:
        super().__init__()
        self._by_subscription: dict[str, set[str]] = {}
        self._sorted: dict[str, list[str]] = {}

    @staticmethod
    def _subscription_of(key: str) -> str:
        return key.split("/", 3)[2]

    def __setitem__(self, key: str, value: dict[str, Any]) -> None:
        if key not in self:
            sub = self._subscription_of(key)
            self._by_subscription.setdefault(sub, set()).add(key)
            self._sorted.pop(sub, None)
        super().__setitem__(key, value)

    def __delitem__(self, key: str) -> None:
        super().__delitem__(key)
        sub = self._subscription_of(key)
        self._by_subscription[sub].discard(key)
        self._sorted.pop(sub, None)

    def pop(self, key: str, *default: Any) -> Any:
        if key in self:
            value = self[key]
            del self[key]
            return value
        return super().pop(key, *default)

    def clear(self) -> None:
        super().clear()
        self._by_subscription.clear()
        self._sorted.clear()

    def in_subscription(self, subscription: str) -> list[str]:
        """The subscription's account keys, sorted (the list is shared: do not change it)."""
        sub = fold(subscription)
        keys = self._sorted.get(sub)
        if keys is None:
            keys = self._sorted[sub] = sorted(self._by_subscription.get(sub, ()))
        return keys


class ArmApp:
    """In-memory ARM for Cognitive Services accounts (plus subscriptions and diagnostic settings)."""

    def __init__(
        self,
        *,
        page_size: int = 100,
        async_writes: bool = False,
        accepted_writes: bool = False,
        async_polls: int = 1,
        async_seconds: float = 5.0,
        write_rate: float | None = None,
        ip_refusal: Literal["private", "non-public"] = "private",
        network_acls_patch: Literal["replace", "merge"] = "replace",
        tenant_id: str = identity.DEFAULT_TENANT_ID,
        dispatcher: ev.Dispatcher | None = None,
    ) -> None:
        self.lock = threading.RLock()
        self.page_size = page_size
        self.async_writes = async_writes
        self.accepted_writes = accepted_writes  # PATCH: 200 with provisioningState Accepted
        self.async_polls = async_polls
        self.async_seconds = async_seconds
        self.ip_refusal = ip_refusal
        #: A PATCH carrying a partial networkAcls: ARM does not document whether it replaces the
        #: object (the default here) or merges its keys; "merge" is the other reading.
        self.network_acls_patch = network_acls_patch
        self.tenant_id = tenant_id
        self.base_url = "https://127.0.0.1"
        self.faults = FaultPlan()
        self.dispatcher = dispatcher or ev.Dispatcher()
        self.subscriptions: dict[
            str, dict[str, Any]
        ] = {}  # lower sub id -> {subscriptionId, displayName, state}
        self.resource_groups: dict[str, dict[str, Any]] = {}  # lower "sub/rg" -> {name, location, tags}
        self.accounts = AccountStore()  # lower id -> ARM body, indexed by subscription
        self.diagnostic_settings: dict[str, dict[str, Any]] = {}  # lower setting id -> body
        self.operations: dict[str, _Operation] = {}
        self._in_progress: set[str] = set()
        self.busy: dict[str, _Busy] = {}
        self.vnet_join_denied: set[str] = set()  # lower account ids, or "*" for every account
        self.tokens: dict[str, dict[str, Any]] = {}  # exact token -> claims
        self.default_identity: dict[str, Any] = dict(identity.DEFAULT_IDENTITY)
        self._write_rate = write_rate
        # Write throttle buckets by (subscription, principal): ARM scopes its request limits to the
        # security principal making the requests and the subscription, so a user's deployment
        # does not spend the guardrail's writes.
        self._buckets: dict[tuple[str, str], _TokenBucket] = {}
        self._caller = threading.local()  # the principal of the request this thread handles
        self._reads: dict[str, int] = {}
        self.request_count = 0
        self.requests: list[tuple[str, str, int]] = []  # (method, path, status), most recent last
        self.request_log: list[dict[str, Any]] = []  # {"seq", "method", "path", "status"}, for /_emulator
        self.keep_request_log = True
        self.stats = (
            RequestStats()
        )  # answers by "METHOD status", writes per subscription, for /_emulator/stats
        self.network = NetworkStore()
        self.deleted: dict[str, dict[str, Any]] = {}  # lower "sub/location/rg/name" -> deleted account
        self.locks: dict[str, dict[str, Any]] = {}  # lower lock id -> Microsoft.Authorization/locks body
        self.agents = agents.AgentSurfaces(self)  # managed networks, capability hosts, NSP configurations
        self.account_keys: dict[str, dict[str, str]] = {}  # lower account id -> key1/key2
        self.endpoints = endpoints.PrivateEndpoints(self)  # Microsoft.Network/privateEndpoints
        self.control = control.ControlApi(self)

    # ------------------------------------------------------------------ configuration

    @property
    def write_rate(self) -> float | None:
        return self._write_rate

    @write_rate.setter
    def write_rate(self, rate: float | None) -> None:
        with self.lock:
            self._write_rate = rate
            self._buckets.clear()

    # ------------------------------------------------------------------ tenant contents

    def add_subscription(
        self, subscription_id: str, display_name: str | None = None, state: str = "Enabled"
    ) -> None:
        with self.lock:
            self.subscriptions.setdefault(
                fold(subscription_id),
                {
                    "subscriptionId": subscription_id,
                    "displayName": display_name or subscription_id,
                    "state": state,
                },
            )

    def add_resource_group(
        self, subscription_id: str, name: str, location: str = "westus", tags: Mapping[str, str] | None = None
    ) -> None:
        with self.lock:
            self.add_subscription(subscription_id)
            key = fold(f"{subscription_id}/{name}")
            self.resource_groups.setdefault(
                key, {"name": name, "location": location, "tags": dict(tags or {})}
            )

    def materialise(
        self, resource_id: str, body: Mapping[str, Any], *, existing: Mapping[str, Any] | None
    ) -> dict[str, Any]:
        """A full ARM account body from what a client sent (server-side fields filled in)."""
        _sub, _rg, name = parse_account_id(resource_id)
        properties = {k: copy.deepcopy(v) for k, v in dict(body.get("properties") or {}).items()}
        for key in READ_ONLY_PROPERTIES:
            properties.pop(key, None)
        old_props: Mapping[str, Any] = (existing or {}).get("properties") or {}
        server: dict[str, Any] = {
            "provisioningState": "Succeeded",
            "internalId": old_props.get("internalId") or uuid.uuid4().hex,
            "dateCreated": old_props.get("dateCreated") or _now_iso(),
        }
        if "privateEndpointConnections" in old_props or existing is None:
            server["privateEndpointConnections"] = copy.deepcopy(
                old_props.get("privateEndpointConnections", [])
            )
        properties.setdefault("publicNetworkAccess", "Enabled")
        account: dict[str, Any] = {
            "id": existing["id"] if existing else resource_id,
            "name": existing["name"] if existing else name,
            "type": ACCOUNT_TYPE,
            "etag": _new_etag(),
            "location": body.get("location") or (existing or {}).get("location") or "westus",
        }
        for key in ("sku", "kind", "tags", "identity"):
            if key in body:
                account[key] = copy.deepcopy(body[key])
        self._fill_identity(account, existing)
        account["properties"] = {**server, **properties}
        if (
            existing is not None
            and "customSubDomainName" not in properties
            and old_props.get("customSubDomainName")
        ):
            account["properties"]["customSubDomainName"] = old_props["customSubDomainName"]  # set once
        account.setdefault("kind", (existing or {}).get("kind"))
        if account["kind"] is None:
            del account["kind"]
        self._server_fields(account)
        return account

    @staticmethod
    def _server_fields(account: dict[str, Any]) -> None:
        """What ARM derives on every write: the endpoint (from kind and custom subdomain) and the
        `state` of each virtual network rule."""
        properties = account["properties"]
        subdomain = properties.get("customSubDomainName")
        if subdomain:
            domain = "openai.azure.com" if account.get("kind") == "OpenAI" else "cognitiveservices.azure.com"
            properties["endpoint"] = f"https://{str(subdomain).lower()}.{domain}/"
        else:
            region = str(account.get("location", "westus")).replace(" ", "").lower()
            properties["endpoint"] = f"https://{region}.api.cognitive.microsoft.com/"
        acls = properties.get("networkAcls")
        if isinstance(acls, dict):
            for rule in acls.get("virtualNetworkRules") or []:
                if isinstance(rule, dict):
                    rule.setdefault("state", "Succeeded")
                    rule.setdefault("ignoreMissingVnetServiceEndpoint", False)

    def _fill_identity(self, account: dict[str, Any], existing: Mapping[str, Any] | None) -> None:
        managed = account.get("identity")
        if not isinstance(managed, dict) or "SystemAssigned" not in str(managed.get("type", "")):
            return
        old = (existing or {}).get("identity") or {}
        managed.setdefault("principalId", old.get("principalId") or str(uuid.uuid4()))
        managed.setdefault("tenantId", old.get("tenantId") or self.tenant_id)

    def put_account_direct(self, body: Mapping[str, Any], resource_id: str | None = None) -> dict[str, Any]:
        """Store an account as given, without a request or events (seeding).

        Creates its subscription and resource group as needed; fills only what ARM always returns
        (id, name, type, etag, location, properties.provisioningState/endpoint) when missing.
        """
        rid = resource_id or str(body["id"])
        sub, rg, name = parse_account_id(rid)
        self.add_resource_group(sub, rg, str(body.get("location", "westus")))
        account: dict[str, Any] = {"id": rid, "name": name, "type": ACCOUNT_TYPE, "etag": _new_etag()}
        account.update(
            {k: copy.deepcopy(v) for k, v in body.items() if k not in ("resourceGroup", "emulator")}
        )
        account["id"], account["name"], account["type"] = rid, name, ACCOUNT_TYPE
        account.setdefault("location", "westus")
        properties = account.setdefault("properties", {})
        properties.setdefault("provisioningState", "Succeeded")
        if "endpoint" not in properties:
            probe = {
                "kind": account.get("kind"),
                "location": account["location"],
                "properties": dict(properties),
            }
            probe["properties"].pop("networkAcls", None)
            self._server_fields(probe)
            properties["endpoint"] = probe["properties"]["endpoint"]
        with self.lock:
            self.accounts[fold(rid)] = account
            return copy.deepcopy(account)

    def get_account_direct(self, resource_id: str) -> dict[str, Any] | None:
        with self.lock:
            account = self.accounts.get(fold(resource_id.rstrip("/")))
            return copy.deepcopy(account) if account is not None else None

    def set_busy(self, resource_id: str, calls: int, state: str = "Accepted") -> None:
        """Keep the account in a non-terminal provisioning `state` for the next `calls` requests to it."""
        with self.lock:
            key = fold(resource_id)
            if key not in self.accounts:
                raise KeyError(resource_id)
            self.busy[key] = _Busy(state, calls)
            self.accounts[key]["properties"]["provisioningState"] = state

    # ------------------------------------------------------------------ entry point

    def handle(self, request: Request) -> Response:
        request_id = str(uuid.uuid4())
        correlation = request.headers.get("x-ms-correlation-request-id") or str(uuid.uuid4())
        if request.path.startswith(control.PREFIX):
            return self.control.handle(request)
        try:
            response = self._handle(request, correlation)
        except AclError as exc:
            response = Response(exc.status, {"error": {"code": exc.code, "message": exc.message}})
        except ArmError as exc:
            response = Response(
                exc.status, {"error": {"code": exc.code, "message": exc.message}}, exc.headers
            )
        except Exception as exc:  # a bug here must still look like ARM
            response = Response(
                500, {"error": {"code": "InternalServerError", "message": f"emulator error: {exc!r}"}}
            )
        response.headers.setdefault("x-ms-request-id", request_id)
        response.headers.setdefault("x-ms-correlation-request-id", correlation)
        response.headers.setdefault(
            "x-ms-routing-request-id", f"LOCAL:{time.strftime('%Y%m%dT%H%M%SZ')}:{request_id}"
        )
        if "x-ms-client-request-id" in request.headers:
            response.headers.setdefault("x-ms-client-request-id", request.headers["x-ms-client-request-id"])
        if _log.isEnabledFor(logging.INFO):
            code = response.body.get("error", {}).get("code") if isinstance(response.body, dict) else None
            _log.info(
                "%s %s -> %d%s", request.method, request.path, response.status, f" {code}" if code else ""
            )
        with self.lock:
            self.request_count += 1
            self.stats.count(request.method, request.path, response.status)
            if self.keep_request_log:
                self.requests.append((request.method, request.path, response.status))
                self.request_log.append(
                    {
                        "seq": self.request_count,
                        "method": request.method,
                        "path": request.path,
                        "query": request.query_string,
                        "status": response.status,
                    }
                )
                if len(self.requests) > 10000:
                    del self.requests[:5000]
                    del self.request_log[:5000]
        return response

    def _handle(self, request: Request, correlation: str) -> Response:
        if fold(re.sub(r"/{2,}", "/", request.path).rstrip("/")) == "/metadata/endpoints" and (
            request.method == "GET"
        ):
            return Response(200, surfaces.metadata_endpoints(self.base_url, self.tenant_id))
        auth = request.headers.get("authorization", "")
        if not auth.lower().startswith("bearer ") or not auth[7:].strip():
            raise ArmError(
                401,
                "AuthenticationFailed",
                "Authentication failed. The 'Authorization' header is missing.",
                {
                    "WWW-Authenticate": (
                        'Bearer authorization_uri="https://login.windows.net/", error="invalid_token"'
                    )
                },
            )
        token = auth[7:].strip()
        path = re.sub(r"/{2,}", "/", request.path)
        if len(path) > 1:
            path = path.rstrip("/")
        lowered = fold(path)
        route: str | None = None
        match: re.Match[str] | None = None
        for name, pattern in _ROUTES:
            found = pattern.fullmatch(lowered)
            if found is not None:
                route, match = name, found
                # later patterns are more specific: keep looking
        if route is None or match is None:
            raise ArmError(
                404, "InvalidResourceType", f"The resource type could not be found for path '{path}'."
            )
        api_version = request.query.get("api-version")
        if not api_version:
            raise ArmError(
                400,
                "MissingApiVersionParameter",
                "The api-version query parameter (?api-version=) is required for all requests.",
            )
        self._complete_due_operations()
        fault = self.faults.take(request.method, path)
        if fault is not None:
            self._apply_fault(fault, request.method, path)
        self._caller.principal = _principal(self._identity(token)) if self._write_rate is not None else ""
        response = self._route(request, correlation, token, route, match, path, api_version, fault)
        if fault is not None and fault.action == "drop_response":
            response.drop = True
        return response

    def _route(
        self,
        request: Request,
        correlation: str,
        token: str,
        route: str,
        match: re.Match[str],
        path: str,
        api_version: str,
        fault: Fault | None,
    ) -> Response:
        groups = match.groupdict()
        if route in (
            "account",
            "pec_list",
            "pec",
            "keys",
            "link_resources",
            *agents.ROUTES,
        ):  # ARM's casing, the client's names
            parts = path.split("/")
            path = "/".join([account_id(parts[2], parts[4], parts[8]), *parts[9:]])
        context: ev.WriteContext | None = None
        if request.method in ("PUT", "PATCH", "DELETE"):
            context = self._context(request, self._identity(token), correlation, path, api_version)
        if route == "subscriptions" and request.method == "GET":
            with self.lock:
                value = [self._subscription_body(s) for s in self.subscriptions.values()]
            return self._ok_read(None, {"value": value}, "")
        if route == "subscription" and request.method == "GET":
            sub = self._subscription(groups["sub"])
            return self._ok_read(None, self._subscription_body(sub), sub["subscriptionId"])
        if route == "resource_group" and request.method == "GET":
            return self._get_resource_group(groups["sub"], groups["rg"])
        if route in ("list_sub", "list_rg") and request.method == "GET":
            return self._list(groups, request, api_version, path)
        if route == "account":
            if request.method == "GET":
                return self._get(path)
            assert context is not None
            if request.method == "PUT":
                return self._put(path, request, context)
            if request.method == "PATCH":
                return self._patch(path, request, context, fault)
            if request.method == "DELETE":
                return self._delete(path, context)
        if route == "diag_list" and request.method == "GET":
            return self._diag_list(groups["rid"], path)
        if route == "diag":
            return self._diag(request, path, groups)
        if route == "operation" and request.method == "GET":
            location_link = request.query.get("operationresultresponsetype", "").lower() == "location"
            return self._operation(groups["op"], "operationresults" if location_link else "status")
        if route == "net_operation" and request.method == "GET":
            kind = "status" if groups["kind"] == "operations" else "operationresults"
            return self._operation(groups["op"], kind, "Microsoft.Network")
        if route == "keys" and request.method == "POST":
            return self._keys(path, groups["action"], request)
        if route == "link_resources" and request.method == "GET":
            return self._link_resources("/".join(path.split("/")[:9]))
        if route in endpoints.ROUTE_NAMES:
            return self.endpoints.handle(request, route, path, groups, context, self._identity(token))
        if route == "providers" and request.method == "GET":
            return Response(200, {"value": surfaces.providers(groups["sub"])})
        if route == "provider" and request.method == "GET":
            return Response(200, surfaces.provider(groups["sub"], groups["ns"]))
        if route == "resource_groups" and request.method == "GET":
            return self._list_resource_groups(groups["sub"])
        if route == "deleted_list" and request.method == "GET":
            return self._deleted_list(groups["sub"])
        if route == "deleted":
            return self._deleted(request, groups, context)
        if route == "tags":
            return self._tags(request, path[: len(groups["rid"])], context)
        if route in ("locks", "lock"):
            return self._locks(
                request, path[: len(groups["rid"])], groups.get("lock") and path.rsplit("/", 1)[-1]
            )
        if route in ("pec_list", "pec"):
            return self._pec(request, path, groups, context)
        if route in agents.ROUTES:
            return self.agents.handle(request, route, path, context, fault, api_version)
        if route == "mfe_operation" and request.method == "GET":
            return self.agents.operation_status(groups["op"])
        if route in ("vnet_list", "vnet_list_sub", "vnet", "subnet_list", "subnet"):
            return self._network(request, route, path, groups)
        raise ArmError(
            405 if route else 404,
            "MethodNotAllowed" if route else "InvalidResourceType",
            f"The requested method '{request.method}' is not allowed for '{path}'.",
        )

    # ------------------------------------------------------------------ helpers

    def _identity(self, token: str) -> dict[str, Any]:
        if token in self.tokens:
            return dict(self.tokens[token])
        decoded = identity.decode_token(token)
        return decoded if decoded is not None else dict(self.default_identity)

    def _context(
        self, request: Request, caller: Mapping[str, Any], correlation: str, path: str, api_version: str
    ) -> ev.WriteContext:
        claims = identity.event_claims(caller, self.tenant_id, request.client_ip)
        parts = path.split("/")
        subscription = parts[2] if len(parts) > 2 and fold(parts[1]) == "subscriptions" else ""
        return ev.WriteContext(
            claims=claims,
            evidence=identity.evidence(claims, subscription),
            tenant_id=claims.get(identity.TID, self.tenant_id),
            correlation_id=correlation,
            client_request_id=request.headers.get("x-ms-client-request-id") or str(uuid.uuid4()),
            client_ip=request.client_ip,
            method=request.method,
            url=f"{self.base_url}{path}?api-version={api_version}",
            api_version=api_version,
        )

    def _apply_fault(self, fault: Fault, method: str, path: str) -> None:
        if fault.latency:
            time.sleep(fault.latency)
        if fault.action == "latency":
            return
        if fault.action == "delete":
            with self.lock:
                self._delete_silently(path)
            return
        if fault.action == "touch":
            with self.lock:
                account = self.accounts.get(fold(path))
                if account is not None:
                    account["etag"] = _new_etag()
                    account.setdefault("tags", {})["touchedBy"] = "emulator-fault"
            return
        if fault.action in ("fail_provisioning", "drop_response"):
            return  # handled by the write itself / by the server after it
        status = fault.status
        code = fault.code or DEFAULT_CODES.get(status, "InternalServerError")
        headers: dict[str, str] = {}
        if fault.retry_after is not None:
            headers["Retry-After"] = _seconds(fault.retry_after)
        if status == 429:
            headers.setdefault("Retry-After", "1")
            kind = "writes" if method in ("PUT", "PATCH", "DELETE") else "reads"
            headers[f"x-ms-ratelimit-remaining-subscription-{kind}"] = "0"
        message = fault.message or _default_message(code, path)
        raise ArmError(status, code, message, headers)

    def _delete_silently(self, resource_id: str) -> None:
        key = fold(resource_id)
        gone = self.accounts.pop(key, None)
        self.busy.pop(key, None)
        if gone is not None:
            self._soft_delete(gone)
            self.agents.forget(key)

    def _soft_delete(self, account: Mapping[str, Any]) -> None:
        """ARM keeps a deleted account for 48 hours: listable under deletedAccounts, its name (and
        custom subdomain) held until it is purged or restored."""
        sub, rg, name = parse_account_id(str(account["id"]))
        location = str(account.get("location", "westus")).replace(" ", "").lower()
        deleted = copy.deepcopy(dict(account))
        deleted["id"] = (
            f"/subscriptions/{sub}/providers/Microsoft.CognitiveServices/locations/{location}"
            f"/resourceGroups/{rg}/deletedAccounts/{name}"
        )
        now = datetime.now(UTC)
        deleted.setdefault("properties", {})
        deleted["properties"]["deletionDate"] = now.isoformat(timespec="seconds").replace("+00:00", "Z")
        deleted["properties"]["scheduledPurgeDate"] = (
            datetime.fromtimestamp(now.timestamp() + 48 * 3600, UTC)
            .isoformat(timespec="seconds")
            .replace("+00:00", "Z")
        )
        self.deleted[self._deleted_key(sub, location, rg, name)] = deleted

    def _subscription(self, sub: str) -> dict[str, Any]:
        found = self.subscriptions.get(fold(sub))
        if found is None:
            raise ArmError(404, "SubscriptionNotFound", f"The subscription '{sub}' could not be found.")
        return found

    def _subscription_body(self, sub: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "id": f"/subscriptions/{sub['subscriptionId']}",
            "subscriptionId": sub["subscriptionId"],
            "tenantId": self.tenant_id,
            "displayName": sub["displayName"],
            "state": sub["state"],
        }

    def _check_group(self, sub: str, rg: str) -> None:
        self._subscription(sub)
        if fold(f"{sub}/{rg}") not in self.resource_groups:
            raise ArmError(404, "ResourceGroupNotFound", f"Resource group '{rg}' could not be found.")

    def _read_headers(self, sub: str) -> dict[str, str]:
        if not sub:
            return {}
        with self.lock:
            count = self._reads.get(fold(sub), 0) + 1
            self._reads[fold(sub)] = count
        return {"x-ms-ratelimit-remaining-subscription-reads": str(max(0, 12000 - count % 12000 - 1))}

    def _ok_read(self, status_or_none: int | None, body: Any, sub: str) -> Response:
        return Response(status_or_none or 200, body, self._read_headers(sub))

    def _write_gate(self, sub: str) -> dict[str, str]:
        """Apply the write throttle; returns the ratelimit header for the response."""
        with self.lock:
            if self._write_rate is None:
                return {"x-ms-ratelimit-remaining-subscription-writes": "1199"}
            key = (fold(sub), str(getattr(self._caller, "principal", "")))
            bucket = self._buckets.setdefault(key, _TokenBucket(self._write_rate))
            allowed, wait, remaining = bucket.take()
        if not allowed:
            raise ArmError(
                429,
                "TooManyRequests",
                "The request is being throttled as the limit has been reached for operation type - Write.",
                {
                    "Retry-After": str(max(1, math.ceil(wait))),
                    "x-ms-ratelimit-remaining-subscription-writes": "0",
                },
            )
        return {"x-ms-ratelimit-remaining-subscription-writes": str(remaining)}

    def _touch_busy(self, key: str) -> _Busy | None:
        """Count a call against a busy account; returns the busy record while it is still busy."""
        busy = self.busy.get(key)
        if busy is None:
            return None
        if busy.calls <= 0:
            del self.busy[key]
            account = self.accounts.get(key)
            if account is not None and account["properties"].get("provisioningState") == busy.state:
                account["properties"]["provisioningState"] = busy.final
            return None
        busy.calls -= 1
        return busy

    def _conflict(self, resource_id: str) -> ArmError:
        return ArmError(
            409,
            "RequestConflict",
            f"Cannot modify resource with id '{resource_id}' because the resource entity provisioning state "
            "is not terminal. Please wait for the provisioning state to become terminal and then retry the "
            "request.",
        )

    # ------------------------------------------------------------------ accounts

    def _get(self, rid: str) -> Response:
        sub, _, _ = parse_account_id(rid)
        with self.lock:
            key = fold(rid)
            self._touch_busy(key)
            account = self.accounts.get(key)
            if account is None:
                raise _not_found(rid)
            return self._ok_read(None, copy.deepcopy(account), sub)

    def _get_resource_group(self, sub: str, rg: str) -> Response:
        with self.lock:
            self._check_group(sub, rg)
            group = self.resource_groups[fold(f"{sub}/{rg}")]
            subscription = self.subscriptions[fold(sub)]["subscriptionId"]
            return self._ok_read(None, _group_body(subscription, group), sub)

    def _list(self, groups: Mapping[str, str], request: Request, api_version: str, path: str) -> Response:
        sub = groups["sub"]
        rg = groups.get("rg")
        with self.lock:
            if rg is not None:
                self._check_group(sub, rg)
                prefix = fold(f"/subscriptions/{sub}/resourcegroups/{rg}/")
                keys = [k for k in self.accounts.in_subscription(sub) if k.startswith(prefix)]
            else:
                self._subscription(sub)
                keys = self.accounts.in_subscription(sub)
            body = self.paged(keys, lambda k: copy.deepcopy(self.accounts[k]), request, path, api_version)
        return self._ok_read(None, body, sub)

    def paged(
        self,
        items: Sequence[_T],
        render: Callable[[_T], Any],
        request: Request,
        path: str,
        api_version: str,
    ) -> dict[str, Any]:
        """ARM's list answer: one page (`page_size` items, each rendered) and, when more follow, the
        `nextLink` to the next ($skipToken)."""
        try:
            start = int(request.query.get("$skiptoken", "0"))
        except ValueError as exc:
            raise ArmError(400, "InvalidSkipToken", "The skip token is not valid.") from exc
        body: dict[str, Any] = {"value": [render(item) for item in items[start : start + self.page_size]]}
        if start + self.page_size < len(items):
            body["nextLink"] = (
                f"{self.base_url}{path}?api-version={api_version}&$skipToken={start + self.page_size}"
            )
        return body

    def _parse_body(self, request: Request) -> dict[str, Any]:
        try:
            body = json.loads(request.body or b"{}")
        except ValueError as exc:
            raise ArmError(400, "InvalidRequestContent", f"The request content was invalid: {exc}") from exc
        if not isinstance(body, dict):
            raise ArmError(400, "InvalidRequestContent", "The request content must be a JSON object.")
        return body

    def _check_if_match(self, request: Request, account: Mapping[str, Any] | None, rid: str) -> None:
        if_match = request.headers.get("if-match")
        if if_match is not None:
            if account is None:
                raise ArmError(
                    412, "PreconditionFailed", f"The resource '{rid}' does not exist (If-Match: {if_match})."
                )
            if if_match.strip() != "*" and if_match.strip() != account.get("etag"):
                raise ArmError(
                    412,
                    "PreconditionFailed",
                    f"The condition specified using HTTP conditional header(s) is not met: the etag of "
                    f"'{rid}' is {account.get('etag')}, not {if_match}.",
                )
        if_none = request.headers.get("if-none-match")
        if (
            if_none is not None
            and account is not None
            and (if_none.strip() == "*" or if_none == account.get("etag"))
        ):
            raise ArmError(412, "PreconditionFailed", f"The resource '{rid}' already exists.")

    def _validate_network(self, properties: Mapping[str, Any], rid: str) -> None:
        acls = properties.get("networkAcls")
        try:
            check_network_acls(acls, self.ip_refusal)
        except AclError as refusal:
            raise ArmError(refusal.status, refusal.code, refusal.message) from None
        if not isinstance(acls, Mapping):
            return
        vnet_rules = acls.get("virtualNetworkRules") or []
        if vnet_rules and ("*" in self.vnet_join_denied or fold(rid) in self.vnet_join_denied):
            subnet = vnet_rules[0].get("id", "")
            raise ArmError(
                403,
                "LinkedAuthorizationFailed",
                "The client has permission to perform action 'Microsoft.CognitiveServices/accounts/write' on "
                f"scope '{rid}', however it does not have permission to perform action(s) "
                "'Microsoft.Network/virtualNetworks/subnets/joinViaServiceEndpoint/action' on the linked "
                f"scope(s) '{subnet}' (respectively) or the linked scope(s) are invalid.",
            )
        for rule in vnet_rules:
            self.network.check_vnet_rule(rule)

    def _put(self, rid: str, request: Request, context: ev.WriteContext) -> Response:
        sub, rg, _name = parse_account_id(rid)
        body = self._parse_body(request)
        with self.lock:
            self._check_group(sub, rg)
            key = fold(rid)
            existing = self.accounts.get(key)
            self._check_if_match(request, existing, rid)
            if existing is not None and self._touch_busy(key) is not None:
                raise self._conflict(existing["id"])
            if not body.get("location") and existing is None:
                raise ArmError(
                    400, "LocationRequired", "The location property is required for this definition."
                )
            self._check_locks(rid, delete=False)
            self._validate_network(body.get("properties") or {}, rid)
            held = self._held_by_deleted(rid) if existing is None else None
            if held is not None:
                if (body.get("properties") or {}).get("restore") is not True:
                    raise ArmError(
                        409,
                        "FlagMustBeSetForRestore",
                        f"An existing resource with ID '{rid}' has been soft-deleted. To restore the "
                        "resource, you must specify 'restore' to be 'true' in the property. If you don't "
                        "want to restore existing resource, please purge it first.",
                    )
                restored = self.deleted.pop(held)
                existing = {**restored, "id": account_id(sub, rg, restored["name"])}
                existing["properties"] = dict(restored.get("properties") or {})
            self._check_subdomain(rid, body.get("properties") or {}, existing)
            headers = self._write_gate(sub)
            account = self.materialise(rid, body, existing=existing)
            account["properties"].pop("restore", None)
            _stamp_system_data(account, existing, context)
            self.accounts[key] = account
            # ARM answers 201 for a resource that was not there: a new account, and a restored one
            status = 201 if existing is None or held is not None else 200
            if self.async_writes and existing is None:
                # ARM provisions a new account as an operation: 201 `Creating` + Azure-AsyncOperation
                account["properties"]["provisioningState"] = "Creating"
                operation = self._start_operation(account, context, "Succeeded", created=True)
                headers["azure-AsyncOperation"] = self._operation_headers(operation)["azure-AsyncOperation"]
                headers["Retry-After"] = "0"
                return Response(status, copy.deepcopy(account), headers)
            result = copy.deepcopy(account)
        self._emit_write(result, context, created=existing is None)
        return Response(status, result, headers)

    def _patch(self, rid: str, request: Request, context: ev.WriteContext, fault: Fault | None) -> Response:
        sub, _rg, _name = parse_account_id(rid)
        body = self._parse_body(request)
        fail = fault is not None and fault.action == "fail_provisioning"
        with self.lock:
            key = fold(rid)
            existing = self.accounts.get(key)
            if existing is None:
                self._subscription(sub)
                raise _not_found(rid)
            self._check_if_match(request, existing, rid)
            if self._touch_busy(key) is not None:
                raise self._conflict(existing["id"])
            properties = body.get("properties")
            if properties is not None and not isinstance(properties, dict):
                raise ArmError(400, "InvalidRequestContent", "properties must be an object.")
            old_acls = existing["properties"].get("networkAcls")
            if (
                self.network_acls_patch == "merge"
                and isinstance(properties, dict)
                and isinstance(properties.get("networkAcls"), dict)
                and isinstance(old_acls, dict)
            ):  # the other reading of an undocumented behaviour: keys merged, arrays still replaced
                properties = {**properties, "networkAcls": {**old_acls, **properties["networkAcls"]}}
            self._check_locks(existing["id"], delete=False)
            self._validate_network(properties or {}, existing["id"])
            self._check_subdomain(existing["id"], properties or {}, existing)
            headers = self._write_gate(sub)
            updated = copy.deepcopy(existing)
            if not fail:
                for prop, value in (properties or {}).items():
                    if prop not in READ_ONLY_PROPERTIES:
                        updated["properties"][prop] = copy.deepcopy(value)  # networkAcls and arrays: replaced
                for top in ("tags", "sku", "identity"):
                    if top in body:
                        updated[top] = copy.deepcopy(body[top])
                self._fill_identity(updated, existing)
                self._server_fields(updated)
                _stamp_system_data(updated, existing, context)
            updated["etag"] = _new_etag()
            if self.async_writes:
                updated["properties"]["provisioningState"] = "Accepted"
                self.accounts[key] = updated
                operation = self._start_operation(updated, context, "Failed" if fail else "Succeeded")
                headers.update(self._operation_headers(operation))
                return Response(202, copy.deepcopy(updated), headers)
            final = "Failed" if fail else "Succeeded"
            if self.accepted_writes:
                # 200 whose body says Accepted: the SDK polls the account until the state is terminal
                updated["properties"]["provisioningState"] = "Accepted"
                self.busy[key] = _Busy("Accepted", self.async_polls, final)
            else:
                updated["properties"]["provisioningState"] = final
            self.accounts[key] = updated
            result = copy.deepcopy(updated)
        self._emit_write(result, context, created=False, failed=fail)
        return Response(200, result, headers)

    def _delete(self, rid: str, context: ev.WriteContext) -> Response:
        sub, _rg, _ = parse_account_id(rid)
        with self.lock:
            self._subscription(sub)
            key = fold(rid)
            existing = self.accounts.get(key)
            if existing is None:
                return Response(204, None, {})
            in_flight = any(
                fold(self.operations[op].resource_id) == key and self.operations[op].account_write
                for op in self._in_progress
            )
            if not in_flight and self._touch_busy(key) is not None:
                raise self._conflict(existing["id"])
            self._check_locks(existing["id"], delete=True)
            headers = self._write_gate(sub)
            self.busy.pop(key, None)
            del self.accounts[key]
            self._soft_delete(existing)
            for setting in [k for k in self.diagnostic_settings if k.startswith(key + "/")]:
                del self.diagnostic_settings[setting]
            self.agents.forget(key)
            if in_flight:
                # ARM (2020 recording): deleting an account that is still being provisioned is
                # accepted as an operation of its own, 202 with both links
                operation = self._new_operation(
                    existing["id"], sub, str(existing.get("location", "westus")), context=context
                )
                headers.update(self._operation_headers(operation))
        self._emit_delete(existing["id"], context)
        return Response(202 if in_flight else 200, None, headers)

    def _keys(self, path: str, action: str, request: Request) -> Response:
        """`POST .../listKeys` and `.../regenerateKey`: the account's two keys (made-up values)."""
        rid = "/".join(path.split("/")[:9])
        sub = parse_account_id(rid)[0]
        with self.lock:
            account = self.accounts.get(fold(rid))
            if account is None:
                raise _not_found(rid)
            keys = self.account_keys.setdefault(fold(rid), {})
            for name in ("key1", "key2"):
                keys.setdefault(name, uuid.uuid4().hex)
            if action == "regeneratekey":
                name = str(self._parse_body(request).get("keyName", "Key1")).lower()
                if name not in keys:
                    raise ArmError(400, "InvalidKeyName", "keyName must be Key1 or Key2.")
                keys[name] = uuid.uuid4().hex
            return self._ok_read(None, dict(keys), sub)

    def _link_resources(self, rid: str) -> Response:
        """`GET .../privateLinkResources`: the one group a private endpoint can connect to, `account`,
        with the private DNS zone it needs (recorded-arm; an OpenAI account's zone is openai's)."""
        with self.lock:
            account = self.accounts.get(fold(rid))
            if account is None:
                raise _not_found(rid)
            zone = (
                "privatelink.openai.azure.com"
                if account.get("kind") == "OpenAI"
                else "privatelink.cognitiveservices.azure.com"
            )
            resource = {
                "id": f"{account['id']}/privateLinkResources/account",
                "name": "account",
                "type": "Microsoft.CognitiveServices/accounts/privateLinkResources",
                "properties": {
                    "groupId": "account",
                    "requiredMembers": ["default"],
                    "requiredZoneNames": [zone],
                },
            }
            return self._ok_read(None, {"value": [resource]}, parse_account_id(rid)[0])

    # ------------------------------------------------------------------ async operations

    def _start_operation(
        self,
        account: Mapping[str, Any],
        context: ev.WriteContext,
        final: Literal["Succeeded", "Failed"],
        *,
        created: bool = False,
    ) -> _Operation:
        """An account write running as an operation: the account stays non-terminal (and refuses
        other writes with 409) until the operation is polled `async_polls` times or times out."""
        sub, _, _ = parse_account_id(account["id"])
        operation = _Operation(
            id=str(uuid.uuid4()),
            resource_id=account["id"],
            subscription=sub,
            location=str(account.get("location", "westus")).replace(" ", "").lower(),
            final_status=final,
            remaining_polls=self.async_polls,
            deadline=time.monotonic() + self.async_seconds,
            started=_now_iso(),
            context=context,
            created=created,
        )
        self.operations[operation.id] = operation
        self._in_progress.add(operation.id)
        state = str(account["properties"].get("provisioningState", "Accepted"))
        self.busy[fold(account["id"])] = _Busy(state, 1 << 30)
        return operation

    def _new_operation(
        self,
        resource_id: str,
        subscription: str,
        location: str,
        *,
        provider: str = "Microsoft.CognitiveServices",
        context: ev.WriteContext | None = None,
        on_finish: Callable[[], None] | None = None,
        final: Literal["Succeeded", "Failed"] = "Succeeded",
        after_finish: Callable[[_Operation], None] | None = None,
        operation_id: str | None = None,
        status_id: str | None = None,
        always_async: bool = False,
    ) -> _Operation:
        """Any other operation ARM announces (purge, a delete, a Microsoft.Network write, a write
        to an account's child): in the asynchronous mode (or `always_async`) it is in progress
        until polled `async_polls` times or `async_seconds` pass, else it is over before the answer
        leaves. Its end runs `on_finish` with the lock held, then `after_finish` without it.
        Callers hold the lock."""
        operation = _Operation(
            id=operation_id or str(uuid.uuid4()),
            resource_id=resource_id,
            subscription=subscription,
            location=location.replace(" ", "").lower(),
            final_status=final,
            remaining_polls=self.async_polls,
            deadline=time.monotonic() + self.async_seconds,
            started=_now_iso(),
            context=context,
            provider=provider,
            account_write=False,
            on_finish=on_finish,
            after_finish=after_finish,
            status_id=status_id,
        )
        self.operations[operation.id] = operation
        self._in_progress.add(operation.id)
        if not (self.async_writes or always_async):
            self._finish(operation)
        return operation

    def new_operation(
        self,
        account: Mapping[str, Any],
        resource_id: str,
        context: ev.WriteContext,
        final: Literal["Succeeded", "Failed"],
        *,
        on_finish: Callable[[_Operation], None] | None = None,
        operation_id: str | None = None,
        status_id: str | None = None,
        provider: str = "Microsoft.MachineLearningServices",
    ) -> _Operation:
        """An asynchronous operation on one of an account's children (agents.py), ending `final`
        after `async_polls` polls of its status or `async_seconds`, whichever comes first; its end
        runs `on_finish` without the lock. `provider`: whose URL shape announces it (the managed
        network's are answered at mfeOperationsStatus by agents.py). Callers hold the lock."""
        return self._new_operation(
            resource_id,
            parse_account_id(account["id"])[0],
            str(account.get("location", "westus")),
            provider=provider,
            context=context,
            final=final,
            after_finish=on_finish,
            operation_id=operation_id,
            status_id=status_id,
            always_async=True,
        )

    def poll_operation(self, op_id: str, provider: str | None = None) -> _Operation:
        """Count one poll of an operation's status (ending it when its polls are spent); 404 for an
        unknown one, or one announced at another provider's URL (`provider`, when given)."""
        with self.lock:
            operation = self.operations.get(op_id)
            if operation is None or (provider is not None and operation.provider != provider):
                raise ArmError(404, "OperationNotFound", f"The operation '{op_id}' could not be found.")
            finish = False
            if operation.status == "InProgress":
                operation.remaining_polls -= 1
                finish = operation.remaining_polls < 0
        if finish:
            self._finish(operation)
        return operation

    def _operation_headers(self, operation: _Operation) -> dict[str, str]:
        """The links ARM announces an operation with, in its provider's URL shape (recorded-arm):
        Cognitive Services polls `operationResults/{id}` for the status and the same URL with
        `operationResultResponseType=Location` for the result; Microsoft.Network polls
        `operations/{id}` for the status and `operationResults/{id}` for the result."""
        base = (
            f"{self.base_url}/subscriptions/{operation.subscription}/providers/{operation.provider}"
            f"/locations/{operation.location}"
        )
        if operation.provider == "Microsoft.Network":
            return {
                "azure-AsyncOperation": f"{base}/operations/{operation.id}?api-version={NETWORK_API}",
                "Location": f"{base}/operationResults/{operation.id}?api-version={NETWORK_API}",
                "Retry-After": "0",
            }
        status = f"{base}/operationResults/{operation.id}?api-version={OPERATION_API}"
        return {
            "azure-AsyncOperation": status,
            "Location": f"{status}&operationResultResponseType=Location",
            "Retry-After": "0",
        }

    def _complete_due_operations(self) -> None:
        if not self._in_progress:
            return
        now = time.monotonic()
        with self.lock:
            due = [op for op in map(self.operations.__getitem__, self._in_progress) if op.deadline <= now]
        for operation in due:
            self._finish(operation)

    def _finish(self, operation: _Operation) -> None:
        with self.lock:
            if operation.status != "InProgress":
                return
            operation.status = operation.final_status
            operation.ended = _now_iso()
            self._in_progress.discard(operation.id)
            after = operation.after_finish
            result: dict[str, Any] | None = None
            if not operation.account_write:
                if operation.on_finish is not None:
                    operation.on_finish()
            else:
                key = fold(operation.resource_id)
                self.busy.pop(key, None)
                account = self.accounts.get(key)
                if account is not None:
                    account["properties"]["provisioningState"] = operation.final_status
                    account["etag"] = _new_etag()
                    result = copy.deepcopy(account)
        if not operation.account_write:
            if after is not None:
                after(operation)  # outside the lock: it takes it, and publishes events
            return
        if result is None:
            return
        assert operation.context is not None
        self._emit_write(
            result, operation.context, created=operation.created, failed=operation.final_status == "Failed"
        )

    def _operation(self, op_id: str, kind: str, provider: str = "Microsoft.CognitiveServices") -> Response:
        """GET an operation: `status` answers its status body; `operationresults` answers 202 while
        it runs, then the resource (200) or nothing (204)."""
        operation = self.poll_operation(op_id, provider)
        with self.lock:
            links = self._operation_headers(operation)
            body: dict[str, Any] = {
                "id": links["azure-AsyncOperation"].split("?")[0][len(self.base_url) :],
                "name": operation.id,
                "status": operation.status,
                "startTime": operation.started,
            }
            if operation.ended:
                body["endTime"] = operation.ended
            if operation.status == "Failed":
                body["error"] = {
                    "code": "ProvisioningFailed",
                    "message": f"The update of '{operation.resource_id}' failed during provisioning.",
                }
            in_progress = operation.status == "InProgress"
            account = (
                copy.deepcopy(self.accounts.get(fold(operation.resource_id)))
                if operation.account_write
                else None
            )
        if kind == "operationresults":
            if in_progress:
                return Response(202, None, {"Location": links["Location"], "Retry-After": "0"})
            if account is None:
                return Response(204, None, {})
            return Response(200, account, {})
        return Response(200, body, {"Retry-After": "0"} if in_progress else {})

    # ------------------------------------------------------------------ resource groups, soft delete

    def _list_resource_groups(self, sub: str) -> Response:
        with self.lock:
            subscription = self._subscription(sub)["subscriptionId"]
            value = [
                _group_body(subscription, group)
                for key, group in sorted(self.resource_groups.items())
                if key.startswith(fold(sub) + "/")
            ]
        return self._ok_read(None, {"value": value}, sub)

    @staticmethod
    def _deleted_key(sub: str, location: str, rg: str, name: str) -> str:
        return fold(f"{sub}/{location.replace(' ', '')}/{rg}/{name}")

    def _deleted_body(self, key: str) -> dict[str, Any]:
        return copy.deepcopy(self.deleted[key])

    def _deleted_list(self, sub: str) -> Response:
        with self.lock:
            self._subscription(sub)
            value = [self._deleted_body(k) for k in sorted(self.deleted) if k.startswith(fold(sub) + "/")]
        return self._ok_read(None, {"value": value}, sub)

    def _deleted(
        self, request: Request, groups: Mapping[str, str], context: ev.WriteContext | None
    ) -> Response:
        key = self._deleted_key(groups["sub"], groups["loc"], groups["rg"], groups["name"])
        with self.lock:
            self._subscription(groups["sub"])
            if key not in self.deleted:
                raise ArmError(
                    404, "ResourceNotFound", f"The deleted account '{groups['name']}' could not be found."
                )
            if request.method == "GET":
                return self._ok_read(None, self._deleted_body(key), groups["sub"])
            if request.method == "DELETE":  # purge: the name and the subdomain are free again
                # ARM purges as an operation: 202 with both links (recorded-arm, softdelete 2025)
                deleted_id = str(self.deleted[key]["id"])

                def purge() -> None:
                    self.deleted.pop(key, None)

                operation = self._new_operation(
                    deleted_id, groups["sub"], groups["loc"], context=context, on_finish=purge
                )
                return Response(202, None, self._operation_headers(operation))
        raise ArmError(405, "MethodNotAllowed", f"The requested method '{request.method}' is not allowed.")

    def _held_by_deleted(self, rid: str) -> str | None:
        sub, rg, name = parse_account_id(rid)
        for key in self.deleted:
            parts = key.split("/")
            if parts[0] == fold(sub) and parts[2] == fold(rg) and parts[3] == fold(name):
                return key
        return None

    def _subdomain_owner(self, subdomain: str) -> str | None:
        """The account (live or soft-deleted) that holds a custom subdomain, by ID."""
        lowered = fold(subdomain)
        for account in [*self.accounts.values(), *self.deleted.values()]:
            held = (account.get("properties") or {}).get("customSubDomainName")
            if isinstance(held, str) and fold(held) == lowered:
                return str(account["id"])
        return None

    def _check_subdomain(
        self, rid: str, properties: Mapping[str, Any], existing: Mapping[str, Any] | None
    ) -> None:
        """ARM: a custom subdomain is set once and never changed; one in use elsewhere is refused."""
        if "customSubDomainName" not in properties:
            return
        wanted = properties["customSubDomainName"]
        current = ((existing or {}).get("properties") or {}).get("customSubDomainName")
        if current and wanted != current:
            raise ArmError(
                400,
                "CustomSubDomainNameCannotBeChanged",
                f"The custom subdomain name of '{rid}' is '{current}' and cannot be changed to '{wanted}'.",
            )
        if wanted is None or current:
            return
        if not isinstance(wanted, str) or not re.fullmatch(r"[a-zA-Z0-9][a-zA-Z0-9-]{0,62}", wanted):
            raise ArmError(
                400, "InvalidCustomSubDomainName", f"'{wanted}' is not a valid custom subdomain name."
            )
        owner = self._subdomain_owner(wanted)
        if owner is not None and fold(owner) != fold(rid):
            raise ArmError(
                409,
                "CustomDomainInUse",
                f"The custom subdomain name '{wanted}' is already in use by another account. "
                "Please use a different name.",
            )

    # ------------------------------------------------------------------ management locks

    def _locks(self, request: Request, scope: str, name: str | None) -> Response:
        scope = scope.rstrip("/")
        prefix = fold(f"{scope}/providers/microsoft.authorization/locks/")
        with self.lock:
            if name is None:
                if request.method != "GET":
                    raise ArmError(
                        405, "MethodNotAllowed", f"The requested method '{request.method}' is not allowed."
                    )
                value = [copy.deepcopy(v) for k, v in sorted(self.locks.items()) if k.startswith(prefix)]
                return Response(200, {"value": value}, {})
            key = prefix + fold(name)
            if request.method == "GET":
                found = self.locks.get(key)
                if found is None:
                    raise ArmError(404, "LockNotFound", f"The lock '{name}' could not be found.")
                return Response(200, copy.deepcopy(found), {})
            if request.method == "DELETE":
                return Response(200 if self.locks.pop(key, None) is not None else 204, None, {})
            if request.method == "PUT":
                properties = self._parse_body(request).get("properties")
                if not isinstance(properties, dict) or properties.get("level") not in (
                    "CanNotDelete",
                    "ReadOnly",
                ):
                    raise ArmError(
                        400, "InvalidLockLevel", "properties.level must be CanNotDelete or ReadOnly."
                    )
                created = key not in self.locks
                body = {
                    "id": f"{scope}/providers/Microsoft.Authorization/locks/{name}",
                    "name": name,
                    "type": "Microsoft.Authorization/locks",
                    "properties": {
                        "level": properties["level"],
                        **({"notes": properties["notes"]} if properties.get("notes") else {}),
                    },
                }
                self.locks[key] = body
                return Response(201 if created else 200, copy.deepcopy(body), {})
        raise ArmError(405, "MethodNotAllowed", f"The requested method '{request.method}' is not allowed.")

    def _check_locks(self, rid: str, *, delete: bool) -> None:
        """ARM's management locks: ReadOnly refuses writes and deletes at and below its scope,
        CanNotDelete refuses deletes (409 ScopeLocked)."""
        target = fold(rid)
        for key, lock in self.locks.items():
            scope = key.rsplit("/providers/microsoft.authorization/locks/", 1)[0]
            if target != scope and not target.startswith(scope + "/"):
                continue
            if lock["properties"]["level"] == "ReadOnly" or delete:
                operation = "delete" if delete else "write"
                raise ArmError(
                    409,
                    "ScopeLocked",
                    f"The scope '{rid}' cannot perform {operation} operation because following scope(s) are "
                    f"locked: '{lock['id'].rsplit('/providers/Microsoft.Authorization/locks/', 1)[0]}'. "
                    "Please remove the lock and try again.",
                )

    # ------------------------------------------------------------------ tags API

    def _tags(self, request: Request, rid: str, context: ev.WriteContext | None) -> Response:
        tags_id = f"{rid}/providers/Microsoft.Resources/tags/default"
        with self.lock:
            account = self.accounts.get(fold(rid))
            if account is None:
                raise _not_found(rid)
            rid = account["id"]
            tags_id = f"{rid}/providers/Microsoft.Resources/tags/default"
            if request.method == "GET":
                body = {
                    "id": tags_id,
                    "name": "default",
                    "type": "Microsoft.Resources/tags",
                    "properties": {"tags": dict(account.get("tags") or {})},
                }
                return self._ok_read(None, body, parse_account_id(rid)[0])
            if request.method not in ("PUT", "PATCH", "DELETE"):
                raise ArmError(
                    405, "MethodNotAllowed", f"The requested method '{request.method}' is not allowed."
                )
            assert context is not None
            self._check_locks(rid, delete=False)
            headers = self._write_gate(parse_account_id(rid)[0])
            current = dict(account.get("tags") or {})
            if request.method == "DELETE":
                new: dict[str, Any] = {}
            else:
                sent = self._parse_body(request)
                given = (sent.get("properties") or {}).get("tags")
                if not isinstance(given, dict):
                    raise ArmError(400, "InvalidRequestContent", "properties.tags must be an object.")
                operation = str(sent.get("operation", "Replace")) if request.method == "PATCH" else "Replace"
                if operation.lower() == "merge":
                    new = {**current, **given}
                elif operation.lower() == "delete":
                    new = {k: v for k, v in current.items() if not (k in given and given[k] == v)}
                elif operation.lower() == "replace":
                    new = dict(given)
                else:
                    raise ArmError(
                        400, "InvalidTagOperation", f"The tag operation '{operation}' is not valid."
                    )
            account["tags"] = new
            account["etag"] = _new_etag()
            _stamp_system_data(account, account, context)
            result = copy.deepcopy(account)
        self.emit_child_write(tags_id, result, context)
        body = {
            "id": tags_id,
            "name": "default",
            "type": "Microsoft.Resources/tags",
            "properties": {"tags": dict(new)},
        }
        return Response(200, body, headers)

    # ------------------------------------------------------------------ private endpoint connections

    def _pec_body(self, account: Mapping[str, Any], connection: Mapping[str, Any]) -> dict[str, Any]:
        body = copy.deepcopy(dict(connection))
        body.setdefault("type", "Microsoft.CognitiveServices/accounts/privateEndpointConnections")
        body.setdefault("location", account.get("location"))
        return body

    def connect_private_endpoint(
        self,
        account_rid: str,
        private_endpoint_id: str,
        *,
        name: str | None = None,
        status: str = "Approved",
        description: str | None = None,
        claims: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """A private endpoint made elsewhere (any subscription) connects to the account: the
        connection appears, auto-approved as the seed document describes for owners (or `status`),
        with its resource-write events."""
        with self.lock:
            account = self.accounts.get(fold(account_rid.rstrip("/")))
            if account is None:
                raise KeyError(account_rid)
            name = name or f"{private_endpoint_id.rstrip('/').rsplit('/', 1)[-1]}.{uuid.uuid4()}"
            child_id = f"{account['id']}/privateEndpointConnections/{name}"
            connection: dict[str, Any] = {
                "id": child_id,
                "name": name,
                "type": "Microsoft.CognitiveServices/accounts/privateEndpointConnections",
                "location": account.get("location"),
                "etag": _new_etag(),
                "properties": {
                    "privateEndpoint": {"id": private_endpoint_id},
                    "groupIds": ["account"],
                    "privateLinkServiceConnectionState": {
                        "status": status,
                        "description": description or ("Auto-Approved" if status == "Approved" else ""),
                        "actionsRequired": "None",
                    },
                    "provisioningState": "Succeeded",
                },
            }
            connections = account["properties"].setdefault("privateEndpointConnections", [])
            connections.append(connection)
            account["etag"] = _new_etag()
            result = copy.deepcopy(connection)
            snapshot = copy.deepcopy(account)
        context = self._context(
            Request("PUT", child_id, {}, {}),
            claims or self.default_identity,
            str(uuid.uuid4()),
            child_id,
            COGNITIVE_API,
        )
        self.emit_child_write(child_id, snapshot, context)
        return result

    def emit_child_write(
        self,
        child_id: str,
        account: Mapping[str, Any] | None,
        context: ev.WriteContext,
        delete: bool = False,
        failed: bool = False,
    ) -> None:
        """The events of a write to a child resource of an account: Microsoft.Resources'
        Resource{Write,Delete}{Success,Failure} with the child's ID as subject (as Event Grid sends
        them for child resources) and, when the write changed the account's own body (`account`:
        the account after it, e.g. its embedded privateEndpointConnections), the account's Resource
        Notification."""
        verb = "Delete" if delete else "Write"
        published = [
            ev.resource_event(
                event_type=f"Microsoft.Resources.Resource{verb}{'Failure' if failed else 'Success'}",
                resource_id=child_id,
                operation="delete" if delete else "write",
                status="Failed" if failed else "Succeeded",
                context=context,
                include_http_request=True,
            )
        ]
        if account is not None and not failed:
            published.append(
                ev.notification_event(
                    resource=account,
                    resource_id=str(account["id"]),
                    deleted=False,
                    api_version=context.api_version,
                )
            )
        self.dispatcher.publish(published)

    def _pec(
        self, request: Request, path: str, groups: Mapping[str, str], context: ev.WriteContext | None
    ) -> Response:
        rid = "/".join(path.split("/")[:9])  # the account's ID (the path is in canonical casing)
        sub = parse_account_id(rid)[0]
        with self.lock:
            account = self.accounts.get(fold(rid))
            if account is None:
                raise _not_found(rid)
            connections: list[dict[str, Any]] = account["properties"].setdefault(
                "privateEndpointConnections", []
            )
            if "pec" not in groups or groups.get("pec") is None:
                if request.method != "GET":
                    raise ArmError(
                        405, "MethodNotAllowed", f"The requested method '{request.method}' is not allowed."
                    )
                value = [self._pec_body(account, c) for c in connections]
                return self._ok_read(None, {"value": value}, sub)
            name = path.rsplit("/", 1)[-1]
            index = next(
                (i for i, c in enumerate(connections) if fold(str(c.get("name", ""))) == fold(name)), None
            )
            if index is None:
                if request.method == "DELETE":
                    return Response(204, None, {})
                raise ArmError(
                    404,
                    "PrivateEndpointConnectionNotFound",
                    f"The private endpoint connection '{name}' of '{account['id']}' was not found.",
                )
            connection = connections[index]
            if request.method == "GET":
                return self._ok_read(None, self._pec_body(account, connection), sub)
            assert context is not None
            self._check_locks(account["id"], delete=request.method == "DELETE")
            headers = self._write_gate(sub)
            child_id = str(connection.get("id") or f"{account['id']}/privateEndpointConnections/{name}")
            if request.method == "DELETE":
                del connections[index]
                account["etag"] = _new_etag()
                snapshot = copy.deepcopy(account)
                result: dict[str, Any] | None = None
            elif request.method == "PUT":
                body = self._parse_body(request)
                state = (body.get("properties") or {}).get("privateLinkServiceConnectionState")
                if not isinstance(state, dict) or state.get("status") not in (
                    "Approved",
                    "Pending",
                    "Rejected",
                    "Disconnected",
                ):
                    raise ArmError(
                        400,
                        "InvalidPrivateLinkServiceConnectionState",
                        "properties.privateLinkServiceConnectionState.status must be Approved, Pending, "
                        "Rejected or Disconnected.",
                    )
                old = connection["properties"].get("privateLinkServiceConnectionState") or {}
                connection["properties"]["privateLinkServiceConnectionState"] = {
                    "status": state["status"],
                    "description": state.get("description", old.get("description", "")),
                    "actionsRequired": state.get("actionsRequired", old.get("actionsRequired", "None")),
                }
                connection["etag"] = _new_etag()
                account["etag"] = _new_etag()
                snapshot = copy.deepcopy(account)
                result = self._pec_body(account, connection)
            else:
                raise ArmError(
                    405, "MethodNotAllowed", f"The requested method '{request.method}' is not allowed."
                )
        self.emit_child_write(child_id, snapshot, context, delete=result is None)
        return Response(200, result, headers)

    # ------------------------------------------------------------------ Microsoft.Network

    def _network(self, request: Request, route: str, path: str, groups: Mapping[str, str]) -> Response:
        sub = groups["sub"]
        with self.lock:
            if route == "vnet_list_sub" or route == "vnet_list":
                if request.method != "GET":
                    raise ArmError(
                        405, "MethodNotAllowed", f"The requested method '{request.method}' is not allowed."
                    )
                if route == "vnet_list":
                    self._check_group(sub, groups["rg"])
                else:
                    self._subscription(sub)
                return self._ok_read(
                    None, {"value": self.network.list_vnets(path.rsplit("/providers/", 1)[0] + "/")}, sub
                )
            self._check_group(sub, groups["rg"])
            parts = path.split("/")
            vnet_rid = "/".join(parts[:9])
            if route == "vnet":
                if request.method == "GET":
                    return self._ok_read(None, self.network.get_vnet(vnet_rid), sub)
                if request.method == "PUT":
                    body, created = self.network.put_vnet(vnet_rid, self._parse_body(request))
                    headers = self._write_gate(sub)
                    if self.async_writes:
                        headers.update(self._network_write(vnet_rid, body))
                    return Response(201 if created else 200, body, headers)
                if request.method == "DELETE":
                    return Response(200 if self.network.delete_vnet(vnet_rid) else 204, None, {})
            if route == "subnet_list" and request.method == "GET":
                return self._ok_read(None, {"value": self.network.list_subnets(vnet_rid)}, sub)
            if route == "subnet":
                name = parts[10]
                if request.method == "GET":
                    return self._ok_read(None, self.network.get_subnet(vnet_rid, name), sub)
                if request.method == "PUT":
                    body, created = self.network.put_subnet(vnet_rid, name, self._parse_body(request))
                    headers = self._write_gate(sub)
                    if self.async_writes:
                        headers.update(self._network_write(vnet_rid, body))
                    return Response(201 if created else 200, body, headers)
        raise ArmError(405, "MethodNotAllowed", f"The requested method '{request.method}' is not allowed.")

    def _network_write(self, vnet_rid: str, answer: dict[str, Any]) -> dict[str, str]:
        """The asynchronous mode's Microsoft.Network write: the network (and the answer) say
        `Updating` until the operation announced in the returned headers is over."""
        vnet = self.network.vnets[vnet_rid.lower()]
        touched = [vnet, *vnet["properties"]["subnets"]]
        for resource in (*touched, answer, *(answer["properties"].get("subnets") or [])):
            resource["properties"]["provisioningState"] = "Updating"

        def done() -> None:
            for resource in touched:
                resource["properties"]["provisioningState"] = "Succeeded"

        operation = self._new_operation(
            vnet_rid,
            vnet_rid.split("/")[2],
            str(vnet.get("location", "westus")),
            provider="Microsoft.Network",
            on_finish=done,
        )
        return {"azure-AsyncOperation": self._operation_headers(operation)["azure-AsyncOperation"]}

    # ------------------------------------------------------------------ diagnostic settings

    def _diag_target(self, rid: str) -> dict[str, Any]:
        account = self.accounts.get(fold(rid))
        if account is None:
            raise _not_found(rid)
        return account

    def _diag_list(self, rid: str, path: str) -> Response:
        with self.lock:
            account = self._diag_target(rid)
            prefix = fold(account["id"]) + "/providers/microsoft.insights/diagnosticsettings/"
            value = [
                copy.deepcopy(v) for k, v in sorted(self.diagnostic_settings.items()) if k.startswith(prefix)
            ]
        return Response(200, {"value": value}, {})

    def _diag(self, request: Request, path: str, groups: Mapping[str, str]) -> Response:
        rid = path[: len(groups["rid"])]
        name = path[len(path) - len(groups["dname"]) :]
        with self.lock:
            account = self._diag_target(rid)
            setting_id = f"{account['id']}/providers/microsoft.insights/diagnosticSettings/{name}"
            key = fold(setting_id)
            if request.method == "GET":
                found = self.diagnostic_settings.get(key)
                if found is None:
                    raise ArmError(404, "ResourceNotFound", f"The diagnostic setting '{name}' doesn't exist.")
                return Response(200, copy.deepcopy(found), {})
            if request.method == "DELETE":
                gone = self.diagnostic_settings.pop(key, None)
                return Response(200 if gone is not None else 204, None, {})
            if request.method == "PUT":
                body = self._parse_body(request)
                properties = body.get("properties")
                if not isinstance(properties, dict):
                    raise ArmError(400, "BadRequest", "properties is required.")
                if not any(
                    properties.get(k)
                    for k in ("workspaceId", "storageAccountId", "eventHubAuthorizationRuleId")
                ):
                    raise ArmError(400, "BadRequest", "At least one destination must be specified.")
                setting: dict[str, Any] = {
                    "id": setting_id,
                    "type": DIAG_TYPE,
                    "name": name,
                    "location": None,
                    "properties": copy.deepcopy(properties),
                }
                setting["properties"].setdefault("logs", [])
                setting["properties"].setdefault("metrics", [])
                self.diagnostic_settings[key] = setting
                return Response(200, copy.deepcopy(setting), {})
        raise ArmError(405, "MethodNotAllowed", f"The requested method '{request.method}' is not allowed.")

    # ------------------------------------------------------------------ events

    def _emit_write(
        self, account: Mapping[str, Any], context: ev.WriteContext, *, created: bool, failed: bool = False
    ) -> None:
        rid = str(account["id"])
        published = [
            ev.resource_event(
                event_type="Microsoft.Resources.ResourceWriteFailure"
                if failed
                else "Microsoft.Resources.ResourceWriteSuccess",
                resource_id=rid,
                operation="write",
                status="Failed" if failed else "Succeeded",
                context=context,
                include_http_request=not created,
            )
        ]
        if not failed:
            published.append(
                ev.notification_event(
                    resource=account, resource_id=rid, deleted=False, api_version=context.api_version
                )
            )
        self.dispatcher.publish(published)

    def _emit_delete(self, rid: str, context: ev.WriteContext) -> None:
        self.dispatcher.publish(
            [
                ev.resource_event(
                    event_type="Microsoft.Resources.ResourceDeleteSuccess",
                    resource_id=rid,
                    operation="delete",
                    status="Succeeded",
                    context=context,
                    include_http_request=True,
                ),
                ev.notification_event(
                    resource=None, resource_id=rid, deleted=True, api_version=context.api_version
                ),
            ]
        )

    # ------------------------------------------------------------------ seed / dump

    def seed(self, data: Mapping[str, Any]) -> None:
        """Load subscriptions, resource groups, accounts (and diagnostic settings) from a tenant document."""
        with self.lock:
            if "tenantId" in data:
                self.tenant_id = str(data["tenantId"])
            for sub in data.get("subscriptions", []):
                sub_id = str(sub["subscriptionId"])
                self.add_subscription(sub_id, sub.get("displayName"), sub.get("state", "Enabled"))
                for group in sub.get("resourceGroups", []):
                    self.add_resource_group(
                        sub_id, group["name"], group.get("location", "westus"), group.get("tags")
                    )
                    for account in group.get("accounts", []):
                        rid = account.get("id") or account_id(sub_id, group["name"], account["name"])
                        self.put_account_direct(account, rid)
                for account in sub.get("accounts", []):
                    rid = account.get("id") or account_id(sub_id, account["resourceGroup"], account["name"])
                    self.put_account_direct(account, rid)
            for account in data.get("accounts", []):
                self.put_account_direct(account)
            for setting in data.get("diagnosticSettings", []):
                self.diagnostic_settings[fold(str(setting["id"]))] = copy.deepcopy(dict(setting))
            for lock in data.get("locks", []):
                self.locks[fold(str(lock["id"]))] = copy.deepcopy(dict(lock))
            for vnet in data.get("virtualNetworks", []):
                parts = str(vnet["id"]).split("/")
                self.add_resource_group(parts[2], parts[4], str(vnet.get("location", "westus")))
                self.network.put_vnet(str(vnet["id"]), vnet)
            self.agents.seed(data)
            for deleted in data.get("deletedAccounts", []):
                parts = str(deleted["id"]).split(
                    "/"
                )  # .../locations/{loc}/resourceGroups/{rg}/deletedAccounts/{n}
                self.deleted[self._deleted_key(parts[2], parts[6], parts[8], parts[10])] = copy.deepcopy(
                    dict(deleted)
                )

    def replace_tenant(self, data: Mapping[str, Any]) -> None:
        """Forget everything, then seed `data` (the control API's `PUT /_emulator/tenant`)."""
        with self.lock:
            self.subscriptions.clear()
            self.resource_groups.clear()
            self.accounts.clear()
            self.diagnostic_settings.clear()
            self.deleted.clear()
            self.locks.clear()
            self.network = NetworkStore()
            self.endpoints = endpoints.PrivateEndpoints(self)
            self.agents = agents.AgentSurfaces(self)
            self.busy.clear()
            self.seed(data)

    def dump(self) -> dict[str, Any]:
        """The tenant as a document `seed` accepts (accounts nested under their resource groups)."""
        with self.lock:
            subs: list[dict[str, Any]] = []
            groups_by_sub: dict[str, list[tuple[str, dict[str, Any]]]] = {}
            for group_key, group in sorted(self.resource_groups.items()):
                groups_by_sub.setdefault(group_key.split("/", 1)[0], []).append((group_key, group))
            for sub_key, sub in sorted(self.subscriptions.items()):
                groups = []
                keys = self.accounts.in_subscription(sub_key)
                for group_key, group in groups_by_sub.get(sub_key, []):
                    prefix = f"/subscriptions/{group_key.replace('/', '/resourcegroups/', 1)}/"
                    accounts = [copy.deepcopy(self.accounts[k]) for k in keys if k.startswith(prefix)]
                    groups.append({**copy.deepcopy(group), "accounts": accounts})
                subs.append({**dict(sub), "resourceGroups": groups})
            return {
                "tenantId": self.tenant_id,
                "subscriptions": subs,
                "diagnosticSettings": [copy.deepcopy(v) for _, v in sorted(self.diagnostic_settings.items())],
                "virtualNetworks": self.network.dump(),
                "deletedAccounts": [copy.deepcopy(v) for _, v in sorted(self.deleted.items())],
                "locks": [copy.deepcopy(v) for _, v in sorted(self.locks.items())],
                **self.agents.dump(),
            }

    def iter_accounts(self) -> Iterator[dict[str, Any]]:
        with self.lock:
            snapshot = [copy.deepcopy(a) for a in self.accounts.values()]
        yield from snapshot


def _seconds(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def _not_found(rid: str) -> ArmError:
    """ARM's 404 for a resource (an account, or a child resource: its type and names in the message)."""
    parts = rid.rstrip("/").split("/")
    if len(parts) > 9 and parts[5].lower() == "providers":  # a child: its provider, types and names
        typed = "/".join(parts[6:])
    else:
        typed = f"{ACCOUNT_TYPE}/{rid.rstrip('/').rsplit('/', 1)[-1]}"
    return ArmError(
        404,
        "ResourceNotFound",
        f"The Resource '{typed}' under resource group "
        f"'{rid.split('/')[4] if len(rid.split('/')) > 4 else ''}' was not found. "
        "For more details please go to https://aka.ms/ARMResourceNotFoundFix",
    )


def _default_message(code: str, path: str) -> str:
    messages: dict[str, str] = {
        "TooManyRequests": (
            "The request is being throttled as the limit has been reached for operation type - Write."
        ),
        "RequestConflict": (
            f"Cannot modify resource with id '{path}' because the resource entity provisioning state is not "
            "terminal. Please wait for the provisioning state to become terminal and then retry the request."
        ),
        "InternalServerError": "Encountered internal server error. Diagnostic information: emulator fault.",
        "ServiceUnavailable": "The service is temporarily unavailable. Please retry later.",
        "LinkedAuthorizationFailed": (
            "The client does not have permission to perform action "
            "'Microsoft.Network/virtualNetworks/subnets/joinViaServiceEndpoint/action' "
            "on the linked scope(s)."
        ),
    }
    return messages.get(code, f"Emulated failure ({code}).")


Callback = Callable[[dict[str, Any]], object]


def _group_body(subscription: str, group: Mapping[str, Any]) -> dict[str, Any]:
    """A resource group as ARM answers it (GET and list alike)."""
    return {
        "id": f"/subscriptions/{subscription}/resourceGroups/{group['name']}",
        "name": group["name"],
        "type": "Microsoft.Resources/resourceGroups",
        "location": group["location"],
        "tags": dict(group["tags"]),
        "properties": {"provisioningState": "Succeeded"},
    }
