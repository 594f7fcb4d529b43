"""Real clients nobody here wrote, against the local tenant over HTTPS on loopback.

The Azure CLI (`.venv-az`, requirements-az.txt) and Cloud Custodian (`.venv-custodian`,
requirements-custodian.txt) run as separate processes in their own venvs, installed and cached by
scripts/test. They trust the emulator's CA through REQUESTS_CA_BUNDLE and get their tokens from the
workbench's App Service-style managed-identity endpoint (IDENTITY_ENDPOINT / IDENTITY_HEADER).

Every command goes through `Clients.run`, which keeps a transcript: the command, its exit code,
its output and the HTTP method, path and status of each request it made (from the emulator's
`GET /_emulator/requests`). A failing test prints the transcript.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import ssl
import subprocess
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from guardrail_workbench import tls
from guardrail_workbench.emulator import Emulator, account_id, local_env
from guardrail_workbench.token_endpoint import TokenEndpoint

ROOT = Path(__file__).resolve().parents[2]
AZ_VENV = ROOT / ".venv-az"
CUSTODIAN_VENV = ROOT / ".venv-custodian"
HERE = Path(__file__).resolve().parent

SUB = "5e3f0c2a-1b4d-4c6e-8f10-2a3b4c5d6e7f"
SUB_OTHER = "7a1b2c3d-4e5f-4061-8273-9a8b7c6d5e4f"
RG = "myresourcegroup"
ACCOUNT = account_id(SUB, RG, "myaccount")
VNET = f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.Network/virtualNetworks/myvnet"
SUBNET = f"{VNET}/subnets/mysubnet"

AZ_CALLER = {"appid": "3c1d7e0a-5f2b-4a9c-8d6e-0b1a2c3d4e5f", "name": "az-cli-operator", "idtyp": "app"}
GUARDRAIL_CALLER = {
    "appid": "9f1c3a52-6b0e-4d7a-8c1e-5f2b7a9d0e11",
    "oid": "6d2f0c11-8a4b-4e3f-9c7d-1b2a3c4d5e6f",
    "name": "ai-services-network-guardrail",
    "idtyp": "app",
}


def _account(name: str, kind: str = "AIServices", **properties: Any) -> dict[str, Any]:
    return {
        "name": name,
        "kind": kind,
        "sku": {"name": "S0"},
        "location": "westeurope",
        "tags": {"owner": "team-a"},
        "properties": {"publicNetworkAccess": "Enabled", **properties},
    }


LOCKED = {"defaultAction": "Deny", "bypass": "None", "ipRules": [], "virtualNetworkRules": []}
TENANT: dict[str, Any] = {
    "subscriptions": [
        {
            "subscriptionId": SUB,
            "displayName": "Contoso AI",
            "resourceGroups": [
                {
                    "name": RG,
                    "location": "westeurope",
                    "accounts": [
                        _account("myaccount"),  # no networkAcls: every network allowed
                        _account(
                            "myopenai",
                            "OpenAI",
                            customSubDomainName="contoso-openai",
                            networkAcls={"defaultAction": "Allow", "ipRules": [], "virtualNetworkRules": []},
                        ),
                        _account("locked", customSubDomainName="contoso-locked", networkAcls=LOCKED),
                        _account(
                            "private", customSubDomainName="contoso-private", publicNetworkAccess="Disabled"
                        ),
                    ],
                }
            ],
        },
        {
            "subscriptionId": SUB_OTHER,
            "displayName": "Contoso Sandbox",
            "resourceGroups": [{"name": "rg-sandbox", "accounts": [_account("sandbox-open")]}],
        },
    ],
    "virtualNetworks": [
        {
            "id": VNET,
            "location": "westeurope",
            "properties": {
                "addressSpace": {"addressPrefixes": ["10.1.0.0/16"]},
                "subnets": [{"name": "mysubnet", "properties": {"addressPrefix": "10.1.0.0/24"}}],
            },
        }
    ],
}


def require_venv(venv: Path, program: str, requirements: str) -> Path:
    """The program in its venv; skip when the venv was never made (fail under CI, and when the
    venv exists but the program does not: a broken install must not pass as a skip)."""
    path = venv / "bin" / program
    if path.exists():
        return path
    message = (
        f"{program} is not installed in {venv.name}: run scripts/test, or "
        f"python3 -m venv {venv.name} && {venv.name}/bin/pip install -r {requirements}"
    )
    if venv.exists() or os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@dataclass
class Result:
    argv: list[str]
    returncode: int
    stdout: str
    stderr: str
    requests: list[dict[str, Any]]

    def json(self) -> Any:
        return json.loads(self.stdout)

    def describe(self) -> str:
        lines = [f"$ {shlex.join(self.argv)}  -> exit {self.returncode}"]
        lines += [f"    {r['method']} {r['path']} -> {r['status']}" for r in self.requests]
        if self.returncode != 0 or not self.requests:
            lines += [f"    | {line}" for line in (self.stderr.strip().splitlines()[-15:])]
        return "\n".join(lines)


@dataclass
class LocalTenant:
    emulator: Emulator
    az_token: TokenEndpoint
    guardrail_token: TokenEndpoint
    home: Path
    transcript: list[Result] = field(default_factory=list)
    _context: ssl.SSLContext = field(default_factory=tls.client_context)

    def control(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.emulator.endpoint + path,
            data=data,
            method=method,
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, context=self._context, timeout=10) as response:
            raw = response.read()
        return json.loads(raw) if raw else None

    def env(self, token: TokenEndpoint, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        keep = {
            k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "LC_ALL", "TMPDIR", "SYSTEMROOT")
        }
        return {
            **keep,
            "HOME": str(self.home),
            **local_env(self.emulator, token.env),
            "AZURE_CONFIG_DIR": str(self.home / "azure"),
            "AZURE_CORE_COLLECT_TELEMETRY": "false",
            "AZURE_CORE_NO_COLOR": "true",
            "AZURE_CORE_SURVEY_MESSAGE": "false",
            "AZURE_CORE_ONLY_SHOW_ERRORS": "true",
            **(extra or {}),
        }

    def run(
        self,
        argv: Sequence[str],
        token: TokenEndpoint,
        *,
        extra_env: Mapping[str, str] | None = None,
        check: bool = True,
        timeout: float = 180,
    ) -> Result:
        since = self.control("GET", "/_emulator/requests?since=0")["next"]
        done = subprocess.run(
            list(argv),
            env=self.env(token, extra_env),
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=self.home,
        )
        requests = self.control("GET", f"/_emulator/requests?since={since}")["requests"]
        result = Result(list(argv), done.returncode, done.stdout, done.stderr, requests)
        self.transcript.append(result)
        if check:
            assert done.returncode == 0, f"command failed:\n{result.describe()}"
        return result


@pytest.fixture(scope="package")
def tenant(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalTenant]:
    home = tmp_path_factory.mktemp("clients-home")
    with (
        Emulator(port=0, ca_directory=str(home)) as emulator,
        TokenEndpoint(AZ_CALLER, tenant_id=emulator.app.tenant_id) as az_token,
        TokenEndpoint(GUARDRAIL_CALLER, tenant_id=emulator.app.tenant_id) as guardrail_token,
    ):
        emulator.seed(TENANT)
        yield LocalTenant(emulator, az_token, guardrail_token, home)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.failed and call.when == "call":
        local = item.funcargs.get("tenant") if hasattr(item, "funcargs") else None
        if isinstance(local, LocalTenant) and local.transcript:
            text = "\n".join(r.describe() for r in local.transcript[-40:])
            report.sections.append(("client commands (HTTP method, path, status)", text))
    return report


def guardrail_bin() -> str:
    found = ROOT / ".venv" / "bin" / "guardrail"
    return str(found) if found.exists() else (shutil.which("guardrail") or "guardrail")
