"""The local servers' one way to run in a thread and stop (the emulator, the token endpoint, the
receivers): a daemon thread serving until `stop_serving`."""

from __future__ import annotations

import socketserver
import threading


def serve_in_thread(
    server: socketserver.BaseServer, name: str, poll_interval: float = 0.05
) -> threading.Thread:
    """Start `server.serve_forever` in a daemon thread named `name`."""
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": poll_interval}, daemon=True, name=name
    )
    thread.start()
    return thread


def stop_serving(server: socketserver.BaseServer, thread: threading.Thread | None) -> None:
    """Stop the loop, close the socket and wait (at most 5 s) for the thread."""
    server.shutdown()
    server.server_close()
    if thread is not None:
        thread.join(timeout=5)
