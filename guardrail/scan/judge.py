"""Judging what a deployment would create with the runtime's own engine: each account's body is
built from the template or plan (children folded in), every `Unresolved` value in it is taken out
and reported as `unresolved-value`, the body is judged by `guardrail.engine.evaluate` with the same
policy, and the findings of the rules an unresolved value feeds are withheld as "not judged" (they
could be wrong either way), so an unresolved value never passes as compliant."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from guardrail.rules import BY_ID, RULES, UNITS
from guardrail.scan.expressions import Unresolved
from guardrail.scan.model import ACCOUNT_TYPE, PRIVATE_ENDPOINT_CONNECTIONS, Deployed

if TYPE_CHECKING:
    from guardrail.engine import Evaluation
    from guardrail.policy import Policy

UNRESOLVED_VALUE: Final = "unresolved-value"
UNRESOLVED_SEVERITY: Final = "info"
UNRESOLVED_SUMMARY: Final = (
    "a value that decides a rule cannot be resolved before deploy (a parameter without a value, "
    "reference(), uniqueString(), a Terraform value known only after apply, a linked template): the "
    "rules it feeds are not judged"
)
UNRESOLVED_HELP: Final = (
    "give the value (--parameters FILE, --subscription, --resource-group), or write it as a literal; "
    "the runtime judges the account once it is deployed"
)
#: The placeholders of an account ID whose scope or name the scan does not know.
PLACEHOLDER_SUBSCRIPTION: Final = "{subscription}"
PLACEHOLDER_GROUP: Final = "{resourceGroup}"
PLACEHOLDER_NAME: Final = "{name}"

_IP: Final = (
    "ip-rule-invalid",
    "ip-rule-not-public",
    "ip-rule-too-broad",
    "ip-rule-not-allowlisted",
    "ip-rule-prefix-unsupported",
    "ip-rule-limit",
)
_VNET: Final = ("vnet-rule-invalid", "vnet-rule-not-allowed", "vnet-rule-limit", "custom-subdomain-missing")
#: Which rules read the value at each body path (the longest matching prefix wins); a path no entry
#: matches feeds no rule (location, tags, sku, ...). Held against the rule modules by a property test.
FEEDS: Final[tuple[tuple[str, tuple[str, ...]], ...]] = (
    ("properties.networkAcls.defaultAction", ("default-action-deny",)),
    ("properties.networkAcls.bypass", ("bypass-not-allowed",)),
    ("properties.networkAcls.ipRules", _IP),
    ("properties.networkAcls.virtualNetworkRules", _VNET),
    ("properties.networkAcls", ("default-action-deny", "bypass-not-allowed", *_IP, *_VNET)),
    ("properties.publicNetworkAccess", ("default-action-deny", "public-network-access")),
    ("properties.customSubDomainName", ("custom-subdomain-missing",)),
    ("properties.disableLocalAuth", ("local-auth-enabled",)),
    ("properties.restrictOutboundNetworkAccess", ("outbound-not-restricted",)),
    ("properties.allowedFqdnList", ("outbound-fqdn-not-allowed", "outbound-not-restricted")),
    ("properties.privateEndpointConnections", ("private-endpoint-not-allowed",)),
    ("properties.networkInjections", ("agent-subnet-not-allowed",)),
    (
        "properties",
        tuple(rule.id for rule in RULES if rule.id not in ("account-invalid", "diagnostics-missing")),
    ),
    ("kind", ("bypass-not-allowed",)),
)


def fed_rules(path: str) -> tuple[str, ...]:
    """The rules that read the value at body path `path` (e.g. properties.networkAcls.ipRules[2])."""
    best: tuple[str, tuple[str, ...]] | None = None
    for prefix, rules in FEEDS:
        if path == prefix or path.startswith((prefix + ".", prefix + "[")):
            if best is None or len(prefix) > len(best[0]):
                best = (prefix, rules)
    return best[1] if best else ()


@dataclass(frozen=True, slots=True)
class ScanFinding:
    """A finding as the scan reports it: the engine's, or `unresolved-value` (severity info)."""

    rule: str
    severity: str
    message: str
    value: str | None
    exempted: bool = False
    fixed: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "severity": self.severity,
            "message": self.message,
            "value": self.value,
            "exempted": self.exempted,
        }


@dataclass(slots=True)
class Judged:
    deployed: Deployed
    resource_id: str
    findings: list[ScanFinding] = field(default_factory=list)
    actions: list[dict[str, Any]] = field(default_factory=list)
    not_judged: list[str] = field(default_factory=list)

    @property
    def compliant(self) -> bool:
        return all(finding.exempted for finding in self.findings)

    def to_json(self) -> dict[str, Any]:
        return {
            "file": self.deployed.file,
            "resource": self.resource_id,
            "type": self.deployed.type,
            "source": self.deployed.source,
            "line": self.deployed.line,
            "compliant": self.compliant,
            "findings": [finding.to_json() for finding in self.findings],
            "actions": self.actions,
            "not_judged": self.not_judged,
            "children": [child.to_json() for child in self.deployed.children],
        }


