"""`guardrail demo`: the whole product on a live local tenant, no Azure needed.

It starts the ARM emulator with a seeded tenant, Azurite, and local receivers standing in for
Teams, email and Azure Monitor; delivers the emulator's events to the function app's own
handlers; plays a timeline of changes by several people and one pipeline that keeps re-opening
an account; shows each detection → remediation → verification live; and leaves the findings
(JSON Lines), the Teams cards, the emails and an HTML report in the output folder.
"""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import json
import logging
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from guardrail.service import Outcome
from guardrail_workbench.stack import LocalStack, pipeline_claims, user_claims
from guardrail_workbench.tenant import generate_tenant, make_account, subscription_ids

SANDBOX_RG = "rg-sandbox"

PEOPLE = {
    "alice": user_claims("alice@contoso.example", "Alice Martin"),
    "bob": user_claims("bob@contoso.example", "Bob Okafor"),
    "carol": user_claims("carol@contoso.example", "Carol Nguyen"),
    "erin": user_claims("erin@contoso.example", "Erin Walsh"),
    "dave": user_claims("dave@contoso.example", "Dave Kim"),
}
PIPELINE = pipeline_claims("5e6f7a8b-0000-4000-8000-00000000d001", "legacy-deploy-pipeline")
#: A subscription the demo's policy does not govern (another team's), where a private endpoint is made.
PARTNER_SUBSCRIPTION = "0badf00d-0000-4000-8000-00000000beef"
PARTNER_NETWORK = (
    f"/subscriptions/{PARTNER_SUBSCRIPTION}/resourceGroups/rg-partner/providers/Microsoft.Network"
)
PARTNER_ENDPOINT = f"{PARTNER_NETWORK}/privateEndpoints/pe-kb-private"
#: The partner's virtual network, already there (seeded), whose subnet the private endpoint goes in.
PARTNER_VNET = {
    "id": f"{PARTNER_NETWORK}/virtualNetworks/vnet-partner",
    "location": "westus",
    "properties": {"subnets": [{"name": "endpoints", "properties": {"addressPrefix": "10.20.0.0/24"}}]},
}
#: The policy's allowed outbound destinations: an exact name and a `*.suffix` pattern.
ALLOWED_FQDNS = ("api.contoso.example", "*.blob.core.windows.net")
OUTBOUND_KEPT = ["api.contoso.example", "models.blob.core.windows.net"]
EXFIL_FQDN = "exfil.evil.example"
#: The agent story's Foundry account, its agents' subnet in a subscription the policy does not govern.
AGENTS = "agents-lab"
AGENT_SUBNET = (
    "/subscriptions/ffffffff-0000-4000-8000-00000000f0f0/resourceGroups/rg-contractor/providers/"
    "Microsoft.Network/virtualNetworks/vnet-contractor/subnets/agents"
)
CHILD_API = "2026-09-01"


def demo_policy(subscriptions: list[str]) -> str:
    subs = ", ".join(subscriptions)
    return f"""# The demo's policy (see samples/policy.yaml for every key, commented).
version: 1
mode: enforce
network:
  require_default_deny: true
  min_prefix_length: 16
  allowed_vnet_subscriptions: [{subs}]
  bypass_allowed_kinds: []
  allowed_private_endpoint_subscriptions: [{subs}]
  allowed_fqdns: [{", ".join(f'"{p}"' for p in ALLOWED_FQDNS)}]
  require_approved_outbound: true
auth:
  require_local_auth_disabled: true
remediate:
  local-auth-enabled: true
  managed-network-internet-outbound: true
exemptions:
  - scope: /subscriptions/{subscriptions[0]}/resourceGroups/{SANDBOX_RG}
    rules: ["*"]
    expires: 2099-12-31
    reason: "sandbox for the prompt-engineering course, ticket SEC-123"
"""


@dataclass
class Step:
    when: float  # seconds after the timeline starts
    who: str
    claims: dict[str, Any]
    subscription: str
    group: str
    name: str
    body: dict[str, Any]
    what: str
    private_endpoint: str | None = None  # set: connect this private endpoint instead of writing `body`
    child: tuple[str, str, dict[str, Any]] | None = None  # set: (method, path under the account, body)


