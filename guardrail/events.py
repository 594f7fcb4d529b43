"""Parsing Event Grid deliveries (Event Grid schema and CloudEvents 1.0) into what the guardrail needs.

Pure: no I/O. Resource events (`Microsoft.Resources.ResourceWriteSuccess`, from a subscription
system topic) name the resource and who changed it; Azure Resource Notifications
(`...Resources.CreatedOrUpdated`) also carry the resource's full properties.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

from guardrail.escaping import escape_control, has_control
from guardrail.resource_ids import id_key

# azure.eventgrid's SystemEventNames.ResourceWriteSuccessEventName and
# .ResourceNotificationsResourceManagementCreatedOrUpdatedEventName, as literals: importing
# azure.eventgrid (with azure.core) for two strings cost the first invocation ~70-80 ms.
# tests/functions/test_events.py holds them equal to the SDK's.
WRITE_SUCCESS: Final = "Microsoft.Resources.ResourceWriteSuccess"
NOTIFICATION_UPSERT: Final = "Microsoft.ResourceNotifications.Resources.CreatedOrUpdated"

_ACCOUNT_RE: Final = re.compile(
    r"(/subscriptions/[\w-]+/resourceGroups/[\w.()-]+/providers/Microsoft\.CognitiveServices/accounts/[\w.-]+)"
    r"(?:/[\w.()@:~-]+/[\w.()@:~-]+)*",  # child resources: pairs of type and name
    re.IGNORECASE,
)
_PROVIDER: Final = "microsoft.cognitiveservices"
_URL: Final = re.compile(r"[a-z][a-z0-9+.-]*://", re.IGNORECASE)
# %2F "/", %5C "\", %2E ".", %25 "%" (double encoding) and encoded control characters.
_ENCODED_SEPARATOR: Final = re.compile(r"%(?:2f|5c|2e|25|[01][0-9a-f]|7f)", re.IGNORECASE)
_UPN: Final = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn"
_OID: Final = "http://schemas.microsoft.com/identity/claims/objectidentifier"

Schema = Literal["eventgrid", "cloudevents"]


class MalformedEvent(ValueError):
    """The delivery is not a well-formed event; the message says what is wrong (control
    characters escaped)."""


@dataclass(frozen=True, slots=True)
class ResourceEvent:
    event_id: str
    event_type: str
    subject: str
    schema: Schema
    account_id: str | None  # the account the event is about (child resources mapped to it)
    operation: str | None
    status: str | None
    actor: str | None
    correlation_id: str | None
    event_time: dt.datetime | None
    resource: Mapping[str, Any] | None  # full account body from a Resource Notification
    rejected: str | None = None  # why the resource ID is not well-formed (escaped); then no account

    @property
    def relevant(self) -> bool:
        """A successful write to an account (or one of its children) that the guardrail must check."""
        if self.account_id is None or self.rejected is not None:
            return False
        if self.event_type == WRITE_SUCCESS:
            return True
        return self.event_type == NOTIFICATION_UPSERT

    @property
    def ignore_level(self) -> int:
        """WARNING for a malformed resource ID (somebody sent something odd), INFO otherwise."""
        return logging.WARNING if self.rejected is not None else logging.INFO

    def ignore_reason(self) -> str:
        """Why the event needs no check, in one line (event text escaped)."""
        if self.rejected is not None:
            return f"rejected: {self.rejected}"
        if self.account_id is None:
            return f"not a Microsoft.CognitiveServices account: {escape_control(self.subject)}"
        return f"event type {escape_control(self.event_type)} needs no check"


def resource_id_problem(resource_id: str) -> str | None:
    """Why `resource_id` (from an event) is not a well-formed ARM resource ID, else None.

    Any ID: no control characters, empty, `.` or `..` segments, backslashes or percent-encoded
    separators (`%2F`, `%5C`, `%2E`, `%25`, encoded control characters). An ID naming the
    Microsoft.CognitiveServices provider must also be exactly an account, or a child resource of
    one (pairs of type and name below it), or a well-formed resource of another type of the
    provider; URLs and IDs of other providers are no concern of this check (the caller ignores them).
    """
    shown = escape_control(resource_id)
    if has_control(resource_id):
        return f"control characters in the resource ID {shown}"
    if _URL.match(resource_id):
        return None  # a URL: not an ARM resource ID at all
    if "\\" in resource_id or _ENCODED_SEPARATOR.search(resource_id):
        return f"a backslash or percent-encoded separator in the resource ID {shown}"
    path = resource_id[:-1] if resource_id.endswith("/") else resource_id
    if not path.startswith("/"):
        return f"the resource ID {shown} does not start with /subscriptions/"
    segments = path[1:].split("/")
    if any(segment in ("", ".", "..") for segment in segments):
        return f"an empty, '.' or '..' segment in the resource ID {shown}"
    lower = [segment.lower() for segment in segments]
    if _PROVIDER not in lower:
        return None
    if _ACCOUNT_RE.fullmatch(path) is not None:
        return None
    at = lower.index(_PROVIDER)
    well_formed_other = (
        at == 5
        and lower[:5:2] == ["subscriptions", "resourcegroups", "providers"]
        and len(segments) >= 8
        and len(segments) % 2 == 0
        and lower[6] != "accounts"
    )
    if well_formed_other:
        return None
    return (
        f"the resource ID {shown} is not /subscriptions/{{id}}/resourceGroups/{{name}}/providers/"
        "Microsoft.CognitiveServices/accounts/{name}[/{type}/{name}...]"
    )


def account_id_of(resource_id: str) -> str | None:
    """The account resource ID for an account or any of its child resources, else None."""
    if resource_id_problem(resource_id) is not None:
        return None
    match = _ACCOUNT_RE.fullmatch(resource_id[:-1] if resource_id.endswith("/") else resource_id)
    return match.group(1) if match else None


def actor_of(data: Mapping[str, Any]) -> str | None:
    """Who made the change: the UPN for users, the app id for service principals, else the principal."""
    claims = data.get("claims")
    claims = claims if isinstance(claims, Mapping) else {}
    authorization = data.get("authorization")
    evidence = authorization.get("evidence") if isinstance(authorization, Mapping) else None
    evidence = evidence if isinstance(evidence, Mapping) else {}
    upn = claims.get(_UPN) or claims.get("upn")
    if isinstance(upn, str) and upn:
        return upn
    principal_type = evidence.get("principalType")
    appid = claims.get("appid")
    if principal_type == "ServicePrincipal" and isinstance(appid, str) and appid:
        return f"app:{appid}"
    principal = evidence.get("principalId") or claims.get(_OID)
    if isinstance(principal, str) and principal:
        return f"principal:{principal}"
    if isinstance(appid, str) and appid:
        return f"app:{appid}"
    return None


def _time(value: object) -> dt.datetime | None:
    if isinstance(value, dt.datetime):
        return value
    if not isinstance(value, str):
        return None
    text = value.strip().replace("Z", "+00:00")
    # Event Grid sends 7 fractional digits; fromisoformat takes at most 6.
    text = re.sub(r"(\.\d{6})\d+", r"\1", text)
    try:
        return dt.datetime.fromisoformat(text)
    except ValueError:
        return None


def parse_event(payload: object) -> ResourceEvent:
    """One event in either schema (a dict as delivered); raises MalformedEvent naming the problem."""
    if not isinstance(payload, Mapping):
        raise MalformedEvent(f"an event must be a JSON object, got {type(payload).__name__}")
    schema: Schema = "cloudevents" if "specversion" in payload else "eventgrid"
    type_key, time_key = ("type", "time") if schema == "cloudevents" else ("eventType", "eventTime")
    event_id = payload.get("id")
    event_type = payload.get(type_key)
    subject = payload.get("subject")
    problems = [
        f"'{key}' must be a non-empty string"
        for key, value in (("id", event_id), (type_key, event_type))
        if not isinstance(value, str) or not value
    ]
    data = payload.get("data")
    if not isinstance(data, Mapping):
        problems.append("'data' must be an object")
        data = {}
    if isinstance(event_id, str) and has_control(event_id):
        problems.append("'id' must not contain control characters")
    if problems:
        shown = escape_control(event_id) if isinstance(event_id, str) else "?"
        raise MalformedEvent(f"event {shown}: " + "; ".join(problems))
    assert isinstance(event_id, str) and isinstance(event_type, str)
    resource_info = data.get("resourceInfo")
    resource = resource_info if isinstance(resource_info, Mapping) else None
    named_subject = subject if isinstance(subject, str) and account_id_of(subject) else None
    target = data.get("resourceUri") or named_subject or (resource.get("id") if resource else None) or subject
    if not isinstance(target, str) or not target:
        raise MalformedEvent(f"event {event_id}: no resource ID in 'subject' or 'data.resourceUri'")
    claimed = (subject, data.get("resourceUri"), resource.get("id") if resource else None)
    rejected = next(
        (problem for rid in claimed if isinstance(rid, str) and (problem := resource_id_problem(rid))), None
    )
    account_id = None if rejected else account_id_of(target)
    named = {
        id_key(found)
        for found in (account_id, account_id_of(subject) if isinstance(subject, str) else None)
        if found is not None
    }
    if resource is not None and (account_id is None or not same_id_set(named, resource.get("id"))):
        resource = None  # the body is evidence only of the account the event names
    correlation = data.get("correlationId")
    return ResourceEvent(
        event_id=event_id,
        event_type=event_type,
        subject=subject if isinstance(subject, str) else target,
        schema=schema,
        account_id=account_id,
        operation=data.get("operationName") if isinstance(data.get("operationName"), str) else None,
        status=data.get("status") if isinstance(data.get("status"), str) else None,
        actor=actor_of(data),
        correlation_id=correlation if isinstance(correlation, str) else None,
        event_time=_time(payload.get(time_key)),
        resource=resource,
        rejected=rejected,
    )


def same_id_set(named: set[str], resource_id: object) -> bool:
    """Whether `named` (ID keys) is exactly the key of `resource_id` (an ID from a body)."""
    return isinstance(resource_id, str) and bool(resource_id.strip()) and named == {id_key(resource_id)}


def from_function_event(event: Any) -> dict[str, Any]:
    """The delivered JSON of a `func.EventGridEvent` or `func.CloudEvent` (as the Functions
    library hands them over), so that one parser serves both."""
    if hasattr(event, "specversion"):
        body: dict[str, Any] = {
            "id": event.id,
            "source": event.source,
            "type": event.type,
            "specversion": event.specversion,
            "subject": event.subject,
            "time": event.time.isoformat() if event.time else None,
            "data": event.get_json(),
        }
        return body
    return {
        "id": event.id,
        "topic": event.topic,
        "subject": event.subject,
        "eventType": event.event_type,
        "eventTime": event.event_time.isoformat() if event.event_time else None,
        "dataVersion": event.data_version,
        "data": event.get_json(),
    }
