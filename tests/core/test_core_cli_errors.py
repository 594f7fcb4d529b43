"""Errors, not tracebacks (issue 16): every user mistake is one line on stderr naming what is wrong
and what to do, exit code 2. Run as a user would (a subprocess), with the environment cleared of
Azure settings so that nothing reaches beyond loopback."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from guardrail_workbench.emulator import Emulator
from tests.conftest import REPO

SUB = "1a2b3c4d-0000-4000-8000-000000000001"
RG = "rg-ai-prod"
ID = f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.CognitiveServices/accounts/prod-openai"


def clean_env(**extra: str) -> dict[str, str]:
    """The caller's environment without any Azure / guardrail setting, plus `extra`."""
    prefixes = ("ARM_", "GUARDRAIL_", "AZURE_", "TEAMS_", "ACS_", "ALERT_", "MONITOR_", "AzureWebJobs")
    env = {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}
    # A loopback endpoint where nothing listens unless a test names one: never the public cloud.
    env.update(
        {
            "ARM_ENDPOINT": f"https://127.0.0.1:{free_port()}",
            "ARM_CREDENTIAL": "static",
            "ARM_STATIC_TOKEN": "local",
            **extra,
        }
    )
    return env


def guardrail(
    *argv: str, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "guardrail", *argv],
        cwd=REPO,
        env=env or clean_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def assert_one_line_error(run: subprocess.CompletedProcess[str], *words: str) -> str:
    assert run.returncode == 2, (run.returncode, run.stdout, run.stderr)
    assert "Traceback" not in run.stderr, run.stderr
    errors = [line for line in run.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1, run.stderr
    for word in words:
        assert word in errors[0], errors[0]
    return errors[0]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port  # nothing listens there once closed: a connection is refused


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    with Emulator(port=0) as running:
        running.seed_file(REPO / "samples" / "tenant.json")
        yield running


def test_bare_account_name_says_what_form_check_wants() -> None:
    line = assert_one_line_error(guardrail("check", "prod-language"), "--subscription", "--resource-group")
    assert "/subscriptions/SUB/resourceGroups/RG/providers/Microsoft.CognitiveServices/accounts/NAME" in line


def test_a_resource_id_of_another_type_is_one_line() -> None:
    run = guardrail("check", f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.Storage/x/y")
    assert_one_line_error(run, "not an account resource ID")


def test_bare_name_with_subscription_and_group_is_checked(emulator: Emulator) -> None:
    env = clean_env(ARM_ENDPOINT=emulator.endpoint, ARM_CA_BUNDLE=emulator.ca_bundle)
    run = guardrail("check", "prod-openai", "--subscription", SUB, "--resource-group", RG, env=env)
    assert run.returncode == 0, run.stderr
    assert f'"resource_id":"{ID}"' in run.stdout


def test_refused_connection_names_arm_endpoint_at_once() -> None:
    endpoint = f"https://127.0.0.1:{free_port()}"
    started = time.monotonic()
    run = guardrail("check", ID, env=clean_env(ARM_ENDPOINT=endpoint))
    seconds = time.monotonic() - started
    assert_one_line_error(run, "refused", "ARM_ENDPOINT", endpoint)
    assert seconds < 8, f"{seconds:.1f} s: retried before saying so"  # the retries' backoff is ~12 s


def test_untrusted_certificate_names_arm_ca_bundle(emulator: Emulator) -> None:
    started = time.monotonic()
    run = guardrail("check", ID, env=clean_env(ARM_ENDPOINT=emulator.endpoint))
    seconds = time.monotonic() - started
    assert_one_line_error(run, "not trusted", "ARM_CA_BUNDLE")
    assert seconds < 8, f"{seconds:.1f} s: retried before saying so"


def test_missing_ca_bundle_file_is_named(tmp_path: Path) -> None:
    env = clean_env(ARM_ENDPOINT="https://127.0.0.1:9", ARM_CA_BUNDLE=str(tmp_path / "gone.pem"))
    assert_one_line_error(guardrail("check", ID, env=env), "ARM_CA_BUNDLE", "gone.pem")


def test_sweep_against_unreachable_arm_is_one_line() -> None:
    env = clean_env(ARM_ENDPOINT=f"https://127.0.0.1:{free_port()}")
    assert_one_line_error(guardrail("sweep", env=env), "refused", "ARM_ENDPOINT")


def test_settings_error_is_said_once_on_one_line() -> None:
    env = clean_env(GUARDRAIL_MODE="bogus", GUARDRAIL_SWEEP_CONCURRENCY="many")
    line = assert_one_line_error(
        guardrail("check", ID, env=env), "GUARDRAIL_MODE", "GUARDRAIL_SWEEP_CONCURRENCY"
    )
    run = guardrail("check", ID, env=env)
    assert run.stderr.count("GUARDRAIL_MODE") == 1, run.stderr
    assert line.startswith("guardrail: error: invalid settings:")


def test_malformed_arm_setting_is_one_line() -> None:
    env = clean_env(ARM_CREDENTIAL="magic")
    assert_one_line_error(guardrail("check", ID, env=env), "ARM_CREDENTIAL")


def test_running_without_memory_names_the_command_for_a_local_state_store(emulator: Emulator) -> None:
    env = clean_env(ARM_ENDPOINT=emulator.endpoint, ARM_CA_BUNDLE=emulator.ca_bundle)
    run = guardrail("check", ID, env=env)
    assert run.returncode == 0, run.stderr
    memory = [line for line in run.stderr.splitlines() if "running without memory" in line]
    assert len(memory) == 1, run.stderr
    assert "python -m guardrail_workbench.azurite" in memory[0] and "AzureWebJobsStorage" in memory[0]


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["demo", "--accounts", "-3"], ["--accounts", "at least 1"]),
        (["demo", "--accounts", "many"], ["--accounts", "not a whole number"]),
        (["sweep", "--subscription", "prod"], ["--subscription", "GUID"]),
        (["evaluate", "nope.json"], ["nope.json", "cannot read"]),
    ],
)
def test_bad_arguments_are_one_line(argv: list[str], words: list[str]) -> None:
    assert_one_line_error(guardrail(*argv), *words)


