"""The loopback managed-identity token endpoint, `guardrail emulator --env`, and the guardrail's
DefaultAzureCredential going through them (no static-token special case)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from guardrail_workbench.emulator.identity import decode_token as token_claims
from guardrail_workbench.token_endpoint import DEFAULT_CALLER, TokenEndpoint

from .conftest import ACCT1, API, TENANT

REPO = Path(__file__).resolve().parents[2]


def _get(url: str, headers: dict[str, str]) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_the_endpoint_answers_like_app_service() -> None:
    with TokenEndpoint({"appid": "app-1", "name": "pipeline"}, tenant_id="t-1") as endpoint:
        url = (
            endpoint.env["IDENTITY_ENDPOINT"]
            + "?resource=https://management.azure.com&api-version=2019-08-01"
        )
        status, body = _get(url, {"X-IDENTITY-HEADER": endpoint.env["IDENTITY_HEADER"]})
        assert status == 200
        assert set(body) >= {"access_token", "expires_on", "resource", "token_type"}
        assert body["resource"] == "https://management.azure.com" and body["token_type"] == "Bearer"
        assert int(body["expires_on"]) > time.time() + 3000
        claims = token_claims(body["access_token"])
        assert claims is not None
        assert (claims["appid"], claims["name"], claims["tid"], claims["aud"]) == (
            "app-1",
            "pipeline",
            "t-1",
            "https://management.azure.com",
        )
        assert _get(url, {"X-IDENTITY-HEADER": "wrong"})[0] == 401
        assert (
            _get(endpoint.url + "?api-version=2019-08-01", {"X-IDENTITY-HEADER": endpoint.secret})[0] == 400
        )


def test_managed_identity_credential_gets_its_token_there(monkeypatch: pytest.MonkeyPatch) -> None:
    from azure.identity import DefaultAzureCredential

    with TokenEndpoint() as endpoint:
        for key, value in endpoint.env.items():
            monkeypatch.setenv(key, value)
        for key in (
            "AZURE_CLIENT_ID",
            "AZURE_CLIENT_SECRET",
            "AZURE_TENANT_ID",
            "AZURE_FEDERATED_TOKEN_FILE",
        ):
            monkeypatch.delenv(key, raising=False)
        token = DefaultAzureCredential(exclude_cli_credential=True).get_token(
            "https://management.azure.com/.default"
        )
        assert token_claims(token.token)["appid"] == DEFAULT_CALLER["appid"]  # type: ignore[index]
        assert endpoint.requests == ["https://management.azure.com"]


def test_the_local_stack_can_use_default_azure_credential(tmp_path: Path) -> None:
    from guardrail.gateway import ArmGateway
    from guardrail.settings import load_settings
    from guardrail_workbench.stack import GUARDRAIL_CLAIMS, LocalStack

    with LocalStack(out_dir=tmp_path, azurite=False, receivers=False, managed_identity=True) as stack:
        assert stack.env["ARM_CREDENTIAL"] == "default" and "IDENTITY_ENDPOINT" in stack.env
        stack.emulator.seed(TENANT)
        saved = {k: os.environ.get(k) for k in stack.env}
        os.environ.update(stack.env)
        try:
            gateway = ArmGateway(load_settings().arm)
            token = gateway.credential.get_token("https://management.azure.com/.default").token
            assert token_claims(token)["appid"] == GUARDRAIL_CLAIMS["appid"]
            assert any(
                a["id"] == ACCT1
                for a in gateway.list_accounts([TENANT["subscriptions"][0]["subscriptionId"]])
            )
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
        assert stack.token_endpoint.requests  # the gateway asked the managed-identity endpoint


def test_emulator_env_prints_the_environment_for_the_whole_local_tenant(tmp_path: Path) -> None:
    seed = tmp_path / "tenant.json"
    seed.write_text(json.dumps(TENANT), encoding="utf-8")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "guardrail_workbench.emulator",
            "--port",
            "0",
            "--seed",
            str(seed),
            "--env",
            "--no-azurite",
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        env: dict[str, str] = {}
        while True:
            line = process.stdout.readline()
            assert line, process.stderr.read() if process.stderr else "no output"
            if line.startswith("export "):
                key, _, value = line[len("export ") :].strip().partition("=")
                env[key] = value.strip("'")
            if line.startswith("# az:"):
                break
        assert env["ARM_CREDENTIAL"] == "default"
        assert env["REQUESTS_CA_BUNDLE"] == env["ARM_CA_BUNDLE"]
        status, body = _get(
            env["IDENTITY_ENDPOINT"] + "?resource=https://management.azure.com&api-version=2019-08-01",
            {"X-IDENTITY-HEADER": env["IDENTITY_HEADER"]},
        )
        assert status == 200
        import ssl

        context = ssl.create_default_context(cafile=env["ARM_CA_BUNDLE"])
        request = urllib.request.Request(
            f"{env['ARM_ENDPOINT']}{ACCT1}?api-version={API}",
            headers={"Authorization": f"Bearer {body['access_token']}"},
        )
        with urllib.request.urlopen(request, context=context, timeout=10) as response:
            assert json.loads(response.read())["id"] == ACCT1
    finally:
        process.terminate()
        process.wait(timeout=20)
    assert process.returncode == 0


def test_partial_network_acls_patch_under_both_readings() -> None:
    from guardrail_workbench.emulator import ArmApp, Request

    body = {"properties": {"networkAcls": {"bypass": "AzureServices"}}}
    results = {}
    for reading in ("replace", "merge"):
        app = ArmApp(network_acls_patch=reading)  # type: ignore[arg-type]
        app.seed(TENANT)
        request = Request(
            "PATCH", ACCT1, {"api-version": API}, {"authorization": "Bearer x"}, json.dumps(body).encode()
        )
        response = app.handle(request)
        assert response.status == 200
        results[reading] = response.body["properties"]["networkAcls"]
    assert results["replace"] == {"bypass": "AzureServices"}
    assert results["merge"] == {
        "defaultAction": "Allow",
        "bypass": "AzureServices",
        "ipRules": [],
        "virtualNetworkRules": [],
    }


def test_the_emulators_tokens_carry_claims_and_anything_else_is_no_token() -> None:
    from guardrail_workbench.emulator.identity import make_token

    assert token_claims(make_token({"appid": "a", "n": 1})) == {"appid": "a", "n": 1}
    for not_a_jwt in ("opaque", "a.b", "a..c", "a.!!!.c", f"a.{'W10'}.c"):  # W10 = base64url("[]")
        assert token_claims(not_a_jwt) is None
