"""A throwaway certificate authority for the local HTTPS stand-ins (azure-core refuses
bearer tokens over plain http). One CA per process; its bundle is written to a file so
SDK clients can pass it as `connection_verify=`."""

from __future__ import annotations

import os
import ssl
import tempfile
from functools import lru_cache
from pathlib import Path

import trustme


@lru_cache(maxsize=1)
def _ca() -> trustme.CA:
    return trustme.CA(organization_name="guardrail local CA")


def ca_bundle_path(directory: str | os.PathLike[str] | None = None) -> str:
    """Write the CA certificate as PEM (once per directory) and return its path."""
    folder = Path(directory) if directory is not None else Path(tempfile.gettempdir())
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"guardrail-local-ca-{os.getpid()}.pem"
    if not path.exists():
        _ca().cert_pem.write_to_path(str(path))
    return str(path)


def server_context() -> ssl.SSLContext:
    """A server-side TLS context for 127.0.0.1 / localhost signed by the local CA."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    _ca().issue_cert("127.0.0.1", "localhost").configure_cert(context)
    return context


def client_context() -> ssl.SSLContext:
    """A client-side context trusting the local CA (for urllib-based local calls)."""
    context = ssl.create_default_context()
    _ca().configure_trust(context)
    return context