def account_id(deployed: Deployed) -> str:
    name = deployed.name if isinstance(deployed.name, str) and deployed.name else PLACEHOLDER_NAME
    return (
        f"/subscriptions/{deployed.subscription or PLACEHOLDER_SUBSCRIPTION}"
        f"/resourceGroups/{deployed.resource_group or PLACEHOLDER_GROUP}"
        f"/providers/{ACCOUNT_TYPE}/{name}"
    )


def plan_actions(evaluation: Evaluation) -> list[dict[str, Any]]:
    """The calls the runtime would make for `evaluation`: the engine's plan (issue #23), in the form
    `guardrail evaluate --format json` prints it."""
    return [action.to_json() for action in evaluation.actions]


def account_body(deployed: Deployed, resource_id: str) -> dict[str, Any]:
    """The account body the deployment would give ARM, with the children that feed a rule folded in
    (`privateEndpointConnections` in properties is read-only in ARM: a template's own is ignored,
    the child resources are what create connections)."""
    properties = deployed.properties
    if isinstance(properties, dict):
        properties = {k: v for k, v in properties.items() if k.lower() != "privateendpointconnections"}
    connections: list[Any] = []
    for child in deployed.children:
        if child.type.lower() != PRIVATE_ENDPOINT_CONNECTIONS:
            continue
        if isinstance(child.name, Unresolved):
            connections.append(Unresolved(f"the name of {child.source}: {child.name.reason}"))
            continue
        name = child.name.rsplit("/", 1)[-1]
        connections.append(
            {
                "id": f"{resource_id}/privateEndpointConnections/{name}",
                "name": name,
                "type": child.type,
                "properties": child.properties,
            }
        )
    if connections:
        if isinstance(properties, dict):
            properties["privateEndpointConnections"] = connections
        elif properties is None:
            properties = {"privateEndpointConnections": connections}
    body: dict[str, Any] = {"id": resource_id, "name": deployed.name, "type": ACCOUNT_TYPE}
    if deployed.kind is not None:
        body["kind"] = deployed.kind
    if properties is not None:
        body["properties"] = properties
    return body


#: The account's child resources the rules read (issue #24), by type: the engine's `children` key and
#: whether it is a list. A template's own children of these types are what the rules judge; a child
#: the template does not declare is not known before deploy and its rules judge nothing (as the
#: engine does when a read is missing).
CHILD_KEYS: Final = {
    "microsoft.cognitiveservices/accounts/managednetworks": ("managedNetwork", False),
    "microsoft.cognitiveservices/accounts/capabilityhosts": ("capabilityHosts", True),
}
OUTBOUND_RULES: Final = "microsoft.cognitiveservices/accounts/managednetworks/outboundrules"


def child_rules(key: str) -> tuple[str, ...]:
    """The rules of the units that read the child `key`."""
    return tuple(rule.id for unit in UNITS for read in unit.reads if read.key == key for rule in unit.rules)


def account_children(deployed: Deployed, resource_id: str) -> dict[str, Any]:
    """The children the deployment declares, as the engine takes them (`children=`): the managed
    network `default` with its outboundRules children folded into its `outboundRules` map (as its
    GET embeds them), and the capability hosts."""
    children: dict[str, Any] = {}
    rules: dict[str, Any] = {}
    for child in deployed.children:
        kind = child.type.lower()
        if kind == OUTBOUND_RULES:
            name = child.name.rsplit("/", 1)[-1] if isinstance(child.name, str) else child.name
            if isinstance(name, Unresolved):
                rules[f"?{len(rules)}"] = name
            else:
                rules[name] = child.properties
            continue
        if kind not in CHILD_KEYS:
            continue
        key, many = CHILD_KEYS[kind]
        name = child.name.rsplit("/", 1)[-1] if isinstance(child.name, str) else child.name
        if isinstance(name, Unresolved):
            body: Any = name
        else:
            body = {
                "id": f"{resource_id}/{child.type.rsplit('/', 1)[-1]}/{name}",
                "name": name,
                "type": child.type,
                "properties": child.properties,
            }
        if many:
            children.setdefault(key, []).append(body)
        elif isinstance(body, Unresolved) or body["name"].lower() == "default":
            children[key] = body
    network = children.get("managedNetwork")
    if rules and isinstance(network, dict):
        props = network.get("properties")
        if isinstance(props, dict) and isinstance(props.get("managedNetwork"), dict):
            managed = dict(props["managedNetwork"])
            managed["outboundRules"] = {**(managed.get("outboundRules") or {}), **rules}
            network["properties"] = {**props, "managedNetwork": managed}
    return children


