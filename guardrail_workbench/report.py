"""The demo's HTML report (`out/demo/report.html`): one self-contained page (inline CSS and SVG, no
script, no CDN: it opens offline) that a security engineer reads at a glance.

Order: the summary in words; the story (each change by a person or the pipeline, its detection
through each delivery, the fix, its verification and the latency); the breaker's outcome stated
plainly; two small charts; the alerts as the Teams cards show them; then the sweep, per account a
before → after view of the properties the guardrail governs.
"""

from __future__ import annotations

import datetime as dt
import html
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

esc = html.escape


@dataclass
class StoryStep:
    """One change in the demo's timeline."""

    index: int
    who: str  # display name
    principal: str  # upn or app:<id>
    what: str
    account: str
    resource_id: str
    at: dt.datetime
    written: Mapping[str, Any]  # the body the person or pipeline wrote
    after: Mapping[str, Any] | None  # the account once the guardrail was done


@dataclass
class DemoRun:
    summary: Mapping[str, Any]
    entries: Sequence[Any]  # demo.Entry
    story: Sequence[StoryStep]
    seeded: Mapping[str, Mapping[str, Any]]  # by lower-case resource id, before the sweep
    swept: Mapping[str, Mapping[str, Any]]  # after the sweep
    cards: Sequence[Mapping[str, Any]]  # Teams messages as received
    breaker_window: dt.timedelta
    breaker_until: Mapping[str, dt.datetime] = field(default_factory=dict)
    final: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    generated: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))
    tenant: str = ""


