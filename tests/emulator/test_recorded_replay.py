"""The emulator's contract test: the Azure CLI's recordings of real ARM (../shared/contracts/recorded-arm),
replayed interaction by interaction against a fresh emulator (tests/emulator/replay.py says how).

A disagreement is a defect of the emulator unless `replay.HISTORIC` names it (ARM changed since the
recording; the newest behaviour wins) or it is on the Foundry managed network, which issue #24
brings (counted as expected-missing until the emulator answers it, then as conforming).
"""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest

from guardrail_workbench.emulator import Emulator

from . import replay
from .replay import RECORDED, Report

RECORDINGS = replay.recordings()
_REPORTS: dict[str, Report] = {}


def _report(path: Path, context: ssl.SSLContext) -> Report:
    name = replay.name_of(path)
    if name not in _REPORTS:
        _REPORTS[name] = replay.replay(path, context)
    return _REPORTS[name]


def test_the_recordings_are_there() -> None:
    assert RECORDED.is_dir(), f"recorded ARM exchanges not found at {RECORDED} (../shared beside the repo)"
    assert RECORDINGS, f"no cassettes under {RECORDED}"
    for path in RECORDINGS:
        assert replay.load(path), f"{path}: no interactions"


@pytest.mark.parametrize("path", RECORDINGS, ids=replay.name_of)
def test_the_emulator_answers_as_recorded_arm(path: Path, tls_client_context: ssl.SSLContext) -> None:
    report = _report(path, tls_client_context)
    print(report.summary())  # the per-recording conformance, shown with -s or on failure
    assert report.interactions == len(replay.load(path))
    assert not report.unexplained, report.summary()


def test_every_historic_entry_still_names_a_disagreement(tls_client_context: ssl.SSLContext) -> None:
    """A historic entry that no longer excuses anything is stale: drop it rather than hide behind it."""
    for entry in replay.HISTORIC:
        path = RECORDED / entry.recording
        assert path.is_file(), f"HISTORIC names {entry.recording}, which is not recorded"
        excused = [
            o
            for o in _report(path, tls_client_context).outcomes[entry.first : entry.last + 1]
            if o.verdict == "historic"
        ]
        assert excused, f"HISTORIC {entry.recording} #{entry.first}-{entry.last} excuses nothing now"


def test_managed_network_interactions_are_counted_not_hidden(tls_client_context: ssl.SSLContext) -> None:
    """Every agent-era interaction is replayed and counted: conforming once the emulator has the
    surface, expected-missing until then; nothing else may be expected-missing."""
    agent_era = [
        o
        for path in RECORDINGS
        for o in _report(path, tls_client_context).outcomes
        if replay.AGENT_ERA.search(o.path)
    ]
    assert agent_era, "the managed-network recordings hold agent-era interactions"
    assert all(o.verdict in ("conforming", "expected-missing") for o in agent_era)
    others = [
        o for path in RECORDINGS for o in _report(path, tls_client_context).outcomes if o not in agent_era
    ]
    assert not [o for o in others if o.verdict == "expected-missing"]


def test_the_docs_table_is_current(tls_client_context: ssl.SSLContext) -> None:
    reports = [_report(path, tls_client_context) for path in RECORDINGS]
    block = replay.current_block(replay.DOC.read_text(encoding="utf-8"))
    assert block is not None, f"docs/local.md has no conformance block ({replay.BEGIN})"
    assert block == replay.table(reports), "docs/local.md is stale: run `python -m tests.emulator.replay`"


# ---------------------------------------------------------------------------- the replay can fail


def test_a_wrong_answer_is_reported_as_a_disagreement(tls_client_context: ssl.SSLContext) -> None:
    """The replay is a test only if a wrong emulator fails it: make every PATCH answer 500."""

    def break_patches(emulator: Emulator) -> None:
        emulator.faults.add(method="PATCH", status=500, times=1000)

    path = RECORDED / "fork2020" / "test_cognitiveservices_network_rules.yaml"
    report = replay.replay(path, tls_client_context, prepare=break_patches)
    wrong = report.unexplained
    assert wrong and all(o.method in ("PATCH", "GET") for o in wrong)
    assert any("status: ARM 200, emulator 500" in p for o in wrong for p in o.problems)


def test_the_comparison_takes_network_fields_and_terminal_states() -> None:
    groups = frozenset({"rg"})
    acls = {"defaultAction": "Deny", "ipRules": [{"value": "1.2.3.4"}], "virtualNetworkRules": []}
    arm = {
        "properties": {
            "networkAcls": acls,
            "publicNetworkAccess": "Enabled",
            "provisioningState": "Succeeded",
        }
    }
    assert replay.compare(arm, arm, groups) == []
    opened = {"properties": {**arm["properties"], "networkAcls": {**acls, "defaultAction": "Allow"}}}
    assert [p.split(":")[0] for p in replay.compare(arm, opened, groups)] == ["networkAcls"]
    creating = {"properties": {**arm["properties"], "provisioningState": "Creating"}}
    assert replay.compare(creating, arm, groups) == []  # ARM caught it in progress; the emulator is done
    assert replay.compare(arm, creating, groups)  # a terminal state must agree
    assert replay.compare({"status": "Succeeded"}, {"status": "Failed"}, groups)
    assert replay.compare({"error": {"code": "A"}}, {"error": {"code": "B"}}, groups)
    fqdns = {"properties": {"restrictOutboundNetworkAccess": True, "allowedFqdnList": ["a.example"]}}
    assert replay.compare(fqdns, {"properties": {"restrictOutboundNetworkAccess": True}}, groups)
    other_group = {"value": [{"id": "/subscriptions/s/resourceGroups/elsewhere/x", "properties": {}}]}
    assert replay.compare({"value": []}, other_group, groups) == []  # other tests' items are not ours
