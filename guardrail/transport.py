"""azure-core's requests transport with a connection pool sized for our concurrency, and with
requests' environment lookups resolved once instead of on every request.

requests keeps 10 connections per host by default; a 16-worker sweep sharing one client would
then drop and re-open connections (urllib3's "Connection pool is full"). Used by the ARM gateway
and the state store."""

from __future__ import annotations

import contextlib
import functools
from dataclasses import dataclass
from typing import Any, Final


@dataclass(frozen=True)
class Timeouts:
    """Seconds to wait for a connection (`connect`) and between bytes of a response (`read`): every
    client the guardrail builds has both (ARM: ArmSettings; the sinks: RetrySettings.timeout_s)."""

    connect: float
    read: float


#: The state and health tables, the sweep queue and the dead-letter container (GUARDRAIL_STORAGE_*).
STORAGE_TIMEOUTS: Final = Timeouts(connect=2.0, read=3.0)
#: The credential's token requests (managed identity endpoint, Entra ID) (GUARDRAIL_TOKEN_*).
CREDENTIAL_TIMEOUTS: Final = Timeouts(connect=5.0, read=10.0)
#: The storage SDKs' retries for the sweep queue and the dead-letter container: 3 retries after
#: 1, 3 and 9 s (their default is 10 retries from 15 s on, minutes of waiting in an outage).
STORAGE_RETRIES: Final = {"retry_total": 3, "initial_backoff": 1, "increment_base": 3}


@dataclass(frozen=True)
class HttpEnvironment:
    """What requests would read from the environment on every request (`Session.trust_env`), read
    once by `guardrail.settings`: a CA bundle (``REQUESTS_CA_BUNDLE``, ``CURL_CA_BUNDLE``), and
    whether a proxy variable is set (then requests keeps its per-request lookups)."""

    ca_bundle: str | None = None
    proxies: bool = False


@functools.cache
def _closing(policy_type: Any) -> Any:
    """`policy_type` (an azure-core RetryPolicy) that closes a response it is about to retry.

    azure-core's `RetryPolicy.send` drops the response of a retried attempt without closing it. A
    streamed one (the management SDK sends PATCH and PUT with `stream=True`) then keeps its pooled
    connection checked out for the life of the worker: after as many retried 5xx or 429 answers as
    the pool holds, the next request waited forever for a connection (issue #22, item 1). One
    class per `policy_type` (a memo of this pure function)."""

    class Closing(policy_type):  # type: ignore[misc]
        def sleep(self, settings: Any, transport: Any, response: Any = None) -> None:
            if response is not None:
                close_response(response)
            super().sleep(settings, transport, response=response)

    Closing.__name__ = Closing.__qualname__ = f"Closing{policy_type.__name__}"
    return Closing


def close_response(response: Any) -> None:
    """Close a pipeline response's HTTP response (its connection goes back to the pool); never raises."""
    http_response = getattr(response, "http_response", response)
    with contextlib.suppress(Exception):  # best effort: the response is being discarded
        http_response.close()


def bounded_retry_policy(
    policy_type: Any, *, retries: int, backoff: float, backoff_max: float, methods: frozenset[str]
) -> Any:
    """An azure-core `RetryPolicy` (of `policy_type`, a subclass) that retries at most `retries` times
    whatever failed (connection, read or status), with exponential backoff from `backoff` seconds
    capped at `backoff_max`, for the HTTP `methods` named, and closes every response it retries (its
    connection goes back to the pool). The gateway and the sinks build theirs here."""
    policy = _closing(policy_type)(
        retry_total=retries,
        retry_connect=retries,
        retry_read=retries,
        retry_status=retries,
        retry_backoff_factor=backoff,
        retry_backoff_max=backoff_max,
    )
    policy._method_whitelist = methods
    return policy


@functools.cache
def bounded_pool_adapter() -> Any:
    """requests' HTTPAdapter whose connection pools wait at most `pool_wait` seconds for a free
    connection (urllib3 waits forever when a blocking pool is asked for none), and whose
    exhausted-pool error is a requests ConnectionError (azure-core: ServiceRequestError, retried)."""
    import requests
    from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
    from urllib3.exceptions import EmptyPoolError

    def bounded(pool_type: Any, wait: float) -> Any:
        class Bounded(pool_type):  # type: ignore[misc]
            def _get_conn(self, timeout: float | None = None) -> Any:
                return super()._get_conn(timeout=wait if timeout is None else timeout)

        Bounded.__name__ = Bounded.__qualname__ = f"Bounded{pool_type.__name__}"
        return Bounded

    class Adapter(requests.adapters.HTTPAdapter):
        def __init__(self, *, pool_wait: float, **kwargs: Any) -> None:
            self.pool_wait = pool_wait
            super().__init__(**kwargs)

        def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
            super().init_poolmanager(*args, **kwargs)
            self.poolmanager.pool_classes_by_scheme = {
                "http": bounded(HTTPConnectionPool, self.pool_wait),
                "https": bounded(HTTPSConnectionPool, self.pool_wait),
            }

        def send(self, request: Any, *args: Any, **kwargs: Any) -> Any:
            try:
                return super().send(request, *args, **kwargs)
            except EmptyPoolError as error:
                raise requests.exceptions.ConnectionError(
                    f"no free connection to {request.url} within {self.pool_wait:g} s (pool exhausted)",
                    request=request,
                ) from error

    return Adapter