#: The two deliveries of one change (Event Grid's resource write event, and Azure Resource
#: Notifications, which carry the whole account), as the console and the report name them.
WRITE_EVENT, NOTIFICATION = "write event", "notification"
_delivery = threading.local()


def delivery_of(payload: Any) -> str:
    """Which delivery an event payload is (Event Grid or CloudEvents schema)."""
    kind = str(payload.get("eventType") or payload.get("type") or "") if isinstance(payload, dict) else ""
    return NOTIFICATION if "ResourceNotifications" in kind else WRITE_EVENT


@dataclass
class Entry:
    """One outcome the demo saw: what happened, through which delivery, and how fast."""

    outcome: Outcome
    delivery: str  # sweep | write event | notification
    latency: float | None  # seconds from the change (the event's time) to the verified outcome
    step: int | None  # index of the timeline step it answers (None: the sweep)
    at: dt.datetime


@dataclass
class Recorder:
    """Collects outcomes from the guardrail and prints them, with every other line of the demo,
    through one lock: in order, whole lines."""

    out: TextIO
    entries: list[Entry] = field(default_factory=list)
    step: int | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def outcomes(self) -> list[Outcome]:
        return [entry.outcome for entry in self.entries]

    @property
    def latencies(self) -> list[float]:
        return [e.latency for e in self.entries if e.latency is not None and e.outcome.action == "remediated"]

    def write(self, text: str) -> None:
        with self.lock:
            self.out.write(text)
            self.out.flush()

    def __call__(self, outcome: Outcome) -> None:
        if outcome.action in ("compliant",) and not outcome.records:
            return
        now = dt.datetime.now(dt.UTC)
        latency = (now - outcome.event_time).total_seconds() if outcome.event_time is not None else None
        delivery = getattr(_delivery, "kind", None) or ("sweep" if outcome.trigger == "sweep" else "cli")
        entry = Entry(outcome, delivery, latency, self.step, now)
        with self.lock:
            self.entries.append(entry)
            self.out.write(self._line(entry) + "\n")
            self.out.flush()

    def _line(self, entry: Entry) -> str:
        outcome, latency = entry.outcome, entry.latency
        name = outcome.resource_id.rsplit("/", 1)[-1]
        active = [r for r in outcome.records if r.status != "exempted"]
        rules = sorted({r.rule for r in active}) or sorted({r.rule for r in outcome.records})
        symbol = {
            "remediated": "FIXED ",
            "failed": "FAILED",
            "suspended": "BREAKR",
            "reported": "REPORT",
            "audit": "AUDIT ",
        }.get(outcome.action, outcome.action.upper()[:6].ljust(6))
        if outcome.records and all(r.status == "exempted" for r in outcome.records):
            symbol = "EXEMPT"
        timing = f"{latency * 1000:6.0f} ms after the change" if latency is not None else ""
        if not timing:
            timing = f"{outcome.seconds * 1000:6.0f} ms"
        who = f" by {outcome.actor}" if outcome.actor else ""
        detail = ", ".join(rules)
        extra = " (verified)" if outcome.action == "remediated" else ""
        if outcome.action == "suspended":
            extra = " — breaker tripped, critical alert" if outcome.breaker_tripped else " — breaker open"
        return f"  {'[' + entry.delivery + ']':<14} {symbol} {name:<18} {detail}{extra}{who}  {timing}"


