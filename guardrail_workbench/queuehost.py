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
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

log = logging.getLogger("guardrail_workbench")

HOST_JSON = Path(__file__).resolve().parents[1] / "host.json"


def host_queue_settings(path: Path = HOST_JSON) -> dict[str, Any]:
    """host.json's `extensions.queues`, with the host's defaults for what it leaves out."""
    queues = json.loads(path.read_text(encoding="utf-8")).get("extensions", {}).get("queues", {})
    defaults = {"maxDequeueCount": 5, "batchSize": 16, "visibilityTimeout": "00:00:00"}
    merged: dict[str, Any] = {**defaults, **queues}
    merged.setdefault("newBatchThreshold", int(merged["batchSize"]) // 2)
    return merged


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
        self.batch_size = max(1, min(32, int(self.settings["batchSize"])))
        self.threshold = int(self.settings["newBatchThreshold"])
        self.done = 0
        self.failed = 0
        self.poisoned = 0
        self._count_lock = threading.Lock()

    def _ensure(self, client: Any) -> None:
        from azure.core.exceptions import ResourceExistsError

        with contextlib.suppress(ResourceExistsError):
            client.create_queue()

    def _run(self, message: Any) -> None:
        """One delivery: the function, then delete; on failure release it for redelivery, or move
        it to the poison queue after `maxDequeueCount` deliveries."""
        try:
            self.function(as_queue_message(message))
        except Exception as error:
            with self._count_lock:
                self.failed += 1
            if int(message.dequeue_count or 1) >= self.max_dequeue:
                log.warning(
                    "message %s failed %d times: moved to poison (%s)", message.id, self.max_dequeue, error
                )
                self._ensure(self.poison)
                self.poison.send_message(message.content)
                self.queue.delete_message(message)
                with self._count_lock:
                    self.poisoned += 1
            else:
                log.info("message %s failed (delivery %s): %s", message.id, message.dequeue_count, error)
                self.queue.update_message(message, visibility_timeout=int(self.retry_delay))
            return
        self.queue.delete_message(message)
        with self._count_lock:
            self.done += 1

    def _receive(self, limit: int) -> list[Any]:
        self._ensure(self.queue)
        size = max(1, min(32, limit))
        pages = self.queue.receive_messages(
            messages_per_page=size, visibility_timeout=self.lease_seconds, max_messages=size
        )
        return list(pages)

    def run_once(self) -> int:
        """Receive one batch and run it to the end, concurrently; the number received."""
        messages = self._receive(self.batch_size)
        with ThreadPoolExecutor(max_workers=max(1, len(messages))) as pool:
            list(pool.map(self._run, messages))
        return len(messages)

    def pending(self) -> int:
        self._ensure(self.queue)
        return int(self.queue.get_queue_properties().approximate_message_count or 0)

    def drain(self, timeout: float = 60.0, idle: float = 0.5, poll: float = 0.05) -> bool:
        """Run messages as the host does (up to `batchSize` received at a time, a new batch fetched
        when no more than `newBatchThreshold` are still running) until the queue stays empty, with
        nothing running, for `idle` seconds (messages waiting to become visible again count as not
        empty); False when `timeout` passes first."""
        deadline = time.monotonic() + timeout
        quiet_since: float | None = None
        running: set[Future[None]] = set()
        with ThreadPoolExecutor(max_workers=self.batch_size + self.threshold) as pool:
            while time.monotonic() < deadline:
                running = {f for f in running if not f.done()}
                if len(running) <= self.threshold:
                    messages = self._receive(self.batch_size)
                    if messages:
                        running |= {pool.submit(self._run, m) for m in messages}
                        quiet_since = None
                        continue
                    if running or self.pending():
                        quiet_since = None
                    elif quiet_since is None:
                        quiet_since = time.monotonic()
                    elif time.monotonic() - quiet_since >= idle:
                        return True
                time.sleep(poll)
            for future in running:
                future.cancel()
        return False
