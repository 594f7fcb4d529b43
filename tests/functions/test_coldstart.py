"""What a new Functions worker loads before its first event: the import structure of the cold start
(fresh interpreters, never timed: benchmarks/bench_coldstart.py and bench_peer.py time it)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

# A fresh worker: import function_app, then what its first invocation builds (settings, policy models,
# the app with a static token); reports whether pydantic scanned the installed distributions for
# plugins and whether azure.identity / msal were loaded.
FIRST_INVOCATION_CHILD = (
    "import sys, function_app\n"
    "from guardrail import functions\n"
    "functions.get_app()\n"
    "from pydantic.plugin import _loader\n"
    "print(_loader._plugins is not None, "
    "sorted({m.split('.')[0] for m in sys.modules if m.startswith(('azure.identity', 'msal'))}))\n"
)


def _first_invocation(**settings: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ARM_", "GUARDRAIL_", "AZURE_"))}
    env.pop("PYDANTIC_DISABLE_PLUGINS", None)
    env.pop("AzureWebJobsStorage", None)
    env.update(PYTHONPATH=str(REPO), ARM_CREDENTIAL="static", ARM_STATIC_TOKEN="t", **settings)
    done = subprocess.run(
        [sys.executable, "-c", FIRST_INVOCATION_CHILD],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout.strip()


def test_the_first_invocation_skips_pydantic_plugin_discovery_and_azure_identity() -> None:
    """function_app turns pydantic's plugin discovery off (a scan of every installed distribution's
    entry points when the policy models are built); a static token never imports azure.identity."""
    assert _first_invocation() == "False []"


def test_an_app_setting_turns_pydantic_plugin_discovery_back_on() -> None:
    assert _first_invocation(PYDANTIC_DISABLE_PLUGINS="") == "True []"
