"""A loopback managed-identity token endpoint, App Service style, for `az login --identity` and
`DefaultAzureCredential` against the local tenant.

App Service (and Functions) give a managed identity through two environment variables:
`IDENTITY_ENDPOINT` (an http URL on the host) and `IDENTITY_HEADER` (a secret the caller sends back
as `X-IDENTITY-HEADER`). `GET {IDENTITY_ENDPOINT}?resource=...&api-version=2019-08-01` answers
`{"access_token", "expires_on", "resource", "token_type", "client_id"}`. MSAL (under `az login
--identity`) and azure-identity's `ManagedIdentityCredential` both speak it. The token here is an
unsigned JWT-shaped token naming the configured caller; the ARM emulator reads the caller from it.

    with TokenEndpoint(claims={"appid": ..., "name": "ci-pipeline"}) as endpoint:
        os.environ.update(endpoint.env)
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time
import urllib.parse
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

from guardrail_workbench.emulator.identity import DEFAULT_TENANT_ID, make_token
from guardrail_workbench.serving import serve_in_thread, stop_serving

#: The local guardrail's identity (a system-assigned managed identity: an app, no upn).
DEFAULT_CALLER: dict[str, Any] = {
    "appid": "9f1c3a52-6b0e-4d7a-8c1e-5f2b7a9d0e11",
    "oid": "6d2f0c11-8a4b-4e3f-9c7d-1b2a3c4d5e6f",
    "name": "ai-services-network-guardrail",
    "idtyp": "app",
}
LIFETIME = 3600
_SIGNATURE = base64.urlsafe_b64encode(b"unsigned local token").rstrip(b"=").decode("ascii")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    owner: TokenEndpoint

    def server_bind(self) -> None:  # no reverse DNS lookup of the host name
        import socketserver

        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        return None

    def do_GET(self) -> None:
        owner = self.server.owner
        split = urllib.parse.urlsplit(self.path)
        query = dict(urllib.parse.parse_qsl(split.query))
        if self.headers.get("X-IDENTITY-HEADER") != owner.secret:
            return self._reply(
                401, {"error": "invalid_request", "error_description": "X-IDENTITY-HEADER is wrong"}
            )
        resource = query.get("resource") or query.get("scope", "").removesuffix("/.default")
        if not resource:
            return self._reply(400, {"error": "invalid_request", "error_description": "resource is required"})
        owner.requests.append(resource)
        self._reply(200, owner.token_response(resource, query.get("client_id")))

    def _reply(self, status: int, body: Mapping[str, Any]) -> None:
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


class TokenEndpoint:
    """An App Service-style managed-identity endpoint on 127.0.0.1 (plain http, as on App Service)."""

    def __init__(
        self,
        claims: Mapping[str, Any] | None = None,
        *,
        tenant_id: str = DEFAULT_TENANT_ID,
        port: int = 0,
        secret: str | None = None,
    ) -> None:
        self.claims = dict(claims or DEFAULT_CALLER)
        self.tenant_id = tenant_id
        self.port = port
        self.secret = secret or secrets.token_hex(16)
        self.requests: list[str] = []  # the resources asked for
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def token_response(self, resource: str, client_id: str | None = None) -> dict[str, Any]:
        now = int(time.time())
        claims = {
            "aud": resource,
            "iss": f"https://sts.windows.net/{self.tenant_id}/",
            "iat": now,
            "nbf": now,
            "exp": now + LIFETIME,
            "tid": self.tenant_id,
            "ver": "1.0",
            **self.claims,
        }
        header_and_payload = make_token(claims).rsplit(".", 1)[0]
        return {
            # a well-formed (base64url) but meaningless signature: az decodes the token with PyJWT
            "access_token": f"{header_and_payload}.{_SIGNATURE}",
            "expires_on": str(now + LIFETIME),
            "resource": resource,
            "token_type": "Bearer",
            "client_id": client_id or str(self.claims.get("appid", "")),
        }

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/msi/token"

    @property
    def env(self) -> dict[str, str]:
        """What App Service sets for a managed identity: export these for az and azure-identity."""
        return {"IDENTITY_ENDPOINT": self.url, "IDENTITY_HEADER": self.secret}

    def start(self) -> TokenEndpoint:
        if self._server is None:
            server = _Server(("127.0.0.1", self.port), _Handler)
            server.owner = self
            self._server = server
            self.port = int(server.server_address[1])
            self._thread = serve_in_thread(server, f"token-endpoint-{self.port}")
        return self

    def stop(self) -> None:
        if self._server is not None:
            stop_serving(self._server, self._thread)
        self._server, self._thread = None, None

    def __enter__(self) -> TokenEndpoint:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
