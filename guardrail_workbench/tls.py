"""A throwaway certificate authority for the local HTTPS stand-ins (azure-core refuses
bearer tokens over plain http). One CA per process; its bundle is written to a file so
SDK clients can pass it as `connection_verify=`."""

from __future__ import annotations

import atexit
import contextlib
import os
import ssl
import tempfile
from functools import cache, lru_cache
from pathlib import Path

import trustme


@lru_cache(maxsize=1)
def _ca() -> trustme.CA:
    return trustme.CA(organization_name="guardrail local CA")


def ca_bundle_path(directory: str | os.PathLike[str] | None = None) -> str:
    """Write this process's CA certificate as PEM (once per directory) and return its path."""
    folder = Path(directory) if directory is not None else Path(tempfile.gettempdir())
    return _write_bundle(str(folder.resolve()))


@cache
def _write_bundle(folder: str) -> str:
    # A fresh, unique file: a name made from the pid alone could be a stale bundle of an earlier
    # process that had the same pid, and clients would then distrust this process's servers.
    Path(folder).mkdir(parents=True, exist_ok=True)
    handle, path = tempfile.mkstemp(prefix=f"guardrail-local-ca-{os.getpid()}-", suffix=".pem", dir=folder)
    os.close(handle)
    _ca().cert_pem.write_to_path(path)
    atexit.register(_remove, path)
    return path


def _remove(path: str) -> None:
    with contextlib.suppress(OSError):
        os.remove(path)


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
