"""`guardrail scan` end to end through the CLI on public templates and a plan: what it finds, where,
the JSON and text reports, exit codes, exemptions by scope, unresolved values, Bicep and bad input."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from guardrail.cli import main
from tests.conftest import REPO

FIXTURES = Path(__file__).resolve().parent / "fixtures"
QUICKSTART = FIXTURES / "quickstart-aifoundry-basic-project" / "azuredeploy.json"
AVM = FIXTURES / "avm-account" / "main.json"
PLAN = FIXTURES / "terraform-azurerm" / "plan.json"
SUB = "00000000-1111-2222-3333-444444444444"
FOREIGN_SUB = "bbbbbbbb-1111-2222-3333-444444444444"


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(["scan", *argv], out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def scan_json(*argv: str) -> tuple[int, dict[str, Any]]:
    code, out, err = run("--format", "json", *argv)
    assert err == ""
    return code, json.loads(out)


def write(path: Path, document: Any) -> str:
    path.write_text(json.dumps(document, indent=2), encoding="utf-8")
    return str(path)


def parameters_file(tmp_path: Path, values: dict[str, Any]) -> str:
    return write(
        tmp_path / "params.json",
        {
            "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentParameters.json#",
            "contentVersion": "1.0.0.0",
            "parameters": {name: {"value": value} for name, value in values.items()},
        },
    )


def policy_file(tmp_path: Path, text: str) -> str:
    path = tmp_path / "policy.yaml"
    path.write_text(text, encoding="utf-8")
    return str(path)


def rules(resource: dict[str, Any]) -> list[str]:
    return [finding["rule"] for finding in resource["findings"]]


# -- the quickstart: hand-written, open to every network ---------------------------------------


def test_the_quickstart_account_is_open_and_located_at_its_properties() -> None:
    code, report = scan_json(str(QUICKSTART))
    assert code == 1
    assert report["compliant"] is False
    (resource,) = report["resources"]  # the accounts/projects child is not an account
    assert resource["file"] == str(QUICKSTART)
    assert resource["type"] == "Microsoft.CognitiveServices/accounts"
    assert resource["resource"] == (
        "/subscriptions/{subscription}/resourceGroups/{resourceGroup}/providers/"
        "Microsoft.CognitiveServices/accounts/AIServices-viaARMtemplate"
    )
    assert resource["source"] == "resources[0]"
    lines = QUICKSTART.read_text(encoding="utf-8").splitlines()
    assert lines[resource["line"] - 1].strip() == '"properties": {'
    assert resource["line"] == 54
    assert rules(resource) == ["default-action-deny"]
    (action,) = resource["actions"]
    assert action["kind"] == "patch-account" and action["method"] == "PATCH"
    assert action["target"] == resource["resource"]
    assert action["rules"] == ["default-action-deny"]
    assert action["body"]["properties"]["networkAcls"]["defaultAction"] == "Deny"


def test_text_report_names_file_line_account_and_the_fix() -> None:
    code, out, err = run(str(QUICKSTART))
    assert code == 1 and err == ""
    row = next(line for line in out.splitlines() if "default-action-deny" in line)
    assert row.startswith(f"{QUICKSTART}:54 ")
    assert "AIServices-viaARMtemplate" in row and " fix " in row
    assert "the runtime would set networkAcls.defaultAction to Deny" in row
    assert "1 accounts in 1 files: 0 compliant, 1 not compliant, 1 with a fix the runtime would make" in out


# -- the AVM module: Bicep-compiled, languageVersion 2.0 ---------------------------------------

AVM_OPEN = {
    "name": "oai-avm",
    "kind": "OpenAI",
    "customSubDomainName": "oai-avm",
    "networkAcls": {"defaultAction": "Allow", "ipRules": [{"value": "10.1.2.3"}, {"value": "52.1.1.0/24"}]},
}
AVM_CLOSED = {
    "name": "oai-avm",
    "kind": "OpenAI",
    "customSubDomainName": "oai-avm",
    "publicNetworkAccess": "Disabled",
}


def test_the_avm_module_with_parameters_is_judged_as_deployed(tmp_path: Path) -> None:
    code, report = scan_json("--parameters", parameters_file(tmp_path, AVM_OPEN), str(AVM))
    assert code == 1
    (resource,) = report["resources"]
    assert resource["source"] == "resources.cognitiveService"
    assert resource["resource"].endswith("/accounts/oai-avm")
    assert rules(resource) == ["default-action-deny", "ip-rule-not-public", "bypass-not-allowed"]
    assert AVM.read_text(encoding="utf-8").splitlines()[resource["line"] - 1].strip() == '"properties": {'


def test_the_avm_module_closed_to_the_public_is_compliant(tmp_path: Path) -> None:
    """The module's defaults (disableLocalAuth true, restrictOutboundNetworkAccess true) and
    publicNetworkAccess Disabled: nothing to find, exit 0, under a policy that checks all three."""
    policy = policy_file(
        tmp_path,
        "version: 1\nnetwork:\n  require_public_network_disabled: true\n  require_outbound_restricted: true\n"
        "auth:\n  require_local_auth_disabled: true\n",
    )
    code, report = scan_json(
        "--policy", policy, "--parameters", parameters_file(tmp_path, AVM_CLOSED), str(AVM)
    )
    assert code == 0
    assert report["compliant"] is True
    (resource,) = report["resources"]
    assert resource["findings"] == [] and resource["actions"] == [] and resource["not_judged"] == []


def test_the_avm_module_without_its_required_parameters_is_never_compliant() -> None:
    """name and kind have no default: the name is an unresolved value, never a pass."""
    code, report = scan_json(str(AVM))
    assert code == 1
    (resource,) = report["resources"]
    assert resource["compliant"] is False
    unresolved = [f for f in resource["findings"] if f["rule"] == "unresolved-value"]
    assert [f["value"] for f in unresolved] == ["name", "kind"]
    assert all(f["severity"] == "info" for f in unresolved)
    assert "parameter 'name' has no value" in unresolved[0]["message"]
    assert resource["resource"].endswith("/accounts/{name}")
    assert resource["actions"] == []


def module_deployment(resource_group: str | None) -> dict[str, Any]:
    """A template deploying the AVM module as a Bicep module compiles: a nested deployment with the
    module's template inline, inner expression scope, the parameters passed from the parent."""
    module = json.loads(AVM.read_text(encoding="utf-8"))
    deployment: dict[str, Any] = {
        "type": "Microsoft.Resources/deployments",
        "apiVersion": "2022-09-01",
        "name": "account",
        "properties": {
            "expressionEvaluationOptions": {"scope": "inner"},
            "mode": "Incremental",
            "parameters": {
                "name": {"value": "[parameters('accountName')]"},
                "kind": {"value": "OpenAI"},
                "customSubDomainName": {"value": "[parameters('accountName')]"},
                "networkAcls": {"value": "[variables('acls')]"},
            },
            "template": module,
        },
    }
    if resource_group is not None:
        deployment["resourceGroup"] = resource_group
    return {
        "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
        "contentVersion": "1.0.0.0",
        "parameters": {"accountName": {"type": "string", "defaultValue": "oai-nested"}},
        "variables": {
            "acls": {
                "defaultAction": "Deny",
                "bypass": "None",
                "ipRules": [{"value": "52.1.1.1/32"}],
                "virtualNetworkRules": [
                    {"id": "[resourceId('Microsoft.Network/virtualNetworks/subnets', 'vnet', 'apps')]"}
                ],
            }
        },
        "resources": [deployment],
    }


