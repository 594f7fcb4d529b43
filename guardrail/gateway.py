"""The ARM gateway: the only code in the guardrail that talks to Azure Resource Manager.

Primitives only; it decides nothing and never calls back into the service:
- `get`: the account as the raw JSON ARM returned (camelCase, etag included, no SDK model in
  between), or None when it is gone;
- `patch`: one PATCH with `If-Match`, waiting for the operation, as a typed `WriteResult`;
- `list_accounts`, `diagnostic_settings`, `put_diagnostic_setting`;
- an account's child resources by full resource ID (the Foundry managed network and its outbound
  rules, capability hosts, network security perimeter configurations): `get_child`,
  `list_children`, and `send`, one PUT/PATCH/DELETE waiting for ARM's asynchronous operation;
- `read_children`: the child resources a snapshot needs (`guardrail.actions.ChildRead`);
- `write`: one action of a plan (method, target, body), routed to the call that makes it.

Failure model:
- transient trouble (429, 409 RequestConflict, 5xx, timeouts, connection errors) is retried a
  bounded number of times, then raised as `TransientArmError` so the caller can raise and let
  Event Grid redeliver;
- a 412 on a write is "precondition-failed": the caller re-reads and recomputes;
- permanent trouble on a write (403 incl. LinkedAuthorizationFailed, 400 refusals, a write ending
  `Failed`) comes back as "refused" / "provisioning-failed"; on a read it raises ArmGatewayError
  with the HTTP status and ARM's error code;
- 404 anywhere is "gone".

The Azure SDK is imported lazily (inside methods): the Functions host pays module imports on
every cold start.
"""

from __future__ import annotations

import functools
import json
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import Any, Literal, NoReturn

from guardrail.actions import ChildRead, Method
from guardrail.credentials import AzureIdentity, StaticTokenCredential
from guardrail.escaping import shown
from guardrail.resource_ids import name_key, name_problem, parse_account_or_child
from guardrail.resource_ids import parse_account_id as parse_account_id
from guardrail.transport import CREDENTIAL_TIMEOUTS, HttpEnvironment, Timeouts

# Management clients kept per gateway (one per subscription and client type, least recently used
# dropped): a sweep worker of a 1,000-subscription tenant would otherwise keep one for every
# subscription it ever listed (~65 KiB each). A dropped client is rebuilt when needed (~0.7 ms of
# CPU; its pooled connections are the shared transport's, not its own).
CLIENTS_KEPT = 64

API_VERSION = "2025-09-01"
#: The account's children (managedNetworks, outboundRules, capabilityHosts,
#: networkSecurityPerimeterConfigurations): the stable API that has them all (issue 24).
CHILD_API_VERSION = "2026-09-01"
SUBSCRIPTIONS_API_VERSION = "2022-12-01"
ACCOUNTS_PROVIDER = "Microsoft.CognitiveServices/accounts"
TRANSIENT_STATUSES = frozenset({408, 429, 500, 502, 503, 504})


class ArmGatewayError(Exception):
    """A permanent ARM error on a read or a list (the caller should not expect a retry to help)."""

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class TransientArmError(ArmGatewayError):
    """ARM kept failing in a way that should heal (throttling, conflicts, 5xx, network): retry later."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, status=status, code=code)
        self.retry_after = retry_after


class InvalidNameError(ArmGatewayError):
    """A name taken from an event or an ARM body that no URL may be built from (`..`, `/`, `?`,
    `#`, `%`, control characters: guardrail.resource_ids.name_problem); nothing was sent."""

    def __init__(self, message: str) -> None:
        super().__init__(message, code="InvalidResourceName")


def checked_names(resource_id: str, *children: str) -> tuple[str, str, str]:
    """(subscription, group, account) of an account ID, each name (and each of `children`, names of
    the account's child resources) checked by `name_problem` before any URL is built from it: the
    gateway's one door for names. Raises InvalidNameError naming the first bad one (escaped,
    shortened), or ValueError for an ID that is not an account's."""
    subscription, group, name = parse_account_id(resource_id)
    labelled = [("subscription", subscription), ("resource group", group), ("account", name)]
    labelled += [("child resource", child) for child in children]
    for what, value in labelled:
        problem = name_problem(value)
        if problem is not None:
            raise InvalidNameError(
                f"refusing to build a URL from {shown(resource_id)}: its {what} name {shown(value)} {problem}"
            )
    return subscription, group, name


WriteStatus = Literal["written", "precondition-failed", "gone", "refused", "provisioning-failed"]


