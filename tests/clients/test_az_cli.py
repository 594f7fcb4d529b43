"""The seed document's Azure CLI commands, end to end, against the local tenant.

`az` (azure-cli from PyPI, in .venv-az) registers the emulator as a cloud by endpoint discovery
(`GET /metadata/endpoints`), logs in with `az login --identity` through the local App
Service-style token endpoint and runs the steps of "Configure Azure AI services virtual
networks": show the rule set, set the custom subdomain, deny by default, add/list/remove IP and
subnet rules, ARM's refusals, the trusted-services PATCH at api-version 2023-10-01-preview, and at
the end the guardrail's own fix, read back through `az`.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any

import pytest

from .conftest import (
    ACCOUNT,
    AZ_CALLER,
    AZ_VENV,
    GUARDRAIL_CALLER,
    RG,
    ROOT,
    SUB,
    SUBNET,
    LocalTenant,
    Result,
    guardrail_bin,
    require_venv,
)

pytestmark = pytest.mark.clients
ACCOUNT_ARGS = ["--resource-group", RG, "--name", "myaccount"]
SUBNET_ARGS = ["--resource-group", RG, "--name", "mysubnet", "--vnet-name", "myvnet"]


@pytest.fixture(scope="module")
def az(tenant: LocalTenant) -> Any:
    program = str(require_venv(AZ_VENV, "az", "requirements-az.txt"))
    _no_version_check(tenant)

    def run(*args: str, check: bool = True) -> Result:
        return tenant.run([program, *args], tenant.az_token, check=check)

    # a cloud by endpoint discovery (GET {arm}/metadata/endpoints, no token), then a managed identity
    run(
        "cloud",
        "register",
        "--name",
        "LocalEmulator",
        "--endpoint-resource-manager",
        tenant.emulator.endpoint,
    )
    run("cloud", "set", "--name", "LocalEmulator")
    login = run("login", "--identity", "--output", "json")
    assert {s["id"] for s in login.json()} >= {SUB}
    run("account", "set", "--subscription", SUB)
    return run


def _no_version_check(tenant: LocalTenant) -> None:
    """az's first run looks for a newer release on Microsoft's storage (a DNS lookup and a HEAD
    beyond loopback); a fresh version-check cache, as az writes it, says it just did."""
    pins = (ROOT / "requirements-az.txt").read_text(encoding="utf-8")
    version = re.search(r"^azure-cli==(\S+)", pins, re.MULTILINE)
    assert version is not None
    local = {"local": version.group(1), "pypi": version.group(1)}
    cache = {
        "versions": {"core": dict(local), "azure-cli": dict(local)},
        "update_time": datetime.now().strftime("%Y-%m-%d %H:%M:%S.%f"),
    }
    folder = tenant.home / "azure"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "versionCheck.json").write_text(json.dumps(cache), encoding="utf-8")


def _refused(result: Result, code: str) -> None:
    assert result.returncode != 0, f"expected a refusal:\n{result.describe()}"
    assert code in result.stderr, result.describe()
    assert any(r["status"] == 400 for r in result.requests), result.describe()


def test_login_and_cloud_discovery(tenant: LocalTenant, az: Any) -> None:
    cloud = az("cloud", "show", "--output", "json").json()
    assert cloud["endpoints"]["resourceManager"].rstrip("/") == tenant.emulator.endpoint
    assert cloud["isActive"] is True
    account = az("account", "show", "--output", "json").json()
    assert account["id"] == SUB and account["user"]["type"] == "servicePrincipal"
    assert any(
        r["path"] == "/metadata/endpoints" and r["status"] == 200 for r in tenant.transcript[0].requests
    )
    assert tenant.az_token.requests  # az asked the token endpoint, not a static token


def test_the_seed_documents_commands(tenant: LocalTenant, az: Any) -> None:
    # Display the status of the default rule, and the resource ID
    shown = az(
        "cognitiveservices",
        "account",
        "show",
        *ACCOUNT_ARGS,
        "--query",
        "properties.networkAcls.defaultAction",
    )
    assert shown.stdout.strip() == ""  # no networkAcls at all: every network is allowed
    resource_id = az(
        "cognitiveservices", "account", "show", *ACCOUNT_ARGS, "--query", "id", "--output", "tsv"
    )
    assert resource_id.stdout.strip() == ACCOUNT

    # A custom subdomain (needed for virtual network rules): set once, never changed
    updated = az(
        "cognitiveservices", "account", "update", *ACCOUNT_ARGS, "--custom-domain", "contoso-myaccount"
    )
    assert (
        updated.json()["properties"]["endpoint"] == "https://contoso-myaccount.cognitiveservices.azure.com/"
    )
    _refused_change = az(
        "cognitiveservices", "account", "update", *ACCOUNT_ARGS, "--custom-domain", "renamed", check=False
    )
    assert _refused_change.returncode != 0 and "CustomSubDomainName" in _refused_change.stderr
    taken = az(
        "cognitiveservices",
        "account",
        "update",
        "--resource-group",
        RG,
        "--name",
        "locked",
        "--custom-domain",
        "contoso-openai",
        check=False,
    )
    assert taken.returncode != 0, taken.describe()

    # Deny by default (`az resource update --ids` looks the API version up in the providers API)
    deny = az(
        "resource", "update", "--ids", ACCOUNT, "--set", "properties.networkAcls={'defaultAction':'Deny'}"
    )
    assert deny.json()["properties"]["networkAcls"]["defaultAction"] == "Deny"
    assert any(
        "/providers/Microsoft.CognitiveServices" in r["path"] and r["status"] == 200 for r in deny.requests
    ), deny.describe()

    # IP rules: add a range and an address, list, remove
    for value in ("16.17.18.0/24", "16.17.18.19"):
        az(
            "cognitiveservices",
            "account",
            "network-rule",
            "add",
            *ACCOUNT_ARGS,
            "--ip-address",
            value,
            "--output",
            "none",
        )
    listed = az("cognitiveservices", "account", "network-rule", "list", *ACCOUNT_ARGS, "--query", "ipRules")
    assert [r["value"] for r in listed.json()] == ["16.17.18.0/24", "16.17.18.19"]
    az(
        "cognitiveservices",
        "account",
        "network-rule",
        "remove",
        *ACCOUNT_ARGS,
        "--ip-address",
        "16.17.18.19",
        "--output",
        "none",
    )
    listed = az("cognitiveservices", "account", "network-rule", "list", *ACCOUNT_ARGS, "--query", "ipRules")
    assert [r["value"] for r in listed.json()] == ["16.17.18.0/24"]

    # ARM's refusals: /32 and /31 prefixes, private ranges, IPv6
    for value in (
        "16.17.18.19/32",
        "16.17.18.18/31",
        "10.1.2.3",
        "172.16.5.0/24",
        "192.168.1.1",
        "2001:db8::1",
    ):
        _refused(
            az(
                "cognitiveservices",
                "account",
                "network-rule",
                "add",
                *ACCOUNT_ARGS,
                "--ip-address",
                value,
                check=False,
            ),
            "InvalidIpRule",
        )

    # The subnet: enable the service endpoint, read its ID, add and remove the subnet rule
    endpoints = az(
        "network",
        "vnet",
        "subnet",
        "update",
        *SUBNET_ARGS,
        "--service-endpoints",
        "Microsoft.CognitiveServices",
    )
    assert [e["service"] for e in endpoints.json()["serviceEndpoints"]] == ["Microsoft.CognitiveServices"]
    subnet_id = az(
        "network",
        "vnet",
        "subnet",
        "show",
        *SUBNET_ARGS,
        "--query",
        "id",
        "--output",
        "tsv",
    ).stdout.strip()
    assert subnet_id == SUBNET
    az(
        "cognitiveservices",
        "account",
        "network-rule",
        "add",
        *ACCOUNT_ARGS,
        "--subnet",
        subnet_id,
        "--output",
        "none",
    )
    rules = az(
        "cognitiveservices",
        "account",
        "network-rule",
        "list",
        *ACCOUNT_ARGS,
        "--query",
        "virtualNetworkRules",
    ).json()
    assert [(r["id"], r["state"]) for r in rules] == [(SUBNET, "Succeeded")]
    az(
        "cognitiveservices",
        "account",
        "network-rule",
        "remove",
        *ACCOUNT_ARGS,
        "--subnet",
        subnet_id,
        "--output",
        "none",
    )
    assert (
        az(
            "cognitiveservices",
            "account",
            "network-rule",
            "list",
            *ACCOUNT_ARGS,
            "--query",
            "virtualNetworkRules",
        ).json()
        == []
    )

    # ARM refuses a subnet without the service endpoint unless the rule says to ignore it (az always
    # sets ignoreMissingVnetServiceEndpoint, so this goes through `az rest`)
    az(
        "network",
        "vnet",
        "subnet",
        "update",
        *SUBNET_ARGS,
        "--service-endpoints",
        "Microsoft.Storage",
        "--output",
        "none",
    )
    url = f"{tenant.emulator.endpoint}{ACCOUNT}?api-version=2025-09-01"
    body = {"properties": {"networkAcls": {"defaultAction": "Deny", "virtualNetworkRules": [{"id": SUBNET}]}}}
    missing = az("rest", "--method", "patch", "--url", url, "--body", json.dumps(body), check=False)
    _refused(missing, "NetworkAclsValidationFailure")

    # Trusted services: the document's PATCH of networkAcls.bypass at 2023-10-01-preview, with a
    # token from `az account get-access-token` (the document uses curl; az rest sends the same)
    token = az(
        "account",
        "get-access-token",
        "--resource",
        "https://management.azure.com",
        "--query",
        "accessToken",
        "--output",
        "tsv",
    )
    assert token.stdout.count(".") == 2
    preview = f"{tenant.emulator.endpoint}{ACCOUNT}?api-version=2023-10-01-preview"
    bypass = az(
        "rest",
        "--method",
        "patch",
        "--url",
        preview,
        "--body",
        '{"properties":{"networkAcls":{"bypass":"AzureServices"}}}',
    )
    assert bypass.json()["properties"]["networkAcls"]["bypass"] == "AzureServices"
    assert [r["status"] for r in bypass.requests if r["method"] == "PATCH"] == [200]

    account = tenant.emulator.account(ACCOUNT)
    assert account is not None
    assert account["systemData"]["lastModifiedBy"] == AZ_CALLER["appid"]  # the caller az logged in as


def test_the_guardrails_fix_read_back_through_az(tenant: LocalTenant, az: Any) -> None:
    # An open OpenAI account: the guardrail (DefaultAzureCredential -> the token endpoint) fixes it
    openai = ACCOUNT.replace("/myaccount", "/myopenai")
    endpoint = az(
        "cognitiveservices",
        "account",
        "show",
        "--resource-group",
        RG,
        "--name",
        "myopenai",
        "--query",
        "properties.endpoint",
        "--output",
        "tsv",
    )
    assert endpoint.stdout.strip() == "https://contoso-openai.openai.azure.com/"
    fixed = tenant.run(
        [guardrail_bin(), "check", openai],
        tenant.guardrail_token,
        extra_env={"GUARDRAIL_FINDINGS_FILE": str(tenant.home / "findings.jsonl")},
        check=False,
    )
    assert fixed.returncode in (0, 1), fixed.describe()
    outcome = json.loads(fixed.stdout.strip().splitlines()[-1])
    assert outcome["action"] == "remediated", fixed.describe()
    assert any(r["method"] == "PATCH" and r["path"] == openai for r in fixed.requests), fixed.describe()
    assert tenant.guardrail_token.requests  # DefaultAzureCredential went to the managed-identity endpoint
    acls = az(
        "cognitiveservices", "account", "network-rule", "list", "--resource-group", RG, "--name", "myopenai"
    ).json()
    assert acls["defaultAction"] == "Deny"
    shown = az(
        "cognitiveservices",
        "account",
        "show",
        "--resource-group",
        RG,
        "--name",
        "myopenai",
        "--output",
        "json",
    ).json()
    assert shown["systemData"]["lastModifiedBy"] == GUARDRAIL_CALLER["appid"]


def test_the_managed_network_commands(tenant: LocalTenant, az: Any) -> None:
    # The Foundry managed network and its outbound rules (issue 24) through az's own commands, the ones
    # the recordings in ../shared/contracts/recorded-arm/azure-cli came from: each write is a 202 whose
    # operation az polls at the mfeOperationsStatus URL until it ends.
    network = ["cognitiveservices", "account", "managed-network"]
    created = az(
        *network, "create", *ACCOUNT_ARGS, "--managed-network", "allow_internet_outbound", "-o", "json"
    )
    assert any(r["method"] == "PUT" and r["status"] == 202 for r in created.requests), created.describe()
    assert any("/mfeOperationsStatus/mnet:" in r["path"] for r in created.requests), created.describe()
    shown = az(*network, "show", *ACCOUNT_ARGS, "-o", "json").json()
    assert shown["properties"]["managedNetwork"]["isolationMode"] == "AllowInternetOutbound"

    az(*network, "update", *ACCOUNT_ARGS, "--managed-network", "allow_only_approved_outbound", "-o", "json")
    rule = ["--rule", "exfil-fqdn"]
    az(
        *network,
        "outbound-rule",
        "set",
        *ACCOUNT_ARGS,
        *rule,
        "--type",
        "fqdn",
        "--destination",
        "paste.example.org",
        "--category",
        "UserDefined",
    )
    got = az(*network, "outbound-rule", "show", *ACCOUNT_ARGS, *rule, "-o", "json").json()
    assert got["properties"]["destination"] == "paste.example.org" and got["properties"]["status"] == "Active"
    listed = az(*network, "outbound-rule", "list", *ACCOUNT_ARGS, "-o", "json").json()
    assert sorted(r["properties"]["category"] for r in listed) == ["Required", "UserDefined"]

    removed = az(*network, "outbound-rule", "remove", *ACCOUNT_ARGS, *rule, "--yes")
    assert any(r["method"] == "DELETE" and r["status"] == 202 for r in removed.requests), removed.describe()
    shown = az(*network, "show", *ACCOUNT_ARGS, "-o", "json").json()
    assert shown["properties"]["managedNetwork"]["isolationMode"] == "AllowOnlyApprovedOutbound"
    assert list(shown["properties"]["managedNetwork"]["outboundRules"]) == [
        "__SYS_ST_AzureActiveDirectory_TCP"
    ]


def test_private_endpoints_operations_and_soft_delete_as_arm_recorded_them(
    tenant: LocalTenant, az: Any
) -> None:
    """The recorded-arm scenarios (issue #25) through az itself: an account created as an ARM
    operation (async mode: 201 Creating, az polls Cognitive Services' operationResults), its private
    link resources, a private endpoint made with `az network private-endpoint create` (approved at
    once: az's caller is of the emulator's tenant) and a manual one (Pending until approved), their
    connections on the account, deleting the endpoints (202, Microsoft.Network operations), then
    delete, recover (201), delete and purge (202 with an operation)."""
    group = ["--resource-group", RG]
    tenant.emulator.async_writes = True
    try:
        created = az(
            "cognitiveservices", "account", "create", *group, "--name", "pe-target", "--kind",
            "TextAnalytics", "--sku", "S", "--location", "westeurope", "--custom-domain", "contoso-pe-target",
            "--yes", "--output", "json",
        )  # fmt: skip
    finally:
        tenant.emulator.async_writes = False
    assert created.json()["properties"]["provisioningState"] == "Succeeded"
    assert any(r["method"] == "PUT" and r["status"] == 201 for r in created.requests), created.describe()
    assert any("/operationResults/" in r["path"] for r in created.requests), created.describe()
    target = created.json()["id"]

    links = az("network", "private-link-resource", "list", "--id", target, "--output", "json").json()
    assert [link["properties"]["groupId"] for link in links] == ["account"]

    endpoint_args = ["--vnet-name", "myvnet", "--subnet", "mysubnet", "--private-connection-resource-id"]
    for name, manual in (("pe-auto", []), ("pe-manual", ["--manual-request", "true"])):
        made = az(
            "network", "private-endpoint", "create", *group, "--name", name, *endpoint_args, target,
            "--group-id", "account", "--connection-name", name, "--location", "westeurope", *manual,
            "--output", "json",
        )  # fmt: skip
        assert any(r["method"] == "PUT" and r["status"] == 201 for r in made.requests), made.describe()

    def states() -> dict[str, str]:
        listed = az("network", "private-endpoint-connection", "list", "--id", target, "--output", "json")
        return {
            c["properties"]["privateEndpoint"]["id"].rsplit("/", 1)[-1]: c["properties"][
                "privateLinkServiceConnectionState"
            ]["status"]
            for c in listed.json()
        }

    assert states() == {"pe-auto": "Approved", "pe-manual": "Pending"}
    account = tenant.emulator.account(target) or {}
    (pending,) = [
        c for c in account["properties"]["privateEndpointConnections"] if c["name"].startswith("pe-manual.")
    ]
    az("network", "private-endpoint-connection", "approve", "--id", pending["id"], "--description", "ok")
    assert states() == {"pe-auto": "Approved", "pe-manual": "Approved"}
    for name in ("pe-auto", "pe-manual"):
        gone = az("network", "private-endpoint", "delete", *group, "--name", name)
        assert any(r["method"] == "DELETE" and r["status"] == 202 for r in gone.requests), gone.describe()
    assert states() == {}

    az("cognitiveservices", "account", "delete", *group, "--name", "pe-target")
    recovered = az(
        "cognitiveservices", "account", "recover", *group, "--name", "pe-target", "--location", "westeurope"
    )
    assert any(r["method"] == "PUT" and r["status"] == 201 for r in recovered.requests), recovered.describe()
    az("cognitiveservices", "account", "delete", *group, "--name", "pe-target")
    purged = az(
        "cognitiveservices", "account", "purge", *group, "--name", "pe-target", "--location", "westeurope"
    )
    assert any(r["method"] == "DELETE" and r["status"] == 202 for r in purged.requests), purged.describe()
    deleted = az("cognitiveservices", "account", "list-deleted", "--output", "json").json()
    assert "pe-target" not in [a["name"] for a in deleted]
