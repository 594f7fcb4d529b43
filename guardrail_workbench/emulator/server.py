"""The emulator's HTTPS front: a threaded HTTP/1.1 server on 127.0.0.1 speaking TLS with the local CA."""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import ssl
import threading
import urllib.parse
from collections.abc import Callable, Iterable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

from guardrail_workbench import tls
from guardrail_workbench.serving import serve_in_thread, stop_serving

from . import events as ev
from .arm import ArmApp, Request, Response
from .faults import FaultPlan

_log = logging.getLogger(__name__)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256
    app: ArmApp
    tls_context: ssl.SSLContext

    def server_bind(self) -> None:
        # HTTPServer.server_bind resolves the host's FQDN (a DNS lookup); loopback needs none.
        import socketserver

        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)

    def get_request(self) -> tuple[Any, Any]:
        sock, address = super().get_request()
        # Handshake lazily in the handler thread, so a slow client cannot stall accept().
        return self.tls_context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False), address


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        _log.debug("%s - %s", self.address_string(), format % args)

    def setup(self) -> None:
        super().setup()
        with contextlib.suppress(OSError):  # small responses must not wait for Nagle / delayed ACKs
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._tls_ok = True
        try:
            self.connection.do_handshake()
        except (ssl.SSLError, OSError) as exc:
            _log.debug("TLS handshake with %s failed: %s", self.client_address, exc)
            self._tls_ok = False
            self.close_connection = True

    def handle(self) -> None:
        if not self._tls_ok:
            return
        with contextlib.suppress(ssl.SSLError, ConnectionError, TimeoutError):
            super().handle()

    def finish(self) -> None:
        with contextlib.suppress(ssl.SSLError, OSError):
            super().finish()

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def _dispatch(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        split = urllib.parse.urlsplit(self.path)
        query = {k.lower(): v for k, v in urllib.parse.parse_qsl(split.query, keep_blank_values=True)}
        headers = {k.lower(): v for k, v in self.headers.items()}
        request = Request(
            method=method,
            path=urllib.parse.unquote(split.path),
            query=query,
            headers=headers,
            body=raw,
            client_ip=self.client_address[0],
            query_string=split.query,
        )
        response = self.server.app.handle(request)
        if response.drop:  # a lost response: the write happened, the client hears nothing
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        self._send(response)

    def _send(self, response: Response) -> None:
        payload = b"" if response.body is None else json.dumps(response.body).encode()
        phrase = self.responses.get(response.status, ("",))[0]
        head = [f"{self.protocol_version} {response.status} {phrase}", f"Date: {self.date_time_string()}"]
        head.extend(f"{name}: {value}" for name, value in response.headers.items())
        if response.body is not None:
            head.append("Content-Type: application/json; charset=utf-8")
        head.append(f"Content-Length: {len(payload)}")
        head.append("Cache-Control: no-cache")
        self.log_request(response.status)
        # status line, headers and body in one write: one TLS record, no Nagle/delayed-ACK stall
        self.wfile.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + payload)