@dataclass(frozen=True)
class WriteResult:
    """What one write came to (the gateway decides nothing: the service reads, judges and
    verifies). `after` is the body ARM returned for a write, when it returned one."""

    status: WriteStatus
    resource_id: str
    after: dict[str, Any] | None = None
    error_code: str | None = None
    error_message: str | None = None
    http_status: int | None = None


@dataclass(frozen=True)
class ArmSettings:
    """How to reach ARM. `guardrail.settings.load_settings` builds it from these app settings
    (validated with the rest); tests pass explicit values.

    ARM_ENDPOINT        base URL (default: the public cloud's https://management.azure.com)
    ARM_CA_BUNDLE       CA bundle file to verify ARM's TLS certificate (the local emulator's CA)
    ARM_CREDENTIAL      default (DefaultAzureCredential) | static (a fixed bearer token; local only)
    ARM_STATIC_TOKEN    the bearer token for `static` (the local emulator prints one)
    AZURE_CLIENT_ID     user-assigned managed identity for DefaultAzureCredential
    ARM_RETRY_TOTAL, ARM_RETRY_BACKOFF, ARM_RETRY_BACKOFF_MAX, ARM_MAX_RETRY_AFTER,
    ARM_CONFLICT_RETRIES, ARM_CONFLICT_BACKOFF, ARM_PRECONDITION_RETRIES, ARM_POLL_INTERVAL,
    ARM_CONNECT_TIMEOUT, ARM_READ_TIMEOUT, ARM_LIST_CONCURRENCY, ARM_CONNECTION_POOL_SIZE
                        retry/timing/concurrency knobs (see the fields)
    """

    endpoint: str | None = None
    ca_bundle: str | None = None
    credential: Literal["default", "static"] = "default"
    static_token: str | None = field(default=None, repr=False)
    managed_identity_client_id: str | None = None
    api_version: str = API_VERSION
    retry_total: int = 4  # azure-core RetryPolicy: 429 with Retry-After, 408/5xx, connection errors
    retry_backoff: float = 0.8  # seconds, exponential
    retry_backoff_max: float = 30.0
    max_retry_after: float = 60.0  # a longer Retry-After is not slept through: TransientArmError
    conflict_retries: int = 4  # 409 RequestConflict (provisioning not terminal)
    conflict_backoff: float = 2.0  # seconds, doubled per retry, capped at retry_backoff_max
    precondition_retries: int = 3  # 412: re-read, recompute, retry
    poll_interval: float = 1.0  # LRO polling when ARM sends no Retry-After (never the SDK's 30 s)
    connect_timeout: float = 10.0
    read_timeout: float = 60.0
    list_concurrency: int = 4  # subscriptions listed in parallel
    connection_pool_size: int = 32  # kept-alive connections per gateway, all subscriptions (>= sweep workers)
    credential_timeouts: Timeouts = CREDENTIAL_TIMEOUTS  # the credential's token requests (GUARDRAIL_TOKEN_*)
    http: HttpEnvironment = field(default_factory=HttpEnvironment)  # requests' variables, read once


def arm_credential(settings: ArmSettings, identity: Any = None) -> Any:
    """What the gateway presents to ARM: the fixed token of `ARM_CREDENTIAL=static` (local only),
    else the worker's identity (`identity`; a gateway built alone gets one of its own)."""
    if settings.credential == "static":
        if not settings.static_token:
            raise ValueError("ARM_CREDENTIAL=static needs ARM_STATIC_TOKEN (the bearer token to send)")
        return StaticTokenCredential(settings.static_token)
    if identity is not None:
        return identity
    return AzureIdentity(settings.managed_identity_client_id, settings.credential_timeouts)


# ---------------------------------------------------------------------------- helpers


def _error_details(exc: BaseException) -> tuple[int | None, str | None, str]:
    """(HTTP status, ARM error code, message) of an azure-core HttpResponseError (or anything)."""
    response = getattr(exc, "response", None)
    status = getattr(exc, "status_code", None) or getattr(response, "status_code", None)
    code: str | None = None
    message = str(exc)
    if response is not None:
        try:
            body = json.loads(response.text())
            error = body.get("error") if isinstance(body, dict) else None
            if isinstance(error, dict):
                code = error.get("code")
                message = str(error.get("message") or message)
        except Exception:
            pass
    if code is None:
        error_obj = getattr(exc, "error", None)
        code = getattr(error_obj, "code", None)
    return (int(status) if status is not None else None), code, message


def _retry_after(exc: BaseException) -> float | None:
    from guardrail.retry_after import retry_after_from_headers

    response = getattr(exc, "response", None)
    return retry_after_from_headers(getattr(response, "headers", None))


def _provisioning_state(account: Mapping[str, Any] | None) -> str | None:
    if not account:
        return None
    properties = account.get("properties")
    return properties.get("provisioningState") if isinstance(properties, dict) else None