@functools.cache
def lean_session_type() -> Any:
    """requests' Session, preparing a request without requests' type checks against its typing
    Protocols when neither the session nor the request has query parameters or auth of its own
    (behind azure-core never: the URL carries the query, the pipeline the Authorization header).

    requests 2.34's `Session.prepare_request` merges the request's headers, params and auth with
    the session's through `to_key_val_list`, and encodes the (empty) params, each with an
    `isinstance` against a runtime-checkable Protocol (SupportsItems, SupportsRead), which Python
    3.11 answers by walking the Protocol's members every time: ~30-90 us each, five per request,
    about a tenth of a request's client CPU. Here the headers are merged as `merge_setting` merges
    them (the session's, then the request's, None values dropped) and the empty params and auth
    are passed as None, which `PreparedRequest.prepare` treats as it treats them empty: the same
    PreparedRequest (a test compares them). Anything else goes through requests' own way."""
    from collections.abc import Mapping
    from http.cookiejar import CookieJar

    import requests
    from requests.cookies import RequestsCookieJar, cookiejar_from_dict, merge_cookies
    from requests.models import PreparedRequest
    from requests.sessions import merge_hooks
    from requests.structures import CaseInsensitiveDict

    class LeanSession(requests.Session):
        def prepare_request(self, request: Any) -> Any:
            headers = request.headers
            if (
                request.params
                or self.params
                or request.auth
                or self.auth
                or self.trust_env
                or not isinstance(self.headers, Mapping)
                or not (headers is None or isinstance(headers, Mapping))
            ):
                return super().prepare_request(request)
            merged = CaseInsensitiveDict(self.headers.items())
            merged.update((headers or {}).items())
            for key in [key for key, value in merged.items() if value is None]:
                del merged[key]
            cookies = request.cookies or {}
            if not isinstance(cookies, CookieJar):
                cookies = cookiejar_from_dict(cookies)
            prepared = PreparedRequest()
            prepared.prepare(
                method=request.method.upper(),
                url=request.url,
                files=request.files,
                data=request.data,
                json=request.json,
                headers=merged if headers is not None else self.headers,
                params=None,
                auth=None,
                cookies=merge_cookies(merge_cookies(RequestsCookieJar(), self.cookies), cookies),
                hooks=merge_hooks(request.hooks, self.hooks),
            )
            return prepared

    return LeanSession


def pooled_transport(
    *,
    pool_size: int,
    connection_timeout: float,
    read_timeout: float,
    connection_verify: str | None = None,
    pool_wait: float | None = None,
    environment: HttpEnvironment | None = None,
) -> Any:
    """requests' session behind azure-core, pooled and bounded (below). `environment`: requests'
    environment variables as `guardrail.settings` read them (None: none set)."""
    from azure.core.pipeline.transport import RequestsTransport
    from urllib3.util.retry import Retry

    session = lean_session_type()()
    # requests' environment lookups, resolved once here instead of on every request: without a proxy
    # variable, `trust_env` is off (no scan of os.environ for proxies and no ~/.netrc read per request:
    # ~14 % of a warm remediation's client CPU when profiled), and a CA-bundle variable is passed on as
    # the transport's `connection_verify`, as requests would have used it.
    environment = environment or HttpEnvironment()
    session.trust_env = environment.proxies
    connection_verify = connection_verify or environment.ca_bundle
    # pool_block: a thread beyond `pool_size` waits for a kept-alive connection instead of opening
    # one that is discarded afterwards ("Connection pool is full"), so every request after the first
    # few reuses an open connection (no new TCP and TLS handshake). The wait is bounded twice: a
    # connection returns as soon as its response is read or closed (within the read timeout; retried
    # responses are closed by `bounded_retry_policy`), and the wait itself ends after `pool_wait`
    # seconds (default: the connect and read timeouts) with a connection error that azure-core
    # retries and the caller sees as transient, never a hang. The fanned-out sweep runs several
    # slices per instance on one state-store client, more threads than its pool.
    adapter = bounded_pool_adapter()(
        pool_wait=pool_wait if pool_wait is not None else connection_timeout + read_timeout,
        pool_connections=4,
        pool_maxsize=max(10, pool_size),
        pool_block=True,
        max_retries=Retry(total=False, redirect=False, raise_on_status=False),  # azure-core retries
    )
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    options: dict[str, Any] = {"connection_timeout": connection_timeout, "read_timeout": read_timeout}
    if connection_verify:
        options["connection_verify"] = connection_verify
    return RequestsTransport(session=session, session_owner=True, **options)