def _timeline(subs: list[str], fast: bool) -> list[Step]:
    import random

    rng = random.Random(3)
    gap = 0.15 if fast else 1.2
    a, b, c = subs[0], subs[1], subs[2 % len(subs)]
    steps = [
        Step(
            0,
            "alice",
            PEOPLE["alice"],
            a,
            "rg-ai-1",
            "chat-prod",
            _open("chat-prod", "OpenAI", rng),
            "opens an Azure OpenAI account to every network, trusted services on",
        ),
        Step(
            1,
            "bob",
            PEOPLE["bob"],
            b,
            "rg-ai-2",
            "vision-api",
            _with_rules("vision-api", rng, ["52.170.4.0/24", "40.112.8.0/12", "100.64.12.7"]),
            "adds a too-broad range and a CGNAT address",
        ),
        Step(
            2,
            "carol",
            PEOPLE["carol"],
            c,
            "rg-ai-3",
            "speech-eu",
            _with_subnet("speech-eu", rng, c),
            "attaches a subnet from a subscription outside the policy",
        ),
        Step(
            3,
            "erin",
            PEOPLE["erin"],
            a,
            SANDBOX_RG,
            "sandbox-lab",
            _open("sandbox-lab", "AIServices", rng),
            "opens the exempted sandbox account",
        ),
    ]
    t = 4.0
    for attempt in range(5):  # the pipeline keeps re-applying its template
        steps.append(
            Step(
                t,
                "pipeline",
                PIPELINE,
                b,
                "rg-ai-1",
                "legacy-search",
                _open("legacy-search", "AIServices", rng),
                f"re-applies its open template (run {attempt + 1})",
            )
        )
        t += 1.5
    steps.append(
        Step(
            t,
            "alice",
            PEOPLE["alice"],
            a,
            "rg-ai-2",
            "translator",
            _open("translator", "TextTranslation", rng),
            "creates a translator open to all networks",
        )
    )
    # The two network doors networkAcls does not govern: a private endpoint from a subscription
    # outside the policy, auto-approved because its creator owns the account, and an exfiltration
    # host added to the account's outbound allow list.
    kb = _private_only("kb-private", rng, OUTBOUND_KEPT)
    t += 1.0
    steps += [
        Step(
            t,
            "dave",
            PEOPLE["dave"],
            a,
            "rg-ai-3",
            "kb-private",
            kb,
            "creates an account reachable only over private endpoints, outbound only to "
            + ", ".join(OUTBOUND_KEPT),
        ),
        Step(
            t + 1.0,
            "dave",
            PEOPLE["dave"],
            a,
            "rg-ai-3",
            "kb-private",
            kb,
            "connects a private endpoint from a subscription outside the policy; Azure approves it "
            "at once: he owns the account",
            private_endpoint=PARTNER_ENDPOINT,
        ),
        Step(
            t + 2.0,
            "bob",
            PEOPLE["bob"],
            a,
            "rg-ai-3",
            "kb-private",
            _private_only("kb-private", rng, [*OUTBOUND_KEPT, EXFIL_FQDN]),
            f"adds {EXFIL_FQDN} to the account's outbound allow list",
        ),
    ]
    # The agent era: a Foundry account whose agents run in a contractor's subnet, whose managed
    # network someone opens to the internet, and an exfiltration host added to its outbound rules.
    steps += [
        Step(
            t + 3.0,
            "erin",
            PEOPLE["erin"],
            a,
            "rg-ai-3",
            AGENTS,
            _foundry(AGENTS, rng),
            "creates a Foundry account whose agents run in a contractor's subnet (another subscription)",
        ),
        Step(
            t + 4.0,
            "erin",
            PEOPLE["erin"],
            a,
            "rg-ai-3",
            AGENTS,
            {},
            "switches the agents' managed network to internet outbound",
            child=(
                "PUT",
                "managedNetworks/default",
                {"properties": {"managedNetwork": {"isolationMode": "AllowInternetOutbound"}}},
            ),
        ),
        Step(
            t + 5.0,
            "bob",
            PEOPLE["bob"],
            a,
            "rg-ai-3",
            AGENTS,
            {},
            f"adds an outbound rule to {EXFIL_FQDN} for the agents",
            child=(
                "PUT",
                "managedNetworks/default/outboundRules/paste",
                {"properties": {"category": "UserDefined", "type": "FQDN", "destination": EXFIL_FQDN}},
            ),
        ),
    ]
    for step in steps:
        step.when *= gap
    return steps


