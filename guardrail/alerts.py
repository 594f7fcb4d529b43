"""Composing alerts from findings (pure: no I/O).

One alert per evaluated account: `compose_alert(records)` for the records of one account.
Renderers: `to_adaptive_card` (Teams Workflows message with an Adaptive Card 1.4, kept under the
~28 KB limit) and `to_email` (subject, plain text, escaped HTML). The alert cool-down is the
service's business (`service._alert_key`), not the alert's."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import quote

from guardrail.escaping import escape_control
from guardrail.findings import SEVERITY_RANK, FindingRecord, Severity
from guardrail.resource_ids import name_key
from guardrail.rules import RULES

#: Teams Workflows refuse bigger messages (about 28 KB); we keep a margin under it.
CARD_MAX_BYTES: Final[int] = 28 * 1024
_CARD_BUDGET: Final[int] = 27 * 1024

ADAPTIVE_CARD_CONTENT_TYPE: Final[str] = "application/vnd.microsoft.card.adaptive"

_SEVERITY_BY_RANK: Final[dict[int, Severity]] = {0: "low", 1: "medium", 2: "high", 3: "critical"}
_MAX_TEXT: Final[int] = 400


@dataclass(frozen=True, slots=True)
class AlertFinding:
    rule: str
    severity: Severity
    status: str
    message: str
    value: str | None


@dataclass(frozen=True, slots=True)
class Alert:
    """Everything a human needs about one account, renderer-neutral."""

    title: str
    severity: Severity
    resource_id: str
    account_name: str
    subscription_id: str
    resource_group: str
    kind: str
    findings: tuple[AlertFinding, ...]
    changes: tuple[str, ...]
    """What the guardrail changed: one phrase per change (full, untruncated)."""
    status_summary: str
    actors: tuple[str, ...]
    time_generated: str
    correlation_ids: tuple[str, ...]
    event_ids: tuple[str, ...]
    mode: str
    trigger: str
    portal_url: str

    @property
    def correlation_id(self) -> str:
        return ", ".join(self.correlation_ids)


def _alertable(records: Iterable[FindingRecord]) -> list[FindingRecord]:
    return [r for r in records if r.status != "exempted"]


def portal_link(resource_id: str, portal_base: str = "https://portal.azure.com") -> str:
    """The account in the Azure portal; the ID is percent-encoded, so a name can add nothing
    to the URL but its own letters."""
    rid = resource_id if resource_id.startswith("/") else "/" + resource_id
    return f"{portal_base.rstrip('/')}/#resource{quote(rid, safe='/')}"


#: What Teams markdown (a CommonMark subset) gives meaning to: links and images `[..](..)`,
#: emphasis, code, headings, HTML and autolinks `<..>`; the backslash so that ours stay escapes.
MARKDOWN_SPECIAL: Final[frozenset[str]] = frozenset("\\[]()*_`#<>")


def markdown_text(text: str) -> str:
    """`text` as inert Teams markdown: every special character backslash-escaped, line breaks and
    other control characters shown as `\\n`-style escapes, and `://` written `:\\/\\/` so that
    no URL in it is turned into a link (it still reads as `://`)."""
    escaped = "".join("\\" + ch if ch in MARKDOWN_SPECIAL else ch for ch in escape_control(text))
    return escaped.replace("://", ":\\/\\/")


# --------------------------------------------------------------------------- ACL diff


def _ip_values(acl: Mapping[str, Any]) -> list[str]:
    out: list[str] = []
    for rule in acl.get("ipRules") or []:
        value = rule.get("value") if isinstance(rule, Mapping) else rule
        if value is not None:
            out.append(str(value))
    return out


def _vnet_ids(acl: Mapping[str, Any]) -> list[str]:
    out: list[str] = []
    for rule in acl.get("virtualNetworkRules") or []:
        value = rule.get("id") if isinstance(rule, Mapping) else rule
        if value is not None:
            out.append(str(value))
    return out


def _short_subnet(subnet_id: str) -> str:
    parts = [p for p in subnet_id.split("/") if p]
    lower = [p.lower() for p in parts]
    if "virtualnetworks" in lower:
        i = lower.index("virtualnetworks")
        return "/".join(parts[i + 1 :])
    return subnet_id


def _list_text(items: Sequence[str], limit: int | None) -> str:
    if limit is None or len(items) <= limit:
        return ", ".join(items)
    return ", ".join(items[:limit]) + f" … and {len(items) - limit} more"


def _removed_added(before: list[str], after: list[str]) -> tuple[list[str], list[str]]:
    b_keys = {v.lower() for v in before}
    a_keys = {v.lower() for v in after}
    removed = [v for v in before if v.lower() not in a_keys]
    added = [v for v in after if v.lower() not in b_keys]
    return removed, added


def summarize_acl_change(
    before: Mapping[str, Any] | None, after: Mapping[str, Any] | None, *, max_items: int | None = None
) -> list[str]:
    """Phrases describing a networkAcls change, e.g. ["defaultAction Allow → Deny",
    "removed ipRules 10.0.0.1, 192.168.1.0/24", "bypass AzureServices → None"].

    `before is None` means the account had no networkAcls (all networks allowed). Lists longer
    than `max_items` end with "… and N more". Empty when nothing changed (or after is None)."""
    if after is None:
        return []
    b: Mapping[str, Any] = before or {}
    phrases: list[str] = []
    if before is None:
        phrases.append("networkAcls absent (all networks allowed) → set")
    for key in ("defaultAction", "bypass"):
        old, new = b.get(key), after.get(key)
        if old != new:
            phrases.append(
                f"{key} {old if old is not None else '(unset)'} → {new if new is not None else '(unset)'}"
            )
    for label, getter, shorten in (
        ("ipRules", _ip_values, None),
        ("virtualNetworkRules", _vnet_ids, _short_subnet),
    ):
        removed, added = _removed_added(getter(b), getter(after))
        if shorten is not None:
            removed, added = [shorten(v) for v in removed], [shorten(v) for v in added]
        if removed:
            phrases.append(f"removed {label} {_list_text(removed, max_items)}")
        if added:
            phrases.append(f"added {label} {_list_text(added, max_items)}")
    for key in sorted(set(b) | set(after)):
        if key in ("defaultAction", "bypass", "ipRules", "virtualNetworkRules"):
            continue
        if b.get(key) != after.get(key):
            old_text = json.dumps(b.get(key), ensure_ascii=False)
            new_text = json.dumps(after.get(key), ensure_ascii=False)
            phrases.append(f"{key} {_clip(old_text, 80)} → {_clip(new_text, 80)}")
    return phrases


# --------------------------------------------------------------------------- compose


def _status_summary(records: Sequence[FindingRecord]) -> str:
    statuses = {r.status for r in records}
    if "remediation-suspended" in statuses:
        return "remediation suspended"
    if "remediation-failed" in statuses:
        return "remediation failed"
    if statuses <= {"remediated"}:
        return "remediated"
    if "remediated" in statuses:
        return "partly remediated"
    if statuses <= {"audit"}:
        return "violation (audit mode)"
    return "violation"


def _unique(values: Iterable[str | None]) -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for v in values:
        if v:
            seen.setdefault(v, None)
    return tuple(seen)


def compose_alert(
    records: Sequence[FindingRecord], *, portal_base: str = "https://portal.azure.com"
) -> Alert | None:
    """One alert for the records of ONE account (None when nothing is alertable: no records,
    or only `exempted`). Raises ValueError when the records span several accounts."""
    active = _alertable(records)
    if not active:
        return None
    accounts = {name_key(r.resource_id) for r in records}
    if len(accounts) > 1:
        raise ValueError(f"compose_alert takes one account's records; got {len(accounts)} accounts")
    first = active[0]
    rank = max(SEVERITY_RANK[r.severity] for r in active)
    if any(r.status == "remediation-suspended" for r in active):
        rank = SEVERITY_RANK["critical"]
    severity = _SEVERITY_BY_RANK[rank]
    ordered = sorted(active, key=lambda r: (-SEVERITY_RANK[r.severity], r.rule, r.value or ""))
    findings = tuple(
        AlertFinding(rule=r.rule, severity=r.severity, status=r.status, message=r.message, value=r.value)
        for r in ordered
    )
    # All findings of one remediation share one PATCH: take the first Before/After given.
    outside = {rule.id for rule in RULES if rule.alert is not None}
    before_rec = next((r for r in active if r.after is not None and r.rule not in outside), None)
    changes: tuple[str, ...] = ()
    if before_rec is not None:
        changes = tuple(summarize_acl_change(before_rec.before, before_rec.after))
    # Fixes outside networkAcls: each rule phrases its own, from the values of its fixed records.
    fixed: dict[str, list[str]] = {}
    for r in active:
        if r.status == "remediated":
            values = fixed.setdefault(r.rule, [])
            if r.value is not None and r.value not in values:
                values.append(r.value)
    phrases = (rule.alert_phrase(fixed[rule.id]) for rule in RULES if rule.id in fixed)
    changes += tuple(phrase for phrase in phrases if phrase is not None)
    summary = _status_summary(active)
    n = len(findings)
    title = f"Guardrail: {first.account_name}: {n} finding{'s' if n != 1 else ''}, {summary}"
    modes = _unique(r.mode for r in active)
    triggers = _unique(r.trigger for r in active)
    return Alert(
        title=title,
        severity=severity,
        resource_id=first.resource_id,
        account_name=first.account_name,
        subscription_id=first.subscription_id,
        resource_group=first.resource_group,
        kind=first.kind,
        findings=findings,
        changes=changes,
        status_summary=summary,
        actors=_unique(r.actor for r in active),
        time_generated=max(r.time_generated for r in active),
        correlation_ids=_unique(r.correlation_id for r in active),
        event_ids=_unique(r.event_id for r in active),
        mode="/".join(modes),
        trigger="/".join(triggers),
        portal_url=portal_link(first.resource_id, portal_base),
    )


# --------------------------------------------------------------------------- render


def _clip(text: str, limit: int = _MAX_TEXT) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _finding_line(f: AlertFinding) -> str:
    value = f" [{f.value}]" if f.value is not None else ""
    return _clip(f"{f.rule} ({f.severity}, {f.status}): {f.message}{value}")


def _facts(alert: Alert) -> list[tuple[str, str]]:
    facts = [
        ("Resource", alert.resource_id),
        ("Account", f"{alert.account_name}" + (f" ({alert.kind})" if alert.kind else "")),
        ("Subscription", alert.subscription_id),
        ("Resource group", alert.resource_group),
        ("Severity", alert.severity),
        ("Status", alert.status_summary),
        ("Changed by", ", ".join(alert.actors) or "unknown"),
        ("When", alert.time_generated),
        ("Mode / trigger", f"{alert.mode} / {alert.trigger}"),
        ("Correlation", alert.correlation_id),
    ]
    if alert.event_ids:
        facts.append(("Event", ", ".join(alert.event_ids)))
    return [(k, _clip(v)) for k, v in facts]


def _card(alert: Alert, max_findings: int, max_items: int) -> dict[str, Any]:
    """Every text is escaped as a whole (`markdown_text`): the only markdown in a card is the
    "- " of its list lines, and the only link its portal action."""
    md = markdown_text
    shown = alert.findings[:max_findings]
    finding_lines = [f"- {md(_finding_line(f))}" for f in shown]
    if len(alert.findings) > len(shown):
        finding_lines.append(f"- … and {len(alert.findings) - len(shown)} more")
    change_lines = [f"- {md(_clip(_truncate_phrase(c, max_items)))}" for c in alert.changes] or [
        f"- {md(_no_change(alert))}"
    ]
    color = "Attention" if alert.severity in ("critical", "high") else "Warning"
    body: list[dict[str, Any]] = [
        {
            "type": "TextBlock",
            "size": "Large",
            "weight": "Bolder",
            "text": md(_clip(alert.title)),
            "wrap": True,
            "color": color,
        },
        {"type": "FactSet", "facts": [{"title": md(k), "value": md(v)} for k, v in _facts(alert)]},
        {"type": "TextBlock", "text": "What was wrong", "weight": "Bolder", "wrap": True, "separator": True},
        {"type": "TextBlock", "text": "\n".join(finding_lines), "wrap": True},
        {"type": "TextBlock", "text": "What the guardrail changed", "weight": "Bolder", "wrap": True},
        {"type": "TextBlock", "text": "\n".join(change_lines), "wrap": True},
    ]
    return {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": body,
        "actions": [{"type": "Action.OpenUrl", "title": "Open in portal", "url": alert.portal_url}],
    }


def _no_change(alert: Alert) -> str:
    if alert.status_summary.startswith("remediation"):
        return f"nothing: {alert.status_summary}"
    if alert.mode == "audit":
        return "nothing: audit mode"
    return "nothing"


_LIST_PHRASE: Final = re.compile(r"(?:removed|added) [A-Za-z]+ ")


def _truncate_phrase(phrase: str, max_items: int) -> str:
    """Re-truncate the list part of a 'removed/added <list> a, b, c' phrase (networkAcls' lists,
    or a rule's own such as allowedFqdnList)."""
    prefix = _LIST_PHRASE.match(phrase)
    if prefix is None:
        return phrase
    items = phrase[prefix.end() :].split(", ")
    return prefix.group() + _list_text(items, max_items)


def card_size(message: Mapping[str, Any]) -> int:
    """Serialised size in bytes, as posted."""
    return len(json.dumps(message, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))


def to_adaptive_card(alert: Alert) -> dict[str, Any]:
    """The Teams Workflows message: {"type":"message","attachments":[{contentType, contentUrl:
    null, content: AdaptiveCard 1.4}]}. Lists are truncated ("… and N more") until the
    serialised message fits in 27 KB."""
    max_findings, max_items = 25, 10
    while True:
        message = {
            "type": "message",
            "attachments": [
                {
                    "contentType": ADAPTIVE_CARD_CONTENT_TYPE,
                    "contentUrl": None,
                    "content": _card(alert, max_findings, max_items),
                }
            ],
        }
        if card_size(message) <= _CARD_BUDGET or (max_findings <= 1 and max_items <= 1):
            return message
        max_findings = max(1, max_findings // 2)
        max_items = max(1, max_items // 2)


def to_email(alert: Alert, *, max_items: int = 25) -> tuple[str, str, str]:
    """(subject, plain text, HTML). Everything user-controlled is HTML-escaped in the HTML;
    control characters are shown as escapes in the plain text; the subject is a single line."""
    subject = f"[Guardrail] {alert.severity.upper()} {alert.account_name}: {alert.status_summary}"
    subject = escape_control(" ".join(subject.split()))[:200]
    facts = _facts(alert)
    changes = [_truncate_phrase(c, max_items) for c in alert.changes] or [_no_change(alert)]
    one = escape_control  # a line break in a name or claim must not start a line of its own
    lines = [one(alert.title), ""]
    lines += [f"{k}: {one(v)}" for k, v in facts]
    lines += ["", "What was wrong:"]
    lines += [f"  - {one(_finding_line(f))}" for f in alert.findings]
    lines += ["", "What the guardrail changed:"]
    lines += [f"  - {one(c)}" for c in changes]
    lines += ["", f"Open in portal: {alert.portal_url}", ""]
    plain = "\n".join(lines)

    e = html.escape
    rows = "".join(f"<tr><th align='left'>{e(k)}</th><td>{e(v)}</td></tr>" for k, v in facts)
    found = "".join(f"<li>{e(_finding_line(f))}</li>" for f in alert.findings)
    changed = "".join(f"<li>{e(c)}</li>" for c in changes)
    body_html = (
        "<html><body>"
        f"<h2>{e(alert.title)}</h2>"
        f"<table>{rows}</table>"
        f"<h3>What was wrong</h3><ul>{found}</ul>"
        f"<h3>What the guardrail changed</h3><ul>{changed}</ul>"
        f'<p><a href="{e(alert.portal_url, quote=True)}">Open in portal</a></p>'
        "</body></html>"
    )
    return subject, plain, body_html