def test_a_nested_module_deployment_is_judged_in_its_own_scope(tmp_path: Path) -> None:
    path = write(tmp_path / "main.json", module_deployment("rg-module"))
    policy = policy_file(tmp_path, f"version: 1\nnetwork:\n  allowed_vnet_subscriptions: [{SUB}]\n")
    code, report = scan_json("--policy", policy, "--subscription", SUB, "--resource-group", "rg-app", path)
    assert code == 1
    (resource,) = report["resources"]
    assert resource["resource"] == (
        f"/subscriptions/{SUB}/resourceGroups/rg-module/providers/Microsoft.CognitiveServices/accounts/oai-nested"
    )
    assert resource["source"] == "resources[0].properties.template.resources.cognitiveService"
    # the subnet ID resolved in the parent's scope (the group the parent deploys to), allowed
    assert rules(resource) == ["ip-rule-prefix-unsupported"]
    (action,) = resource["actions"]
    assert action["body"]["properties"]["networkAcls"]["ipRules"] == [{"value": "52.1.1.1"}]
    subnet = f"/subscriptions/{SUB}/resourceGroups/rg-app/providers/Microsoft.Network/virtualNetworks/vnet"
    subnet += "/subnets/apps"
    assert action["body"]["properties"]["networkAcls"]["virtualNetworkRules"] == [{"id": subnet}]


