"""Local credentials: a fixed bearer token, and JWT-shaped unsigned tokens that carry a caller's
claims (the emulator reads callers from them). For the emulator and the local receivers only;
in Azure every client uses DefaultAzureCredential."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Mapping
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


def _segment(value: Mapping[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(dict(value)).encode()).rstrip(b"=").decode("ascii")


def unsigned_token(claims: Mapping[str, Any]) -> str:
    """A JWT-shaped token (no signature) carrying `claims`."""
    return f"{_segment({'alg': 'none', 'typ': 'JWT'})}.{_segment(claims)}.local"


def token_claims(token: str) -> dict[str, Any] | None:
    """The payload of a JWT-shaped token, or None when it is not one. No signature check:
    for identification only."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    padded = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        payload = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    except (ValueError, UnicodeDecodeError):
        return None
    return payload if isinstance(payload, dict) else None


_default_credentials: dict[tuple[str | None, Timeouts], Any] = {}
_default_lock = threading.Lock()


def default_credential(client_id: str | None = None, timeouts: Timeouts = CREDENTIAL_TIMEOUTS) -> Any:
    """The worker's one `DefaultAzureCredential` (per user-assigned identity `client_id`; None: the
    system-assigned one, or `AZURE_CLIENT_ID` as azure-identity reads it), shared by the gateway, the
    state and health tables, the sweep queue, the dead-letter container and the sinks, so a worker
    acquires each token once. Its token requests (the managed identity endpoint, Entra ID) wait at
    most `timeouts` (GUARDRAIL_TOKEN_CONNECT_TIMEOUT / GUARDRAIL_TOKEN_READ_TIMEOUT; azure-core's
    own default is 300 s each). azure.identity is imported on first use."""
    with _default_lock:
        credential = _default_credentials.get((client_id, timeouts))
        if credential is None:
            from azure.identity import DefaultAzureCredential

            bounded = {"connection_timeout": timeouts.connect, "read_timeout": timeouts.read}
            credential = (
                DefaultAzureCredential(managed_identity_client_id=client_id, **bounded)
                if client_id
                else DefaultAzureCredential(**bounded)
            )
            _default_credentials[(client_id, timeouts)] = credential
        return credential
