"""azure-core's requests transport with a connection pool sized for our concurrency, and with
requests' environment lookups resolved once instead of on every request.

requests keeps 10 connections per host by default; a 16-worker sweep sharing one client would
then drop and re-open connections (urllib3's "Connection pool is full"). Used by the ARM gateway
and the state store."""

from __future__ import annotations

import os
from typing import Any

# The CA-bundle variables requests reads when `Session.trust_env` is on (its default), in its order.
_CA_BUNDLE_VARIABLES = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")


def environment_configures_proxies() -> bool:
    """True when the environment sets a proxy variable (any case, NO_PROXY included)."""
    import urllib.request

    return bool(urllib.request.getproxies_environment())


def environment_ca_bundle() -> str | None:
    """The CA bundle requests would take from the environment for a verified request."""
    return next((os.environ[name] for name in _CA_BUNDLE_VARIABLES if os.environ.get(name)), None)


def bounded_retry_policy(
    policy_type: Any, *, retries: int, backoff: float, backoff_max: float, methods: frozenset[str]
) -> Any:
    """An azure-core `RetryPolicy` (of `policy_type`, a subclass) that retries at most `retries` times
    whatever failed (connection, read or status), with exponential backoff from `backoff` seconds
    capped at `backoff_max`, for the HTTP `methods` named. The gateway and the sinks build theirs here."""
    policy = policy_type(
        retry_total=retries,
        retry_connect=retries,
        retry_read=retries,
        retry_status=retries,
        retry_backoff_factor=backoff,
        retry_backoff_max=backoff_max,
    )
    policy._method_whitelist = methods
    return policy


def pooled_transport(
    *,
    pool_size: int,
    connection_timeout: float,
    read_timeout: float,
    connection_verify: str | None = None,
) -> Any:
    import requests
    from azure.core.pipeline.transport import RequestsTransport
    from urllib3.util.retry import Retry

    session = requests.Session()
    # requests' environment lookups, resolved once here instead of on every request: without a proxy
    # variable, `trust_env` is off (no scan of os.environ for proxies and no ~/.netrc read per request:
    # ~14 % of a warm remediation's client CPU when profiled), and a CA-bundle variable is passed on as
    # the transport's `connection_verify`, as requests would have used it.
    session.trust_env = environment_configures_proxies()
    connection_verify = connection_verify or environment_ca_bundle()
    # pool_block: a thread beyond `pool_size` waits for a kept-alive connection instead of opening
    # one that is discarded afterwards ("Connection pool is full"), so every request after the first
    # few reuses an open connection (no new TCP and TLS handshake). The wait is bounded: a connection
    # returns as soon as its response is read, within the client's read timeout. The fanned-out
    # sweep runs several slices per instance on one state-store client, more threads than its pool.
    adapter = requests.adapters.HTTPAdapter(
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