def test_a_subnet_id_needing_the_unknown_subscription_is_unresolved_not_judged(tmp_path: Path) -> None:
    path = write(tmp_path / "main.json", module_deployment(None))
    code, report = scan_json(path)
    assert code == 1
    (resource,) = report["resources"]
    (unresolved,) = [f for f in resource["findings"] if f["rule"] == "unresolved-value"]
    assert unresolved["value"] == "properties.networkAcls.virtualNetworkRules[0].id"
    assert "give --subscription" in unresolved["message"]
    assert "vnet-rule-invalid" in resource["not_judged"]
    assert "vnet-rule-invalid" not in rules(resource)


# -- the Terraform plan ------------------------------------------------------------------------


def test_the_plan_maps_azurerm_and_azapi_accounts(tmp_path: Path) -> None:
    policy = policy_file(
        tmp_path,
        "version: 1\nnetwork:\n"
        f"  allowed_private_endpoint_subscriptions: [{SUB}]\n  allowed_vnet_subscriptions: [{SUB}]\n",
    )
    code, report = scan_json("--policy", policy, "--subscription", SUB, str(PLAN))
    assert code == 1
    by_source = {r["source"]: r for r in report["resources"]}
    assert list(by_source) == [
        "azurerm_cognitive_account.example",
        "azurerm_cognitive_account.openai",
        "azapi_resource.ai_services",
    ]
    example = by_source["azurerm_cognitive_account.example"]
    assert example["resource"] == (
        f"/subscriptions/{SUB}/resourceGroups/example-resources/providers/"
        "Microsoft.CognitiveServices/accounts/example-account"
    )
    assert rules(example) == [
        "default-action-deny",
        "ip-rule-not-public",
        "ip-rule-prefix-unsupported",
        "vnet-rule-not-allowed",
        "bypass-not-allowed",  # bypass unset in the block: the provider does not send it
    ]
    openai = by_source["azurerm_cognitive_account.openai"]
    (unresolved,) = openai["findings"]
    assert unresolved["rule"] == "unresolved-value"
    assert unresolved["value"] == "properties.networkAcls.ipRules"
    assert "known only after apply" in unresolved["message"]
    assert openai["not_judged"] == [
        "ip-rule-invalid",
        "ip-rule-limit",
        "ip-rule-not-public",
        "ip-rule-prefix-unsupported",
    ]
    ais = by_source["azapi_resource.ai_services"]
    assert rules(ais) == ["private-endpoint-not-allowed"]
    assert ais["children"] == [
        {
            "type": "Microsoft.CognitiveServices/accounts/privateEndpointConnections",
            "name": "example-ais/pec-foreign",
            "source": "azapi_resource.ai_services_pec",
            "line": ais["children"][0]["line"],
        }
    ]
    (reject,) = ais["actions"]
    assert reject["kind"] == "reject-private-endpoint" and reject["method"] == "PUT"
    assert reject["target"] == f"{ais['resource']}/privateEndpointConnections/pec-foreign"
    assert reject["body"]["properties"]["privateLinkServiceConnectionState"]["status"] == "Rejected"
    assert reject["rules"] == ["private-endpoint-not-allowed"]