def _open(name: str, kind: str, rng: Any) -> dict[str, Any]:
    body = make_account(rng, name, "openai-bypass", "", "", kind=kind)
    body["properties"]["disableLocalAuth"] = True
    return body


def _with_rules(name: str, rng: Any, rules: list[str]) -> dict[str, Any]:
    body = make_account(rng, name, "compliant", "", "", kind="ComputerVision")
    body["properties"]["disableLocalAuth"] = True
    body["properties"]["networkAcls"]["ipRules"] = [{"value": r} for r in rules]
    return body


def _with_subnet(name: str, rng: Any, sub: str) -> dict[str, Any]:
    body = make_account(
        rng, name, "foreign-subnet", sub, "ffffffff-0000-4000-8000-00000000f0f0", kind="SpeechServices"
    )
    body["properties"]["disableLocalAuth"] = True
    return body


def _private_only(name: str, rng: Any, fqdns: list[str]) -> dict[str, Any]:
    body = make_account(rng, name, "private-endpoint", "", "", kind="AIServices")
    body["properties"].update(
        disableLocalAuth=True, restrictOutboundNetworkAccess=True, allowedFqdnList=fqdns
    )
    return body


def _foundry(name: str, rng: Any) -> dict[str, Any]:
    body = make_account(rng, name, "private-endpoint", "", "", kind="AIServices")
    body["properties"].update(
        disableLocalAuth=True,
        allowProjectManagement=True,
        networkInjections=[
            {"scenario": "agent", "subnetArmId": AGENT_SUBNET, "useMicrosoftManagedNetwork": False}
        ],
    )
    return body


def _write_child(stack: LocalStack, step: Step, rid: str) -> None:
    """A write to one of the account's child resources as az sends it (the managed network, an
    outbound rule): the request through the client's own pipeline, then its operation polled at the
    URL ARM announced until it ends (its write event is sent then)."""
    from azure.core.rest import HttpRequest

    assert step.child is not None
    method, path, body = step.child
    client = stack.client_for(step.claims, step.subscription)
    response = client._send_request(HttpRequest(method, f"{rid}/{path}?api-version={CHILD_API}", json=body))
    response.raise_for_status()
    status = response.headers.get("Azure-AsyncOperation")
    for _ in range(50):
        if not status:
            return
        polled = client._send_request(HttpRequest("GET", status))
        polled.raise_for_status()
        if polled.json().get("status") not in ("InProgress", "Accepted", "Running"):
            return
        time.sleep(0.05)
    raise AssertionError(f"{method} {rid}/{path}: its operation did not end")


def _connect(stack: LocalStack, step: Step, rid: str) -> dict[str, Any]:
    """Make the step's private endpoint as a user makes one: `PUT Microsoft.Network/
    privateEndpoints/{name}` in the partner's subnet, naming the account (what
    `az network private-endpoint create` sends). Azure approves the connection at once because the
    requester owns the account (the emulator decides so by tenant: docs/local.md). Returns the
    account as the connection left it, before the guardrail acts (its connections as the
    notification of the write carried them)."""
    assert step.private_endpoint is not None
    endpoint = step.private_endpoint
    written = copy.deepcopy(stack.emulator.account(rid) or {})
    client = stack.client_for(step.claims, endpoint.split("/")[2])
    link = {"privateLinkServiceId": rid, "groupIds": ["account"]}
    body = {
        "location": "westus",
        "properties": {
            "subnet": {"id": f"{PARTNER_VNET['id']}/subnets/endpoints"},
            "privateLinkServiceConnections": [{"name": endpoint.rsplit("/", 1)[-1], "properties": link}],
        },
    }
    _arm(client, "PUT", endpoint, body)
    for event in reversed(stack.emulator.events):
        if event.get("subject", "").lower() != rid.lower() or "resourceInfo" not in event.get("data", {}):
            continue
        account = event["data"]["resourceInfo"]
        connections = account.get("properties", {}).get("privateEndpointConnections") or []
        if any(c["properties"]["privateEndpoint"]["id"].lower() == endpoint.lower() for c in connections):
            written.setdefault("properties", {})["privateEndpointConnections"] = copy.deepcopy(connections)
            return written
    raise AssertionError(f"no connection of {endpoint} appeared on {rid}")


