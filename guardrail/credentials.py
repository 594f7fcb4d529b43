"""Credentials: a fixed bearer token (`ARM_CREDENTIAL=static` with `ARM_STATIC_TOKEN`, and the local
receivers' `GUARDRAIL_LOCAL_BEARER_TOKEN`: local only), and the worker's Azure identity. Tokens that
carry a local caller's claims are made by the local tooling, not here."""

from __future__ import annotations

import threading
import time
from typing import Any


class StaticTokenCredential:
    """A `TokenCredential` returning one fixed bearer token; remembers the scopes asked for."""

    def __init__(self, token: str = "local-test-token", lifetime: int = 3600) -> None:
        self._token = token
        self._lifetime = lifetime
        self.scopes_requested: list[tuple[str, ...]] = []

    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        from azure.core.credentials import AccessToken

        self.scopes_requested.append(scopes)
        return AccessToken(self._token, int(time.time()) + self._lifetime)

    def close(self) -> None:
        return None


_default_credentials: dict[str | None, Any] = {}
_default_lock = threading.Lock()


def default_credential(client_id: str | None = None) -> Any:
    """The worker's one `DefaultAzureCredential` (per user-assigned identity `client_id`; None: the
    system-assigned one, or `AZURE_CLIENT_ID` as azure-identity reads it), shared by the gateway, the
    state and health tables, the sweep queue, the dead-letter container and the sinks, so a worker
    acquires each token once. azure.identity is imported on first use."""
    with _default_lock:
        credential = _default_credentials.get(client_id)
        if credential is None:
            from azure.identity import DefaultAzureCredential

            credential = (
                DefaultAzureCredential(managed_identity_client_id=client_id)
                if client_id
                else DefaultAzureCredential()
            )
            _default_credentials[client_id] = credential
        return credential
