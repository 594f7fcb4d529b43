"""The findings record: one row per finding, as written to Azure Monitor (table
`GuardrailFindings_CL`), to JSON Lines files and to the function log.

`FindingRecord` is a public interface. Its attributes are snake_case; `to_json()` emits
exactly the column names of the table (see the README, "Findings")."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final, Literal, get_args

from guardrail import __version__
from guardrail.vocabulary import MODES as MODES
from guardrail.vocabulary import SEVERITIES as SEVERITIES
from guardrail.vocabulary import SEVERITY_RANK as SEVERITY_RANK
from guardrail.vocabulary import STATUSES as STATUSES
from guardrail.vocabulary import TRIGGERS as TRIGGERS
from guardrail.vocabulary import Mode as Mode
from guardrail.vocabulary import Severity as Severity
from guardrail.vocabulary import Status as Status
from guardrail.vocabulary import Trigger as Trigger

#: Where `Actor` comes from: ARM's systemData.lastModifiedBy on the fresh read, the event's
#: claims (only when systemData is absent or agrees), or nobody known.
ActorSource = Literal["systemData", "event-claims", "none"]
ACTOR_SOURCES: Final[tuple[ActorSource, ...]] = get_args(ActorSource)

#: The JSON (table column) names, in table order.
COLUMNS: Final[tuple[str, ...]] = (
    "TimeGenerated",
    "ResourceId",
    "SubscriptionId",
    "ResourceGroup",
    "AccountName",
    "Kind",
    "Rule",
    "Severity",
    "Status",
    "Message",
    "Value",
    "Before",
    "After",
    "Actor",
    "ActorSource",
    "CorrelationId",
    "EventId",
    "Trigger",
    "Mode",
    "GuardrailVersion",
)

_ISO_Z = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z$")


@dataclass(frozen=True, slots=True)
class ResourceIdParts:
    subscription_id: str
    resource_group: str
    account_name: str


def parse_resource_id(resource_id: str) -> ResourceIdParts:
    """Split an account resource ID into subscription, resource group and account name.

    Segment keywords match case-insensitively (ARM IDs arrive in mixed case); the values keep
    their case. A child resource ID (`.../accounts/a/deployments/d`) yields its account.
    Raises ValueError when the ID is not a Microsoft.CognitiveServices account (or child)."""
    from guardrail.resource_ids import parse_account_or_child

    subscription, group, account = parse_account_or_child(resource_id)
    return ResourceIdParts(subscription_id=subscription, resource_group=group, account_name=account)


def format_time(moment: datetime | str | None = None) -> str:
    """ISO 8601 UTC with a 'Z' suffix and millisecond precision (now when omitted).

    A naive datetime is taken as UTC; a string must already be ISO 8601 (any offset)."""
    if moment is None:
        moment = datetime.now(UTC)
    elif isinstance(moment, str):
        text = moment.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(f"TimeGenerated is not ISO 8601: {moment!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _check(name: str, value: object, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(allowed)}; got {value!r}")


@dataclass(frozen=True, slots=True)
class FindingRecord:
    """One finding about one account. Build it with `FindingRecord.create(...)` (fills in the
    time, the resource ID parts and the version) or directly with every field.

    `before` / `after` are JSON objects, deep-copied on creation: the networkAcls object for the
    rules fixed inside it, `{"disableLocalAuth": ...}` / `{"publicNetworkAccess": ...}` for the
    rules fixed outside it; `after` is null when nothing was written. Do not hash a record (it
    holds dicts)."""

    time_generated: str
    resource_id: str
    subscription_id: str
    resource_group: str
    account_name: str
    kind: str
    rule: str
    severity: Severity
    status: Status
    message: str
    value: str | None
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    actor: str | None
    correlation_id: str
    event_id: str | None
    trigger: Trigger
    mode: Mode
    guardrail_version: str = field(default=__version__)
    actor_source: ActorSource = "none"

    def __post_init__(self) -> None:
        _check("Severity", self.severity, SEVERITIES)
        _check("Status", self.status, STATUSES)
        _check("Trigger", self.trigger, TRIGGERS)
        _check("Mode", self.mode, MODES)
        _check("ActorSource", self.actor_source, ACTOR_SOURCES)
        if not _ISO_Z.match(self.time_generated):
            raise ValueError(f"TimeGenerated must be ISO 8601 UTC ending in 'Z': {self.time_generated!r}")
        for name in ("resource_id", "rule", "correlation_id"):
            if not getattr(self, name):
                raise ValueError(f"{name} must not be empty")
        if self.value is not None and not isinstance(self.value, str):
            raise ValueError("Value must be a string or None")
        for name in ("before", "after"):
            acl = getattr(self, name)
            if acl is not None:
                if not isinstance(acl, Mapping):
                    raise ValueError(f"{name} must be a JSON object or None")
                object.__setattr__(self, name, copy.deepcopy(dict(acl)))

    @classmethod
    def create(
        cls,
        *,
        resource_id: str,
        rule: str,
        severity: Severity,
        status: Status,
        message: str,
        correlation_id: str,
        trigger: Trigger,
        mode: Mode,
        kind: str = "",
        value: str | None = None,
        before: Mapping[str, Any] | None = None,
        after: Mapping[str, Any] | None = None,
        actor: str | None = None,
        actor_source: ActorSource | None = None,
        event_id: str | None = None,
        time_generated: datetime | str | None = None,
    ) -> FindingRecord:
        """The usual constructor: parses the resource ID and stamps time and version."""
        ids = parse_resource_id(resource_id)
        return cls(
            time_generated=format_time(time_generated),
            resource_id=resource_id,
            subscription_id=ids.subscription_id,
            resource_group=ids.resource_group,
            account_name=ids.account_name,
            kind=kind,
            rule=rule,
            severity=severity,
            status=status,
            message=message,
            value=value,
            before=dict(before) if before is not None else None,
            after=dict(after) if after is not None else None,
            actor=actor,
            actor_source=actor_source or ("event-claims" if actor else "none"),
            correlation_id=correlation_id,
            event_id=event_id,
            trigger=trigger,
            mode=mode,
        )

    def to_json(self) -> dict[str, Any]:
        """The record as a table row: exactly the COLUMNS, in order."""
        return {
            "TimeGenerated": self.time_generated,
            "ResourceId": self.resource_id,
            "SubscriptionId": self.subscription_id,
            "ResourceGroup": self.resource_group,
            "AccountName": self.account_name,
            "Kind": self.kind,
            "Rule": self.rule,
            "Severity": self.severity,
            "Status": self.status,
            "Message": self.message,
            "Value": self.value,
            "Before": copy.deepcopy(self.before),
            "After": copy.deepcopy(self.after),
            "Actor": self.actor,
            "ActorSource": self.actor_source,
            "CorrelationId": self.correlation_id,
            "EventId": self.event_id,
            "Trigger": self.trigger,
            "Mode": self.mode,
            "GuardrailVersion": self.guardrail_version,
        }

    def to_json_line(self) -> str:
        """Compact one-line JSON (JSON Lines, log lines)."""
        return json.dumps(self.to_json(), separators=(",", ":"), ensure_ascii=False)

    @classmethod
    def from_json(cls, row: Mapping[str, Any]) -> FindingRecord:
        """Inverse of to_json (used to read JSON Lines back); unknown keys are refused. Rows
        written before `ActorSource` existed read back with "none"."""
        unknown = set(row) - set(COLUMNS)
        missing = set(COLUMNS) - set(row) - {"ActorSource"}
        if unknown or missing:
            raise ValueError(f"not a finding row: unknown={sorted(unknown)} missing={sorted(missing)}")
        return cls(
            time_generated=row["TimeGenerated"],
            resource_id=row["ResourceId"],
            subscription_id=row["SubscriptionId"],
            resource_group=row["ResourceGroup"],
            account_name=row["AccountName"],
            kind=row["Kind"],
            rule=row["Rule"],
            severity=row["Severity"],
            status=row["Status"],
            message=row["Message"],
            value=row["Value"],
            before=row["Before"],
            after=row["After"],
            actor=row["Actor"],
            actor_source=row.get("ActorSource", "none"),
            correlation_id=row["CorrelationId"],
            event_id=row["EventId"],
            trigger=row["Trigger"],
            mode=row["Mode"],
            guardrail_version=row["GuardrailVersion"],
        )