# -- exemptions by scope -----------------------------------------------------------------------


def test_exemptions_by_group_apply_only_when_the_scope_is_given(tmp_path: Path) -> None:
    policy = policy_file(
        tmp_path,
        "version: 1\nexemptions:\n"
        f"  - scope: /subscriptions/{SUB}/resourceGroups/rg-sandbox\n"
        "    rules: [default-action-deny]\n    expires: 2099-01-01\n",
    )
    code, report = scan_json(
        "--policy", policy, "--subscription", SUB, "--resource-group", "rg-sandbox", str(QUICKSTART)
    )
    assert code == 0
    assert report["notes"] == []
    (resource,) = report["resources"]
    assert resource["findings"][0]["exempted"] is True
    code, report = scan_json("--policy", policy, str(QUICKSTART))
    assert code == 1
    (note,) = report["notes"]
    assert "exemptions" in note and "not applied" in note and "--subscription" in note
    code, out, _ = run("--policy", policy, str(QUICKSTART))
    assert f"note: {note}" in out


# -- input problems: one line naming the file, exit 2 -------------------------------------------


def test_a_file_that_is_neither_a_template_nor_a_plan(tmp_path: Path) -> None:
    path = write(tmp_path / "account.json", {"id": "x", "properties": {}})
    code, _, err = run(path)
    assert code == 2
    assert err == (
        f"guardrail: error: {path}: neither an ARM template ($schema and resources) nor a Terraform "
        "plan (terraform show -json)\n"
    )


def test_not_json_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text('{"$schema": ', encoding="utf-8")
    code, _, err = run(str(path))
    assert code == 2
    assert err.startswith(f"guardrail: error: {path}: not JSON: ") and err.count("\n") == 1


def test_a_parameters_file_given_as_a_path_says_how_to_give_it(tmp_path: Path) -> None:
    path = parameters_file(tmp_path, {"name": "x"})
    code, _, err = run(path)
    assert code == 2
    assert err == f"guardrail: error: {path}: an ARM parameters file: give it with --parameters {path}\n"


def test_a_bad_parameters_file_and_subscription(tmp_path: Path) -> None:
    code, _, err = run("--parameters", write(tmp_path / "p.json", {"x": 1}), str(QUICKSTART))
    assert code == 2 and "not an ARM parameters file" in err
    code, _, err = run("--subscription", "not-a-guid", str(QUICKSTART))
    assert code == 2 and "--subscription: 'not-a-guid' is not a subscription ID" in err


def test_a_folder_is_scanned_for_templates_and_plans_only(tmp_path: Path) -> None:
    (tmp_path / "infra").mkdir()
    write(tmp_path / "infra" / "package.json", {"name": "x"})  # not a template: skipped in a folder
    (tmp_path / "infra" / "a.json").write_text(QUICKSTART.read_text(encoding="utf-8"), encoding="utf-8")
    code, report = scan_json(str(tmp_path / "infra"))
    assert code == 1
    assert [r["file"] for r in report["resources"]] == [str(tmp_path / "infra" / "a.json")]


def test_bicep_without_the_bicep_cli_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "main.bicep"
    path.write_text("param name string\n", encoding="utf-8")
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    code, _, err = run(str(path))
    assert code == 2
    assert err == (
        f"guardrail: error: {path}: a Bicep file, and neither bicep nor az is on PATH: install the Bicep "
        f"CLI, or build it first (bicep build {path}) and scan the JSON\n"
    )