def _arm(client: Any, method: str, resource_id: str, body: dict[str, Any]) -> Any:
    """One ARM request through the client's own pipeline (its credential, TLS and retries), for
    the Microsoft.Network resources the Cognitive Services SDK has no operations for."""
    from azure.core.rest import HttpRequest

    url = f"{resource_id}?api-version=2024-05-01"
    response = client._send_request(HttpRequest(method, url, json=body))
    response.raise_for_status()
    return response.json()


def _put(stack: LocalStack, step: Step) -> None:
    client = stack.client_for(step.claims, step.subscription)
    payload = {k: v for k, v in step.body.items() if k != "name"}
    payload["properties"] = {
        k: v for k, v in payload["properties"].items() if k not in ("provisioningState", "endpoint")
    }
    client.accounts.begin_create(step.group, step.name, payload).result()


ARTIFACTS = (
    "policy.yaml",
    "findings.jsonl",
    "teams-cards.json",
    "emails.json",
    "summary.json",
    "report.html",
)


def _watch_deliveries(guardrail: Any) -> None:
    """Tell the recorder which delivery each check answers: the function app's handlers call
    `handle_event` on the worker's guardrail, in the thread that then tells the observers."""
    handle = guardrail.handle_event

    def handle_event(payload: Any) -> Any:
        _delivery.kind = delivery_of(payload)
        try:
            return handle(payload)
        finally:
            _delivery.kind = None

    guardrail.handle_event = handle_event


def _snapshot(stack: LocalStack) -> dict[str, dict[str, Any]]:
    return {str(a["id"]).lower(): a for a in stack.emulator.accounts()}


