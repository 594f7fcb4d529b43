"""The pooled transport: requests' per-request environment lookups stay on exactly when the
environment sets a proxy; a CA-bundle variable is honoured by passing it on once. The environment is
read by the settings (`Settings.http`), once; the transport reads none."""

from __future__ import annotations

from pathlib import Path
from unittest import mock

import pytest

from guardrail.settings import load_settings
from guardrail.transport import pooled_transport

VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")


def _session(monkeypatch: pytest.MonkeyPatch, **env: str) -> object:
    for name in VARIABLES:  # the process's own variables play no part: only what the settings read
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    environment = load_settings(env).http
    transport = pooled_transport(pool_size=16, connection_timeout=5, read_timeout=5, environment=environment)
    return transport.session


def test_no_proxy_in_the_environment_skips_the_lookups(monkeypatch: pytest.MonkeyPatch) -> None:
    assert _session(monkeypatch).trust_env is False  # type: ignore[attr-defined]


@pytest.mark.parametrize("name", ["HTTPS_PROXY", "https_proxy", "ALL_PROXY", "NO_PROXY"])
def test_a_proxy_in_the_environment_is_honoured(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    session = _session(monkeypatch, **{name: "http://127.0.0.1:3128"})
    assert session.trust_env is True  # type: ignore[attr-defined]
    if name.upper() == "HTTPS_PROXY":
        monkeypatch.setenv(name, "http://127.0.0.1:3128")  # requests' own per-request lookup
        proxies = session.merge_environment_settings(  # type: ignore[attr-defined]
            "https://management.azure.com/x", {}, False, None, None
        )["proxies"]
        assert proxies.get("https") == "http://127.0.0.1:3128"


@pytest.mark.parametrize("name", ["REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"])
def test_a_ca_bundle_in_the_environment_verifies_as_requests_would(
    monkeypatch: pytest.MonkeyPatch, name: str, tmp_path: Path
) -> None:
    for other in VARIABLES:
        monkeypatch.delenv(other, raising=False)
        monkeypatch.delenv(other.lower(), raising=False)
    bundle = tmp_path / "bundle.pem"
    bundle.write_text("-----BEGIN CERTIFICATE-----\n", encoding="utf-8")
    environment = load_settings({name: str(bundle)}).http
    transport = pooled_transport(pool_size=16, connection_timeout=5, read_timeout=5, environment=environment)
    assert transport.session.trust_env is False
    assert transport.connection_config.verify == str(bundle)
    explicit = pooled_transport(
        pool_size=16,
        connection_timeout=5,
        read_timeout=5,
        connection_verify="/emulator-ca.pem",
        environment=environment,
    )
    assert explicit.connection_config.verify == "/emulator-ca.pem"  # an explicit bundle still wins


def test_threads_beyond_the_pool_wait_for_a_kept_alive_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    session = _session(monkeypatch)
    for scheme in ("https://", "http://"):
        pool = session.get_adapter(scheme + "127.0.0.1").poolmanager  # type: ignore[attr-defined]
        assert pool.connection_pool_kw["block"] is True  # no open-then-discard beyond the pool
        assert pool.connection_pool_kw["maxsize"] == 16


def test_a_thread_waits_for_a_pooled_connection_in_bounded_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue #22 item 1: a pool whose connections are all checked out (never read, never closed)
    answers the next request with a connection error after `pool_wait`, never a wait forever."""
    import http.server
    import threading
    import time

    import requests

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            body = b"x" * 100_000  # more than a socket buffer: an unread response holds its connection
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        for name in VARIABLES:
            monkeypatch.delenv(name, raising=False)
        transport = pooled_transport(pool_size=10, connection_timeout=5, read_timeout=5, pool_wait=0.3)
        url = f"http://127.0.0.1:{server.server_address[1]}/"
        held = [transport.session.get(url, stream=True) for _ in range(10)]  # the whole pool, unread
        started = time.monotonic()
        with pytest.raises(requests.exceptions.ConnectionError, match="pool exhausted"):
            transport.session.get(url, stream=True)
        assert time.monotonic() - started < 5
        held[0].close()  # a closed response gives its connection back
        transport.session.get(url).close()
        for response in held[1:]:
            response.close()
    finally:
        server.shutdown()
        server.server_close()


def _prepared(session: object, request: object) -> tuple[object, ...]:
    prepared = session.prepare_request(request)  # type: ignore[attr-defined]
    return (prepared.method, prepared.url, dict(prepared.headers), prepared.body, prepared.hooks)


@pytest.mark.parametrize(
    "method,url,headers,data,session_headers",
    [
        (
            "GET",
            "https://management.azure.com/subscriptions/s/x?api-version=2025-09-01",
            {"Authorization": "Bearer t"},
            {},
            {},
        ),
        (
            "PATCH",
            "https://127.0.0.1:8443/a?api-version=1&b=%20c",
            {"If-Match": '"e"', "Content-Type": "application/json"},
            b'{"a": 1}',
            {},
        ),
        (
            "POST",
            "http://127.0.0.1:10002/devstoreaccount1/$batch",
            {"Accept": "application/json", "X": None},
            b"--batch",
            {"Y": "1"},
        ),
        ("DELETE", "https://host/é/path with space?q=ü", None, None, {"Accept": None}),
    ],
)
def test_the_lean_session_prepares_what_requests_prepares(
    method: str,
    url: str,
    headers: dict[str, str] | None,
    data: object,
    session_headers: dict[str, str | None],
) -> None:
    """The pooled transport's session skips requests' Protocol checks for an empty params and auth
    (`lean_session_type`): the PreparedRequest is the one requests' own Session builds, cookies the
    session holds (a server set them) included; with params or auth it is requests' own way."""
    import requests

    from guardrail.transport import lean_session_type

    lean, plain = lean_session_type()(), requests.Session()
    for session in (lean, plain):
        session.trust_env = False
        session.headers.update(session_headers)
        session.cookies.set("ARRAffinity", "abc", domain="", path="/")
    request = requests.Request(method, url, headers=headers, data=data or {}, params={})
    with mock.patch.object(requests.Session, "prepare_request", side_effect=AssertionError("requests' way")):
        fast = _prepared(lean, request)  # the lean way, not requests' own
    assert fast == _prepared(plain, request)
    assert _prepared(lean, request)[2].get("Cookie") == "ARRAffinity=abc"
    with_params = requests.Request(method, url, headers=headers, params={"a": "b c"}, auth=("u", "p"))
    assert _prepared(lean, with_params) == _prepared(plain, with_params)


def test_the_pooled_transport_uses_the_lean_session() -> None:
    from guardrail.transport import lean_session_type

    transport = pooled_transport(pool_size=4, connection_timeout=1, read_timeout=1)
    assert type(transport.session) is lean_session_type() and transport.session.trust_env is False
