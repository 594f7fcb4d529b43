"""The azd hooks and scripts/remove-subscription, run for real (POSIX sh) against stand-in `azd` and
`az` commands that record every call: what each hook changes in the azd environment, and that the
removal deletes the assignment before it shrinks the scopes (issue 18, items 1, 3 and 6)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.infra.bicep import ROOT

HOOKS = ROOT / "scripts" / "hooks"
SH = shutil.which("sh")
pytestmark = pytest.mark.skipif(SH is None, reason="no POSIX sh on this machine")

# Stand-in for azd: `env get-value`, `env set`, `provision`; the environment is a JSON file.
FAKE_AZD = """
import json, os, sys
args = sys.argv[1:]
with open(os.environ["FAKE_LOG"], "a") as log:
    log.write(json.dumps(["azd", *args]) + "\\n")
path = os.environ["FAKE_AZD_ENV"]
env = json.load(open(path))
if args[:2] == ["env", "get-value"]:
    if args[2] not in env:
        sys.stderr.write("ERROR: key not found\\n")
        sys.exit(1)
    print(env[args[2]])
elif args[:2] == ["env", "set"]:
    env[args[2]] = args[3]
    json.dump(env, open(path, "w"))
"""

# Stand-in for az: the first rule whose tokens all appear in the call (in order) answers it.
FAKE_AZ = """
import json, os, sys
args = sys.argv[1:]
with open(os.environ["FAKE_LOG"], "a") as log:
    log.write(json.dumps(["az", *args]) + "\\n")
for rule in json.load(open(os.environ["FAKE_AZ_RULES"])):
    it = iter(args)
    if all(any(token == a for a in it) for token in rule["match"]):
        sys.stdout.write(rule.get("stdout", ""))
        sys.exit(rule.get("rc", 0))
