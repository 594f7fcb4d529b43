"""Local HTTPS stand-ins for the services the sinks call: the Azure Monitor Logs Ingestion
endpoint, a Teams Workflows webhook and the ACS Email REST API. Loopback only (127.0.0.1, a
free port, TLS from guardrail_workbench.tls). Each records what it received, checks requests
against the service contract (recording every violation in `.violations`), and can fail on
demand: `fail_next(n, status=503)` or `timeout_next(n)`.

Use as context managers:

    with IngestionReceiver() as rx:
        sink = MonitorSink(rx.endpoint, rx.dcr_immutable_id, credential=StaticTokenCredential(),
                           connection_verify=ca_bundle_path())
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import hmac
import json
import re
import secrets
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar, Self
from urllib.parse import parse_qs, urlsplit

from guardrail_workbench.serving import serve_in_thread, stop_serving
from guardrail_workbench.tls import server_context


@dataclass
class RecordedRequest:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    """Header names lower-cased."""
    body: bytes
    status: int = 0


@dataclass
class _Failure:
    status: int | None  # None: timeout (answer nothing for `delay` seconds)
    delay: float = 0.0
    retry_after: str | None = None


@dataclass
class Reply:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


class _Handler(BaseHTTPRequestHandler):
    # Small responses must not wait for Nagle's algorithm and the client's delayed ACK (~40 ms).
    disable_nagle_algorithm = True
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
        return None

    def _handle(self) -> None:
        owner = self.server.owner
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        parts = urlsplit(self.path)
        rec = RecordedRequest(
            method=self.command,
            path=parts.path,
            query=parse_qs(parts.query, keep_blank_values=True),
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
        )
        rec_raw_path = self.path
        failure = owner._take_failure()
        if failure is not None and failure.status is None:
            rec.status = 0  # no answer
            owner._record(rec)
            owner._stopping.wait(failure.delay)
            self.close_connection = True
            return
        if failure is not None and failure.status is not None:
            reply = Reply(failure.status, {"error": {"code": "InjectedFailure", "message": "fail_next"}})
            if failure.retry_after is not None:
                reply.headers["Retry-After"] = failure.retry_after
        else:
            try:
                reply = owner.handle(rec, rec_raw_path)
            except Exception as err:  # a bug in a receiver must show, not hang the client
                owner.violations.append(f"receiver error: {err!r}")
                reply = Reply(500, {"error": {"code": "ReceiverError", "message": repr(err)}})
        rec.status = reply.status
        owner._record(rec)
        payload = b""
        if reply.body is not None:
            payload = reply.body if isinstance(reply.body, bytes) else json.dumps(reply.body).encode("utf-8")
        try:
            self.send_response(reply.status)
            for k, v in reply.headers.items():
                self.send_header(k, v)
            if payload:
                self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            if payload:
                self.wfile.write(payload)
        except OSError:
            pass

    do_POST = _handle
    do_GET = _handle
    do_PUT = _handle
    do_PATCH = _handle
    do_DELETE = _handle


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    owner: _Receiver


class _Receiver:
    """Base: an HTTPS server on 127.0.0.1:<free port> in a background thread."""

    kind: ClassVar[str] = "receiver"

    def __init__(self) -> None:
        self.requests: list[RecordedRequest] = []
        self.violations: list[str] = []
        self._failures: deque[_Failure] = deque()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.owner = self
        self._server.socket = server_context().wrap_socket(self._server.socket, server_side=True)
        self.port: int = self._server.server_address[1]
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    # -- lifecycle
    def start(self) -> Self:
        if self._thread is None:
            self._thread = serve_in_thread(self._server, f"{type(self).__name__}-{self.port}")
        return self

    def stop(self) -> None:
        self._stopping.set()
        stop_serving(self._server, self._thread)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- failure injection
    def fail_next(self, n: int = 1, status: int = 503, *, retry_after: str | None = None) -> None:
        """The next n requests get `status` (with an error body) instead of being handled."""
        with self._lock:
            self._failures.extend(_Failure(status, retry_after=retry_after) for _ in range(n))

    def timeout_next(self, n: int = 1, delay: float = 2.0) -> None:
        """The next n requests get no answer for `delay` seconds, then the connection closes."""
        with self._lock:
            self._failures.extend(_Failure(None, delay=delay) for _ in range(n))

    def _take_failure(self) -> _Failure | None:
        with self._lock:
            return self._failures.popleft() if self._failures else None

    def _record(self, rec: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(rec)

    def _violation(self, text: str) -> Reply:
        self.violations.append(text)
        return Reply(400, {"error": {"code": "BadRequest", "message": text}})

    def handle(self, rec: RecordedRequest, raw_path: str) -> Reply:  # pragma: no cover - abstract
        raise NotImplementedError


# --------------------------------------------------------------------------- Logs Ingestion


class IngestionReceiver(_Receiver):
    """The Logs Ingestion API of a Data Collection Endpoint:
    POST /dataCollectionRules/{dcrImmutableId}/streams/{stream}?api-version=2023-01-01,
    gzip JSON array, Authorization: Bearer. 204 when the request is right, 400 (and a recorded
    violation) otherwise. With `columns`, a row key outside the stream declaration is recorded as
    a violation but answered 204, as the service does (it silently drops unknown columns)."""

    kind = "ingestion"
    API_VERSION: ClassVar[str] = "2023-01-01"

    def __init__(
        self,
        *,
        dcr_immutable_id: str = "dcr-00000000000000000000000000000000",
        stream_name: str = "Custom-GuardrailFindings_CL",
        columns: tuple[str, ...] | None = None,
        expected_token: str | None = None,
    ) -> None:
        super().__init__()
        self.dcr_immutable_id = dcr_immutable_id
        self.stream_name = stream_name
        self.columns = columns
        self.expected_token = expected_token
        self.records: list[dict[str, Any]] = []
        self.batches: list[list[dict[str, Any]]] = []

    @property
    def endpoint(self) -> str:
        return self.base_url

    def handle(self, rec: RecordedRequest, raw_path: str) -> Reply:
        m = re.fullmatch(r"/dataCollectionRules/([^/]+)/streams/([^/]+)", rec.path)
        if rec.method != "POST":
            return self._violation(f"method {rec.method}, expected POST")
        if not m:
            return self._violation(f"path {rec.path!r} is not /dataCollectionRules/{{id}}/streams/{{stream}}")
        if m.group(1) != self.dcr_immutable_id:
            return self._violation(f"unknown DCR immutable id {m.group(1)!r}")
        if not re.fullmatch(r"Custom-[A-Za-z0-9_]+_CL", m.group(2)):
            return self._violation(f"stream {m.group(2)!r} is not Custom-{{Table}}_CL")
        if m.group(2) != self.stream_name:
            return self._violation(f"stream {m.group(2)!r} is not declared in the DCR ({self.stream_name})")
        if rec.query.get("api-version") != [self.API_VERSION]:
            return self._violation(f"api-version {rec.query.get('api-version')}, expected {self.API_VERSION}")
        auth = rec.headers.get("authorization", "")
        if not auth.startswith("Bearer ") or not auth[7:].strip():
            return self._violation("missing Authorization: Bearer token")
        if self.expected_token is not None and auth[7:] != self.expected_token:
            self.violations.append("wrong bearer token")
            return Reply(401, {"error": {"code": "InvalidToken", "message": "wrong bearer token"}})
        if rec.headers.get("content-encoding", "").lower() != "gzip":
            return self._violation(f"Content-Encoding {rec.headers.get('content-encoding')!r}, expected gzip")
        if not rec.headers.get("content-type", "").startswith("application/json"):
            return self._violation(
                f"Content-Type {rec.headers.get('content-type')!r}, expected application/json"
            )
        try:
            rows = json.loads(gzip.decompress(rec.body))
        except Exception as err:
            return self._violation(f"body is not gzip JSON: {err}")
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            return self._violation("body is not a JSON array of objects")
        for row in rows:
            if "TimeGenerated" not in row:
                return self._violation("a row has no TimeGenerated")
        if self.columns is not None:
            for row in rows:
                extra = sorted(set(row) - set(self.columns))
                if extra:
                    self.violations.append(f"columns not in the stream declaration (dropped): {extra}")
        with self._lock:
            self.batches.append(rows)
            self.records.extend(rows)
        return Reply(204)


# --------------------------------------------------------------------------- Teams Workflows


class TeamsReceiver(_Receiver):
    """A Teams Workflows trigger URL ("When a Teams webhook request is received"). Checks the
    signature in the query, JSON content, the message envelope and the 28 KB limit; answers
    202. `webhook_url` includes a secret `sig` (tests check it never reaches a log)."""

    kind = "teams"
    MAX_BYTES: ClassVar[int] = 28 * 1024

    def __init__(self) -> None:
        super().__init__()
        self.workflow_id = uuid.uuid4().hex
        self.signature = secrets.token_urlsafe(32)
        self.messages: list[dict[str, Any]] = []
        self.cards: list[dict[str, Any]] = []

    @property
    def path(self) -> str:
        return f"/workflows/{self.workflow_id}/triggers/manual/paths/invoke"

    @property
    def webhook_url(self) -> str:
        return (
            f"{self.base_url}{self.path}?api-version=2016-06-01&sp=%2Ftriggers%2Fmanual%2Frun"
            f"&sv=1.0&sig={self.signature}"
        )

    def handle(self, rec: RecordedRequest, raw_path: str) -> Reply:
        if rec.method != "POST" or rec.path != self.path:
            return Reply(404, {"error": {"code": "NotFound", "message": "no such workflow"}})
        if rec.query.get("sig") != [self.signature]:
            self.violations.append("bad or missing sig")
            return Reply(401, {"error": {"code": "DirectApiAuthorizationRequired", "message": "bad sig"}})
        if not rec.headers.get("content-type", "").startswith("application/json"):
            return self._violation(
                f"Content-Type {rec.headers.get('content-type')!r}, expected application/json"
            )
        if len(rec.body) > self.MAX_BYTES:
            self.violations.append(f"message is {len(rec.body)} bytes, over {self.MAX_BYTES}")
            return Reply(413, {"error": {"code": "RequestEntityTooLarge", "message": "too large"}})
        try:
            msg = json.loads(rec.body)
        except Exception as err:
            return self._violation(f"body is not JSON: {err}")
        if not isinstance(msg, dict) or msg.get("type") != "message":
            return self._violation('body is not {"type": "message", ...}')
        attachments = msg.get("attachments")
        if not isinstance(attachments, list) or not attachments:
            return self._violation("message has no attachments")
        for att in attachments:
            if (
                not isinstance(att, dict)
                or att.get("contentType") != "application/vnd.microsoft.card.adaptive"
            ):
                return self._violation(
                    "attachment contentType is not application/vnd.microsoft.card.adaptive"
                )
            content = att.get("content")
            if not isinstance(content, dict) or content.get("type") != "AdaptiveCard":
                return self._violation("attachment content is not an AdaptiveCard")
        with self._lock:
            self.messages.append(msg)
            self.cards.extend(att["content"] for att in attachments)
        return Reply(202)


# --------------------------------------------------------------------------- ACS Email


class EmailReceiver(_Receiver):
    """The ACS Email data plane as azure-communication-email 1.1.0 calls it:
    POST /emails:send?api-version=... (Operation-Id header optional) -> 202 with
    Operation-Location, operation-id and x-ms-request-id headers and {"id", "status": "Running"};
    GET /emails/operations/{id}?api-version=... -> 200 {"id", "status", "error"}.
    Auth: HMAC-SHA256 (connection string; verified with the access key) or Bearer.

    The 202 always says "Running" (the message is queued); `pending_polls` makes each operation
    answer "Running" to that many GETs before its final `final_status`;
    `retry_after` adds a Retry-After header to the 202 and to running polls."""

    kind = "email"
    API_VERSIONS: ClassVar[frozenset[str]] = frozenset({"2023-03-31", "2024-07-01-preview", "2025-09-01"})

    def __init__(
        self, *, pending_polls: int = 0, final_status: str = "Succeeded", retry_after: str | None = None
    ) -> None:
        super().__init__()
        self.access_key = base64.b64encode(secrets.token_bytes(32)).decode("ascii")
        self.pending_polls = pending_polls
        self.final_status = final_status
        self.retry_after = retry_after
        self.messages: list[dict[str, Any]] = []
        self.operations: dict[str, dict[str, Any]] = {}
        self.auth_schemes: list[str] = []

    @property
    def endpoint(self) -> str:
        return self.base_url

    @property
    def connection_string(self) -> str:
        return f"endpoint={self.base_url}/;accesskey={self.access_key}"

    def _check_auth(self, rec: RecordedRequest, raw_path: str) -> str | None:
        auth = rec.headers.get("authorization", "")
        if auth.startswith("Bearer ") and auth[7:].strip():
            self.auth_schemes.append("bearer")
            return None
        if not auth.startswith("HMAC-SHA256 "):
            return "missing Authorization (HMAC-SHA256 or Bearer)"
        params = dict(p.split("=", 1) for p in auth[len("HMAC-SHA256 ") :].split("&") if "=" in p)
        if params.get("SignedHeaders") != "x-ms-date;host;x-ms-content-sha256":
            return f"unexpected SignedHeaders {params.get('SignedHeaders')!r}"
        date = rec.headers.get("x-ms-date", "")
        content_hash = rec.headers.get("x-ms-content-sha256", "")
        body_hash = base64.b64encode(hashlib.sha256(rec.body).digest()).decode("ascii")
        if content_hash != body_hash:
            return "x-ms-content-sha256 does not match the body"
        try:
            skew = abs((datetime.now(UTC) - parsedate_to_datetime(date)).total_seconds())
        except Exception:
            return f"bad x-ms-date {date!r}"
        if skew > 900:
            return "x-ms-date is more than 15 minutes off"
        to_sign = f"{rec.method}\n{raw_path}\n{date};127.0.0.1:{self.port};{content_hash}"
        expected = base64.b64encode(
            hmac.new(base64.b64decode(self.access_key), to_sign.encode("utf-8"), hashlib.sha256).digest()
        ).decode("ascii")
        if not hmac.compare_digest(params.get("Signature", ""), expected):
            return "HMAC signature does not verify"
        self.auth_schemes.append("hmac")
        return None

    def _check_message(self, msg: Any) -> str | None:
        if not isinstance(msg, dict):
            return "body is not a JSON object"
        if not isinstance(msg.get("senderAddress"), str) or "@" not in msg["senderAddress"]:
            return "senderAddress missing or not an address"
        recipients = msg.get("recipients")
        to = recipients.get("to") if isinstance(recipients, dict) else None
        if not isinstance(to, list) or not to:
            return "recipients.to must be a non-empty list"
        for r in to:
            if not isinstance(r, dict) or not isinstance(r.get("address"), str) or "@" not in r["address"]:
                return "each recipients.to[] needs an address"
        content = msg.get("content")
        if not isinstance(content, dict) or not content.get("subject"):
            return "content.subject is required"
        if not content.get("plainText") and not content.get("html"):
            return "content needs plainText or html"
        known = {"senderAddress", "recipients", "content", "attachments", "headers", "replyTo"}
        known.add("userEngagementTrackingDisabled")
        unknown = set(msg) - known
        if unknown:
            return f"unknown message fields {sorted(unknown)}"
        return None

    def _operation_reply(self, op: dict[str, Any], status: int, *, queued: bool = False) -> Reply:
        headers = {
            "Operation-Location": f"{self.base_url}/emails/operations/{op['id']}?api-version={op['api']}",
            "operation-id": op["id"],
            "x-ms-request-id": str(uuid.uuid4()),
        }
        state = "Running" if queued or op["polls_left"] > 0 else op["final"]
        if self.retry_after is not None and state == "Running":
            headers["Retry-After"] = self.retry_after
        body: dict[str, Any] = {"id": op["id"], "status": state}
        if state in ("Failed", "Canceled"):
            body["error"] = {"code": "EmailDroppedAllRecipientsSuppressed", "message": "injected failure"}
        return Reply(status, body, headers)

    def handle(self, rec: RecordedRequest, raw_path: str) -> Reply:
        api = rec.query.get("api-version", [""])[0]
        if api not in self.API_VERSIONS:
            return self._violation(f"api-version {api!r} not one of {sorted(self.API_VERSIONS)}")
        problem = self._check_auth(rec, raw_path)
        if problem:
            self.violations.append(problem)
            return Reply(401, {"error": {"code": "Denied", "message": problem}})
        if rec.method == "POST" and rec.path == "/emails:send":
            if not rec.headers.get("content-type", "").startswith("application/json"):
                return self._violation("Content-Type is not application/json")
            try:
                msg = json.loads(rec.body)
            except Exception as err:
                return self._violation(f"body is not JSON: {err}")
            problem = self._check_message(msg)
            if problem:
                return self._violation(problem)
            op_id = rec.headers.get("operation-id") or str(uuid.uuid4())
            with self._lock:
                op = self.operations.get(op_id)
                if op is None:  # repeatability: the same Operation-Id sends one email
                    op = {
                        "id": op_id,
                        "api": api,
                        "polls_left": self.pending_polls,
                        "final": self.final_status,
                    }
                    self.operations[op_id] = op
                    self.messages.append(msg)
            return self._operation_reply(op, 202, queued=True)
        m = re.fullmatch(r"/emails/operations/([^/]+)", rec.path)
        if rec.method == "GET" and m:
            with self._lock:
                op = self.operations.get(m.group(1))
                if op is None:
                    return Reply(404, {"error": {"code": "NotFound", "message": "no such operation"}})
                if op["polls_left"] > 0:
                    op["polls_left"] -= 1
                    reply_op = dict(op, polls_left=op["polls_left"] + 1)
                else:
                    reply_op = op
            return self._operation_reply(reply_op, 200)
        return Reply(404, {"error": {"code": "NotFound", "message": f"{rec.method} {rec.path}"}})


def wait_for(predicate: Any, timeout: float = 5.0) -> bool:
    """Poll `predicate()` until true or `timeout` seconds pass (for background deliveries)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return bool(predicate())
