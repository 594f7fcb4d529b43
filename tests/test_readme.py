"""The README is the front door: its two commands are the ones that exist and the one CI runs, and
its reference tables name every public rule ID and findings column."""

from __future__ import annotations

import re

from guardrail.findings import COLUMNS
from guardrail.rules import RULE_IDS
from tests.conftest import REPO

README = (REPO / "README.md").read_text(encoding="utf-8")


def _first_commands() -> list[str]:
    section = README.split("## Try it", 1)[1]
    block = re.search(r"```sh\n(.*?)```", section, re.S)
    assert block, "the README's first section has no shell block"
    return [line.split("#", 1)[0].strip() for line in block.group(1).splitlines() if line.strip()]


def test_readme_opens_with_two_commands_and_ci_runs_the_second() -> None:
    demo, test = _first_commands()
    assert demo == "./scripts/demo" and test == "./scripts/test"
    for command in (demo, test):
        assert (REPO / command).is_file()
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    commands = [
        line.strip() for line in ci.splitlines() if line.strip() and not line.lstrip().startswith("#")
    ]
    assert commands[-1] == f"exec {test}"


def test_every_rule_id_is_in_the_rules_table() -> None:
    table = {match for match in re.findall(r"^\| `([a-z-]+)` \|", README, re.M)}
    assert set(RULE_IDS) <= table


def test_every_findings_column_is_documented() -> None:
    documented = set(re.findall(r"^\| `([A-Za-z]+)` \| [a-z]", README, re.M))
    assert set(COLUMNS) <= documented
