"""The guardrail's words, as types: severities, finding statuses, triggers, modes and the loop's
outcomes (`Action`). Each string is a public interface (findings schema, CLI JSON, alerts): never
rename one. The journal's states are `guardrail.state.JournalState`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final, Literal, get_args

Severity = Literal["critical", "high", "medium", "low"]
Status = Literal[
    "violation", "remediated", "remediation-failed", "remediation-suspended", "exempted", "audit", "heartbeat"
]
Trigger = Literal["event", "sweep", "cli", "demo"]
Mode = Literal["enforce", "audit"]
#: What one check of one account came to (`Outcome.action`, the CLI's `action`).
Action = Literal[
    "compliant", "remediated", "failed", "suspended", "audit", "reported", "gone", "invalid", "skipped"
]

SEVERITIES: Final[tuple[Severity, ...]] = get_args(Severity)
STATUSES: Final[tuple[Status, ...]] = get_args(Status)
TRIGGERS: Final[tuple[Trigger, ...]] = get_args(Trigger)
MODES: Final[tuple[Mode, ...]] = get_args(Mode)
ACTIONS: Final[tuple[Action, ...]] = get_args(Action)

#: Higher is worse.
SEVERITY_RANK: Final[Mapping[Severity, int]] = {"low": 0, "medium": 1, "high": 2, "critical": 3}
