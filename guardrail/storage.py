"""Where the guardrail's own storage is (the Functions host's ``AzureWebJobsStorage``): one reading
for the state and health tables, the sweep queue and the dead-letter container. `guardrail.settings`
reads the values; nothing here reads the environment."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Service = Literal["table", "queue", "blob"]


@dataclass(frozen=True)
class StorageSettings:
    """``AzureWebJobsStorage`` (a connection string: Azurite locally) or its identity-based form
    (``AzureWebJobsStorage__accountName`` or ``__{table,queue,blob}ServiceUri``, reached with the
    worker's identity)."""

    connection_string: str | None = field(default=None, repr=False)
    account_name: str | None = None
    service_uris: tuple[tuple[Service, str], ...] = ()  # (service, https endpoint) as given

    def endpoint(self, service: Service) -> str | None:
        """The identity-based form's endpoint of `service`: its ``__{service}ServiceUri``, or the
        account's default endpoint from ``__accountName``; None when neither is set (or a connection
        string is)."""
        if self.connection_string:
            return None
        given = dict(self.service_uris).get(service)
        if not given and self.account_name:
            given = f"https://{self.account_name}.{service}.core.windows.net"
        return given or None

    def reaches(self, service: Service) -> bool:
        """Whether `service` is configured, by connection string or by identity."""
        return bool(self.connection_string or self.endpoint(service))
