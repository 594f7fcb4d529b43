"""Fixtures for the ARM emulator suite: a running emulator over HTTPS and real SDK clients against it.

- `emulator`: a started `Emulator` (port 0, page size 2) seeded with `TENANT` (two subscriptions).
- `client(subscription_id=SUB1, token=None)`: a `CognitiveServicesManagementClient` bound to it.
- `raw(method, path, body=None, headers=None, token=...)`: one HTTPS request with urllib, no SDK
  (for what the SDK would hide: missing Authorization, missing api-version, exact status codes).
- `contracts`: the shared contracts folder (../shared/contracts beside the repository).
"""

from __future__ import annotations

import json
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from guardrail_workbench import tls
from guardrail_workbench.emulator import Emulator, account_id, make_token

REPO = Path(__file__).resolve().parents[2]
CONTRACTS = (REPO / ".." / "shared" / "contracts").resolve()
API = "2025-09-01"
SUB1 = "00000000-1111-2222-3333-444444444444"
SUB2 = "99999999-8888-7777-6666-555555555555"
RG = "rg1"
ACCT1 = account_id(SUB1, RG, "acct1")
USER_TOKEN = make_token(
    {"upn": "jane@contoso.example", "name": "Jane Doe", "oid": "11111111-2222-3333-4444-555555555555"}
)


def account_body(name: str, **properties: Any) -> dict[str, Any]:
    return {
        "name": name,
        "kind": "AIServices",
        "sku": {"name": "S0"},
        "location": "westus",
        "tags": {"owner": "team-a"},
        "properties": {"customSubDomainName": name, "publicNetworkAccess": "Enabled", **properties},
    }


OPEN_ACLS = {"defaultAction": "Allow", "bypass": "AzureServices", "ipRules": [], "virtualNetworkRules": []}

TENANT: dict[str, Any] = {
    "subscriptions": [
        {
            "subscriptionId": SUB1,
            "displayName": "One",
            "resourceGroups": [
                {
                    "name": RG,
                    "location": "westus",
                    "accounts": [
                        account_body("acct1", networkAcls=OPEN_ACLS, disableLocalAuth=False),
                        account_body("acct2"),
                        account_body("acct3"),
                    ],
                },
                {
                    "name": "rg2",
                    "location": "eastus",
                    "accounts": [account_body("other1"), account_body("other2")],
                },
            ],
        },
        {
            "subscriptionId": SUB2,
            "displayName": "Two",
            "resourceGroups": [{"name": "rg-b", "accounts": [account_body(f"b{i}") for i in range(3)]}],
        },
    ]
}


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    with Emulator(port=0, page_size=2) as arm:
        arm.seed(TENANT)
        yield arm


class _Credential:
    def __init__(self, token: str) -> None:
        self.token = token

    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        from azure.core.credentials import AccessToken

        return AccessToken(self.token, int(time.time()) + 3600)


@pytest.fixture
def client(emulator: Emulator) -> Callable[..., Any]:
    from azure.mgmt.cognitiveservices import CognitiveServicesManagementClient

    made: list[Any] = []

    def make(subscription_id: str = SUB1, token: str = USER_TOKEN, **kwargs: Any) -> Any:
        kwargs.setdefault("retry_total", 0)
        made.append(
            CognitiveServicesManagementClient(
                _Credential(token),
                subscription_id,
                base_url=emulator.endpoint,
                connection_verify=emulator.ca_bundle,
                polling_interval=0.01,
                **kwargs,
            )
        )
        return made[-1]

    return make


class RawResponse:
    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status = status
        self.headers = {k.lower(): v for k, v in headers.items()}
        self.body = body

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


@pytest.fixture(scope="session")
def tls_client_context() -> ssl.SSLContext:
    return tls.client_context()  # loading the system trust store costs ~0.1 s: once per session


@pytest.fixture
def raw(emulator: Emulator, tls_client_context: ssl.SSLContext) -> Callable[..., RawResponse]:
    context = tls_client_context

    def send(
        method: str,
        path: str,
        body: Any = None,
        headers: dict[str, str] | None = None,
        token: str | None = USER_TOKEN,
    ) -> RawResponse:
        url = path if path.startswith("https://") else emulator.endpoint + path
        all_headers = {"Content-Type": "application/json", **(headers or {})}
        if token is not None:
            all_headers["Authorization"] = f"Bearer {token}"
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(url, data=data, method=method, headers=all_headers)
        try:
            with urllib.request.urlopen(request, context=context, timeout=10) as response:
                return RawResponse(response.status, dict(response.headers), response.read())
        except urllib.error.HTTPError as error:
            return RawResponse(error.code, dict(error.headers), error.read())

    return send


@pytest.fixture(scope="session")
def contracts() -> Path:
    if not CONTRACTS.is_dir():
        pytest.fail(
            f"shared contracts not found at {CONTRACTS} (expected ../shared/contracts beside the repo)"
        )
    return CONTRACTS


def key_shape(value: Any) -> Any:
    """The keys at every level (lists: the shape of their first item), for shape comparisons."""
    if isinstance(value, dict):
        return {k: key_shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [key_shape(value[0])] if value else []
    return type(value).__name__