"""


@dataclass
class Bench:
    tmp: Path
    env: dict[str, str]

    def run(
        self,
        script: Path,
        *args: str,
        azd_env: dict[str, str],
        az: list[dict[str, Any]] | None = None,
        cwd: Path = ROOT,
    ) -> subprocess.CompletedProcess[str]:
        (self.tmp / "azd-env.json").write_text(json.dumps(azd_env))
        (self.tmp / "az-rules.json").write_text(json.dumps(az or []))
        (self.tmp / "log.jsonl").write_text("")
        return subprocess.run(
            [str(SH), str(script), *args], cwd=cwd, env=self.env, capture_output=True, text=True, timeout=60
        )

    @property
    def azd_env(self) -> dict[str, str]:
        return json.loads((self.tmp / "azd-env.json").read_text())  # type: ignore[no-any-return]

    @property
    def calls(self) -> list[list[str]]:
        lines = (self.tmp / "log.jsonl").read_text().splitlines()
        return [json.loads(line) for line in lines if line]


@pytest.fixture
def bench(tmp_path: Path) -> Iterator[Bench]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, source in (("azd", FAKE_AZD), ("az", FAKE_AZ)):
        tool = bin_dir / name
        tool.write_text(f"#!{sys.executable}\n{source}")
        tool.chmod(0o755)
    env = {
        "PATH": f"{bin_dir}{os.pathsep}/usr/bin{os.pathsep}/bin",
        "FAKE_LOG": str(tmp_path / "log.jsonl"),
        "FAKE_AZD_ENV": str(tmp_path / "azd-env.json"),
        "FAKE_AZ_RULES": str(tmp_path / "az-rules.json"),
        "HOME": str(tmp_path),
    }
    yield Bench(tmp_path, env)


NOT_SIGNED_IN = [{"match": ["account", "show"], "rc": 1}]
NO_FUNCTION = [{"match": ["functionapp", "function", "show"], "rc": 3}]
WIRED_APP = {
    "GUARDRAIL_WIRE_EVENTS": "true",
    "AZURE_FUNCTION_APP_NAME": "func-guardrail-abc",
    "AZURE_RESOURCE_GROUP": "rg-prod",
}
VAULT_ENV = {
    "AZURE_ENV_NAME": "guardrail-prod",
    "AZURE_LOCATION": "swedencentral",
    "AZURE_SUBSCRIPTION_ID": "s1",
}


def test_azure_yaml_runs_every_hook_script_that_exists() -> None:
    project = yaml.safe_load((ROOT / "azure.yaml").read_text())
    hooks = project["hooks"]
    assert set(hooks) == {"preprovision", "postprovision", "postdeploy", "predown", "postdown"}
    for name, hook in hooks.items():
        assert hook["run"] == f"scripts/hooks/{name}.sh"
        assert (ROOT / hook["run"]).is_file()
        assert hook["continueOnError"] is False


# ------------------------------------------------------------------ item 1: wiring after azd down


def test_postdown_resets_the_wiring_so_the_next_up_starts_with_the_first_pass(bench: Bench) -> None:
    result = bench.run(HOOKS / "postdown.sh", azd_env={"GUARDRAIL_WIRE_EVENTS": "true"}, az=NOT_SIGNED_IN)
    assert result.returncode == 0, result.stderr
    assert bench.azd_env["GUARDRAIL_WIRE_EVENTS"] == "false"
    assert bench.azd_env["GUARDRAIL_KEY_VAULT_RECOVER"] == "false"


def test_preprovision_without_a_recorded_app_goes_back_to_the_first_pass(bench: Bench) -> None:
    # azd down removed the output-derived AZURE_FUNCTION_APP_NAME; GUARDRAIL_WIRE_EVENTS survived.
    result = bench.run(HOOKS / "preprovision.sh", azd_env={"GUARDRAIL_WIRE_EVENTS": "true"}, az=NOT_SIGNED_IN)
    assert result.returncode == 0, result.stderr
    assert bench.azd_env["GUARDRAIL_WIRE_EVENTS"] == "false"


def test_preprovision_with_an_app_that_lacks_the_function_goes_back_to_the_first_pass(bench: Bench) -> None:
    # A fresh resource group (deleted by hand) or a failed code deployment: the app has no function.
    result = bench.run(HOOKS / "preprovision.sh", azd_env=WIRED_APP, az=NO_FUNCTION)
    assert result.returncode == 0, result.stderr
    assert bench.azd_env["GUARDRAIL_WIRE_EVENTS"] == "false"
    assert [
        "az",
        "functionapp",
        "function",
        "show",
        "--resource-group",
        "rg-prod",
        "--name",
        "func-guardrail-abc",
        "--function-name",
        "on_resource_write",
        "--query",
        "name",
        "--output",
        "tsv",
    ] in bench.calls


def test_preprovision_keeps_the_wiring_when_the_function_exists(bench: Bench) -> None:
    result = bench.run(HOOKS / "preprovision.sh", azd_env=WIRED_APP, az=[])
    assert result.returncode == 0, result.stderr
    assert bench.azd_env["GUARDRAIL_WIRE_EVENTS"] == "true"
    assert not any(
        call[:3] == ["azd", "env", "set"] and call[3] == "GUARDRAIL_WIRE_EVENTS" for call in bench.calls
    )


def test_postdeploy_wires_once_and_then_goes_straight_through(bench: Bench) -> None:
    result = bench.run(HOOKS / "postdeploy.sh", azd_env={"GUARDRAIL_WIRE_EVENTS": "false"})
    assert result.returncode == 0, result.stderr
    assert bench.azd_env["GUARDRAIL_WIRE_EVENTS"] == "true"
    assert ["azd", "provision", "--no-prompt"] in bench.calls

    result = bench.run(HOOKS / "postdeploy.sh", azd_env={"GUARDRAIL_WIRE_EVENTS": "true"})
    assert result.returncode == 0, result.stderr
    assert ["azd", "provision", "--no-prompt"] not in bench.calls


# ------------------------------------------------------------------ item 6: the vault


def test_preprovision_recovers_this_environments_soft_deleted_vault(bench: Bench) -> None:
    rules = [{"match": ["keyvault", "list-deleted"], "stdout": "kv-guard-abc\n"}]
    result = bench.run(HOOKS / "preprovision.sh", azd_env=VAULT_ENV, az=rules)
    assert result.returncode == 0, result.stderr
    assert bench.azd_env["GUARDRAIL_KEY_VAULT_RECOVER"] == "true"
    (query,) = [c for c in bench.calls if c[:3] == ["az", "keyvault", "list-deleted"]]
    assert "properties.tags.\"azd-env-name\"=='guardrail-prod'" in query[query.index("--query") + 1]

    result = bench.run(HOOKS / "postprovision.sh", azd_env=bench.azd_env)
    assert result.returncode == 0, result.stderr
    assert bench.azd_env["GUARDRAIL_KEY_VAULT_RECOVER"] == "false", "a live vault is updated, not recovered"


def test_preprovision_without_a_deleted_vault_does_not_ask_for_recovery(bench: Bench) -> None:
    result = bench.run(HOOKS / "preprovision.sh", azd_env=VAULT_ENV, az=[])
    assert result.returncode == 0, result.stderr
    assert "GUARDRAIL_KEY_VAULT_RECOVER" not in bench.azd_env


# ------------------------------------------------------------------ teardown of a shared subscription

ROLE_ID = "/subscriptions/host/providers/Microsoft.Authorization/roleDefinitions/r1"
DOWN_ENV = {
    "GUARDRAIL_GOVERNED_SUBSCRIPTIONS": "11111111-1111-1111-1111-111111111111",
    "GUARDRAIL_ENVIRONMENT_TOKEN": "tok1",
    "GUARDRAIL_EVENTS_RESOURCE_GROUP": "rg-guardrail-events",
    "GUARDRAIL_IDENTITY_PRINCIPAL_ID": "p-1",
    "GUARDRAIL_ROLE_DEFINITION_ID": ROLE_ID,
    "AZURE_RESOURCE_GROUP": "rg-prod",
}


def test_predown_refuses_when_another_environment_shares_the_events_group(bench: Bench) -> None:
    rules = [
        {
            "match": ["event-subscription", "list", "evgt-guardrail-11111111-1111-1111-1111-111111111111"],
            "stdout": "guardrail-writes-tok1\nguardrail-writes-tok2\n",
        },
    ]
    result = bench.run(HOOKS / "predown.sh", azd_env=DOWN_ENV, az=rules)
    assert result.returncode == 1
    assert "guardrail-writes-tok2" in result.stderr and "scripts/remove-subscription" in result.stderr
    assert not any("delete" in call for call in bench.calls), "nothing is deleted when it refuses"


def test_predown_alone_deletes_the_assignments_and_postdown_the_role_definition(bench: Bench) -> None:
    rules = [
        {"match": ["event-subscription", "list"], "stdout": "guardrail-writes-tok1\n"},
        {
            "match": ["role", "assignment", "list"],
            "stdout": "/subscriptions/1111/providers/x/roleAssignments/a1\n",
        },
    ]
    result = bench.run(HOOKS / "predown.sh", azd_env=DOWN_ENV, az=rules)
    assert result.returncode == 0, result.stderr
    assert [
        "az",
        "role",
        "assignment",
        "delete",
        "--ids",
        "/subscriptions/1111/providers/x/roleAssignments/a1",
    ] in bench.calls
    recorded = bench.azd_env["GUARDRAIL_TEARDOWN_ROLE_IDS"]
    assert recorded == DOWN_ENV["GUARDRAIL_ROLE_DEFINITION_ID"]

    result = bench.run(HOOKS / "postdown.sh", azd_env=bench.azd_env, az=[])
    assert result.returncode == 0, result.stderr
    assert [
        "az",
        "role",
        "definition",
        "delete",
        "--name",
        recorded,
        "--scope",
        "/subscriptions/host",
    ] in bench.calls
    assert bench.azd_env["GUARDRAIL_TEARDOWN_ROLE_IDS"] == ""


def test_predown_refuses_without_az_rather_than_delete_a_shared_group_blindly(bench: Bench) -> None:
    result = bench.run(HOOKS / "predown.sh", azd_env=DOWN_ENV, az=NOT_SIGNED_IN)
    assert result.returncode == 1
    assert "az login" in result.stderr


# ------------------------------------------------------------------ item 3: removing a subscription

SUB = "22222222-2222-2222-2222-222222222222"


def _repo_copy(tmp: Path, governed: list[str]) -> Path:
    repo = tmp / "repo"
    (repo / "infra").mkdir(parents=True)
    (repo / "scripts").mkdir()
    shutil.copy(ROOT / "scripts" / "remove-subscription", repo / "scripts" / "remove-subscription")
    params = json.loads((ROOT / "infra" / "main.parameters.json").read_text())
    params["parameters"]["governedSubscriptionIds"] = {"value": governed}
    (repo / "infra" / "main.parameters.json").write_text(json.dumps(params))
    return repo


def test_remove_subscription_deletes_the_assignment_before_it_shrinks_the_scopes(bench: Bench) -> None:
    repo = _repo_copy(bench.tmp, ["11111111-1111-1111-1111-111111111111", SUB])
    rules = [
        {"match": ["role", "assignment", "list"], "stdout": f"/subscriptions/{SUB}/x/roleAssignments/a9\n"}
    ]
    result = bench.run(
        repo / "scripts" / "remove-subscription",
        "--provision",
        SUB,
        azd_env=DOWN_ENV,
        az=rules,
        cwd=bench.tmp,
    )
    assert result.returncode == 0, result.stderr
    calls = bench.calls
    delete_assignment = calls.index(
        ["az", "role", "assignment", "delete", "--ids", f"/subscriptions/{SUB}/x/roleAssignments/a9"]
    )
    provision = calls.index(["azd", "provision", "--no-prompt"])
    assert delete_assignment < provision
    deleted_subscriptions = [
        c for c in calls if c[1:5] == ["eventgrid", "system-topic", "event-subscription", "delete"]
    ]
    assert {c[c.index("--name") + 1] for c in deleted_subscriptions} == {
        "guardrail-writes-tok1",
        "guardrail-notifications-tok1",
    }
    params = json.loads((repo / "infra" / "main.parameters.json").read_text())
    assert params["parameters"]["governedSubscriptionIds"]["value"] == [
        "11111111-1111-1111-1111-111111111111"
    ]


def test_remove_subscription_without_provision_changes_only_this_environments_wiring(bench: Bench) -> None:
    repo = _repo_copy(bench.tmp, ["11111111-1111-1111-1111-111111111111", SUB])
    result = bench.run(repo / "scripts" / "remove-subscription", SUB, azd_env=DOWN_ENV, az=[], cwd=bench.tmp)
    assert result.returncode == 0, result.stderr
    assert not any(c[:2] == ["azd", "provision"] for c in bench.calls)
    assert "now remove" in result.stdout
    params = json.loads((repo / "infra" / "main.parameters.json").read_text())
    assert SUB in params["parameters"]["governedSubscriptionIds"]["value"]


@pytest.mark.parametrize("args", [[], ["not-a-subscription!"], ["--bogus", SUB]])
def test_remove_subscription_refuses_bad_arguments_and_changes_nothing(bench: Bench, args: list[str]) -> None:
    result = bench.run(ROOT / "scripts" / "remove-subscription", *args, azd_env=DOWN_ENV, az=[])
    assert result.returncode == 2
    assert not any(c[0] == "az" for c in bench.calls)


def test_remove_subscription_refuses_without_the_environments_identity(bench: Bench) -> None:
    result = bench.run(ROOT / "scripts" / "remove-subscription", SUB, azd_env={}, az=[])
    assert result.returncode == 1
    assert "nothing was changed" in result.stderr
    assert not any(c[0] == "az" for c in bench.calls)
