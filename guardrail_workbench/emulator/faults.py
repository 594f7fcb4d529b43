"""Scriptable fault injection: an ordered list of faults, each matching some requests a few times.

A fault matches a request by HTTP method (None = any) and by resource scope (None = any request;
otherwise the request path equals the scope or lies under it, case-insensitively). The first
matching fault with uses left fires. Actions:

- ``respond``: answer `status` with an ARM error envelope (429/503 carry `Retry-After`);
- ``latency``: sleep `latency` seconds, then carry on normally (also combinable with others);
- ``delete``: delete the account just before the request is handled (deleted between read and write);
- ``touch``: change the account (new etag) just before the request (a concurrent writer: If-Match fails);
- ``fail_provisioning``: the write is accepted but its provisioning ends `Failed`;
- ``drop_response``: the request is handled (a write is applied), then the connection is closed
  without an answer (a lost response: the client cannot tell whether its write landed).

The HTTP control API (`POST /_emulator/faults`) takes the same faults as JSON, with `"status"` as
another name for ``respond``.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Literal

from .names import fold

Action = Literal["respond", "latency", "delete", "touch", "fail_provisioning", "drop_response"]
ACTIONS: frozenset[str] = frozenset(
    {"respond", "latency", "delete", "touch", "fail_provisioning", "drop_response"}
)

DEFAULT_CODES: dict[int, str] = {
    400: "BadRequest",
    401: "AuthenticationFailed",
    403: "AuthorizationFailed",
    404: "ResourceNotFound",
    409: "RequestConflict",
    412: "PreconditionFailed",
    429: "TooManyRequests",
    500: "InternalServerError",
    502: "BadGateway",
    503: "ServiceUnavailable",
    504: "GatewayTimeout",
}


@dataclass
class Fault:
    """One scripted misbehaviour. `times=None` means forever."""

    action: Action = "respond"
    method: str | None = None
    resource_id: str | None = None
    status: int = 500
    code: str | None = None
    message: str | None = None
    retry_after: float | None = None
    latency: float = 0.0
    times: int | None = 1
    fired: int = 0
    id: int = 0

    def matches(self, method: str, path: str) -> bool:
        if self.times is not None and self.fired >= self.times:
            return False
        if self.method is not None and self.method.upper() != method.upper():
            return False
        if self.resource_id is not None:
            scope = fold(self.resource_id.rstrip("/"))
            lowered = fold(path)
            if lowered != scope and not lowered.startswith(scope + "/"):
                return False
        return True

    @property
    def exhausted(self) -> bool:
        return self.times is not None and self.fired >= self.times

    def to_json(self) -> dict[str, object]:
        """The fault as the HTTP control API shows it (camelCase, with `fired`)."""
        return {
            "id": self.id,
            "action": self.action,
            "method": self.method,
            "resourceId": self.resource_id,
            "status": self.status,
            "code": self.code,
            "message": self.message,
            "retryAfter": self.retry_after,
            "latency": self.latency,
            "times": self.times,
            "fired": self.fired,
        }


@dataclass
class FaultPlan:
    """The emulator's fault queue (thread-safe)."""

    _faults: list[Fault] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _next_id: int = 1

    def add(
        self,
        *,
        resource_id: str | None = None,
        method: str | None = None,
        status: int = 500,
        times: int | None = 1,
        retry_after: float | None = None,
        code: str | None = None,
        message: str | None = None,
        latency: float = 0.0,
        action: Action = "respond",
    ) -> Fault:
        """Queue a fault; returns it (its `fired` counter shows how often it hit)."""
        with self._lock:
            fault = Fault(
                action=action,
                method=method,
                resource_id=resource_id,
                status=status,
                code=code,
                message=message,
                retry_after=retry_after,
                latency=latency,
                times=times,
                id=self._next_id,
            )
            self._next_id += 1
            self._faults.append(fault)
            return fault

    def take(self, method: str, path: str) -> Fault | None:
        """The first matching fault with uses left, its use counted; None when nothing matches."""
        with self._lock:
            for fault in self._faults:
                if fault.matches(method, path):
                    fault.fired += 1
                    return fault
        return None

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def all(self) -> list[Fault]:
        """Every fault queued since the last `clear`, spent ones included."""
        with self._lock:
            return list(self._faults)

    def pending(self) -> list[Fault]:
        with self._lock:
            return [f for f in self._faults if not f.exhausted]

    def __len__(self) -> int:
        return len(self.pending())