class Emulator:
    """A local Azure Resource Manager for Cognitive Services accounts, over HTTPS on 127.0.0.1.

    >>> with Emulator(page_size=2) as arm:
    ...     arm.seed({...}); client = CognitiveServicesManagementClient(cred, sub, base_url=arm.endpoint,
    ...                                                             connection_verify=arm.ca_bundle)
    """

    def __init__(
        self,
        port: int = 0,
        page_size: int = 100,
        *,
        async_writes: bool = False,
        accepted_writes: bool = False,
        async_polls: int = 1,
        async_seconds: float = 5.0,
        write_rate: float | None = None,
        ip_refusal: Literal["private", "non-public"] = "private",
        network_acls_patch: Literal["replace", "merge"] = "replace",
        host: str = "127.0.0.1",
        ca_directory: str | None = None,
    ) -> None:
        if host not in ("127.0.0.1", "localhost"):
            raise ValueError("the emulator only listens on loopback")
        self.host = host
        self.port = port
        self.dispatcher = ev.Dispatcher()
        self.app = ArmApp(
            page_size=page_size,
            async_writes=async_writes,
            accepted_writes=accepted_writes,
            async_polls=async_polls,
            async_seconds=async_seconds,
            write_rate=write_rate,
            ip_refusal=ip_refusal,
            network_acls_patch=network_acls_patch,
            dispatcher=self.dispatcher,
        )
        self._ca_directory = ca_directory
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # ---------------------------------------------------------------- lifecycle

    def start(self) -> Emulator:
        if self._server is not None:
            return self
        server = _Server((self.host, self.port), _Handler)
        server.app = self.app
        server.tls_context = tls.server_context()
        self._server = server
        self.port = int(server.server_address[1])
        self.app.base_url = self.endpoint
        self._thread = serve_in_thread(server, f"arm-emulator-{self.port}", poll_interval=0.02)
        return self

    def stop(self) -> None:
        if self._server is not None:
            stop_serving(self._server, self._thread)
        self._server, self._thread = None, None
        self.dispatcher.close()

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def endpoint(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def ca_bundle(self) -> str:
        return tls.ca_bundle_path(self._ca_directory)

    # ---------------------------------------------------------------- behaviour switches

    @property
    def faults(self) -> FaultPlan:
        return self.app.faults

    @property
    def page_size(self) -> int:
        return self.app.page_size

    @page_size.setter
    def page_size(self, value: int) -> None:
        self.app.page_size = value

    @property
    def async_writes(self) -> bool:
        return self.app.async_writes

    @async_writes.setter
    def async_writes(self, value: bool) -> None:
        self.app.async_writes = value

    @property
    def accepted_writes(self) -> bool:
        """PATCH answers 200 with provisioningState Accepted; the account turns terminal after
        `async_polls` more requests (the SDK's poller GETs the account until then)."""
        return self.app.accepted_writes

    @accepted_writes.setter
    def accepted_writes(self, value: bool) -> None:
        self.app.accepted_writes = value

    @property
    def write_rate(self) -> float | None:
        return self.app.write_rate

    @write_rate.setter
    def write_rate(self, value: float | None) -> None:
        self.app.write_rate = value

    def deny_vnet_join(self, resource_id: str | None = None) -> None:
        """Writes carrying virtualNetworkRules answer 403 LinkedAuthorizationFailed (one account or all)."""
        with self.app.lock:
            self.app.vnet_join_denied.add("*" if resource_id is None else resource_id.lower())

    def allow_vnet_join(self, resource_id: str | None = None) -> None:
        with self.app.lock:
            if resource_id is None:
                self.app.vnet_join_denied.clear()
            else:
                self.app.vnet_join_denied.discard(resource_id.lower())

    def set_busy(self, resource_id: str, calls: int, state: str = "Accepted") -> None:
        """The account reports `state` and refuses writes with 409 for its next `calls` requests."""
        self.app.set_busy(resource_id, calls, state)

    def connect_private_endpoint(
        self,
        account_id: str,
        private_endpoint_id: str,
        *,
        name: str | None = None,
        status: str = "Approved",
        description: str | None = None,
        claims: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """A private endpoint made elsewhere (any subscription or tenant) connects to the account:
        the connection appears in `properties.privateEndpointConnections`, auto-approved (the
        requester owns the account, as the seed document describes) unless `status` says otherwise,
        with its resource-write events (made by `claims`, else the emulator's default caller)."""
        return self.app.connect_private_endpoint(
            account_id, private_endpoint_id, name=name, status=status, description=description, claims=claims
        )

    def register_token(self, token: str, claims: Mapping[str, Any]) -> None:
        """Treat the exact bearer `token` as the caller described by `claims` (upn, oid, appid, name, ...)."""
        with self.app.lock:
            self.app.tokens[token] = dict(claims)

    # ---------------------------------------------------------------- tenant contents

    def seed(self, data: Mapping[str, Any]) -> None:
        self.app.seed(data)

    def seed_file(self, path: str | Path) -> None:
        self.seed(load_tenant(path))

    def dump(self) -> dict[str, Any]:
        return self.app.dump()

    def put_account(self, body: Mapping[str, Any], resource_id: str | None = None) -> dict[str, Any]:
        """Store an account directly (no request, no events); creates subscription and group as needed."""
        return self.app.put_account_direct(body, resource_id)

    def account(self, resource_id: str) -> dict[str, Any] | None:
        """The stored account body (a copy), or None."""
        return self.app.get_account_direct(resource_id)

    def accounts(self) -> list[dict[str, Any]]:
        return list(self.app.iter_accounts())

    # ---------------------------------------------------------------- events

    def subscribe(
        self,
        callback: Callable[[dict[str, Any]], object],
        schema: ev.Schema = "eventgrid",
        kinds: Iterable[str] = ev.ALL_KINDS,
    ) -> ev.Subscriber:
        """Deliver each event (one dict, in `schema`) to `callback` on a background thread."""
        return self.dispatcher.subscribe(ev.Subscriber(schema=schema, kinds=_kinds(kinds), callback=callback))

    def subscribe_http(
        self,
        url: str,
        schema: ev.Schema = "eventgrid",
        kinds: Iterable[str] = ev.ALL_KINDS,
        retry_delays: tuple[float, ...] = (0.5, 2.0),
        timeout: float = 30.0,
    ) -> ev.Subscriber:
        """POST each event to a loopback `url` (Event Grid schema as a one-element array, CloudEvents as an
        object) with `aeg-event-type: Notification`, like Event Grid's webhook delivery."""
        return self.dispatcher.subscribe(
            ev.Subscriber(
                schema=schema, kinds=_kinds(kinds), url=url, retry_delays=retry_delays, timeout=timeout
            )
        )

    def unsubscribe(self, subscriber: ev.Subscriber) -> None:
        self.dispatcher.unsubscribe(subscriber.id)

    def wait_for_events(self, timeout: float = 10.0) -> bool:
        """Block until every queued event has been delivered; False on timeout."""
        return self.dispatcher.wait_idle(timeout)

    @property
    def events(self) -> list[dict[str, Any]]:
        """Every event emitted so far (Event Grid schema)."""
        return list(self.dispatcher.history)


def _kinds(kinds: Iterable[str]) -> frozenset[str]:
    chosen = frozenset(kinds)
    unknown = chosen - ev.ALL_KINDS
    if unknown:
        raise ValueError(f"unknown event kinds: {sorted(unknown)}")
    return chosen


def load_tenant(path: str | Path) -> dict[str, Any]:
    """Read a tenant document (JSON, or YAML by extension)."""
    text = Path(path).read_text(encoding="utf-8")
    if str(path).endswith((".yaml", ".yml")):
        import yaml

        data = yaml.safe_load(text)
    else:
        data = json.loads(text)
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a tenant document must be a mapping")
    return data
