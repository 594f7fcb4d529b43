"""Where the guardrail's own storage is (the Functions host's ``AzureWebJobsStorage``): one reading
for the state and health tables, the sweep queue and the dead-letter container."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

Service = Literal["table", "queue", "blob"]


def connection_string(env: Mapping[str, str]) -> str | None:
    """``AzureWebJobsStorage`` when it is a connection string (Azurite locally), else None."""
    return env.get("AzureWebJobsStorage") or None


def identity_endpoint(env: Mapping[str, str], service: Service) -> str | None:
    """The identity-based form's endpoint of `service`: ``AzureWebJobsStorage__{service}ServiceUri``,
    or the account's default endpoint from ``AzureWebJobsStorage__accountName``; None when neither
    is set (or a connection string is)."""
    if connection_string(env):
        return None
    endpoint = env.get(f"AzureWebJobsStorage__{service}ServiceUri")
    account = env.get("AzureWebJobsStorage__accountName")
    if not endpoint and account:
        endpoint = f"https://{account}.{service}.core.windows.net"
    return endpoint or None


def client_id(env: Mapping[str, str]) -> str | None:
    """The user-assigned identity the host uses for its storage, when one is named."""
    return env.get("AzureWebJobsStorage__clientId") or env.get("AZURE_CLIENT_ID") or None
