"""A check's finding records, composed from the engine's findings and what became of the plan.
Pure: no I/O. The reconciler decides each fixed finding's status (`StatusOf`: remediated, failed or
suspended with the cause) and this module writes the records: one per finding, with the account's
state before and after the write as the rule shows it (`Rule.shows`), the actor and where that
name comes from (`provenance`), the event and the correlation ID, and each record's alert key."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from guardrail.actions import Action
from guardrail.engine import Evaluation, Finding
from guardrail.events import ResourceEvent
from guardrail.findings import ActorSource, FindingRecord, Status
from guardrail.rules import BY_ID
from guardrail.vocabulary import Mode, Severity, Trigger

INVALID_RULE = "account-invalid"


def side(rule: str, props: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """A record's Before/After of the account: the property the rule shows (`Rule.shows`:
    `{"disableLocalAuth": ...}`), else the networkAcls object; None when there is no such state,
    and for a rule that shows its action instead (`@action`: `written`)."""
    shown = BY_ID[rule].shows if rule in BY_ID else None
    if props is None or shown == "@action":
        return None
    if shown is not None:
        return {shown: props.get(shown)}
    acls = props.get("networkAcls")
    return dict(acls) if isinstance(acls, Mapping) else None


def written(rule: str, after: Mapping[str, Any] | None, action: Action | None) -> dict[str, Any] | None:
    """A remediated record's After: the account as re-read (`side`), or, for a rule that shows its
    action (`Rule.shows == "@action"`), the child resource written: `{"name": <its name>, **body}`
    (`{"name", "deleted": true}` for a DELETE)."""
    if not (rule in BY_ID and BY_ID[rule].shows == "@action"):
        return side(rule, after)
    if action is None:
        return None
    name = action.target.rsplit("/", 1)[-1]
    return {"name": name, **action.body} if action.body is not None else {"name": name, "deleted": True}


def last_modified_by(account: Mapping[str, Any]) -> str | None:
    """Who last changed the account, from ARM's `systemData` (in the same form as events give)."""
    system = account.get("systemData")
    if not isinstance(system, Mapping):
        return None
    who, kind = system.get("lastModifiedBy"), system.get("lastModifiedByType")
    if not isinstance(who, str) or not who:
        return None
    prefix = {"Application": "app:", "ManagedIdentity": "principal:", "Key": "key:"}.get(str(kind), "")
    return prefix + who


def provenance(
    account: Mapping[str, Any] | None, event: ResourceEvent | None
) -> tuple[str | None, ActorSource]:
    """Who last modified the state being fixed: ARM's `systemData.lastModifiedBy` on the fresh
    read; the event's claims only when systemData names nobody (an event may be late or forged)."""
    recorded = last_modified_by(account) if account is not None else None
    if recorded is not None:
        return recorded, "systemData"
    claimed = event.actor if event is not None else None
    if claimed:
        return claimed, "event-claims"
    return None, "none"


def alert_key(record: FindingRecord) -> str:
    text = f"{record.rule}\x1f{record.value or ''}\x1f{record.status}"
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


StatusOf = Callable[[Finding], tuple[Status, str | None] | None]


def nothing(finding: Finding) -> tuple[Status, str | None] | None:
    return None


def every_fixed(status: Status, cause: str) -> StatusOf:
    """Every fixed finding in `status`, with `cause`."""
    return lambda finding: (status, cause)


def repairing(actions: Sequence[Action], finding: Finding) -> int | None:
    """The index of the action that repairs a fixed finding (None: not fixed, or no such action)."""
    if not finding.fixed or finding.rule not in BY_ID:
        return None
    kind = BY_ID[finding.rule].action
    for index, action in enumerate(actions):
        if (
            action.kind == kind
            and finding.rule in action.rules
            and (kind == "patch-account" or finding.value in action.values)
        ):
            return index
    return None


@dataclass
class RecordContext:
    trigger: Trigger
    mode: Mode
    actor: str | None
    correlation_id: str
    event_id: str | None
    now: datetime
    actor_source: ActorSource = "none"
    event: ResourceEvent | None = None

    def invalid(
        self, resource_id: str, message: str, value: str | None, failed: bool, kind: str = ""
    ) -> FindingRecord:
        """The `account-invalid` record: the guardrail could not judge (or read) the account."""
        status: Status = "audit" if self.mode == "audit" else "violation"
        if failed and self.mode == "enforce":
            status = "remediation-failed"
        return self.record(
            resource_id, INVALID_RULE, BY_ID[INVALID_RULE].severity, status, message, value, kind, None, None
        )

    def records(
        self,
        evaluation: Evaluation,
        status_of_fixed: StatusOf,
        before: Mapping[str, Any] | None,
        after: Mapping[str, Any] | None,
    ) -> list[FindingRecord]:
        """One record per finding; `before`/`after` are the account's properties as read and,
        when something was written, as re-read."""
        records = []
        for finding in evaluation.findings:
            message = finding.message
            status: Status
            is_written = False
            if finding.exempted:
                status = "exempted"
            elif self.mode == "audit":
                status = "audit"
            else:
                decided = status_of_fixed(finding) if finding.fixed else None
                if decided is None:
                    status = "violation"
                else:
                    status, cause = decided
                    is_written = status == "remediated"
                    if cause:
                        message = f"{message} — {cause}"
            index = repairing(evaluation.actions, finding)
            action = evaluation.actions[index] if index is not None else None
            records.append(
                self.record(
                    evaluation.resource_id,
                    finding.rule,
                    finding.severity,
                    status,
                    message,
                    finding.value,
                    evaluation.kind,
                    side(finding.rule, before),
                    written(finding.rule, after, action) if is_written else None,
                )
            )
        return records

    def record(
        self,
        resource_id: str,
        rule: str,
        severity: Severity,
        status: Status,
        message: str,
        value: str | None,
        kind: str,
        before: Mapping[str, Any] | None,
        after: Mapping[str, Any] | None,
    ) -> FindingRecord:
        return FindingRecord.create(
            resource_id=resource_id,
            rule=rule,
            severity=severity,
            status=status,
            message=message,
            correlation_id=self.correlation_id,
            trigger=self.trigger,
            mode=self.mode,
            kind=kind,
            value=value,
            before=before,
            after=after,
            actor=self.actor,
            actor_source=self.actor_source,
            event_id=self.event_id,
            time_generated=self.now,
        )
