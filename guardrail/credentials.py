"""Credentials: a fixed bearer token (`ARM_CREDENTIAL=static` with `ARM_STATIC_TOKEN`, and the local
receivers' `GUARDRAIL_LOCAL_BEARER_TOKEN`: local only), and the worker's Azure identity. Tokens that
carry a local caller's claims are made by the local tooling, not here."""

from __future__ import annotations

import threading
import time
from typing import Any

from guardrail.transport import CREDENTIAL_TIMEOUTS, Timeouts


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


class AzureIdentity:
    """The worker's one Azure identity: a `TokenCredential` that builds azure-identity's
    `DefaultAzureCredential` (for the user-assigned identity `client_id`; None: the system-assigned
    one, or `AZURE_CLIENT_ID` as azure-identity reads it) on the first token asked for, so a worker
    that never needs one never imports azure.identity. Its token requests (the managed identity
    endpoint, Entra ID) wait at most `timeouts` (GUARDRAIL_TOKEN_CONNECT_TIMEOUT /
    GUARDRAIL_TOKEN_READ_TIMEOUT; azure-core's own default is 300 s each). The composition root
    (`guardrail.functions.build_app`) makes one and hands it to the gateway, the state and health
    tables, the sweep queue, the dead-letter container, the sinks and the metrics exporter, so a
    worker acquires each token once."""

    def __init__(self, client_id: str | None = None, timeouts: Timeouts = CREDENTIAL_TIMEOUTS) -> None:
        self.client_id = client_id
        self.timeouts = timeouts
        self._credential: Any = None
        self._lock = threading.Lock()

    def _inner(self) -> Any:
        with self._lock:
            if self._credential is None:
                from azure.identity import DefaultAzureCredential

                bounded = {"connection_timeout": self.timeouts.connect, "read_timeout": self.timeouts.read}
                self._credential = (
                    DefaultAzureCredential(managed_identity_client_id=self.client_id, **bounded)
                    if self.client_id
                    else DefaultAzureCredential(**bounded)
                )
            return self._credential

    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        return self._inner().get_token(*scopes, **kwargs)

    def close(self) -> None:
        with self._lock:
            credential, self._credential = self._credential, None
        if credential is not None:
            credential.close()