def _body_of(pipeline_response: Any) -> Any:
    """A long-running operation's final body as ARM sent it (None when empty)."""
    try:
        return pipeline_response.http_response.json()
    except ValueError:
        return None


def _raw_json(pipeline_response: Any, _deserialized: Any, _headers: Any) -> Any:
    """The response body as ARM sent it (SDK models drop unknown properties and nulls)."""
    try:
        return pipeline_response.http_response.json()
    except ValueError:  # an empty body (e.g. 204)
        return None


# ---------------------------------------------------------------------------- the gateway


class ArmGateway:
    """Reads, lists and remediates Cognitive Services accounts through the Azure SDK."""

    def __init__(
        self,
        settings: ArmSettings | None = None,
        credential: Any | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.settings = settings or ArmSettings()
        self._credential = credential
        self._clients: OrderedDict[str, Any] = OrderedDict()  # least recently used first
        self._transport: Any | None = None
        self._lock = threading.Lock()
        self._sleep = sleep

    # ---------------------------------------------------------------- plumbing

    @property
    def credential(self) -> Any:
        with self._lock:
            return self._credential_held()

    def _client(self, subscription_id: str) -> Any:
        """The Cognitive Services management client for a subscription (one per subscription)."""
        from azure.mgmt.cognitiveservices import CognitiveServicesManagementClient

        extra = {"polling_interval": self.settings.poll_interval, "api_version": self.settings.api_version}
        return self._cached_client(CognitiveServicesManagementClient, subscription_id, extra)

    def _monitor_client(self, subscription_id: str) -> Any:
        """azure-mgmt-monitor (6.0.2: the last with `diagnostic_settings`), one per subscription."""
        from azure.mgmt.monitor import MonitorManagementClient

        return self._cached_client(MonitorManagementClient, subscription_id, {})

    def _cached_client(self, client_type: Any, subscription_id: str, extra: dict[str, Any]) -> Any:
        """One client of `client_type` per subscription, all sharing the retry policy's knobs, the
        endpoint and one pooled transport: every subscription's requests go to the same host, so one
        pool of kept-alive connections serves them all. A transport per client kept a pool and its
        idle TLS connections per subscription: at 1,000 subscriptions a sweep worker's peak RSS grew
        from ~100 to ~250 MiB, and the other end held a connection per pool (issue #27)."""
        key = f"{client_type.__name__}:{name_key(subscription_id)}"
        with self._lock:
            client = self._clients.get(key)
            if client is not None:
                self._clients.move_to_end(key)
                return client
            if len(self._clients) >= CLIENTS_KEPT:  # the least recently used goes (its transport stays)
                self._clients.popitem(last=False)
            if self._transport is None:
                self._transport = _pooled_transport(self.settings)
            s = self.settings
            kwargs: dict[str, Any] = {
                "retry_policy": _capped_retry_policy(s),
                "transport": _shared(self._transport),
                **extra,
            }
            if s.endpoint:
                kwargs["base_url"] = s.endpoint
            # Built under the lock (a client costs well under a millisecond to build): no race, so
            # no second client to close (closing it would not close the shared transport anyway).
            client = self._clients[key] = client_type(self._credential_held(), subscription_id, **kwargs)
            return client

    def _credential_held(self) -> Any:
        """`credential`, for a caller holding the lock."""
        if self._credential is None:
            self._credential = arm_credential(self.settings)
        return self._credential

    def close(self) -> None:
        with self._lock:
            clients, self._clients = list(self._clients.values()), OrderedDict()
            transport, self._transport = self._transport, None
        for client in clients:
            client.close()
        if transport is not None:
            transport.close()

    def __enter__(self) -> ArmGateway:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _transient(self, exc: BaseException, what: str) -> TransientArmError:
        status, code, message = _error_details(exc)
        return TransientArmError(
            f"{what}: {message}",
            status=status,
            code=code or type(exc).__name__,
            retry_after=_retry_after(exc),
        )

    def _send_get(self, subscription_id: str, url: str) -> dict[str, Any] | None:
        """GET a URL through the subscription's pipeline: the JSON body, None on 404."""
        from azure.core.exceptions import AzureError
        from azure.core.rest import HttpRequest

        client = self._client(subscription_id)
        try:
            response = client._send_request(HttpRequest("GET", url))
        except AzureError as exc:
            raise self._transient(exc, f"GET {url}") from exc
        if response.status_code == 404:
            return None
        if response.status_code >= 400:
            code, message = None, response.text()
            try:
                error = response.json().get("error", {})
                code, message = error.get("code"), error.get("message", message)
            except Exception:
                pass
            if response.status_code in TRANSIENT_STATUSES:
                from guardrail.retry_after import retry_after_from_headers

                raise TransientArmError(
                    f"GET {url}: {message}",
                    status=response.status_code,
                    code=code,
                    retry_after=retry_after_from_headers(response.headers),
                )
            raise ArmGatewayError(f"GET {url}: {message}", status=response.status_code, code=code)
        try:
            body = response.json()
        except ValueError:
            raise ArmGatewayError(
                f"GET {url}: the response is not JSON", status=response.status_code, code="InvalidResponse"
            ) from None
        if not isinstance(body, dict):
            raise ArmGatewayError(
                f"GET {url}: the response is a JSON {type(body).__name__}, not an object",
                status=response.status_code,
                code="InvalidResponse",
            )
        return body

    # ---------------------------------------------------------------- reads

    def get(self, resource_id: str) -> dict[str, Any] | None:
        """The account as ARM returned it (the JSON body, etag included), or None when it does not
        exist. Read through the client's pipeline (authentication, retries, transport) without
        model deserialization: a body the SDK's models would refuse still comes back, for the
        service to judge. Raises TransientArmError for transient trouble, ArmGatewayError for a
        permanent refusal (401/403: `status` and `code` say which)."""
        subscription, group, name = checked_names(resource_id)
        from urllib.parse import quote

        path = f"/subscriptions/{quote(subscription)}/resourceGroups/{quote(group)}"
        url = f"{path}/providers/{ACCOUNTS_PROVIDER}/{quote(name)}?api-version={self.settings.api_version}"
        return self._send_get(subscription, url)

    def list_subscriptions(self) -> list[str]:
        """Every enabled subscription the identity can see (GET /subscriptions, all pages)."""
        # Any subscription id works for the pipeline: /subscriptions has no subscription in its path.
        anchor = "00000000-0000-0000-0000-000000000000"
        url: str | None = f"/subscriptions?api-version={SUBSCRIPTIONS_API_VERSION}"
        found: list[str] = []
        while url:
            page = self._send_get(anchor, url) or {}
            for item in page.get("value", []):
                if str(item.get("state", "Enabled")) in ("Enabled", "Warned", "PastDue"):
                    found.append(str(item["subscriptionId"]))
            url = page.get("nextLink")
        return found

    def list_page(
        self, subscription_id: str, next_link: str | None = None
    ) -> tuple[list[dict[str, Any]], str | None]:
        """One page of a subscription's accounts and the page's `nextLink` (None on the last page).

        `next_link` (from an earlier page, e.g. carried by a sweep-queue message) must be ARM's list
        of this subscription's accounts on the configured endpoint: anything else is refused before
        a token is sent (ValueError naming what is wrong)."""
        first = f"/subscriptions/{subscription_id}/providers/{ACCOUNTS_PROVIDER}"
        if next_link is None:
            version = self.settings.api_version
            url = f"/subscriptions/{subscription_id}/providers/{ACCOUNTS_PROVIDER}?api-version={version}"
        else:
            url = next_link
            base = (self.settings.endpoint or "https://management.azure.com").rstrip("/")
            if not url.lower().startswith(f"{base}{first}?".lower()):
                raise ValueError(
                    f"nextLink {url[:200]!r} is not the account list of subscription "
                    f"{subscription_id} on {base}"
                )
        page = self._send_get(subscription_id, url)
        if page is None:
            raise ArmGatewayError(f"subscription {subscription_id} not found", status=404)
        link = page.get("nextLink")
        return [a for a in page.get("value", []) if isinstance(a, dict)], link if isinstance(
            link, str
        ) else None

    def _list_subscription(self, subscription_id: str) -> list[dict[str, Any]]:
        accounts, link = self.list_page(subscription_id)
        while link:
            page, link = self.list_page(subscription_id, link)
            accounts.extend(page)
        return accounts

    def list_accounts(self, subscriptions: Iterable[str] | None = None) -> Iterator[dict[str, Any]]:
        """Every account (raw JSON, every page) in `subscriptions` (None: all the identity can see).

        Subscriptions are listed in parallel (at most `list_concurrency` at a time); the accounts of a
        subscription are yielded once all its pages are read. A failing subscription raises after the
        others have been yielded.
        """
        subs = list(subscriptions) if subscriptions is not None else self.list_subscriptions()
        if not subs:
            return
        failure: BaseException | None = None
        workers = max(1, min(self.settings.list_concurrency, len(subs)))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="arm-list") as pool:
            futures = [pool.submit(self._list_subscription, sub) for sub in subs]
            for future in as_completed(futures):
                try:
                    accounts = future.result()
                except BaseException as exc:
                    failure = failure or exc
                    continue
                yield from accounts
        if failure is not None:
            raise failure

    # ---------------------------------------------------------------- child resources

    def read_children(self, account_id: str, reads: Iterable[ChildRead]) -> dict[str, Any]:
        """The child resources `reads` name, by key: a body or None (`many`: a list, every page;
        [] when there is none). Raises as `get` does; a 404 is an empty value, not an error."""
        children: dict[str, Any] = {}
        for read in reads:
            if read.path.lower() == "providers/microsoft.insights/diagnosticsettings":
                children[read.key] = self.diagnostic_settings(account_id)
            elif read.many:
                children[read.key] = self.list_children(account_id, read.path, read.api_version)
            else:
                children[read.key] = self.get_child(f"{account_id}/{read.path}", read.api_version)
        return children

    def write(
        self, method: Method, target: str, body: Mapping[str, Any] | None, etag: str | None = None
    ) -> WriteResult:
        """One action of a plan, made by the call for its target: the account PATCH (If-Match
        `etag`), a private endpoint connection's PUT, a diagnostic setting's PUT. Anything else is
        refused here (ValueError): the gateway writes only what it knows how to write."""
        account, _, rest = target.partition("/providers/Microsoft.Insights/diagnosticSettings/")
        if not rest:
            account, _, rest = target.partition("/providers/microsoft.insights/diagnosticSettings/")
        if method == "PATCH" and body is not None and _is_account_id(target):
            return self.patch(target, body, etag)
        if method == "PUT" and body is not None and "/privateEndpointConnections/" in target:
            return self.put_private_endpoint_connection(target, body)
        if method == "PUT" and body is not None and rest and "/" not in rest and _is_account_id(account):
            return self.put_diagnostic_setting(account, {"name": rest, **body})
        if not _is_account_id(target):  # a child resource of an account
            return self.send(method, target, body)
        raise ValueError(f"the gateway has no write for {method} {target}")

    # ---------------------------------------------------------------- diagnostic settings

    def diagnostic_settings(self, resource_id: str) -> list[dict[str, Any]] | None:
        """The account's diagnostic settings as ARM lists them (JSON), or None when it is gone."""
        from azure.core.exceptions import AzureError, HttpResponseError, ResourceNotFoundError

        subscription, _, _ = checked_names(resource_id)
        client = self._monitor_client(subscription)
        try:
            return [
                item.serialize(keep_readonly=True) for item in client.diagnostic_settings.list(resource_id)
            ]
        except ResourceNotFoundError:
            return None
        except HttpResponseError as exc:
            status, code, message = _error_details(exc)
            if status in TRANSIENT_STATUSES:
                raise self._transient(exc, f"GET diagnostic settings of {resource_id}") from exc
            raise ArmGatewayError(
                f"GET diagnostic settings of {resource_id}: {message}", status=status, code=code
            ) from exc
        except AzureError as exc:
            raise self._transient(exc, f"GET diagnostic settings of {resource_id}") from exc

    def put_diagnostic_setting(self, resource_id: str, setting: Mapping[str, Any]) -> WriteResult:
        """Create or replace one diagnostic setting (`{"name", "properties"}`) on the account, then
        read the settings back; a written result's `after` holds them (`{"value": [...]}`)."""
        from azure.core.exceptions import AzureError, HttpResponseError, ResourceNotFoundError

        try:
            subscription, _, _ = checked_names(resource_id, str(setting.get("name") or ""))
        except InvalidNameError as error:
            return WriteResult("refused", resource_id, error_code=error.code, error_message=str(error))
        client = self._monitor_client(subscription)
        body = {"properties": dict(setting.get("properties") or {})}
        try:
            client.diagnostic_settings.create_or_update(resource_id, str(setting["name"]), body)
        except ResourceNotFoundError:
            return WriteResult("gone", resource_id)
        except HttpResponseError as exc:
            status, code, message = _error_details(exc)
            if status in TRANSIENT_STATUSES:
                raise self._transient(exc, f"PUT diagnostic setting on {resource_id}") from exc
            return WriteResult(
                "refused", resource_id, error_code=code, error_message=message, http_status=status
            )
        except AzureError as exc:
            raise self._transient(exc, f"PUT diagnostic setting on {resource_id}") from exc
        after = self.diagnostic_settings(resource_id)
        return WriteResult("written", resource_id, after={"value": after or []})

    # ---------------------------------------------------------------- the write

    def put_private_endpoint_connection(self, connection_id: str, body: Mapping[str, Any]) -> WriteResult:
        """PUT a private endpoint connection of an account (`body` as ARM takes it) and wait for
        the operation. Raises TransientArmError when transient trouble outlasts the retries."""
        from azure.core.exceptions import AzureError, HttpResponseError, ResourceNotFoundError

        account_id, _, connection = connection_id.rstrip("/").rpartition("/privateEndpointConnections/")
        try:
            subscription, group, name = checked_names(account_id, connection)
        except InvalidNameError as error:  # e.g. a connection named `..`: its PUT would land on the account
            return WriteResult("refused", connection_id, error_code=error.code, error_message=str(error))
        except ValueError:
            raise ValueError(f"not a private endpoint connection ID: {shown(connection_id)}") from None
        client = self._client(subscription)
        payload = json.dumps(dict(body)).encode()
        try:
            poller = client.private_endpoint_connections.begin_create_or_update(
                group,
                name,
                connection,
                payload,
                content_type="application/json",
                polling_interval=self.settings.poll_interval,
                cls=_raw_json,
            )
            return WriteResult("written", connection_id, after=poller.result())
        except ResourceNotFoundError:
            return WriteResult("gone", connection_id)
        except HttpResponseError as exc:
            status, code, message = _error_details(exc)
            if status in TRANSIENT_STATUSES or (status == 409 and code == "RequestConflict"):
                raise self._transient(exc, f"PUT {connection_id}") from exc
            return WriteResult(
                "refused", connection_id, error_code=code, error_message=message, http_status=status
            )
        except AzureError as exc:
            raise self._transient(exc, f"PUT {connection_id}") from exc

    def patch(self, resource_id: str, body: Mapping[str, Any], etag: str | None) -> WriteResult:
        """PATCH `body` with `If-Match: etag` and wait for the operation to end: one write, no
        decisions. 409 RequestConflict (provisioning not terminal) is retried with the same body
        and etag (safe: If-Match still guards it); a 412 comes back as "precondition-failed" for
        the caller to re-read and recompute. Raises TransientArmError when transient trouble
        outlasts the retries (including a lost response: the caller cannot know whether it landed).
        """
        return self._write(resource_id, "PATCH", lambda: self._patch(resource_id, body, etag))

    def _write(
        self, resource_id: str, method: str, attempt: Callable[[], dict[str, Any] | None]
    ) -> WriteResult:
        """Run one write (`attempt`: raises _Conflict / _Precondition / _Gone / _Refused /
        TransientArmError) to a WriteResult: 409 RequestConflict retried with a backoff, 412
        "precondition-failed", 404 "gone", refusals "refused", an operation or a body ending
        Failed "provisioning-failed"."""
        s = self.settings
        conflicts = 0
        while True:
            try:
                written = attempt()
            except _Conflict:
                conflicts += 1
                if conflicts > s.conflict_retries:
                    raise TransientArmError(
                        f"{method} {resource_id}: provisioning not terminal "
                        f"(409 RequestConflict x{conflicts})",
                        status=409,
                        code="RequestConflict",
                    ) from None
                self._sleep(min(s.retry_backoff_max, s.conflict_backoff * 2 ** (conflicts - 1)))
                continue
            except _Precondition:
                return WriteResult("precondition-failed", resource_id, http_status=412)
            except _Gone as gone:
                return WriteResult("gone", resource_id, http_status=gone.status)
            except InvalidNameError as error:
                return WriteResult("refused", resource_id, error_code=error.code, error_message=str(error))
            except _Refused as refused:
                # The poller raises with a 2xx status for an operation that ended Failed/Canceled.
                failed = refused.status is not None and 200 <= refused.status < 300
                return WriteResult(
                    "provisioning-failed" if failed else "refused",
                    resource_id,
                    error_code=refused.code,
                    error_message=refused.message,
                    http_status=refused.status,
                )
            if _provisioning_state(written) == "Failed":
                return WriteResult(
                    "provisioning-failed",
                    resource_id,
                    after=written,
                    error_code="ProvisioningFailed",
                    error_message="the write was accepted but provisioning ended Failed",
                )
            return WriteResult("written", resource_id, after=written)

    def _patch(self, resource_id: str, body: Mapping[str, Any], etag: str | None) -> dict[str, Any] | None:
        """PATCH and wait for the LRO; raises _Conflict / _Precondition / _Gone / _Refused /
        TransientArmError. None: ARM acknowledged but its body could not be read back."""
        from azure.core.exceptions import (
            AzureError,
            DeserializationError,
            HttpResponseError,
            ResourceNotFoundError,
        )

        subscription, group, name = checked_names(resource_id)
        client = self._client(subscription)
        headers = {"If-Match": etag} if etag else {}
        payload = json.dumps(body).encode()
        try:
            poller = client.accounts.begin_update(
                group,
                name,
                payload,
                content_type="application/json",
                headers=headers,
                polling_interval=self.settings.poll_interval,
                cls=_raw_json,
            )
            result: dict[str, Any] | None = poller.result()
            return result
        except DeserializationError:
            return None  # the operation ended; the SDK model refused the body: the re-read judges
        except ResourceNotFoundError as exc:
            raise _Gone() from exc
        except HttpResponseError as exc:
            self._classify(exc, f"PATCH {resource_id}")
        except AzureError as exc:
            raise self._transient(exc, f"PATCH {resource_id}") from exc

    def _classify(self, exc: BaseException, what: str) -> NoReturn:
        """A write's HTTP error as the exception `_write` maps: 404 gone (also deleted while the
        operation was polled), 412, 409 RequestConflict, transient, or a refusal (a 2xx status: the
        poller's for an operation that ended Failed/Canceled)."""
        status, code, message = _error_details(exc)
        if status == 404:
            raise _Gone() from exc
        if status == 412:
            raise _Precondition() from exc
        if status == 409 and code == "RequestConflict":
            raise _Conflict() from exc
        if status in TRANSIENT_STATUSES:
            raise self._transient(exc, what) from exc
        if status is not None and 200 <= status < 300:
            raise _Refused(status, code or "ProvisioningFailed", message) from exc
        raise _Refused(status, code or (f"Http{status}" if status else type(exc).__name__), message) from exc

    # ---------------------------------------------------------------- an account's child resources

    def _child_url(self, resource_id: str, api_version: str | None) -> tuple[str, str]:
        """(subscription, URL path with api-version) of an account's child resource. Raises
        ValueError for an ID that is not an account's child."""
        from urllib.parse import quote

        subscription, _, _ = parse_account_or_child(resource_id)
        parts = resource_id.strip().strip("/").split("/")
        if len(parts) < 10 or len(parts) % 2 or any(not p for p in parts):
            raise ValueError(f"not a child resource of an account: {resource_id!r}")
        path = "/" + "/".join(quote(p, safe="") for p in parts)
        return subscription, f"{path}?api-version={api_version or CHILD_API_VERSION}"

    def get_child(self, resource_id: str, api_version: str | None = None) -> dict[str, Any] | None:
        """A child resource of an account (e.g. `<account>/managedNetworks/default`) as ARM returned
        it, or None when it does not exist (404). Errors as `get`."""
        subscription, url = self._child_url(resource_id, api_version)
        return self._send_get(subscription, url)

    def list_children(
        self, parent_id: str, child_type: str, api_version: str | None = None
    ) -> list[dict[str, Any]]:
        """Every child of type `child_type` (e.g. "capabilityHosts") under `parent_id` (an account or
        one of its children), following nextLink; [] when the parent or the collection does not
        exist (404). A nextLink that is not this collection on the configured endpoint is refused
        before a token is sent to it (ArmGatewayError)."""
        if not child_type or "/" in child_type.strip("/"):
            raise ValueError(f"not a child resource type: {child_type!r}")
        subscription, _, _ = parse_account_or_child(parent_id)
        parts = parent_id.strip().strip("/").split("/")
        if len(parts) < 8 or len(parts) % 2:
            raise ValueError(f"not an account or one of its children: {parent_id!r}")
        from urllib.parse import quote

        path = "/" + "/".join(quote(p, safe="") for p in [*parts, child_type.strip("/")])
        url: str | None = f"{path}?api-version={api_version or CHILD_API_VERSION}"
        base = (self.settings.endpoint or "https://management.azure.com").rstrip("/")
        found: list[dict[str, Any]] = []
        while url:
            page = self._send_get(subscription, url)
            if page is None:
                return []
            found.extend(item for item in page.get("value", []) if isinstance(item, dict))
            link = page.get("nextLink")
            if link is not None and not (
                isinstance(link, str) and link.lower().startswith(f"{base}{path}?".lower())
            ):
                raise ArmGatewayError(
                    f"GET {path}: nextLink {str(link)[:200]!r} is not this list on {base}",
                    code="InvalidNextLink",
                )
            url = link
        return found

    def send(
        self,
        method: Literal["PUT", "PATCH", "DELETE"],
        resource_id: str,
        body: Mapping[str, Any] | None,
        api_version: str | None = None,
    ) -> WriteResult:
        """One PUT, PATCH or DELETE of an account's child resource by full resource ID, waiting for
        ARM's asynchronous operation (Azure-AsyncOperation / Location, polled by azure-core's
        ARMPolling as the SDK does): "written" (`after`: the body the operation ended with; None for
        a DELETE), "gone" (404; a DELETE answered 204: nothing was there, `http_status` 204),
        "precondition-failed" (412), "refused" (other 4xx, e.g. 403 or 400), "provisioning-failed"
        (the operation ended Failed/Canceled). 409 RequestConflict is retried like `patch`; transient
        trouble that outlasts the retries raises TransientArmError."""
        if method not in ("PUT", "PATCH", "DELETE"):
            raise ValueError(f"send writes with PUT, PATCH or DELETE, not {method!r}")
        if method != "DELETE" and body is None:
            raise ValueError(f"{method} needs a body")
        subscription, url = self._child_url(resource_id, api_version)
        return self._write(
            resource_id, method, lambda: self._send_write(subscription, method, url, body, resource_id)
        )

    def _send_write(
        self, subscription: str, method: str, url: str, body: Mapping[str, Any] | None, resource_id: str
    ) -> dict[str, Any] | None:
        from azure.core.exceptions import AzureError, HttpResponseError
        from azure.core.polling import LROPoller
        from azure.core.rest import HttpRequest
        from azure.mgmt.core.polling.arm_polling import ARMPolling

        what = f"{method} {resource_id}"
        pipeline_client = self._client(subscription)._client  # ARM's pipeline: credential, retries, pool
        request = HttpRequest(
            method, pipeline_client.format_url(url), json=dict(body) if body is not None else None
        )
        try:
            initial = pipeline_client._pipeline.run(request, stream=False)
            response = initial.http_response
            if response.status_code >= 400:
                raise HttpResponseError(response=response)
            if method == "DELETE" and response.status_code == 204:
                raise _Gone(204)  # nothing to delete
            poller: LROPoller[Any] = LROPoller(
                pipeline_client, initial, _body_of, ARMPolling(self.settings.poll_interval)
            )
            result = poller.result()
        except HttpResponseError as exc:
            self._classify(exc, what)
        except AzureError as exc:
            raise self._transient(exc, what) from exc
        if method == "DELETE":
            return None  # the operation's status, not a resource
        return result if isinstance(result, dict) else None


