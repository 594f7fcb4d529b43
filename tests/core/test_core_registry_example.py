"""The worked example of docs/development.md ("Adding a rule") is real and is one module: a copy of
the product package with that very block added as `guardrail/rules/<name>.py`, and no other file
changed, finds the rule, reads its property, plans its fix, keeps the property in the journal and
has the guard approve the PATCH (run in a fresh interpreter on the copy)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

from tests.conftest import REPO

DEVELOPMENT = (REPO / "docs" / "development.md").read_text(encoding="utf-8")

PROBE = textwrap.dedent(
    """
    import datetime as dt, json
    from guardrail.actions import Snapshot
    from guardrail.engine import action_widening, plan
    from guardrail.policy import parse_policy
    from guardrail.rules import ACTION_TYPES, PROPERTY_TYPES, RULE_IDS, WRITTEN_PROPERTIES, table_rows
    from guardrail import neverwiden, wellformed

    rid = "/subscriptions/00000000-1111-2222-3333-444444444444/resourceGroups/rg/providers/" \\
        "Microsoft.CognitiveServices/accounts/foundry"
    account = {"id": rid, "type": "Microsoft.CognitiveServices/accounts", "kind": "AIServices",
               "properties": {"publicNetworkAccess": "Disabled", "allowProjectManagement": True}}
    now = dt.datetime(2026, 12, 7, tzinfo=dt.UTC)
    reported = plan(Snapshot(account), parse_policy({"version": 1}), now)
    fixing = parse_policy({"version": 1, "remediate": {"project-management-enabled": True}})
    fixed = plan(Snapshot(account), fixing, now)
    patch = fixed.actions[0]
    bad = {**account, "properties": {**account["properties"], "allowProjectManagement": "yes"}}
    print(json.dumps({
        "ids": list(RULE_IDS),
        "reported": [(f.rule, f.fixed) for f in reported.findings],
        "actions": [a.to_json() for a in fixed.actions],
        "written": list(WRITTEN_PROPERTIES),
        "typed": str(PROPERTY_TYPES.get("allowProjectManagement")),
        "guard": ACTION_TYPES[patch.kind].widens(Snapshot(account), patch)
        + neverwiden.widens(account, patch.body),
        "widening": action_widening(
            Snapshot({**account, "properties": {**account["properties"], "allowProjectManagement": False}}),
            type(patch)(patch.kind, patch.method, rid, {"properties": {"allowProjectManagement": True}}, ()),
        ),
        "invalid": wellformed.problem(bad),
        "rows": [row[0] for row in table_rows()],
    }))
    """
)


def test_the_worked_example_is_one_module(tmp_path: Path) -> None:
    section = DEVELOPMENT.split("## Adding a rule", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S)
    assert code, "docs/development.md's worked example has no python block"
    named = re.search(r"Save\s+this\s+as\s+`guardrail/rules/(\w+)\.py`", section)
    assert named
    copy = tmp_path / "guardrail"
    shutil.copytree(REPO / "guardrail", copy, ignore=shutil.ignore_patterns("__pycache__"))
    (copy / "rules" / f"{named.group(1)}.py").write_text(code.group(1), encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=tmp_path,
        env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    from guardrail.rules import RULE_IDS

    assert [r for r in seen["ids"] if r != "project-management-enabled"] == list(RULE_IDS)
    assert seen["rows"] == seen["ids"]  # `guardrail rules` and docs/rules.md list it
    assert seen["reported"] == [["project-management-enabled", False]]  # reported, not fixed by default
    assert seen["actions"] == [
        {
            "kind": "patch-account",
            "method": "PATCH",
            "target": "/subscriptions/00000000-1111-2222-3333-444444444444/resourceGroups/rg/providers/"
            "Microsoft.CognitiveServices/accounts/foundry",
            "body": {"properties": {"allowProjectManagement": False}},
            "rules": ["project-management-enabled"],
        }
    ]
    assert "allowProjectManagement" in seen["written"]  # the journal keeps it as read
    assert seen["typed"] == "<class 'bool'>"
    assert seen["guard"] == []  # the guard approves the fix
    assert seen["widening"] == ["Foundry projects enabled"]  # and would refuse the reverse
    assert "allowProjectManagement" in seen["invalid"]  # the shape check knows its type