def summary_rows(summary: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The summary with human labels (the console and the report)."""
    return [
        ("accounts in the tenant", str(summary["accounts"])),
        ("finding records", str(summary["finding_records"])),
        ("remediated (verified)", str(summary["remediated"])),
        ("remediation failed", str(summary["failed"])),
        ("suspended by the breaker", str(summary["suspended"])),
        ("breaker trips", str(summary["breaker_trips"])),
        ("exempted accounts", str(summary["exempted_accounts"])),
        ("event → verified fix, median", f"{summary['event_latency_p50_ms']} ms"),
        ("event → verified fix, p99", f"{summary['event_latency_p99_ms']} ms"),
        ("Teams cards / emails", f"{summary['teams_cards']} / {summary['emails']}"),
        ("private endpoints rejected", str(summary["private_endpoints_rejected"])),
        ("outbound FQDNs stripped", str(summary["fqdns_stripped"])),
        ("records sent to Monitor", str(summary["monitor_records"])),
        ("run time", f"{summary['seconds']} s"),
    ]


# ---------------------------------------------------------------------------- properties


def governed(account: Mapping[str, Any] | None) -> list[tuple[str, str]]:
    """(property, value in words) for what the guardrail governs: networkAcls and the rest."""
    if not account:
        return [("account", "absent")]
    props = account.get("properties") or {}
    acls = props.get("networkAcls")
    rows = [("publicNetworkAccess", str(props.get("publicNetworkAccess") or "unset (Enabled)"))]
    if not isinstance(acls, Mapping):
        rows.append(("networkAcls", "absent: every network allowed"))
    else:
        rows.append(("defaultAction", str(acls.get("defaultAction"))))
        rows.append(("bypass", str(acls.get("bypass") or "unset")))
        ips = [str(r.get("value")) for r in acls.get("ipRules") or [] if isinstance(r, Mapping)]
        rows.append(("ipRules", ", ".join(ips) or "none"))
        subnets = [
            _short_subnet(str(r.get("id")))
            for r in acls.get("virtualNetworkRules") or []
            if isinstance(r, Mapping)
        ]
        rows.append(("virtualNetworkRules", ", ".join(subnets) or "none"))
    local = props.get("disableLocalAuth")
    rows.append(("local (key) auth", "disabled" if local is True else "enabled"))
    connections = props.get("privateEndpointConnections")
    if connections:  # shown only where the account has them (so the sweep's tables stay as they were)
        rows.append(("private endpoints", ", ".join(_connection(c) for c in connections)))
    if "restrictOutboundNetworkAccess" in props or "allowedFqdnList" in props:
        fqdns = ", ".join(str(f) for f in props.get("allowedFqdnList") or []) or "none"
        restricted = props.get("restrictOutboundNetworkAccess") is True
        where = f"only to {fqdns}" if restricted else f"anywhere (allowedFqdnList: {fqdns})"
        rows.append(("outbound", where))
    return rows


def _endpoint_status(connection: Any) -> tuple[str, str]:
    """A private endpoint connection's (private endpoint ID, status), "?" for what it lacks."""
    props = connection.get("properties") if isinstance(connection, Mapping) else None
    props = props if isinstance(props, Mapping) else {}
    endpoint = str((props.get("privateEndpoint") or {}).get("id") or "?")
    status = str((props.get("privateLinkServiceConnectionState") or {}).get("status") or "?")
    return endpoint, status


def _connection(connection: Any) -> str:
    endpoint, status = _endpoint_status(connection)
    return f"{short_endpoint(endpoint)}: {status}"


def short_endpoint(endpoint_id: str) -> str:
    """A private endpoint's ID in a few words: the start of its subscription, and its name."""
    parts = endpoint_id.split("/")
    if len(parts) > 8 and parts[1].lower() == "subscriptions":
        return f"{parts[2][:8]}…/{parts[-1]}"
    return endpoint_id


def _short_subnet(subnet_id: str) -> str:
    parts = subnet_id.split("/")
    return f"{parts[2][:8]}…/{parts[-3]}/{parts[-1]}" if len(parts) > 10 else subnet_id


def is_open(account: Mapping[str, Any] | None) -> bool:
    """Open to all networks: public access on and no default-deny."""
    if not account:
        return False
    props = account.get("properties") or {}
    if str(props.get("publicNetworkAccess") or "Enabled") == "Disabled":
        return False
    acls = props.get("networkAcls")
    return not isinstance(acls, Mapping) or acls.get("defaultAction") != "Deny"


def before_after(before: Mapping[str, Any] | None, after: Mapping[str, Any] | None) -> str:
    old, new = dict(governed(before)), dict(governed(after))
    rows = []
    for key in dict.fromkeys([*old, *new]):
        a, b = old.get(key, "—"), new.get(key, "—")
        changed = a != b
        mark = ' class="changed"' if changed else ""
        arrow = f"<s>{esc(a)}</s> → <b>{esc(b)}</b>" if changed else esc(b)
        rows.append(f"<tr{mark}><th>{esc(key)}</th><td>{arrow}</td></tr>")
    return f'<table class="ba">{"".join(rows)}</table>'


# ---------------------------------------------------------------------------- parts


def _rules(outcome: Any) -> list[str]:
    active = [r for r in outcome.records if r.status != "exempted"]
    return sorted({r.rule for r in active}) or sorted({r.rule for r in outcome.records})


def _when(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%H:%M:%S UTC")


ACTION_WORDS = {
    "remediated": "fixed and verified",
    "failed": "fix failed",
    "suspended": "not fixed: breaker open",
    "reported": "reported (not fixable automatically)",
    "audit": "reported (audit mode)",
}


def _action_words(outcome: Any) -> str:
    if outcome.records and all(r.status == "exempted" for r in outcome.records):
        return "exempted: recorded, not changed"
    if outcome.action == "suspended" and outcome.breaker_tripped:
        return "not fixed: breaker tripped"
    return str(ACTION_WORDS.get(outcome.action, outcome.action))


def _story(run: DemoRun) -> str:
    items = []
    t0 = run.story[0].at if run.story else run.generated
    for step in run.story:
        entries = [e for e in run.entries if e.step == step.index]
        detections = []
        for entry in entries:
            outcome = entry.outcome
            latency = f"{entry.latency * 1000:.0f} ms" if entry.latency is not None else "—"
            kind = "bad" if outcome.action in ("failed", "suspended") else "ok"
            if outcome.records and all(r.status == "exempted" for r in outcome.records):
                kind = "exempt"
            detections.append(
                f'<li class="{kind}"><span class="via">{esc(entry.delivery)}</span> '
                f"detected {esc(', '.join(_rules(outcome)))} → <b>{esc(_action_words(outcome))}</b>"
                f' <span class="lat">{esc(latency)} after the change</span></li>'
            )
        if not detections:
            detections.append('<li class="ok">compliant: nothing to do</li>')
        offset = (step.at - t0).total_seconds()
        items.append(
            f'<li class="step"><div class="when">+{offset:.1f} s<br>'
            f"<small>{esc(_when(step.at))}</small></div>"
            f'<div class="what"><p><b>{esc(step.who)}</b> <small>({esc(step.principal)})</small> '
            f"{esc(step.what)}: <code>{esc(step.account)}</code></p>"
            f'<ul class="det">{"".join(detections)}</ul>'
            f"<details><summary>before → after</summary>{before_after(step.written, step.after)}</details>"
            "</div></li>"
        )
    return f'<ol class="story">{"".join(items)}</ol>'


def _breakers(run: DemoRun) -> str:
    blocks = []
    for entry in run.entries:
        outcome = entry.outcome
        if not outcome.breaker_tripped:
            continue
        name = outcome.resource_id.rsplit("/", 1)[-1]
        account = run.final.get(outcome.resource_id.lower())
        until = run.breaker_until.get(outcome.resource_id.lower())
        minutes = int(run.breaker_window.total_seconds() // 60)
        until_words = _when(until) if until else f"{minutes} minutes after the trip"
        state = (
            "still open to all networks" if is_open(account) else "not open to all networks (fixed earlier)"
        )
        alerted = "owner alerted (critical Teams card and email)" if outcome.alerted else "no alert sent"
        writes = sum(
            1
            for e in run.entries
            if e.outcome.resource_id.lower() == outcome.resource_id.lower()
            and e.outcome.action == "remediated"
        )
        blocks.append(
            f'<div class="breaker"><p><b>{esc(name)}</b>: {esc(state)}; remediation suspended until '
            f"{esc(until_words)}; {esc(alerted)}.</p><p><small>Changed by {esc(outcome.actor or 'unknown')}"
            f"; the guardrail fixed it {writes} times in the window before the breaker stopped the fight."
            "</small></p></div>"
        )
    return "".join(blocks) or "<p>No breaker tripped.</p>"


@dataclass(frozen=True)
class DoorFix:
    """A verified fix of one of the network doors networkAcls does not govern: a private endpoint
    connection rejected, or an allowedFqdnList entry stripped."""

    rule: str
    resource_id: str
    value: str
    latency: float | None  # seconds from the change (its event) to the verified fix
    now: str  # the connection's status at the end, or whether the entry is still listed
    kept: tuple[str, ...]  # the account's allowedFqdnList at the end


DOOR_RULES = (
    "private-endpoint-not-allowed",
    "outbound-fqdn-not-allowed",
    "managed-network-internet-outbound",
    "managed-network-outbound-rule-not-allowed",
    "agent-subnet-not-allowed",
)
#: The door rules that are reported, not fixed (the fix cannot be made in place).
REPORTED_DOORS = ("agent-subnet-not-allowed",)


def door_fixes(entries: Iterable[Any], final: Mapping[str, Mapping[str, Any]]) -> list[DoorFix]:
    """Every remediated record of the two door rules (each once), with what the account holds at
    the end."""
    fixes: dict[tuple[str, str, str], DoorFix] = {}
    for entry in entries:
        for record in entry.outcome.records:
            wanted = "violation" if record.rule in REPORTED_DOORS else "remediated"
            if record.rule not in DOOR_RULES or record.status != wanted or record.value is None:
                continue
            key = (record.rule, record.resource_id.lower(), record.value)
            if key in fixes:
                continue
            props = (final.get(record.resource_id.lower()) or {}).get("properties") or {}
            kept = tuple(str(f) for f in props.get("allowedFqdnList") or [])
            if record.rule == "private-endpoint-not-allowed":
                connections = map(_endpoint_status, props.get("privateEndpointConnections") or [])
                statuses = [
                    status for endpoint, status in connections if endpoint.lower() == record.value.lower()
                ]
                now = ", ".join(statuses) or "gone"
            else:
                now = "still listed" if record.value in kept else "not listed"
            fixes[key] = DoorFix(record.rule, record.resource_id, record.value, entry.latency, now, kept)
    return list(fixes.values())


def door_words(fix: DoorFix) -> str:
    """One door fix in a line of words (the demo's console)."""
    name = fix.resource_id.rsplit("/", 1)[-1]
    ms = f"{fix.latency * 1000:.0f} ms" if fix.latency is not None else "—"
    if fix.rule == "private-endpoint-not-allowed":
        return (
            f"{name}: private endpoint {short_endpoint(fix.value)} (subscription {_subscription(fix.value)}) "
            f"rejected and verified {ms} after it was approved; now {fix.now}"
        )
    if fix.rule == "managed-network-internet-outbound":
        return (
            f"{name}: the agents' managed network switched back to approved outbound, verified {ms} "
            "after it opened"
        )
    if fix.rule == "managed-network-outbound-rule-not-allowed":
        return f"{name}: the agents' outbound rule {fix.value} deleted, verified {ms} after it was added"
    if fix.rule == "agent-subnet-not-allowed":
        return (
            f"{name}: agent subnet in subscription {_subscription(fix.value)} reported "
            "(an agent subnet cannot be moved in place: its owner is alerted)"
        )
    return (
        f"{name}: {fix.value} stripped from allowedFqdnList and verified {ms} after the change; "
        f"still allowed: {', '.join(fix.kept) or 'nothing'}"
    )


def _subscription(resource_id: str) -> str:
    return resource_id.split("/")[2] if resource_id.count("/") > 2 else "?"


def _doors(run: DemoRun) -> str:
    items = []
    for fix in door_fixes(run.entries, run.final):
        name = fix.resource_id.rsplit("/", 1)[-1]
        ms = f"{fix.latency * 1000:.0f} ms" if fix.latency is not None else "—"
        if fix.rule == "private-endpoint-not-allowed":
            items.append(
                f"<li><b>{esc(name)}</b>: the private endpoint <code>{esc(short_endpoint(fix.value))}</code> "
                f"from subscription <code>{esc(_subscription(fix.value))}</code>, outside "
                "<code>allowed_private_endpoint_subscriptions</code> and approved automatically because "
                f"its creator owns the account, was <b>rejected {esc(ms)} after it was approved</b>; "
                f"read back from ARM, the connection is <b>{esc(fix.now)}</b>.</li>"
            )
        elif fix.rule in ("managed-network-internet-outbound", "managed-network-outbound-rule-not-allowed"):
            items.append(f"<li><b>{esc(name)}</b>: {esc(door_words(fix).split(': ', 1)[1])}.</li>")
        elif fix.rule == "agent-subnet-not-allowed":
            items.append(
                f"<li><b>{esc(name)}</b>: its agents run in subnet <code>{esc(fix.value)}</code>, in a "
                "subscription outside <code>allowed_vnet_subscriptions</code>: <b>reported</b> to its "
                "owners (an agent subnet cannot be moved in place).</li>"
            )
        else:
            kept = ", ".join(fix.kept) or "nothing"
            items.append(
                f"<li><b>{esc(name)}</b>: <code>{esc(fix.value)}</code> was <b>stripped from "
                f"allowedFqdnList {esc(ms)} after the change</b> (it matches none of "
                f"<code>allowed_fqdns</code>; read back from ARM it is {esc(fix.now)}); still allowed: "
                f"<code>{esc(kept)}</code>.</li>"
            )
    return f'<ul class="doors">{"".join(items)}</ul>' if items else "<p>Nothing to reject or strip.</p>"


def _bar_chart(rows: Sequence[tuple[str, float]], unit: str, title: str, width: int = 560) -> str:
    """A small horizontal bar chart as inline SVG."""
    if not rows:
        return f'<figure class="chart"><figcaption>{esc(title)}</figcaption><p>no data</p></figure>'
    top = max(value for _, value in rows) or 1.0
    label_w, bar_w, row_h = 190, width - 190 - 70, 20
    height = row_h * len(rows) + 8
    bars = []
    for i, (label, value) in enumerate(rows):
        y = 4 + i * row_h
        length = max(1.0, bar_w * value / top)
        text = f"{value:.0f} {unit}".strip()
        bars.append(
            f'<text x="{label_w - 6}" y="{y + 14}" text-anchor="end">{esc(label)}</text>'
            f'<rect x="{label_w}" y="{y + 3}" width="{length:.1f}" height="{row_h - 6}" rx="2"></rect>'
            f'<text x="{label_w + length + 4:.1f}" y="{y + 14}">{esc(text)}</text>'
        )
    return (
        f'<figure class="chart"><figcaption>{esc(title)}</figcaption>'
        f'<svg role="img" aria-label="{esc(title)}" viewBox="0 0 {width} {height}" width="{width}" '
        f'height="{height}" xmlns="http://www.w3.org/2000/svg">{"".join(bars)}</svg></figure>'
    )


def _latency_rows(run: DemoRun) -> list[tuple[str, float]]:
    rows = []
    for entry in run.entries:
        if entry.latency is None or entry.outcome.action != "remediated":
            continue
        name = entry.outcome.resource_id.rsplit("/", 1)[-1]
        rows.append((f"{name} ({entry.delivery})", entry.latency * 1000))
    return rows


# CommonMark's backslash escapes of ASCII punctuation (the cards escape every user-controlled text).
_MARKDOWN_ESCAPE = re.compile(r"\\([!-/:-@\[-`{-~])")


def shown(markdown: str) -> str:
    """A card text as Teams shows it: the markdown escapes undone."""
    return _MARKDOWN_ESCAPE.sub(r"\1", markdown)


def card_parts(message: Mapping[str, Any]) -> dict[str, Any]:
    """What a Teams card shows: title, facts, text lines and the portal link."""
    content = message["attachments"][0]["content"]
    body = content.get("body", [])
    texts = [shown(str(b.get("text", ""))) for b in body if b.get("type") == "TextBlock"]
    facts: dict[str, str] = {}
    for block in body:
        if block.get("type") == "FactSet":
            facts.update({str(f.get("title")): shown(str(f.get("value"))) for f in block.get("facts", [])})
    links = [a.get("url") for a in content.get("actions", []) if a.get("type") == "Action.OpenUrl"]
    return {
        "title": texts[0] if texts else "",
        "color": next((b.get("color") for b in body if b.get("type") == "TextBlock"), None),
        "lines": [line for block in texts[1:] for line in block.splitlines()],
        "facts": facts,
        "link": links[0] if links else None,
    }


_TRAILING_VALUE = re.compile(r"\s*\[([^\[\]]*)\]$")


def without_repeated_value(line: str) -> str:
    """A card line less its trailing `[value]` when the message already says the value."""
    found = _TRAILING_VALUE.search(line)
    if found and found.group(1) and found.group(1) in line[: found.start()]:
        return line[: found.start()]
    return line


def _card(message: Mapping[str, Any]) -> str:
    part = card_parts(message)
    facts = part["facts"]
    severity = facts.get("Severity", "")
    who = facts.get("Changed by", "—")
    when = facts.get("When", "")
    link = f' <a class="portal" href="{esc(str(part["link"]))}">Open in portal</a>' if part["link"] else ""
    lines = "".join(
        f"<li>{esc(without_repeated_value(line[2:]))}</li>"
        if line.startswith("- ")
        else f'<li class="h">{esc(line)}</li>'
        for line in part["lines"]
        if line.strip()
    )
    return (
        f'<article class="card sev-{esc(severity)}"><header><span class="sev">{esc(severity)}</span> '
        f"<b>{esc(part['title'].removeprefix('Guardrail: '))}</b></header>"
        f'<p class="meta">by <b>{esc(who)}</b> · {esc(when)} · {esc(facts.get("Status", ""))}{link}</p>'
        f"<ul>{lines}</ul></article>"
    )


def _alerts(run: DemoRun) -> str:
    def trigger(message: Mapping[str, Any]) -> str:
        return str(card_parts(message)["facts"].get("Mode / trigger", "")).rsplit("/ ", 1)[-1]

    events = [m for m in run.cards if trigger(m) != "sweep"]
    sweep = [m for m in run.cards if trigger(m) == "sweep"]
    return (
        f"<h3>From the timeline ({len(events)})</h3>"
        f'<div class="cards">{"".join(_card(m) for m in events)}</div>'
        f"<details><summary>From the sweep ({len(sweep)})</summary>"
        f'<div class="cards">{"".join(_card(m) for m in sweep)}</div></details>'
    )


def _sweep(run: DemoRun) -> str:
    rows = []
    for entry in run.entries:
        if entry.step is not None:
            continue
        outcome = entry.outcome
        key = outcome.resource_id.lower()
        name = outcome.resource_id.rsplit("/", 1)[-1]
        kind = next((r.kind for r in outcome.records), "")
        rows.append(
            f"<tr><td><code>{esc(name)}</code><br><small>{esc(kind)}</small></td>"
            f"<td>{esc(', '.join(_rules(outcome)))}</td><td>{esc(_action_words(outcome))}</td>"
            f"<td>{before_after(run.seeded.get(key), run.swept.get(key))}</td></tr>"
        )
    return (
        '<table class="sweep"><colgroup><col style="width:16%"><col style="width:24%">'
        '<col style="width:14%"><col></colgroup>'
        "<tr><th>account</th><th>rules</th><th>outcome</th><th>before → after</th></tr>"
        f"{''.join(rows)}</table>"
    )


def _counts(entries: Iterable[Any]) -> Counter[str]:
    return Counter(e.outcome.action for e in entries)


def report_html(run: DemoRun) -> str:
    s = run.summary
    stats = "".join(f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in summary_rows(s))
    sweep_entries = [e for e in run.entries if e.step is None]
    sweep_counts = _counts(sweep_entries)
    rules_chart = _bar_chart(
        [(rule, float(n)) for rule, n in s["findings_by_rule"].items()], "", "Findings by rule (records)"
    )
    latency_chart = _bar_chart(_latency_rows(run), "ms", "Change → verified fix, per detection (ms)")
    generated = esc(run.generated.isoformat(timespec="seconds"))
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        "<title>AI Services Network Guardrail — demo report</title>"
        f"<style>{CSS}</style></head><body><main>\n"
        "<h1>AI Services Network Guardrail — demo report</h1>\n"
        f'<p class="sub">Generated {generated} against a local tenant ({esc(run.tenant)}; ARM emulator, '
        "Azurite, local Teams, email and Monitor receivers). Every fix below was re-read from ARM and "
        "verified.</p>\n"
        f'<section class="top"><div><h2>Summary</h2><table class="stats">{stats}</table></div>'
        f'<div class="charts">{latency_chart}{rules_chart}</div></section>\n'
        '<h2 id="story">The story: people, a pipeline and the guardrail</h2>\n'
        "<p>Each change reaches the guardrail twice: as Event Grid's <b>write event</b> and as a "
        "Resource <b>notification</b> (which carries the whole account); the first to arrive fixes it, "
        "the other finds nothing left to do or records the same finding.</p>\n"
        f"{_story(run)}\n"
        f'<h2 id="breaker">Circuit breaker</h2>{_breakers(run)}\n'
        '<h2 id="doors">Private endpoints and outbound access</h2>\n'
        "<p>Two doors <code>networkAcls</code> does not govern: a private endpoint connection is a "
        "private path into the account, and <code>allowedFqdnList</code> is where the account may send "
        "data.</p>"
        f"{_doors(run)}\n"
        f'<h2 id="alerts">Alerts, as the Teams cards show them ({len(run.cards)})</h2>{_alerts(run)}\n'
        f'<h2 id="sweep">The sweep: {sweep_counts.get("remediated", 0)} accounts fixed before the timeline'
        "</h2>\n"
        "<p>What was wrong before the guardrail was switched on, and each account before → after.</p>\n"
        f"{_sweep(run)}\n"
        "</main></body></html>\n"
    )


CSS = (
    "*{box-sizing:border-box}"
    "body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:0;color:#1f2328;"
    "background:#f6f8fa}"
    "main{max-width:1240px;margin:0 auto;padding:1.2rem 1.5rem;background:#fff}"
    "h1{font-size:1.45rem;margin:.2rem 0}h2{font-size:1.15rem;margin:1.6rem 0 .5rem;"
    "border-bottom:1px solid #d0d7de;padding-bottom:.2rem}h3{font-size:1rem}"
    ".sub{color:#57606a;margin:.2rem 0 1rem}"
    "code{font-size:.85em;background:#f3f4f6;padding:0 .2em;border-radius:3px;overflow-wrap:anywhere}"
    "table{border-collapse:collapse;max-width:100%}td,th{padding:.2rem .45rem;text-align:left;"
    "vertical-align:top;font-size:.85rem;overflow-wrap:anywhere}"
    ".top{display:flex;gap:1.5rem;flex-wrap:wrap}.top>div{min-width:0}"
    ".stats th{font-weight:500;color:#57606a}"
    ".stats td{font-weight:600}.charts{flex:1}"
    ".chart{margin:0 0 .8rem}.chart figcaption{font-size:.85rem;font-weight:600;margin-bottom:.2rem}"
    ".chart svg{max-width:100%;height:auto}.chart text{font-size:11px;fill:#1f2328}.chart rect{fill:#0969da}"
    ".story{list-style:none;padding:0;margin:0}.step{display:flex;gap:1rem;border-left:3px solid #0969da;"
    "padding:.3rem .8rem;margin:.4rem 0}.when{min-width:6.5rem;color:#57606a;font-size:.85rem}"
    ".what{flex:1;min-width:0}.what p{margin:.1rem 0}"
    ".det{margin:.2rem 0;padding-left:1.1rem;font-size:.88rem}"
    ".det .via{display:inline-block;min-width:6.8rem;color:#57606a}.det .lat{color:#57606a}"
    ".det .bad b{color:#cf222e}.det .ok b{color:#1a7f37}.det .exempt b{color:#9a6700}"
    "details summary{cursor:pointer;color:#0969da;font-size:.85rem}"
    ".ba{margin:.3rem 0}.ba th{font-weight:500;color:#57606a;white-space:nowrap}"
    ".ba tr.changed{background:#fff8c5}"
    ".ba s{color:#cf222e}.ba b{color:#1a7f37}"
    ".breaker{border:2px solid #cf222e;background:#ffebe9;border-radius:6px;padding:.5rem .8rem;"
    "margin:.4rem 0}"
    ".breaker p{margin:.2rem 0}"
    ".cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(340px,1fr));gap:.7rem}"
    ".card{border:1px solid #d0d7de;border-radius:6px;padding:.5rem .7rem;font-size:.85rem;min-width:0}"
    ".card header{overflow-wrap:anywhere}.card ul{margin:.3rem 0;padding-left:1.1rem}"
    ".card li.h{list-style:none;margin-left:-1.1rem;font-weight:600;margin-top:.25rem}"
    ".card .meta{color:#57606a;margin:.2rem 0;overflow-wrap:anywhere}"
    ".sev{display:inline-block;border-radius:3px;padding:0 .35rem;color:#fff;background:#57606a;"
    "font-size:.75rem;text-transform:uppercase}"
    ".sev-critical .sev{background:#a40e26}.sev-high .sev{background:#cf222e}"
    ".sev-medium .sev{background:#bf8700}"
    ".sev-critical{border-color:#a40e26;border-width:2px}"
    ".portal{margin-left:.3rem}"
    ".doors li{margin:.25rem 0}"
    ".sweep{width:100%;table-layout:fixed}.sweep>tbody>tr>td,.sweep>tbody>tr>th{border-top:1px solid #d0d7de}"
    ".sweep th{background:#f6f8fa}"
)