def _is_account_id(resource_id: str) -> bool:
    try:
        parse_account_id(resource_id)
    except ValueError:
        return False
    return True


class _Conflict(Exception):
    pass


class _Precondition(Exception):
    pass


class _Gone(Exception):
    def __init__(self, status: int | None = None) -> None:
        super().__init__(status)
        self.status = status


class _Refused(Exception):
    def __init__(self, status: int | None, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def _pooled_transport(settings: ArmSettings) -> Any:
    from guardrail.transport import pooled_transport

    return pooled_transport(
        pool_size=settings.connection_pool_size,
        connection_timeout=settings.connect_timeout,
        read_timeout=settings.read_timeout,
        connection_verify=settings.ca_bundle,
        environment=settings.http,
    )


def _shared(transport: Any) -> Any:
    """`transport` for one of the clients that share it: a client's close (or `with client:`) leaves
    it open; `ArmGateway.close` closes it once, after every client."""
    return _shared_type()(transport)


@functools.cache
def _shared_type() -> Any:
    from azure.core.pipeline.transport import HttpTransport

    class Shared(HttpTransport):  # type: ignore[type-arg]
        def __init__(self, inner: Any) -> None:
            self.inner = inner

        def send(self, request: Any, **kwargs: Any) -> Any:
            return self.inner.send(request, **kwargs)

        def open(self) -> None:
            self.inner.open()

        def close(self) -> None:
            pass

        def __exit__(self, *args: Any) -> None:
            pass

    return Shared


def _capped_retry_policy(settings: ArmSettings) -> Any:
    """azure-core's RetryPolicy with our knobs, which also retries PATCH (safe: it carries If-Match) on
    429/408/502 and connection errors, and gives up rather than sleep through a huge Retry-After."""
    from azure.core.pipeline.policies import RetryPolicy

    from guardrail.transport import bounded_retry_policy

    cap = settings.max_retry_after

    class _CappedRetryPolicy(RetryPolicy):  # type: ignore[type-arg]
        def is_retry(self, retry_settings: dict[str, Any], response: Any) -> bool:
            retry_after = self.get_retry_after(response)
            if retry_after is not None and retry_after > cap:
                return False
            return bool(super().is_retry(retry_settings, response))

    return bounded_retry_policy(
        _CappedRetryPolicy,
        retries=settings.retry_total,
        backoff=settings.retry_backoff,
        backoff_max=settings.retry_backoff_max,
        methods=frozenset(["HEAD", "GET", "PUT", "DELETE", "OPTIONS", "TRACE", "PATCH"]),
    )
