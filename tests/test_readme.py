"""The README is the front door: its two commands are the ones that exist and the one CI runs, and
its reference tables are the code's: the rules table is generated from the registry, and
every findings column is documented."""

from __future__ import annotations

import re

from guardrail.findings import COLUMNS
from guardrail.rules import RULE_IDS, table_markdown
from tests.conftest import REPO

README = (REPO / "README.md").read_text(encoding="utf-8")
RULES_DOC = (REPO / "docs" / "rules.md").read_text(encoding="utf-8")
FINDINGS_DOC = (REPO / "docs" / "findings.md").read_text(encoding="utf-8")


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


def test_the_rules_table_is_the_registry() -> None:
    """docs/rules.md's table is `guardrail rules --format markdown`, byte for byte: no rule, severity,
    switch or default can drift from the code."""
    block = re.search(r"<!-- BEGIN rules table[^\n]*\n(.*?)<!-- END rules table -->", RULES_DOC, re.S)
    assert block, "docs/rules.md has no generated rules table"
    assert block.group(1) == table_markdown(), "regenerate it: guardrail rules --format markdown"
    table = re.findall(r"^\| `([a-z-]+)` \|", block.group(1), re.M)
    assert table == list(RULE_IDS)


def test_every_findings_column_is_documented() -> None:
    documented = set(re.findall(r"^\| `([A-Za-z]+)` \| [a-z]", FINDINGS_DOC, re.M))
    assert set(COLUMNS) <= documented


def test_readme_is_a_front_door_that_links_into_docs() -> None:
    assert len(README.encode("utf-8")) <= 20 * 1024, "the README is the front door: at most 20 KB"
    links = re.findall(r"\]\((docs/[^)#]+)", README)
    assert links, "the README links into docs/"
    for link in links:
        assert (REPO / link).is_file(), f"the README links to a missing {link}"


def test_docs_links_resolve() -> None:
    for page in sorted((REPO / "docs").glob("*.md")):
        for link in re.findall(r"\]\(([^)#:]+\.md)", page.read_text(encoding="utf-8")):
            assert (page.parent / link).resolve().is_file(), f"{page.name} links to a missing {link}"
