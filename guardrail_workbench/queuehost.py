"""What the Functions host does for the app's queue triggers, locally, against Azurite's Queue service.

`QueueHost.drain()` receives messages from a queue with the Storage SDK, hands each to the app's
queue-triggered user function as the worker would (a `func.QueueMessage` made by azure-functions'
own `QueueMessageInConverter`, with the host's trigger metadata: Id, DequeueCount, InsertionTime,
...), deletes it when the function returns, and leaves it for redelivery when the function raises.
A message that has failed host.json's `extensions.queues.maxDequeueCount` times is moved to
`<queue>-poison`, as the host does. Used by the tests and the sweep benchmark's worker processes.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

log = logging.getLogger("guardrail_workbench")

HOST_JSON = Path(__file__).resolve().parents[1] / "host.json"


def host_queue_settings(path: Path = HOST_JSON) -> dict[str, Any]:
    """host.json's `extensions.queues`, with the host's defaults for what it leaves out."""
    queues = json.loads(path.read_text(encoding="utf-8")).get("extensions", {}).get("queues", {})
    return {"maxDequeueCount": 5, "batchSize": 16, "visibilityTimeout": "00:00:00", **queues}


def _seconds(span: str) -> float:
    hours, minutes, seconds = span.split(":")
    return int(hours) * 3600 + int(minutes) * 60 + float(seconds)


def as_queue_message(message: Any) -> Any:
    """The `func.QueueMessage` the worker hands a queue trigger for this received SDK message."""
    from azure.functions import meta
    from azure.functions.queue import QueueMessageInConverter

    def stamp(value: Any) -> meta.Datum | None:
        return meta.Datum(type="string", value=value.isoformat()) if value is not None else None

    metadata = {
        "Id": meta.Datum(type="string", value=str(message.id)),
        "DequeueCount": meta.Datum(type="json", value=str(int(message.dequeue_count or 1))),
        "PopReceipt": meta.Datum(type="string", value=str(message.pop_receipt)),
        "InsertionTime": stamp(message.inserted_on),
        "ExpirationTime": stamp(message.expires_on),
        "NextVisibleTime": stamp(message.next_visible_on),
    }
    datum = meta.Datum(type="string", value=str(message.content))
    return QueueMessageInConverter.decode(datum, trigger_metadata={k: v for k, v in metadata.items() if v})


class QueueHost:
    """One queue, one user function, the host's dequeue/poison rules (from host.json)."""

    def __init__(
        self,
        connection_string: str,
        queue_name: str,
        function: Callable[[Any], None],
        *,
        lease_seconds: int = 60,
        retry_delay: float | None = None,
        settings: dict[str, Any] | None = None,
    ) -> None:
        """`retry_delay` overrides host.json's `visibilityTimeout` (the wait before a failed message
        is visible again), e.g. 0 in tests."""
        from azure.storage.queue import QueueClient, TextBase64DecodePolicy, TextBase64EncodePolicy

        self.settings = settings or host_queue_settings()
        self.max_dequeue = int(self.settings["maxDequeueCount"])
        self.retry_delay = (
            retry_delay if retry_delay is not None else _seconds(str(self.settings["visibilityTimeout"]))
        )
        self.lease_seconds = lease_seconds
        self.function = function
        codec: dict[str, Any] = {
            "message_encode_policy": TextBase64EncodePolicy(),
            "message_decode_policy": TextBase64DecodePolicy(),
        }
        self.queue = QueueClient.from_connection_string(connection_string, queue_name, **codec)
        self.poison = QueueClient.from_connection_string(connection_string, f"{queue_name}-poison", **codec)
        self.done = 0
        self.failed = 0
        self.poisoned = 0

    def _ensure(self, client: Any) -> None:
        from azure.core.exceptions import ResourceExistsError

        with contextlib.suppress(ResourceExistsError):
            client.create_queue()

    def run_once(self, batch: int | None = None) -> int:
        """Receive up to a batch of visible messages and run each; the number received."""
        self._ensure(self.queue)
        count = 0
        size = min(32, int(batch or self.settings["batchSize"]))
        for message in self.queue.receive_messages(
            messages_per_page=size, visibility_timeout=self.lease_seconds, max_messages=size
        ):
            count += 1
            try:
                self.function(as_queue_message(message))
            except Exception as error:
                self.failed += 1
                if int(message.dequeue_count or 1) >= self.max_dequeue:
                    log.warning(
                        "message %s failed %d times: moved to poison (%s)",
                        message.id,
                        self.max_dequeue,
                        error,
                    )
                    self._ensure(self.poison)
                    self.poison.send_message(message.content)
                    self.queue.delete_message(message)
                    self.poisoned += 1
                else:
                    log.info("message %s failed (delivery %s): %s", message.id, message.dequeue_count, error)
                    self.queue.update_message(message, visibility_timeout=int(self.retry_delay))
                continue
            self.queue.delete_message(message)
            self.done += 1
        return count

    def pending(self) -> int:
        self._ensure(self.queue)
        return int(self.queue.get_queue_properties().approximate_message_count or 0)

    def drain(self, timeout: float = 60.0, idle: float = 0.5, poll: float = 0.05) -> bool:
        """Run messages until the queue stays empty for `idle` seconds (messages waiting to become
        visible again count as not empty); False when `timeout` passes first."""
        deadline = time.monotonic() + timeout
        quiet_since: float | None = None
        while time.monotonic() < deadline:
            if self.run_once():
                quiet_since = None
                continue
            if self.pending():
                quiet_since = None
            elif quiet_since is None:
                quiet_since = time.monotonic()
            elif time.monotonic() - quiet_since >= idle:
                return True
            time.sleep(poll)
        return False
