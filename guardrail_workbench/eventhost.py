"""What the Functions host does for the app's Event Grid triggers, locally: its webhook.

`EventHost` serves `POST /runtime/webhooks/EventGrid?functionName=NAME` on 127.0.0.1 as a running
host does (../shared/contracts/README.md, functions/post_event_local.sh): the header
`aeg-event-type: Notification` is required (400 without it), an unknown function is 404, and each
event of the body (an Event Grid array, or a CloudEvent) is handed to the app's user function as
the worker would: a `func.EventGridEvent` / `func.CloudEvent` made by azure-functions' own
converter (`stack.as_function_event`), the functions found through azure-functions' own indexing
of `function_app` (`stack.function_handlers`). 202 when every invocation returned, 500 when one
raised: Event Grid then redelivers. Synchronous functions run on the worker's thread pool, of
`PYTHON_THREADPOOL_THREAD_COUNT` threads (the Python worker's default: min(32, cores + 4)); more
requests wait for a thread, as they do on one instance. Used by the event storm benchmark's
worker processes (one `EventHost` per process, like one function app instance).
"""

from __future__ import annotations

import collections
import json
import os
import threading
import time
import urllib.parse
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from guardrail_workbench.serving import serve_in_thread, stop_serving

WEBHOOK_PATH = "/runtime/webhooks/EventGrid"


def worker_threads() -> int:
    """The Python worker's thread pool for synchronous functions."""
    configured = os.environ.get("PYTHON_THREADPOOL_THREAD_COUNT", "").strip()
    return (
        int(configured)
        if configured.isdigit() and int(configured) > 0
        else min(32, (os.cpu_count() or 1) + 4)
    )


class EventHost:
    """`with EventHost() as host:` then `host.url("on_resource_write")` is the endpoint to subscribe."""

    def __init__(
        self, handlers: dict[str, Callable[..., Any]] | None = None, threads: int | None = None
    ) -> None:
        from guardrail_workbench.stack import function_handlers

        self.handlers = handlers if handlers is not None else function_handlers()
        self.pool = ThreadPoolExecutor(
            max_workers=threads or worker_threads(), thread_name_prefix="eventhost"
        )
        self.lock = threading.Lock()
        self.invocations: collections.Counter[str] = collections.Counter()  # by function
        self.failures: collections.Counter[str] = collections.Counter()  # invocations that raised
        self.first_errors: list[str] = []
        self.busy_seconds = 0.0  # summed invocation time
        host = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                split = urllib.parse.urlsplit(self.path)
                function = urllib.parse.parse_qs(split.query).get("functionName", [""])[0]
                if split.path.rstrip("/") != WEBHOOK_PATH:
                    status = 404
                elif self.headers.get("aeg-event-type", "").lower() != "notification":
                    status = 400
                elif function not in host.handlers:
                    status = 404
                else:
                    status = host.deliver(function, body)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

        class Server(ThreadingHTTPServer):
            request_queue_size = 512  # the listen backlog (Kestrel's default): bursts are not refused

        self.server = Server(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def url(self, function: str) -> str:
        return f"http://127.0.0.1:{self.port}{WEBHOOK_PATH}?functionName={urllib.parse.quote(function)}"

    def start(self) -> EventHost:
        self.thread = serve_in_thread(self.server, f"eventhost-{self.port}")
        return self

    def stop(self) -> None:
        stop_serving(self.server, self.thread)
        self.pool.shutdown(wait=True)

    def __enter__(self) -> EventHost:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def deliver(self, function: str, body: bytes) -> int:
        """One delivery: each event to the function on the worker's pool; 202, or 500 if one raised
        (or the body is not JSON)."""
        try:
            payload = json.loads(body)
        except ValueError:
            return 400
        events = payload if isinstance(payload, list) else [payload]
        ok = True
        for event in events:
            ok = self.pool.submit(self._invoke, function, event).result() and ok
        return 202 if ok else 500

    def _invoke(self, function: str, event: Any) -> bool:
        from guardrail_workbench.stack import as_function_event

        started = time.monotonic()
        error: Exception | None = None
        try:
            self.handlers[function](as_function_event(event))
        except Exception as raised:
            error = raised
        with self.lock:
            self.invocations[function] += 1
            self.busy_seconds += time.monotonic() - started
            if error is not None:
                self.failures[function] += 1
                if len(self.first_errors) < 5:
                    self.first_errors.append(f"{function}: {type(error).__name__}: {error}")
        return error is None

    def counts(self) -> dict[str, Any]:
        with self.lock:
            return {
                "invocations": dict(self.invocations),
                "failures": dict(self.failures),
                "first_errors": list(self.first_errors),
                "busy_seconds": round(self.busy_seconds, 2),
            }