@pytest.mark.parametrize(
    ("seed", "words"),
    [
        ("nope.json", ["nope.json", "no such file"]),
        ("samples/policy.yaml", ["samples/policy.yaml", "not a tenant document", "subscriptions"]),
    ],
)
def test_emulator_seed_that_is_not_a_tenant_is_one_line(seed: str, words: list[str]) -> None:
    run = guardrail("emulator", "--port", "0", "--seed", seed, timeout=30)
    assert_one_line_error(run, *words)


def test_emulator_seed_in_bad_json_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "broken.json").write_text('{"subscriptions": [', encoding="utf-8")
    (tmp_path / "shapeless.json").write_text('{"subscriptions": [{"name": "x"}]}', encoding="utf-8")
    for name in ("broken.json", "shapeless.json"):
        run = guardrail("emulator", "--port", "0", "--seed", str(tmp_path / name), timeout=30)
        assert_one_line_error(run, name)


def test_demo_without_azurite_names_the_set_up_command(tmp_path: Path) -> None:
    # No node_modules/.bin/azurite-table and no azurite-table on PATH: the launcher cannot start it.
    script = (
        "import sys, guardrail_workbench.azurite as a\n"
        "a.find_azurite_table = lambda *args, **kw: (_ for _ in ()).throw(a.AzuriteNotInstalledError('x'))\n"
        "from guardrail.cli import main\n"
        f"sys.exit(main(['demo', '--fast', '--out', {str(tmp_path)!r}]))\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, env=clean_env(), capture_output=True, text=True, timeout=120
    )
    assert_one_line_error(run, "Azurite is not installed", "./scripts/setup")


def test_a_bug_still_shows_its_traceback() -> None:
    script = (
        "import sys, guardrail.cli as cli\n"
        "def boom(*a): raise RuntimeError('a bug')\n"
        "cli.cmd_evaluate = boom\n"
        "parser = cli.build_parser\n"
        "def build():\n"
        "    p = parser(); p._subparsers._group_actions[0].choices['evaluate'].set_defaults(handler=boom)\n"
        "    return p\n"
        "cli.build_parser = build\n"
        "sys.exit(cli.main(['evaluate', 'x.json']))\n"
    )
    run = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert run.returncode == 1
    assert "Traceback" in run.stderr and "RuntimeError: a bug" in run.stderr
