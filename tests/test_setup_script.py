"""scripts/setup (issue 16): one line per step it runs, with its time, and none of the packaging
tools' noise (deprecation warnings, the editable-install BuildBackendWarning, npm notices)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import REPO


def test_setup_prints_one_timed_line_per_step(tmp_path: Path) -> None:
    # A copy of the script in a scratch checkout with stub tools: the real script, no network.
    (tmp_path / "scripts").mkdir()
    shutil.copy(REPO / "scripts" / "setup", tmp_path / "scripts" / "setup")
    for name in ("requirements.txt", "requirements-dev.txt", "pyproject.toml", "package.json"):
        (tmp_path / name).write_text("", encoding="utf-8")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    noisy = (
        "#!/bin/sh\n"
        "echo 'BuildBackendWarning: Editable installation.' >&2\n"
        "echo 'npm notice New major version of npm available!' >&2\n"
        "echo 'DEPRECATION: something' >&2\n"
        'case "$*" in *venv*) mkdir -p .venv/bin; cp "$0" .venv/bin/python;; esac\n'
        "case \"$*\" in *'npm'*|ci*) mkdir -p node_modules/.bin; touch node_modules/.bin/azurite-table "
        "node_modules/.package-lock.json; chmod +x node_modules/.bin/azurite-table;; esac\n"
        "exit 0\n"
    )
    for tool in ("python3", "npm"):
        (bin_dir / tool).write_text(noisy, encoding="utf-8")
        (bin_dir / tool).chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "PYTHON": str(bin_dir / "python3")}
    run = subprocess.run(
        ["bash", "scripts/setup"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 0, run.stderr
    lines = run.stderr.splitlines()
    assert run.stdout == ""
    assert lines, "no step printed"
    for line in lines:
        assert re.fullmatch(r"setup: .+ \.\.\. done \(\d+\.\d s\)", line), line
    assert any("Azurite" in line for line in lines) and any("Python packages" in line for line in lines)
    # Up to date: a second run prints nothing.
    again = subprocess.run(
        ["bash", "scripts/setup"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
    )
    assert again.returncode == 0 and again.stderr == "", again.stderr


def test_a_failing_step_shows_its_log(tmp_path: Path) -> None:
    (tmp_path / "scripts").mkdir()
    shutil.copy(REPO / "scripts" / "setup", tmp_path / "scripts" / "setup")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "python3").write_text("#!/bin/sh\necho 'No module named venv' >&2\nexit 1\n", encoding="utf-8")
    (bin_dir / "python3").chmod(0o755)
    env = {**os.environ, "PYTHON": str(bin_dir / "python3")}
    run = subprocess.run(
        ["bash", "scripts/setup"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
    )
    assert run.returncode != 0
    assert "setup: creating .venv ... FAILED" in run.stderr and "No module named venv" in run.stderr


@pytest.mark.skipif(not (REPO / "pyproject.toml").exists(), reason="needs the repository")
def test_pyproject_license_is_a_pep_639_string() -> None:
    import tomllib

    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert isinstance(project["license"], str)  # a table ({text = ...}) is deprecated by setuptools
