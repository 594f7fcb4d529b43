"""The deployed package is the product only: the Functions build (the tree less `.funcignore`) carries
no workbench code, `requirements.txt` no dev-only package, and `pyproject.toml` declares the same
runtime pins so `pip install .` gives a CLI that runs."""

from __future__ import annotations

import fnmatch
import subprocess
import tomllib
from pathlib import Path

from tests.conftest import REPO

WORKBENCH_ONLY = ("trustme",)
#: Used by tests only (requirements-dev.txt), never by the deployed package.
TESTS_ONLY = ("azure-eventgrid",)


def _requirements(path: Path) -> list[str]:
    lines = [line.split("#", 1)[0].strip() for line in path.read_text(encoding="utf-8").splitlines()]
    return [line for line in lines if line and not line.startswith("-r")]


def _pyproject() -> dict[str, object]:
    return tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))


def test_pyproject_declares_exactly_the_deployed_requirements() -> None:
    project = _pyproject()["project"]
    assert isinstance(project, dict)
    assert sorted(project["dependencies"]) == sorted(_requirements(REPO / "requirements.txt"))


def test_requirements_txt_has_no_dev_only_package() -> None:
    names = {line.split("==")[0].lower() for line in _requirements(REPO / "requirements.txt")}
    assert not names & set(WORKBENCH_ONLY)
    assert not names & set(TESTS_ONLY)
    project = _pyproject()["project"]
    assert isinstance(project, dict)
    dev = {pin.split("==")[0] for pin in project["optional-dependencies"]["dev"]}
    assert set(WORKBENCH_ONLY) <= dev


def _deployed_files() -> list[str]:
    """What `func azure functionapp publish` would zip: tracked files not matched by .funcignore."""
    patterns = [
        line.strip()
        for line in (REPO / ".funcignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=REPO, check=True, capture_output=True, text=True
    ).stdout.split()

    def ignored(path: str) -> bool:
        parts = path.split("/")
        for pattern in patterns:
            pattern = pattern.rstrip("/")
            if fnmatch.fnmatch(path, pattern) or any(fnmatch.fnmatch(part, pattern) for part in parts):
                return True
        return False

    return [path for path in tracked if not ignored(path)]


def test_the_functions_deployment_carries_no_workbench_code() -> None:
    deployed = _deployed_files()
    assert "function_app.py" in deployed and "guardrail/service.py" in deployed
    assert not [path for path in deployed if path.startswith("guardrail_workbench/")]
    assert "samples/tenant.json" not in deployed  # the emulator's seed tenant
    for path in deployed:
        if path.endswith(".py"):
            text = (REPO / path).read_text(encoding="utf-8")
            assert "guardrail_workbench" not in text or path == "guardrail/cli.py", path
            assert "import trustme" not in text, path


def test_the_product_package_never_imports_the_workbench_at_module_level() -> None:
    for path in sorted((REPO / "guardrail").rglob("*.py")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.startswith(("import ", "from ")):
                assert "guardrail_workbench" not in line, f"{path}: {line}"


def test_the_installed_distribution_requires_the_deployed_pins() -> None:
    """What pip resolved for this install (`pip install .` reads the same metadata): the runtime pins,
    and trustme and tqdm only with an extra (dev; tqdm also with progress)."""
    from importlib.metadata import requires

    declared = requires("guardrail") or []
    runtime = sorted(r for r in declared if "extra ==" not in r)
    assert runtime == sorted(_requirements(REPO / "requirements.txt"))
    extras = sorted(r.split(";")[0].strip() for r in declared if "extra ==" in r)
    assert extras == ["tqdm==4.70.1", "tqdm==4.70.1", "trustme==1.2.1"]


def test_the_workbench_commands_are_registered_not_named_by_the_product() -> None:
    from importlib.metadata import entry_points

    found = {e.name: e.value for e in entry_points(group="guardrail.commands")}
    assert found == {
        "demo": "guardrail_workbench.commands:demo",
        "emulator": "guardrail_workbench.commands:emulator",
    }


_WITHOUT_EXTRAS = (
    "import sys\n"
    "for name in ('guardrail_workbench', 'trustme', 'tqdm'):\n"
    "    sys.modules[name] = None  # as `pip install .` without an extra leaves them: not installed\n"
    "from guardrail.cli import main\n"
    "sys.exit(main(sys.argv[1:]))\n"
)


def test_without_the_extras_the_cli_runs_and_names_what_to_install() -> None:
    import sys

    def run(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-c", _WITHOUT_EXTRAS, *argv],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )

    listing = run("--help")
    assert listing.returncode == 0 and "evaluate" in listing.stdout and "emulator" not in listing.stdout
    judged = run("evaluate", "samples/accounts/compliant-locked-down.json")
    assert judged.returncode == 0 and "Traceback" not in judged.stderr, judged.stderr
    for command in ("demo", "emulator"):
        missing = run(command, "--help")
        assert missing.returncode == 2 and "Traceback" not in missing.stderr, missing.stderr
        (line,) = [x for x in missing.stderr.splitlines() if "error:" in x]
        assert command in line and "pip install -e '.[dev]'" in line


def test_the_console_script_evaluates_the_samples(tmp_path: Path) -> None:
    """`guardrail evaluate samples/accounts/*.json` as the installed console script runs it, from a
    folder outside the checkout (the samples copied there)."""
    import shutil
    import sys

    samples = tmp_path / "samples" / "accounts"
    shutil.copytree(REPO / "samples" / "accounts", samples)
    script = Path(sys.executable).parent / "guardrail"
    files = sorted(str(p.relative_to(tmp_path)) for p in samples.glob("*.json"))
    run = subprocess.run(
        [str(script), "evaluate", *files], cwd=tmp_path, capture_output=True, text=True, check=False
    )
    assert run.returncode == 1, run.stderr  # 1: some sample accounts are non-compliant
    assert "Traceback" not in run.stderr
    assert run.stdout.startswith("ACCOUNT") and "default-action-deny" in run.stdout
