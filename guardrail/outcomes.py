"""What one check and one sweep came to: the values the reconciler returns and its observers
(metrics, the heartbeat, the CLI and the demo) read. Pure data: no I/O, no loop."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from guardrail.findings import FindingRecord
from guardrail.resource_ids import subscription_of
from guardrail.vocabulary import Action, Trigger


@dataclass
class Outcome:
    """What happened to one account in one pass. `records` are every record of the pass, in
    order; `outbox` the durable outbox rows (`guardrail.state.OutboxItem`) that carry some of them
    (the reconciler delivers those from the journal; the rest directly)."""

    resource_id: str
    action: Action
    records: list[FindingRecord] = field(default_factory=list)
    alerted: bool = False
    breaker_tripped: bool = False
    detail: str = ""
    started: float = 0.0
    finished: float = 0.0
    event_time: datetime | None = None
    trigger: Trigger | Literal[""] = ""
    actor: str | None = None
    outbox: list[Any] = field(default_factory=list)

    @property
    def seconds(self) -> float:
        return self.finished - self.started


@dataclass
class SweepReport:
    listed: int = 0
    compliant: int = 0
    outcomes: list[Outcome] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0
    listed_by_subscription: dict[str, int] = field(default_factory=dict)  # lower-case id -> count

    def count(self, action: Action) -> int:
        return sum(1 for outcome in self.outcomes if outcome.action == action)

    def note_listed(self, body: Mapping[str, Any]) -> None:
        rid = body.get("id")
        if isinstance(rid, str) and rid.count("/") > 2:
            sub = subscription_of(rid)
            self.listed_by_subscription[sub] = self.listed_by_subscription.get(sub, 0) + 1