def _unresolved(value: Any, path: str) -> Iterator[tuple[str, Unresolved]]:
    if isinstance(value, Unresolved):
        yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _unresolved(item, f"{path}.{key}" if path else key)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _unresolved(item, f"{path}[{index}]")


def _without_unresolved(value: Any) -> Any:
    """`value` with every Unresolved value taken out (a key dropped, an entry removed)."""
    if isinstance(value, dict):
        return {k: _without_unresolved(v) for k, v in value.items() if not isinstance(v, Unresolved)}
    if isinstance(value, list):
        return [_without_unresolved(v) for v in value if not isinstance(v, Unresolved)]
    return value


def _name_feeds(policy: Policy) -> tuple[str, ...]:
    """The rules an account's name decides: those an exemption scoped to one account names, and the
    bypass rule when the policy allows bypass to named accounts."""
    rules: list[str] = []
    for exemption in policy.exemptions:
        if "/providers/" in exemption.scope.lower():
            rules += [r.id for r in RULES] if "*" in exemption.rules else exemption.rules
    if policy.network.bypass_allowed_accounts:
        rules.append("bypass-not-allowed")
    return tuple(dict.fromkeys(rules))


def _may_have_subnets(body: dict[str, Any]) -> bool:
    """Whether the account may have virtual network rules (unresolved ones count)."""
    properties = body.get("properties")
    if not isinstance(properties, dict):
        return isinstance(properties, Unresolved)
    acls = properties.get("networkAcls")
    if not isinstance(acls, dict):
        return isinstance(acls, Unresolved)
    rules = acls.get("virtualNetworkRules")
    return bool(rules) or isinstance(rules, Unresolved)


def judge(deployed: Deployed, policy: Policy, now: dt.datetime) -> Judged:
    from guardrail.engine import InvalidAccount, evaluate

    resource_id = account_id(deployed)
    judged = Judged(deployed, resource_id)
    on = {rule.id for rule in RULES if rule.on(policy)}
    if deployed.problem is not None:
        judged.not_judged = sorted(on - {"account-invalid", "diagnostics-missing"})
        judged.findings.append(
            ScanFinding(UNRESOLVED_VALUE, UNRESOLVED_SEVERITY, deployed.problem, deployed.source)
        )
        return judged
    body = account_body(deployed, resource_id)
    gaps: list[tuple[str, Unresolved, tuple[str, ...]]] = []
    if isinstance(deployed.name, Unresolved):
        gaps.append(("name", deployed.name, _name_feeds(policy)))
    for path, value in _unresolved({k: v for k, v in body.items() if k != "name"}, ""):
        gaps.append((path, value, tuple(rule for rule in fed_rules(path) if rule in on)))
    children = account_children(deployed, resource_id)
    for path, value in _unresolved(children, ""):
        key = path.split(".", 1)[0].split("[", 1)[0]
        gaps.append((path, value, tuple(rule for rule in child_rules(key) if rule in on)))
    if not _may_have_subnets(body):  # customSubDomainName matters only with virtual network rules
        gaps = [(p, v, tuple(r for r in rules if r != "custom-subdomain-missing")) for p, v, rules in gaps]
    not_judged: set[str] = set()
    for path, value, rules in gaps:
        if not rules and path != "name":
            continue  # it decides nothing the policy turns on
        not_judged.update(rules)
        withheld = ", ".join(rules) if rules else "none (no exemption or allowance names one account)"
        judged.findings.append(
            ScanFinding(
                UNRESOLVED_VALUE,
                UNRESOLVED_SEVERITY,
                f"{path} cannot be resolved before deploy ({value.reason}); not judged: {withheld}",
                path,
            )
        )
    body = _without_unresolved(body)
    body["name"] = resource_id.rsplit("/", 1)[-1]
    evaluation = evaluate(body, policy, now, children=_without_unresolved(children))
    if isinstance(evaluation, InvalidAccount):
        rule = BY_ID["account-invalid"]
        judged.findings.insert(
            0,
            ScanFinding(rule.id, rule.severity, f"the account cannot be judged: {evaluation.message}", None),
        )
    else:
        engine_findings = [
            ScanFinding(f.rule, f.severity, f.message, f.value, f.exempted, f.fixed)
            for f in evaluation.findings
            if f.rule not in not_judged
        ]
        judged.findings[:0] = engine_findings
        if not judged.findings or all(f.rule != UNRESOLVED_VALUE for f in judged.findings):
            judged.actions = plan_actions(evaluation)
    judged.not_judged = sorted(not_judged)
    return judged