def run_demo(out_dir: Path, *, fast: bool, accounts: int, out: TextIO) -> dict[str, Any]:
    from guardrail import functions
    from guardrail_workbench.report import DemoRun, StoryStep, door_fixes, door_words, report_html

    started = time.monotonic()
    out_dir.mkdir(parents=True, exist_ok=True)
    for stale in ("findings.jsonl",):
        (out_dir / stale).unlink(missing_ok=True)
    subs = subscription_ids(3, seed=5)
    tenant = generate_tenant(accounts, 3, seed=5)
    for entry in tenant["subscriptions"]:
        entry["resourceGroups"].append({"name": SANDBOX_RG, "location": "eastus", "accounts": []})
    tenant.setdefault("virtualNetworks", []).append(copy.deepcopy(PARTNER_VNET))  # the partner's network
    policy_path = out_dir / "policy.yaml"
    policy_path.write_text(demo_policy(subs), encoding="utf-8")
    recorder = Recorder(out)
    write = recorder.write
    write("Starting a local Azure: the ARM emulator, Azurite and the Teams, email and Monitor receivers...\n")
    with LocalStack(
        out_dir=out_dir,
        policy_path=str(policy_path),
        extra_env={"GUARDRAIL_WRITES_PER_SECOND": "50", "GUARDRAIL_SWEEP_CONCURRENCY": "8"},
    ) as stack:
        stack.emulator.seed(tenant)
        stack.apply_env()
        write(
            f"Local tenant: {len(subs)} subscriptions, {accounts} AI services accounts "
            f"(ARM emulator at {stack.emulator.endpoint})\n"
        )
        write(
            "State: Azurite; Teams, email and Monitor: local HTTPS receivers; "
            "events → the function app's handlers\n\n"
        )
        guardrail = functions.get_guardrail()
        _watch_deliveries(guardrail)
        guardrail.observers.append(recorder)
        stack.connect_function_app()
        seeded = _snapshot(stack)

        write("1. The reconcile sweep catches what was wrong before the guardrail was switched on:\n")
        report = guardrail.sweep()
        stack.wait_idle(60)
        swept = _snapshot(stack)
        write(
            f"   sweep: {report.listed} accounts listed, {report.compliant} already compliant, "
            f"{report.count('remediated')} remediated, {report.count('failed')} failed, "
            f"{report.seconds:.1f} s\n\n"
        )

        write("2. People and a pipeline change accounts; each change arrives twice, as Event Grid's\n")
        write("   [write event] and as a Resource [notification] (which carries the whole account):\n")
        timeline = _timeline(subs, fast)
        story: list[StoryStep] = []
        t0 = time.monotonic()
        for index, step in enumerate(timeline):
            delay = step.when - (time.monotonic() - t0)
            if delay > 0:
                time.sleep(delay)
            stack.wait_idle(60)  # the previous change's lines first, even in --fast mode
            recorder.step = index
            write(f"  {step.who} {step.what} ({step.name})\n")
            changed_at = dt.datetime.now(dt.UTC)
            rid = _account_id(step)
            written = step.body
            if step.private_endpoint is not None:
                written = _connect(stack, step, rid)
            elif step.child is not None:
                _write_child(stack, step, rid)
                written = copy.deepcopy(stack.emulator.account(rid) or {})
            else:
                _put(stack, step)
            stack.wait_idle(60)
            story.append(
                StoryStep(
                    index=index,
                    who=str(step.claims.get("name") or step.who),
                    principal=str(step.claims.get("upn") or f"app:{step.claims.get('appid', '')}"),
                    what=step.what,
                    account=step.name,
                    resource_id=rid,
                    at=changed_at,
                    written=written,
                    after=stack.emulator.account(rid),
                )
            )
        stack.wait_idle(60)
        time.sleep(0.2)
        stack.wait_idle(60)
        recorder.step = None
        guardrail.observers.remove(recorder)
        final = _snapshot(stack)
        write(
            "\n3. The doors networkAcls does not govern: private endpoints, outbound access and the "
            "agents' network:\n"
        )
        for fix in door_fixes(recorder.entries, final):
            write(f"  {door_words(fix)}\n")
        summary = _summary(recorder, stack, report.listed, time.monotonic() - started)
        summary["network_doors"] = _network_doors(recorder, final)
        run = DemoRun(
            summary=summary,
            entries=recorder.entries,
            story=story,
            seeded=seeded,
            swept=swept,
            cards=list(stack.teams.messages),
            breaker_window=guardrail.settings.breaker_window,
            breaker_until=_breaker_until(guardrail, recorder),
            final=final,
            generated=dt.datetime.now(dt.UTC),
            tenant=f"{len(subs)} subscriptions, {accounts} accounts",
        )
        _write_artifacts(out_dir, stack, summary, report_html(run))
    write("\n" + _summary_table(summary) + "\n")
    write(f"Files in {out_dir}: {', '.join(name for name in ARTIFACTS if (out_dir / name).exists())}\n")
    return summary


def _account_id(step: Step) -> str:
    return (
        f"/subscriptions/{step.subscription}/resourceGroups/{step.group}"
        f"/providers/Microsoft.CognitiveServices/accounts/{step.name}"
    )