def test_bicep_is_built_with_the_bicep_cli_on_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`bicep build --stdout FILE` is what runs; its template is scanned and results point at the
    resource's declaration in the .bicep file. (A stand-in `bicep` on PATH prints a compiled
    template: there is no Bicep CLI here; the real one's output is the AVM fixture's shape.)"""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    compiled = tmp_path / "compiled.json"
    compiled.write_text(
        json.dumps(
            {
                "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
                "languageVersion": "2.0",
                "contentVersion": "1.0.0.0",
                "resources": {
                    "account": {
                        "type": "Microsoft.CognitiveServices/accounts",
                        "apiVersion": "2025-06-01",
                        "name": "bicep-acct",
                        "kind": "OpenAI",
                        "properties": {"publicNetworkAccess": "Enabled"},
                    }
                },
            }
        ),
        encoding="utf-8",
    )
    stub = bin_dir / "bicep"
    argv_file = tmp_path / "argv"
    stub.write_text(
        f"#!{sys.executable}\nimport sys, pathlib\n"
        f"pathlib.Path({str(argv_file)!r}).write_text(' '.join(sys.argv[1:]))\n"
        f"print(pathlib.Path({str(compiled)!r}).read_text())\n",
        encoding="utf-8",
    )
    stub.chmod(0o755)
    source = tmp_path / "main.bicep"
    declaration = "resource account 'Microsoft.CognitiveServices/accounts@2025-06-01' = {\n}\n"
    source.write_text(f"param location string\n\n{declaration}", encoding="utf-8")
    monkeypatch.setenv("PATH", str(bin_dir))
    code, report = scan_json(str(source))
    assert code == 1
    assert argv_file.read_text(encoding="utf-8") == f"build --stdout {source}"
    (resource,) = report["resources"]
    assert resource["file"] == str(source) and resource["line"] == 3
    assert rules(resource) == ["default-action-deny"]


def test_the_function_app_and_the_cli_never_import_the_scanner() -> None:
    """The scanner is CLI-only and lazily imported: the function app's cold start does not pay for it."""
    probe = (
        "import sys, function_app, guardrail.cli\n"
        "loaded = sorted(m for m in sys.modules if m.startswith('guardrail.scan'))\n"
        "print(loaded)\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_a_folder_under_a_hidden_folder_is_still_scanned(tmp_path: Path) -> None:
    """Only hidden folders inside the folder given are skipped (.git, .terraform), not the path to it."""
    infra = tmp_path / ".checkout" / "infra"
    (infra / ".terraform").mkdir(parents=True)
    (infra / "main.json").write_text(QUICKSTART.read_text(encoding="utf-8"), encoding="utf-8")
    (infra / ".terraform" / "copy.json").write_text(QUICKSTART.read_text(encoding="utf-8"), encoding="utf-8")
    code, report = scan_json(str(infra))
    assert code == 1
    assert [r["file"] for r in report["resources"]] == [str(infra / "main.json")]


SCHEMA_URL = "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#"


def account_resource(name: str, **extra: Any) -> dict[str, Any]:
    return {
        "type": "Microsoft.CognitiveServices/accounts",
        "apiVersion": "2025-06-01",
        "name": name,
        "kind": "OpenAI",
        "properties": {"publicNetworkAccess": "Disabled"},
        **extra,
    }


def test_conditions_copies_children_and_linked_templates(tmp_path: Path) -> None:
    template = {
        "$schema": SCHEMA_URL,
        "contentVersion": "1.0.0.0",
        "parameters": {"deploySpare": {"type": "bool", "defaultValue": False}, "pec": {"type": "string"}},
        "resources": [
            account_resource("[format('oai-{0}', copyIndex(1))]", copy={"name": "accounts", "count": 2}),
            account_resource("spare", condition="[parameters('deploySpare')]"),
            {
                "type": "Microsoft.CognitiveServices/accounts/privateEndpointConnections",
                "apiVersion": "2025-06-01",
                "name": "[concat('oai-1/', parameters('pec'))]",
                "properties": {"privateLinkServiceConnectionState": {"status": "Approved"}},
            },
            {
                "type": "Microsoft.CognitiveServices/accounts/managedNetworks",
                "apiVersion": "2025-10-01-preview",
                "name": "oai-2/default",
                "properties": {"managedNetwork": {"isolationMode": "AllowOnlyApprovedOutbound"}},
            },
            {
                "type": "Microsoft.Resources/deployments",
                "apiVersion": "2022-09-01",
                "name": "linked",
                "properties": {
                    "mode": "Incremental",
                    "templateLink": {"uri": "https://example.invalid/t.json"},
                },
            },
        ],
    }
    policy = policy_file(
        tmp_path, f"version: 1\nnetwork:\n  allowed_private_endpoint_subscriptions: [{SUB}]\n"
    )
    code, report = scan_json("--policy", policy, write(tmp_path / "main.json", template))
    assert code == 1
    by_source = {(r["source"], r["resource"].rsplit("/", 1)[-1]): r for r in report["resources"]}
    assert list(by_source) == [
        ("resources[0]", "oai-1"),
        ("resources[0]", "oai-2"),
        ("resources[4]", "linked"),
    ]
    first, second, linked = by_source.values()
    # the connection's name is unresolved: it may be any account's, and is judged as unresolved there
    (unresolved,) = first["findings"]
    assert unresolved["rule"] == "unresolved-value"
    assert unresolved["value"] == "properties.privateEndpointConnections[0]"
    assert first["not_judged"] == ["private-endpoint-not-allowed"]
    assert second["findings"][0]["value"] == "properties.privateEndpointConnections[0]"
    assert [c["type"] for c in second["children"]] == [
        "Microsoft.CognitiveServices/accounts/privateEndpointConnections",
        "Microsoft.CognitiveServices/accounts/managedNetworks",
    ]
    assert linked["type"] == "Microsoft.Resources/deployments"
    assert linked["compliant"] is False
    assert "templateLink" in linked["findings"][0]["message"]


def test_a_terraform_state_is_not_taken_for_a_plan(tmp_path: Path) -> None:
    """`terraform show -json` without a plan file prints the state: its values say nothing of what
    the next apply deploys, and would pass unknown values by omission."""
    state = {
        "format_version": "1.0",
        "terraform_version": "1.9.8",
        "values": {"root_module": {"resources": []}},
    }
    path = write(tmp_path / "state.json", state)
    code, _, err = run(path)
    assert code == 2
    assert err.startswith(f"guardrail: error: {path}: a Terraform state, not a plan: ")


def test_the_agent_era_children_a_template_declares_are_judged(tmp_path: Path) -> None:
    """A Foundry account's managed network (with an outboundRules child folded into its map, as its GET
    embeds them) and capability hosts, declared in the template, are judged by the issue #24 rules."""
    account = account_resource("foundry")
    account["kind"] = "AIServices"
    account["properties"] = {"publicNetworkAccess": "Disabled", "allowProjectManagement": True}
    foreign = f"/subscriptions/{FOREIGN_SUB}/resourceGroups/n/providers/Microsoft.Network/virtualNetworks/v"
    foreign += "/subnets/agents"
    template = {
        "$schema": SCHEMA_URL,
        "contentVersion": "1.0.0.0",
        "resources": [
            account,
            {
                "type": "Microsoft.CognitiveServices/accounts/managedNetworks",
                "apiVersion": "2026-09-01",
                "name": "foundry/default",
                "properties": {"managedNetwork": {"isolationMode": "AllowInternetOutbound"}},
            },
            {
                "type": "Microsoft.CognitiveServices/accounts/capabilityHosts",
                "apiVersion": "2026-09-01",
                "name": "foundry/agents",
                "properties": {"customerSubnet": foreign, "enablePublicHostingEnvironment": True},
            },
        ],
    }
    policy = policy_file(
        tmp_path,
        f"version: 1\nnetwork:\n  allowed_vnet_subscriptions: [{SUB}]\n  require_approved_outbound: true\n"
        "  forbid_public_agent_hosting: true\n",
    )
    code, report = scan_json(
        "--policy",
        policy,
        "--subscription",
        SUB,
        "--resource-group",
        "rg",
        write(tmp_path / "t.json", template),
    )
    assert code == 1
    (resource,) = report["resources"]
    assert sorted(rules(resource)) == [
        "agent-public-hosting",
        "agent-subnet-not-allowed",
        "managed-network-internet-outbound",
    ]
    internet = next(f for f in resource["findings"] if f["rule"] == "managed-network-internet-outbound")
    assert "AllowInternetOutbound" in internet["message"]
