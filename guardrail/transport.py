"""azure-core's requests transport with a connection pool sized for our concurrency, and without
requests' per-request environment lookups when the environment configures nothing for it.

requests keeps 10 connections per host by default; a 16-worker sweep sharing one client would
then drop and re-open connections (urllib3's "Connection pool is full"). Used by the ARM gateway
and the state store."""

from __future__ import annotations

import os
from typing import Any

# What requests reads from the environment when `Session.trust_env` is on (its default).
_REQUESTS_ENVIRONMENT = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")


def environment_configures_requests() -> bool:
    """True when the environment holds something requests would act on: proxy variables (any case,
    NO_PROXY included) or a CA bundle variable. Otherwise `trust_env` can be off with nothing lost:
    requests then skips, on every request, the scan of os.environ for proxies and the ~/.netrc
    lookup (about 15 % of the sweep's CPU when profiled) and connections are reused as before."""
    import urllib.request

    return bool(urllib.request.getproxies_environment()) or any(
        os.environ.get(name) for name in _REQUESTS_ENVIRONMENT
    )


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
    session.trust_env = environment_configures_requests()
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