def _network_doors(recorder: Recorder, final: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """What became of the two network doors the timeline opens, as the emulator holds them at the end
    and as the guardrail's verified outcomes say (summary.json; the report tells it in words)."""
    from guardrail_workbench.report import door_fixes

    doors: dict[str, Any] = {"private_endpoints": [], "outbound": [], "agents": []}
    where = {"private-endpoint-not-allowed": "private_endpoints", "outbound-fqdn-not-allowed": "outbound"}
    for fix in door_fixes(recorder.entries, final):
        if fix.rule not in where:
            doors["agents"].append({"account": fix.resource_id, "rule": fix.rule, "value": fix.value})
            continue
        doors[where[fix.rule]].append(
            {
                "account": fix.resource_id,
                "value": fix.value,
                "now": fix.now,
                "allowedFqdnList": list(fix.kept),
                "ms_after_the_change": round(fix.latency * 1000, 1) if fix.latency is not None else None,
            }
        )
    return doors


def _breaker_until(guardrail: Any, recorder: Recorder) -> dict[str, dt.datetime]:
    """When each tripped breaker closes, from the state store (the report says "suspended until")."""
    until: dict[str, dt.datetime] = {}
    now = dt.datetime.now(dt.UTC)
    for outcome in recorder.outcomes:
        if not outcome.breaker_tripped:
            continue
        try:
            state = guardrail.state.breaker_state(outcome.resource_id, now)
        except Exception:  # the store is optional: the report then says the window instead
            state = None
        if state is not None:
            until[outcome.resource_id.lower()] = state.until
    return until


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def _summary(recorder: Recorder, stack: LocalStack, accounts: int, seconds: float) -> dict[str, Any]:
    from guardrail.findings import FindingRecord

    rows = [
        FindingRecord.from_json(json.loads(line))
        for line in (stack.out_dir / "findings.jsonl").read_text().splitlines()
        if line
    ]
    # Heartbeat rows are the guardrail's own health, not findings about an account.
    by_rule = Counter(r.rule for r in rows if r.status not in ("exempted", "heartbeat"))
    by_status = Counter(r.status for r in rows)
    actions = Counter(o.action for o in recorder.outcomes)
    return {
        "accounts": accounts,
        "finding_records": len(rows),
        "findings_by_rule": dict(sorted(by_rule.items())),
        "records_by_status": dict(sorted(by_status.items())),
        "remediated": actions.get("remediated", 0),
        "failed": actions.get("failed", 0),
        "suspended": actions.get("suspended", 0),
        "breaker_trips": sum(1 for o in recorder.outcomes if o.breaker_tripped),
        "exempted_accounts": len({r.resource_id for r in rows if r.status == "exempted"}),
        "event_latency_p50_ms": round(_percentile(recorder.latencies, 0.5) * 1000, 1),
        "event_latency_p99_ms": round(_percentile(recorder.latencies, 0.99) * 1000, 1),
        "event_remediations": len(recorder.latencies),
        "private_endpoints_rejected": sum(
            1 for r in rows if r.rule == "private-endpoint-not-allowed" and r.status == "remediated"
        ),
        "fqdns_stripped": sum(
            1 for r in rows if r.rule == "outbound-fqdn-not-allowed" and r.status == "remediated"
        ),
        "teams_cards": len(stack.teams.cards),
        "emails": len(stack.email.messages),
        "monitor_records": len(stack.ingestion.records),
        "monitor_violations": list(stack.ingestion.violations),
        "failed_deliveries": len(stack.failed_deliveries),
        "seconds": round(seconds, 1),
    }


def _summary_table(summary: dict[str, Any]) -> str:
    from guardrail_workbench.report import summary_rows

    lines = ["Summary", "-------"]
    lines += [f"  {k:<28} {v}" for k, v in summary_rows(summary)]
    lines.append("  findings by rule:")
    lines += [f"    {rule:<28} {count}" for rule, count in summary["findings_by_rule"].items()]
    return "\n".join(lines)


def _write_artifacts(out_dir: Path, stack: LocalStack, summary: dict[str, Any], report: str) -> None:
    (out_dir / "teams-cards.json").write_text(json.dumps(stack.teams.messages, indent=2), encoding="utf-8")
    (out_dir / "emails.json").write_text(json.dumps(stack.email.messages, indent=2), encoding="utf-8")
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    (out_dir / "report.html").write_text(report, encoding="utf-8")


def cmd_demo(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    logging.basicConfig(level=logging.WARNING, stream=err, format="%(levelname)s %(name)s: %(message)s")
    for noisy in ("azure", "guardrail.findings"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    logging.getLogger("guardrail").setLevel(logging.WARNING)
    summary = run_demo(Path(args.out), fast=args.fast, accounts=args.accounts, out=out)
    ok = summary["remediated"] > 0 and summary["failed_deliveries"] == 0 and not summary["monitor_violations"]
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:  # pragma: no cover - convenience
    from guardrail.cli import main as cli_main

    return cli_main(["demo", *(argv or sys.argv[1:])])
