"""azure-core's requests transport with a connection pool sized for our concurrency.

requests keeps 10 connections per host by default; a 16-worker sweep sharing one client would
then drop and re-open connections (urllib3's "Connection pool is full"). Used by the ARM gateway
and the state store."""

from __future__ import annotations

from typing import Any


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
    adapter = requests.adapters.HTTPAdapter(
        pool_connections=4,
        pool_maxsize=max(10, pool_size),
        max_retries=Retry(total=False, redirect=False, raise_on_status=False),  # azure-core retries
    )
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    options: dict[str, Any] = {"connection_timeout": connection_timeout, "read_timeout": read_timeout}
    if connection_verify:
        options["connection_verify"] = connection_verify
    return RequestsTransport(session=session, session_owner=True, **options)
